package inventory_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/codomyrmex/containerization/scan/inventory"
)

// countedImage is img with the reads of its layers counted.
func countedImage(t *testing.T, img v1.Image) (v1.Image, *atomic.Int32) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	reads := &atomic.Int32{}
	out := imageOf(t)
	for _, l := range layers {
		if out, err = mutate.AppendLayers(out, counted{l, reads}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = mutate.ConfigFile(out, cfg); err != nil {
		t.Fatal(err)
	}
	return out, reads
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func TestScanCache(t *testing.T) {
	img, gb := testImage(t)
	cache := t.TempDir()
	opts := inventory.Options{Cache: cache}

	cold, err := inventory.Scan(context.Background(), img, opts)
	if err != nil {
		t.Fatalf("Scan(cold) = %v", err)
	}
	checkPackages(t, img, cold.Packages, wantPackages(gb))
	if cold.Stats.CachedLayers != 0 {
		t.Errorf("Scan(cold).Stats.CachedLayers = %d, want 0", cold.Stats.CachedLayers)
	}
	files := cacheFiles(t, cache)
	if len(files) != 5 {
		t.Fatalf("cache holds %q, want one entry per layer", files)
	}

	same := func(name string, got *inventory.Result, cachedLayers int) {
		t.Helper()
		if !reflect.DeepEqual(got.Packages, cold.Packages) || got.OS != cold.OS || len(got.Warnings) > 0 {
			t.Errorf("Scan(%s) = %+v, want %+v", name, got, cold)
		}
		if got.Stats.CachedLayers != cachedLayers || got.Stats.Entries != cold.Stats.Entries {
			t.Errorf("Scan(%s).Stats = %+v, want %d cached layers and %d entries", name, got.Stats, cachedLayers, cold.Stats.Entries)
		}
	}

	// A warm scan reads each layer once, to check its diff ID, and filters none.
	t.Run("unchanged image", func(t *testing.T) {
		counted, reads := countedImage(t, img)
		warm, err := inventory.Scan(context.Background(), counted, opts)
		if err != nil {
			t.Fatalf("Scan(warm) = %v", err)
		}
		same("warm", warm, 5)
		if n := reads.Load(); n != 5 {
			t.Errorf("Scan(warm) read layers %d times, want 5", n)
		}
	})

	t.Run("quick scan", func(t *testing.T) {
		quick, err := inventory.Scan(context.Background(), img, inventory.Options{Cache: cache, OSOnly: true})
		if err != nil {
			t.Fatalf("Scan(quick) = %v", err)
		}
		if len(quick.Packages) != 6 || quick.Stats.CachedLayers != 5 {
			t.Errorf("Scan(quick) found %d packages with %d cached layers, want the 6 Debian packages and 5", len(quick.Packages), quick.Stats.CachedLayers)
		}
	})

	t.Run("shared base", func(t *testing.T) {
		layers, _ := img.Layers()
		other := imageOf(t,
			step{layers[0], "ADD base"},
			step{layers[1], "RUN apt-get install -y curl"},
			step{layerOf(t, tarOf(t, reg("srv/node_modules/left-pad/package.json", `{"name":"left-pad","version":"1.3.0"}`))), "COPY . /srv"},
		)
		got, err := inventory.Scan(context.Background(), other, opts)
		if err != nil {
			t.Fatalf("Scan(shared base) = %v", err)
		}
		if got.Stats.CachedLayers != 2 || len(got.Packages) != 7 || got.Packages[6].Name != "left-pad" || got.Packages[6].Layer.Index != 2 {
			t.Errorf("Scan(shared base) = %+v, want the 6 Debian packages and left-pad from layer 2, 2 layers cached", got)
		}
	})

	t.Run("damaged entries", func(t *testing.T) {
		damage := []func(string) error{
			func(p string) error { return os.Truncate(p, 100) },
			func(p string) error { // a flipped byte in the tar
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				b[700] ^= 0xff
				return os.WriteFile(p, b, 0o600)
			},
			func(p string) error { return os.WriteFile(p, []byte("MYRMEXL1"), 0o600) },
			func(p string) error { return os.WriteFile(p, nil, 0o600) },
		}
		for i, d := range damage {
			if err := d(files[i]); err != nil {
				t.Fatal(err)
			}
		}
		got, err := inventory.Scan(context.Background(), img, opts)
		if err != nil {
			t.Fatalf("Scan(damaged cache) = %v", err)
		}
		same("damaged cache", got, len(files)-len(damage))
		again, err := inventory.Scan(context.Background(), img, opts)
		if err != nil {
			t.Fatalf("Scan(after repair) = %v", err)
		}
		same("after repair", again, 5)
	})

	for _, f := range cacheFiles(t, cache) {
		if !strings.HasSuffix(f, ".layer") {
			t.Errorf("cache holds %s, want only entries", f)
		}
	}
}

// claiming is a layer that declares a diff ID not its own.
type claiming struct {
	v1.Layer
	diffID v1.Hash
}

func (c claiming) DiffID() (v1.Hash, error) { return c.diffID, nil }

var zeros = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}

// TestScanDiffIDs: a layer whose content does not have the diff ID its image declares fails the scan with
// ErrDiffIDMismatch, with a cache or without, and leaves nothing in the cache.
func TestScanDiffIDs(t *testing.T) {
	l := layerOf(t, tarOf(t, reg("node_modules/lodash/package.json", lodashPackageJSON)))
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, step{layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease))), "ADD"}, step{claiming{l, zeros}, "COPY"})
	for _, cache := range []string{"", t.TempDir()} {
		_, err := inventory.Scan(context.Background(), img, inventory.Options{Cache: cache})
		var lerr *inventory.LayerError
		if !errors.Is(err, inventory.ErrDiffIDMismatch) || !errors.As(err, &lerr) || lerr.Index != 1 || lerr.DiffID != zeros.String() ||
			!strings.Contains(err.Error(), "the content has diff ID "+d.String()) {
			t.Errorf("Scan(cache %q) = %v, want a *LayerError for layer 1 wrapping %v, naming %s", cache, err, inventory.ErrDiffIDMismatch, d)
		}
		if cache == "" {
			continue
		}
		for _, f := range cacheFiles(t, cache) {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "lodash") {
				t.Errorf("cache holds %s, the layer that lied", f)
			}
		}
	}
}

// TestScanCacheTrustsNoDiffID: the cache serves a layer by diff ID only once the layer's content is seen to have
// it. A layer of other packages that declares a cached layer's diff ID was reported as the cached one.
func TestScanCacheTrustsNoDiffID(t *testing.T) {
	pkg := func(name string) v1.Layer {
		return layerOf(t, tarOf(t, reg("app/node_modules/"+name+"/package.json", `{"name":"`+name+`","version":"1.0.0"}`)))
	}
	clean, evil := pkg("clean"), pkg("evil")
	d, err := clean.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	opts := inventory.Options{Cache: cache}
	if _, err := inventory.Scan(context.Background(), imageOf(t, step{clean, "COPY"}), opts); err != nil {
		t.Fatalf("Scan(clean) = %v", err)
	}
	got, err := inventory.Scan(context.Background(), imageOf(t, step{claiming{evil, d}, "COPY"}), opts)
	if !errors.Is(err, inventory.ErrDiffIDMismatch) {
		t.Errorf("Scan(evil as %s) = %+v, %v, want %v", d, got, err, inventory.ErrDiffIDMismatch)
	}
	warm, err := inventory.Scan(context.Background(), imageOf(t, step{clean, "COPY"}), opts)
	if err != nil || warm.Stats.CachedLayers != 1 || len(warm.Packages) != 1 || warm.Packages[0].Name != "clean" {
		t.Errorf("Scan(clean, warm) = %+v, %v, want clean from the cache", warm, err)
	}
}

// TestScanCacheSize: past MaxCacheSize, the entries least recently used go; an entry larger than the whole
// cache is not written.
func TestScanCacheSize(t *testing.T) {
	layer := func(name string, size int) v1.Layer {
		body := `{"name":"` + name + `","version":"1.0.0","description":"` + strings.Repeat("x", size) + `"}`
		return layerOf(t, tarOf(t, reg("app/node_modules/"+name+"/package.json", body)))
	}
	a, b, c := layer("a", 20<<10), layer("b", 20<<10), layer("c", 20<<10)
	cache := t.TempDir()
	opts := inventory.Options{Cache: cache, Limits: inventory.Limits{MaxCacheSize: 50 << 10}} // two entries of 22 KiB
	scan := func(l v1.Layer, wantCached int) *inventory.Result {
		t.Helper()
		got, err := inventory.Scan(context.Background(), imageOf(t, step{l, "COPY"}), opts)
		if err != nil {
			t.Fatalf("Scan() = %v", err)
		}
		if got.Stats.CachedLayers != wantCached {
			t.Errorf("Scan(%s).Stats.CachedLayers = %d, want %d", got.Packages[0].Name, got.Stats.CachedLayers, wantCached)
		}
		if n := dirBytes(t, cache); n > opts.MaxCacheSize {
			t.Errorf("cache holds %d bytes after Scan(%s), more than MaxCacheSize %d", n, got.Packages[0].Name, opts.MaxCacheSize)
		}
		return got
	}
	scan(a, 0)
	scan(b, 0)
	// Modification times may be coarse: a's entry is made the older by hand, then used, which makes it the newer.
	old := time.Now().Add(-time.Hour)
	for _, f := range cacheFiles(t, cache) {
		os.Chtimes(f, old, old)
	}
	scan(a, 1)
	scan(c, 0) // b goes
	scan(a, 1)
	scan(b, 0)

	got := scan(layer("big", 60<<10), 0)
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "not cached: larger than the cache's size (MaxCacheSize)") {
		t.Errorf("Scan(big).Warnings = %q, want one that it was not cached", got.Warnings)
	}
	if files := cacheFiles(t, cache); len(files) != 2 {
		t.Errorf("cache holds %q, want the two entries of before", files)
	}
}
