package registry

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/codomyrmex/containerization/internal/ctxio"
)

// precompress returns img with every layer gzipped once, into files under dir, layers in parallel.
//
// An image read from a docker save archive has uncompressed layers; go-containerregistry would gzip each one
// three times on a push (once to learn its digest for the manifest, one layer after another, then again to
// upload it). Here each layer is compressed once, with klauspost's gzip at BestSpeed (about twice the standard
// library's speed), while its uncompressed digest is checked against the image's diff ID. The image's config is
// kept byte for byte, so its ID is the engine's.
func precompress(ctx context.Context, img v1.Image, dir string, jobs, level int) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]*gzLayer, len(layers))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, jobs))
	for i, l := range layers {
		g.Go(func() error {
			gl, err := compressLayer(ctx, l, filepath.Join(dir, fmt.Sprintf("layer-%d.gz", i)), level)
			out[i] = gl
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config: v1.Descriptor{
			MediaType: types.DockerConfigJSON,
			Size:      int64(len(rawConfig)),
			Digest:    sha256Hash(rawConfig),
		},
	}
	for _, l := range out {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: l.size, Digest: l.digest})
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&gzImage{rawConfig: rawConfig, rawManifest: rawManifest, layers: out})
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func compressLayer(ctx context.Context, l v1.Layer, path string, level int) (*gzLayer, error) {
	wantDiffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	compressed := sha256.New()
	counter := &countingWriter{}
	if level == 0 {
		level = gzip.BestSpeed
	}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, compressed, counter), level)
	if err != nil {
		return nil, err
	}
	uncompressed := sha256.New()
	if _, err := io.Copy(io.MultiWriter(zw, uncompressed), ctxio.Reader{Ctx: ctx, R: rc}); err != nil {
		return nil, fmt.Errorf("compressing layer %s: %w", wantDiffID, err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if got := hashOf(uncompressed); got != wantDiffID {
		return nil, fmt.Errorf("layer %s: its content hashes to %s", wantDiffID, got)
	}
	return &gzLayer{path: path, digest: hashOf(compressed), size: counter.n}, nil
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// gzImage is an image whose layers are gzip files on disk and whose config is kept as it was.
type gzImage struct {
	rawConfig, rawManifest []byte
	layers                 []*gzLayer
}

func (i *gzImage) RawConfigFile() ([]byte, error)      { return i.rawConfig, nil }
func (i *gzImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }
func (i *gzImage) RawManifest() ([]byte, error)        { return i.rawManifest, nil }
func (i *gzImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the image", h)
}

type gzLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

func (l *gzLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *gzLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *gzLayer) Size() (int64, error)                { return l.size, nil }
func (l *gzLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

// uncompressedArchive reports whether the layers of a docker save archive are stored uncompressed (as Docker
// writes them), which precompress is for; layers already gzipped are pushed as they are, keeping their digests.
func uncompressedArchive(file string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var manifest []struct{ Layers []string }
	magic := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
		if h.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				return false, err
			}
			continue
		}
		head := make([]byte, 2)
		n, _ := io.ReadFull(tr, head)
		magic[h.Name] = head[:n]
	}
	if len(manifest) != 1 {
		return false, nil
	}
	for _, l := range manifest[0].Layers {
		if m := magic[l]; len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
			return false, nil
		}
	}
	return len(manifest[0].Layers) > 0, nil
}
