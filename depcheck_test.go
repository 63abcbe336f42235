package containerization_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestLibraryPackagesDoNotImportTheCLI keeps the layering: the packages that hold the work never import cobra or
// the CLI, so that they stay usable as a library (nerdctl keeps the same rule with depguard). pflag may come in
// through client-go (clientcmd binds kubeconfig flags with it), but no package of ours imports it.
func TestLibraryPackagesDoNotImportTheCLI(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps=false", "-json=ImportPath,Deps,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"github.com/spf13/cobra", "github.com/codomyrmex/containerization/internal/cli"}
	forbiddenImports := []string{"github.com/spf13/pflag"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if isCLI(p.ImportPath) {
			continue
		}
		checked++
		for _, d := range p.Deps {
			for _, f := range forbidden {
				if d == f {
					t.Errorf("library package %s depends on %s", p.ImportPath, f)
				}
			}
		}
		for _, d := range p.Imports {
			for _, f := range forbiddenImports {
				if d == f {
					t.Errorf("library package %s imports %s", p.ImportPath, f)
				}
			}
		}
	}
	if checked < 3 {
		t.Errorf("checked %d library packages, want the root, engine and errdefs at least", checked)
	}
}

func isCLI(pkg string) bool {
	const mod = "github.com/codomyrmex/containerization/"
	return strings.HasPrefix(pkg, mod+"cmd/") || strings.HasPrefix(pkg, mod+"internal/cli") ||
		strings.HasPrefix(pkg, mod+"bench/") || strings.HasPrefix(pkg, mod+"internal/tools/")
}
