package optimize_test

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ent is one tar entry of a test layer: a name ending in / is a directory, "->" a symlink, else a file.
type ent struct {
	name string
	body string
}

func file(name string, size int, fill byte) ent { return ent{name, strings.Repeat(string(fill), size)} }
func dirEnt(name string) ent                    { return ent{name: strings.TrimSuffix(name, "/") + "/"} }

func tarOf(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if strings.HasSuffix(e.name, "/") {
			hdr = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func layerOf(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// step is a layer and the instruction that made it; a nil layer is an empty history entry (ENV, CMD).
type step struct {
	layer     []ent
	createdBy string
}

func imageOf(t testing.TB, steps ...step) v1.Image {
	t.Helper()
	img := empty.Image
	for _, s := range steps {
		var err error
		if s.layer == nil {
			cfg, cerr := img.ConfigFile()
			if cerr != nil {
				t.Fatal(cerr)
			}
			cfg = cfg.DeepCopy()
			cfg.History = append(cfg.History, v1.History{CreatedBy: s.createdBy, EmptyLayer: true})
			img, err = mutate.ConfigFile(img, cfg)
		} else {
			img, err = mutate.Append(img, mutate.Addendum{Layer: layerOf(t, tarOf(t, s.layer...)), History: v1.History{CreatedBy: s.createdBy}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func imageOfLayer(t testing.TB, b []byte) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layerOf(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}
