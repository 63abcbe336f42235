package cli_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/codomyrmex/containerization/internal/cli"
)

// TestScanCannotRun covers scans that stop before any result: bad input exits 2, a missing image or database
// exits 3, and stdout stays empty. None needs an engine: the images are files.
func TestScanCannotRun(t *testing.T) {
	t.Setenv("MYRMEX_CACHE_DIR", t.TempDir())
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	oci := "oci:" + dir

	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no image", []string{"scan"}, cli.ExitUsage},
		{"two images", []string{"scan", oci, oci}, cli.ExitUsage},
		{"unknown format", []string{"scan", oci, "-o", "xml"}, cli.ExitUsage},
		{"unknown type", []string{"scan", oci, "--type", "deep"}, cli.ExitUsage},
		{"unknown severity", []string{"scan", oci, "--severity-threshold", "severe"}, cli.ExitUsage},
		{"exit code out of range", []string{"scan", oci, "--exit-code", "256"}, cli.ExitUsage},
		{"password without username", []string{"scan", oci, "--password-stdin"}, cli.ExitUsage},
		{"missing archive", []string{"scan", "docker-archive:" + filepath.Join(dir, "missing.tar")}, cli.ExitNotFound},
		{"missing layout", []string{"scan", "oci:" + filepath.Join(dir, "missing")}, cli.ExitNotFound},
		{"missing ignore file", []string{"scan", oci, "--ignorefile", filepath.Join(dir, "missing.yaml")}, cli.ExitNotFound},
		{"no database", []string{"scan", oci}, cli.ExitNotFound},
		{"no database, sarif", []string{"scan", oci, "-o", "sarif", "--db-dir", t.TempDir()}, cli.ExitNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := myrmex(t, tc.args...)
			if r.code != tc.code || r.stdout != "" || r.stderr == "" {
				t.Errorf("myrmex %q = exit %d, stdout %q, stderr %q; want exit %d, an error and no output",
					tc.args, r.code, r.stdout, r.stderr, tc.code)
			}
		})
	}

	// A compliance scan needs no database.
	if r := myrmex(t, "scan", oci, "--type", "compliance", "-o", "json"); r.code != cli.ExitOK {
		t.Errorf("scan --type compliance without a database = exit %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
}
