package inventory_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/codomyrmex/containerization/scan/inventory"
)

// unreadable is a layer whose content cannot be read: a scan that succeeds on it took the layer from the cache.
type unreadable struct{ v1.Layer }

func (unreadable) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("layer read although cached")
}
func (unreadable) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("layer read although cached")
}

func unreadableImage(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	out := imageOf(t)
	for _, l := range layers {
		if out, err = mutate.AppendLayers(out, unreadable{l}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = mutate.ConfigFile(out, cfg); err != nil {
		t.Fatal(err)
	}
	return out
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

	t.Run("unchanged image", func(t *testing.T) {
		warm, err := inventory.Scan(context.Background(), unreadableImage(t, img), opts)
		if err != nil {
			t.Fatalf("Scan(warm) = %v", err)
		}
		same("warm", warm, 5)
	})

	t.Run("quick scan", func(t *testing.T) {
		quick, err := inventory.Scan(context.Background(), unreadableImage(t, img), inventory.Options{Cache: cache, OSOnly: true})
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
			step{unreadable{layers[0]}, "ADD base"},
			step{unreadable{layers[1]}, "RUN apt-get install -y curl"},
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
		again, err := inventory.Scan(context.Background(), unreadableImage(t, img), opts)
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

// lying is a layer whose diff ID is not that of its content.
type lying struct{ v1.Layer }

func (lying) DiffID() (v1.Hash, error) {
	return v1.NewHash("sha256:0000000000000000000000000000000000000000000000000000000000000000")
}

func TestScanCacheChecksDiffIDs(t *testing.T) {
	l := layerOf(t, tarOf(t, reg("node_modules/lodash/package.json", lodashPackageJSON)))
	img := imageOf(t, step{lying{l}, "COPY"})
	cache := t.TempDir()
	got, err := inventory.Scan(context.Background(), img, inventory.Options{Cache: cache})
	if err != nil {
		t.Fatalf("Scan() = %v", err)
	}
	if len(got.Packages) != 1 || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "not cached") {
		t.Errorf("Scan() = %+v, want lodash and a warning that the layer was not cached", got)
	}
	if files := cacheFiles(t, cache); len(files) > 0 {
		t.Errorf("cache holds %q, want nothing", files)
	}
}
