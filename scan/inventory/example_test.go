package inventory_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/scan/inventory"
)

func ExampleScan() {
	// An image of one layer holding an npm package. Any v1.Image does: one read from a registry with
	// remote.Image, from `docker save` with tarball.Image, from an OCI layout with layout.Image.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	manifest := `{"name": "lodash", "version": "4.17.20"}`
	tw.WriteHeader(&tar.Header{Name: "app/node_modules/lodash/package.json", Mode: 0o644, Size: int64(len(manifest))})
	io.WriteString(tw, manifest)
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		log.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		log.Fatal(err)
	}

	res, err := inventory.Scan(context.Background(), img, inventory.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range res.Packages {
		fmt.Printf("%s %s %s in layer %d at %s\n", p.Ecosystem, p.Name, p.Version, p.Layer.Index, p.Locations[0])
	}
	// Output:
	// npm lodash 4.17.20 in layer 0 at /app/node_modules/lodash/package.json
}
