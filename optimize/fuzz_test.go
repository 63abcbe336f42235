package optimize_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/optimize"
)

// regularBytes adds up the sizes of a layer's regular entries that the analysis keeps in its view (not
// whiteouts, not the root), or ok false when the layer is not a whole tar stream.
func regularBytes(layer []byte) (sum int64, ok bool) {
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return sum, true
		}
		if err != nil {
			return 0, false
		}
		p := path.Clean("/" + hdr.Name)
		if p == "/" || strings.HasPrefix(path.Base(p), ".wh.") {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			sum += hdr.Size
		}
	}
}

// FuzzAnalyze analyses an image of two arbitrary layers: every input ends in a result or a refusal that wraps
// ErrInvalidArgument, never a panic; and a result keeps its books: the efficiency lies in [0, 1], no figure is
// negative, the waste's total is the sum of its kinds and of the layers' wasted bytes, the image's size the sum of
// its layers', and every body a layer holds is either in the image as it runs, overwritten or deleted.
func FuzzAnalyze(f *testing.F) {
	for _, s := range [][2][]ent{
		{{file("etc/conf", 10, 'c'), file("data/big", 100, 'b'), dirEnt("tmp")}, {file("etc/conf", 20, 'C'), {name: "data/.wh.big"}, file("tmp/x", 5, 't')}},
		{{file("a/x", 10, 'x'), file("o/old", 30, 'o')}, {{name: ".wh.a"}, {name: "o/.wh..wh..opq"}, file("o/new", 3, 'n')}},
		{{file("p", 7, 'p'), file("d/f", 11, 'f')}, {file("p/inside", 3, 'i'), file("d", 2, 'd')}},
		{{file("a", 4, 'a'), file("b", 4, 'a')}, {file("./a", 4, 'z'), file("a", 1, 'y')}},
	} {
		f.Add(tarOf(f, s[0]...), tarOf(f, s[1]...))
	}
	f.Add([]byte("not a tar stream"), []byte{})
	opts := optimize.AnalyzeOptions{MaxLayerSize: 1 << 20, MaxEntries: 1000}
	f.Fuzz(func(t *testing.T, l0, l1 []byte) {
		img := empty.Image
		for _, b := range [][]byte{l0, l1} {
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
				tarball.WithCompressionLevel(0))
			if err != nil {
				t.Fatal(err)
			}
			if img, err = mutate.AppendLayers(img, l); err != nil {
				t.Fatal(err)
			}
		}
		a, err := optimize.Analyze(context.Background(), img, opts)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Analyze = %v, want a refusal wrapping ErrInvalidArgument", err)
			}
			return
		}
		if a.Efficiency < 0 || a.Efficiency > 1 || a.WastedBytes < 0 || a.UserWastedPercent < 0 || a.ContentBytes < 0 {
			t.Fatalf("figures out of range: %+v", a)
		}
		w := a.Waste
		var perLayer, sizes int64
		for _, l := range a.Layers {
			perLayer += l.WastedBytes
			sizes += l.SizeBytes
		}
		if kinds := w.Overwritten + w.Deleted + w.PackageCaches + w.Temporary + w.Duplicates; kinds != w.Total || perLayer != w.Total {
			t.Fatalf("waste %+v: kinds add up to %d, layers to %d", w, kinds, perLayer)
		}
		if sizes != a.SizeBytes || a.SizeBytes-a.Layers[0].SizeBytes != a.UserSizeBytes {
			t.Fatalf("size %d, user size %d; layers %+v", a.SizeBytes, a.UserSizeBytes, a.Layers)
		}
		b0, ok0 := regularBytes(l0)
		b1, ok1 := regularBytes(l1)
		if ok0 && ok1 && b0+b1 != a.ContentBytes+w.Overwritten+w.Deleted {
			t.Fatalf("the layers hold %d bytes of files; in the image %d, overwritten %d, deleted %d", b0+b1, a.ContentBytes, w.Overwritten, w.Deleted)
		}
	})
}
