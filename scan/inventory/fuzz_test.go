package inventory_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/inventory"
)

// FuzzScanLayer scans a one-layer image made of arbitrary bytes: every input ends in a result or in a
// *LayerError for an invalid layer, never in a panic or a hang, and leaves no file behind. The seeds are small,
// so that the fuzzer's minimization of each new input stays short.
func FuzzScanLayer(f *testing.F) {
	up := strings.Repeat("../", 4)
	for _, seed := range [][]entry{
		{reg("etc/os-release", "ID=debian\nVERSION_ID=12\n"), reg("var/lib/dpkg/status", "Package: a\nStatus: install ok installed\nSource: b (1)\nVersion: 2\n")},
		{reg("lib/apk/db/installed", "P:musl\nV:1.2.4-r2\no:musl\n\n"), reg("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n")},
		{dir("n/node_modules/l/"), reg("n/node_modules/l/package.json", `{"name":"l","version":"4.17.20"}`)},
		{reg("r-2.25.0.dist-info/METADATA", "Name: requests\nVersion: 2.25.0\n")},
		{exe("bin/go", []byte("\x7fELF\xff Go buildinf:\x08\x02"))},
		{reg(up+"tmp/pwned", "x"), reg("/../p", "x"), reg(".myrmex-omitted", "x")},
		{symlink("a/package.json", "/etc/shadow"), symlink("b/package.json", up+"etc/passwd"), symlink("x", "")},
		{symlink("l/a", "b"), symlink("l/b", "a"), symlink("s", "."), symlink("c/package.json", "../l/a")},
		{hardlink("d/package.json", up+"etc/passwd"), hardlink("h", "/etc/passwd"), hardlink("r", ".")},
		{device("dev/null", tar.TypeChar), device("dev/sda", tar.TypeBlock), device("f", tar.TypeFifo)},
		{reg("n\nl/package.json", `{"name":"n","version":"1"}`), reg(".wh.etc", ""), reg("d/.wh..wh..opq", "")},
	} {
		f.Add(tarOf(f, seed...))
	}
	f.Add(paxNULName())
	f.Add(rawTar(gnuSparse("n/package.json", 1<<20), paxSparse("m/package.json", 1<<20)))
	f.Add(tarOf(f, dir(strings.Repeat("d/", inventory.MaxPathComponents+1))))
	f.Add([]byte("not a tar stream"))

	tmp, spool := f.TempDir(), f.TempDir()
	f.Setenv("TMPDIR", tmp) // where osv-scalibr keeps its copy of the files
	opts := inventory.Options{TempDir: spool, Limits: inventory.Limits{MaxLayerSize: 1 << 20, MaxEntries: 1000}}
	f.Fuzz(func(t *testing.T, layer []byte) {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil },
			tarball.WithCompressionLevel(0)) // the compressed form only serves the digest: no time for it
		if err != nil {
			t.Fatal(err)
		}
		res, err := inventory.Scan(context.Background(), imageOf(t, step{l, "ADD fuzz"}), opts)
		for _, d := range []string{tmp, spool} {
			if left, _ := os.ReadDir(d); len(left) > 0 {
				t.Fatalf("Scan(fuzz) left %v in %s", left, d)
			}
		}
		if err != nil {
			var lerr *inventory.LayerError
			if !errors.As(err, &lerr) || !(errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, inventory.ErrLimitExceeded)) {
				t.Fatalf("Scan(fuzz) = %v, want a *LayerError for an invalid layer", err)
			}
			return
		}
		for _, p := range res.Packages {
			if p.Layer.Index != 0 || len(p.Locations) == 0 {
				t.Errorf("Scan(fuzz) found %+v, want it in layer 0 with a location", p)
			}
		}
	})
}
