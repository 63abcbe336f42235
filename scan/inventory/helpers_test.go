package inventory_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one tar entry of a test layer.
type entry struct {
	hdr  tar.Header
	body []byte
}

func reg(name, body string) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, []byte(body)}
}

func exe(name string, body []byte) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(body))}, body}
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func device(name string, typ byte) entry {
	return entry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o666, Devmajor: 1, Devminor: 3}}
}

// tarOf writes entries as a tar stream.
func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.ModTime = time.Unix(1700000000, 0)
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("WriteHeader(%q) = %v", hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("writing %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf makes a layer of a tar stream, as go-containerregistry reads one from a tarball.
func layerOf(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatalf("LayerFromOpener: %v", err)
	}
	return l
}

// step is a history entry of a test image: a layer, or an empty layer (ENV, CMD…) when layer is nil.
type step struct {
	layer     v1.Layer
	createdBy string
}

func imageOf(t testing.TB, steps ...step) v1.Image {
	t.Helper()
	img := empty.Image
	var history []v1.History
	for _, s := range steps {
		h := v1.History{CreatedBy: s.createdBy, Created: v1.Time{Time: time.Unix(1700000000, 0)}}
		if s.layer == nil {
			h.EmptyLayer = true
		} else {
			var err error
			if img, err = mutate.AppendLayers(img, s.layer); err != nil {
				t.Fatalf("AppendLayers: %v", err)
			}
		}
		history = append(history, h)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.History = history
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// goBinary is a Go program built once for the tests, with go-units v0.5.0 as a dependency when the module cache
// holds it (it is one of this module's own), else the standard library only.
type goBinary struct {
	path       string
	goVersion  string // "1.26.8"
	depVersion string // "0.5.0", or empty when built without the dependency
}

var buildDir string

var builtGo = sync.OnceValues(func() (goBinary, error) {
	src := filepath.Join(buildDir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return goBinary{}, err
	}
	out := filepath.Join(buildDir, "hello")
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return goBinary{}, err
	}
	b := goBinary{path: out, goVersion: strings.TrimPrefix(strings.TrimSpace(string(goVersion)), "go"), depVersion: "0.5.0"}
	build := func(mod, main string) error {
		os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644)
		os.WriteFile(filepath.Join(src, "main.go"), []byte(main), 0o644)
		os.Remove(filepath.Join(src, "go.sum"))
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
		return nil
	}
	err = build("module example.com/hello\n\ngo 1.22\n\nrequire github.com/docker/go-units v0.5.0\n",
		"package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/docker/go-units\"\n)\n\nfunc main() { fmt.Println(units.HumanSize(1e6)) }\n")
	if err != nil {
		b.depVersion = ""
		err = build("module example.com/hello\n\ngo 1.22\n", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n")
	}
	return b, err
})

func TestMain(m *testing.M) {
	var err error
	if buildDir, err = os.MkdirTemp("", "inventory-test-go-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(buildDir)
	os.Exit(code)
}
