package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sync/errgroup"
)

// imageRef is the benchmark image's name in the engine. Every contender that can pushes it from there; the
// others push a docker save of it.
const imageRef = "myrmex.local/bench-300m:1"

// epoch is the time of every file, history entry and config of the image, so that its digests are the same in
// every run.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// benchImage is the benchmark's image, made in memory.
//
// Each layer is a tar of two files of layerMB/2 MB: bytes from a seeded ChaCha8 stream, which gzip cannot shrink
// (the part of an image that is already compressed: binaries' data, JPEGs, .gz inside), and log-like text whose
// lines share their shape but not their numbers, which gzip shrinks about 3:1 (the part that is text and code).
// A real image lies between the two; half and half keeps both of gzip's regimes in the measurement, where a
// random.Image would measure only the incompressible one and repeated text only the trivial one.
type benchImage struct {
	img        v1.Image
	layers     [][]byte // the uncompressed layer tarballs, for the limits
	digest     string   // manifest digest as go-containerregistry writes it (gzip level 1)
	imageID    string   // config digest: the engine's image ID
	bytes      int64    // the layer tarballs' sizes, summed: the image's size for MB/s
	compressed int64    // config and gzip -1 layers, as go-containerregistry pushes them
}

func buildImage(layers, layerMB int) (*benchImage, error) {
	half := layerMB * 1_000_000 / 2
	bi := &benchImage{layers: make([][]byte, layers)}
	adds := make([]mutate.Addendum, layers)
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for i := range layers {
		g.Go(func() error {
			data, err := layerTar(i, half)
			if err != nil {
				return err
			}
			bi.layers[i] = data
			// Compressed once, here, and kept: loading the image into the engine then costs no second gzip.
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(data)), nil
			}, tarball.WithCompressedCaching)
			if err != nil {
				return fmt.Errorf("layer %d: %w", i+1, err)
			}
			adds[i] = mutate.Addendum{Layer: l, History: v1.History{
				Created: v1.Time{Time: epoch}, CreatedBy: fmt.Sprintf("myrmex bench/registry: layer %d of %d", i+1, layers),
			}}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: epoch}
	cf.Config.Labels = map[string]string{"io.codomyrmex.bench": "registry"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	bi.img = img
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	bi.digest, bi.imageID = d.String(), id.String()
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	bi.compressed = m.Config.Size
	for _, l := range m.Layers {
		bi.compressed += l.Size
	}
	for _, l := range bi.layers {
		bi.bytes += int64(len(l))
	}
	return bi, nil
}

// layerTar makes layer i: a directory with random.bin and access.log, half bytes each.
func layerTar(i, half int) ([]byte, error) {
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("myrmex bench/registry layer %d", i))
	random := make([]byte, half)
	_, _ = rand.NewChaCha8(seed).Read(random)
	text := logText(make([]byte, 0, half+256), half, rand.New(rand.NewPCG(uint64(i), 0x6d79726d6578)))

	var buf bytes.Buffer
	buf.Grow(2*half + 16<<10)
	tw := tar.NewWriter(&buf)
	dir := fmt.Sprintf("bench/layer-%d/", i+1)
	for _, e := range []struct {
		name string
		data []byte
	}{{"bench/", nil}, {dir, nil}, {dir + "random.bin", random}, {dir + "access.log", text}} {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch, Typeflag: tar.TypeReg}
		if e.data == nil {
			h.Mode, h.Typeflag = 0o755, tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// logText appends n bytes of access-log lines drawn from r: the same shape on every line, numbers that vary.
func logText(dst []byte, n int, r *rand.Rand) []byte {
	methods := []string{"GET", "GET", "GET", "GET", "POST", "PUT", "DELETE"}
	paths := []string{"/v1/items", "/v1/users", "/v1/orders", "/v1/search", "/healthz", "/metrics"}
	statuses := []int{200, 200, 200, 200, 200, 201, 204, 304, 404, 500}
	start, t := len(dst), epoch
	for len(dst)-start < n {
		t = t.Add(time.Duration(r.IntN(5000)) * time.Microsecond)
		dst = t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
		dst = fmt.Appendf(dst, " level=info msg=\"request handled\" service=api-%d method=%s path=%s/%d status=%d bytes=%d duration=%dus trace=%016x\n",
			r.IntN(8), methods[r.IntN(len(methods))], paths[r.IntN(len(paths))], r.IntN(100000),
			statuses[r.IntN(len(statuses))], r.IntN(1<<20), r.IntN(200000), r.Uint64())
	}
	return dst[:start+n]
}

// loadImage loads the image into the engine under imageRef, from go-containerregistry's tarball.Write stream,
// and checks that the engine's image ID is the config's digest.
func (b *bench) loadImage(ctx context.Context, bi *benchImage) error {
	tag, err := name.NewTag(imageRef)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(tag, bi.img, pw)) }()
	b.engineRefs[imageRef] = true
	err = b.eng.LoadImage(ctx, pr)
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the writer if the engine stopped reading early
	if err != nil {
		return err
	}
	return b.expectInEngine(ctx, imageRef)
}
