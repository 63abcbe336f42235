package optimize_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/optimize"
)

// A lossless rewrite: one layer, the file the second layer deleted gone, apt's lists gone.
func ExampleRewrite() {
	layer := func(files map[string]string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, name := range []string{"app/big.log", "app/run", "var/lib/apt/lists/Packages", "app/.wh.big.log"} {
			if body, ok := files[name]; ok {
				_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
				_, _ = tw.Write([]byte(body))
			}
		}
		_ = tw.Close()
		return b.Bytes()
	}
	var img = empty.Image
	for _, files := range []map[string]string{
		{"app/big.log": "lots of logs", "app/run": "#!/bin/sh\n", "var/lib/apt/lists/Packages": "Package: x\n"},
		{"app/.wh.big.log": ""},
	} {
		b := layer(files)
		l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		img, _ = mutate.AppendLayers(img, l)
	}
	res, err := optimize.Rewrite(context.Background(), img, optimize.RewriteOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Close()
	fmt.Printf("layers %d → %d, files %d → %d\n", res.LayersBefore, res.LayersAfter, res.FilesBefore, res.FilesAfter)
	for _, r := range res.Removed {
		fmt.Printf("removed %s: %d file(s)\n", r.Reason, r.Files)
	}
	// Output:
	// layers 2 → 1, files 2 → 1
	// removed package_cache: 1 file(s)
}
