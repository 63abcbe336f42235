package scan_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/scan"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// countedImage is a real image whose layer reads are counted: how the tests see that a re-scan read no layer.
type countedImage struct {
	v1.Image
	reads *atomic.Int64
}

func (c countedImage) Layers() ([]v1.Layer, error) {
	ls, err := c.Image.Layers()
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = countedLayer{l, c.reads}
	}
	return out, err
}

type countedLayer struct {
	v1.Layer
	reads *atomic.Int64
}

func (c countedLayer) Uncompressed() (io.ReadCloser, error) {
	c.reads.Add(1)
	return c.Layer.Uncompressed()
}

func (c countedLayer) Compressed() (io.ReadCloser, error) {
	c.reads.Add(1)
	return c.Layer.Compressed()
}

// debianArchive saves the real Debian test image to a file and returns the file and a database of the real
// advisory fixtures.
func debianArchive(t *testing.T) (file, dbDir string) {
	t.Helper()
	ctx := context.Background()
	eng := testenv.Engine(t)
	img, err := testimages.EnsureDebian(ctx, eng, testimages.DebianOptions{})
	if errors.Is(err, errdefs.ErrUnavailable) && !testenv.Required() {
		t.Skipf("cannot build the Debian test image here: %v", err)
	}
	if err != nil {
		t.Fatalf("EnsureDebian() = %v", err)
	}
	file = filepath.Join(t.TempDir(), "debian.tar")
	if err := eng.SaveImageFile(ctx, img.Ref, file); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	for _, dir := range []string{"match/testdata", "../testdata/osv"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dbDir = t.TempDir()
	if _, err := vulndb.Import(ctx, src, vulndb.Options{Dir: dbDir}); err != nil {
		t.Fatalf("vulndb.Import() = %v", err)
	}
	return file, dbDir
}

// TestRescanOfTheSameIdentityReadsNoLayer scans the real Debian image twice under one identity: the second scan
// reads no layer and reports what the first did (packages, findings, compliance). Another identity, another
// reference (the latest-tag check reads it) or a damaged entry read the layers again, and a scan without an
// identity always does.
func TestRescanOfTheSameIdentityReadsNoLayer(t *testing.T) {
	ctx := context.Background()
	file, dbDir := debianArchive(t)
	base, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	img := countedImage{base, &reads}
	cache := t.TempDir()
	opts := scan.Options{DBDir: dbDir, Cache: cache, Identity: "test image 1"}

	scanOnce := func(ref string, o scan.Options) (*scan.Report, int64) {
		t.Helper()
		before := reads.Load()
		rep, err := scan.Image(ctx, img, ref, o)
		if err != nil {
			t.Fatalf("scan.Image(%q, identity %q) = %v", ref, o.Identity, err)
		}
		return rep, reads.Load() - before
	}
	first, n := scanOnce("", opts)
	if n == 0 || first.FromCache {
		t.Fatalf("first scan: %d layer reads, FromCache %v, want reads and false", n, first.FromCache)
	}
	if len(first.Packages) == 0 || first.Match == nil || len(first.Match.Findings) == 0 || first.Compliance == nil {
		t.Fatalf("first scan: %d packages, match %v, compliance %v: want all of them", len(first.Packages), first.Match, first.Compliance)
	}
	again, n := scanOnce("", opts)
	if n != 0 || !again.FromCache {
		t.Errorf("re-scan of the same identity: %d layer reads, FromCache %v, want 0 and true", n, again.FromCache)
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"packages", again.Packages, first.Packages},
		{"OS", again.OS, first.OS},
		{"findings", again.Match.Findings, first.Match.Findings},
		{"compliance", again.Compliance, first.Compliance},
		{"warnings", again.Warnings, first.Warnings},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("re-scan: %s = %v, want the first scan's %v", c.what, c.got, c.want)
		}
	}

	for _, c := range []struct {
		name string
		ref  string
		opts scan.Options
	}{
		{"another identity", "", scan.Options{DBDir: dbDir, Cache: cache, Identity: "test image 2"}},
		{"another reference", "debian-scan:latest", opts},
		{"no identity", "", scan.Options{DBDir: dbDir, Cache: cache}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, n := scanOnce(c.ref, c.opts)
			if n == 0 || rep.FromCache {
				t.Errorf("%d layer reads, FromCache %v, want reads and false", n, rep.FromCache)
			}
		})
	}

	t.Run("damaged entry", func(t *testing.T) {
		entries, _ := filepath.Glob(filepath.Join(cache, "scan-facts", "*.json"))
		if len(entries) == 0 {
			t.Fatal("no entry in the cache's scan-facts directory")
		}
		for _, e := range entries {
			if err := os.WriteFile(e, []byte(`{"key": "not this one"`), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rep, n := scanOnce("", opts)
		if n == 0 || rep.FromCache {
			t.Errorf("after damage: %d layer reads, FromCache %v, want reads and false", n, rep.FromCache)
		}
		if !reflect.DeepEqual(rep.Packages, first.Packages) {
			t.Errorf("after damage: packages differ from the first scan's")
		}
		if _, n := scanOnce("", opts); n != 0 {
			t.Errorf("after the entry was written again: %d layer reads, want 0", n)
		}
	})
}

// TestFileIdentity: the identity of a file stays while it is unchanged and changes when it is written, even with
// the same bytes and its modification time set back; a missing file or a directory has none.
func TestFileIdentity(t *testing.T) {
	file := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(file, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := scan.FileIdentity(file)
	if id == "" || scan.FileIdentity(file) != id {
		t.Fatalf("FileIdentity(%q) = %q, then %q: want one non-empty identity", file, id, scan.FileIdentity(file))
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := scan.FileIdentity(file); got == id {
		t.Errorf("FileIdentity after a write of the same bytes, mtime set back = %q, want another identity", got)
	}
	for _, p := range []string{filepath.Join(t.TempDir(), "missing.tar"), t.TempDir()} {
		if got := scan.FileIdentity(p); got != "" {
			t.Errorf("FileIdentity(%q) = %q, want \"\"", p, got)
		}
	}
}
