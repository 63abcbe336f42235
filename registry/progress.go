package registry

import (
	"io"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerProgress is one layer's upload, reported as its bytes are read for sending. A layer the registry
// already has is never read: it gets one report with Skipped set once the push has written the manifest. A
// layer pushed from the engine, whose digest is known only once it is compressed and sent, gets one report,
// Complete, when the registry has it.
type LayerProgress struct {
	Digest   string `json:"digest"`
	Size     int64  `json:"size"`
	Done     int64  `json:"done"`
	Complete bool   `json:"complete"`
	Skipped  bool   `json:"skipped"`
}

// progressImage reports the upload of each of its layers to report, which may be called from several
// goroutines at once.
type progressImage struct {
	v1.Image
	report func(LayerProgress)
	layers map[v1.Hash]*progressLayer
}

func withLayerProgress(img v1.Image, report func(LayerProgress)) (*progressImage, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	p := &progressImage{Image: img, report: report, layers: map[v1.Hash]*progressLayer{}}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		p.layers[d] = &progressLayer{Layer: l, digest: d, size: size, report: report}
	}
	return p, nil
}

// Layers returns the image's layers, wrapped.
func (p *progressImage) Layers() ([]v1.Layer, error) {
	ls, err := p.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		out[i] = p.layers[d]
	}
	return out, nil
}

// LayerByDigest returns a layer, wrapped; the config blob passes through.
func (p *progressImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if l, ok := p.layers[h]; ok {
		return l, nil
	}
	return p.Image.LayerByDigest(h)
}

// finish reports the layers that were never read: the registry had them.
func (p *progressImage) finish() {
	for _, l := range p.layers {
		if !l.read.Load() {
			p.report(LayerProgress{Digest: l.digest.String(), Size: l.size, Done: l.size, Complete: true, Skipped: true})
		}
	}
}

type progressLayer struct {
	v1.Layer
	digest v1.Hash
	size   int64
	report func(LayerProgress)
	read   atomic.Bool
}

// Compressed counts the bytes read from the layer as it is sent. A retried upload starts counting again.
func (l *progressLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	l.read.Store(true)
	return &countingReader{rc: rc, l: l}, nil
}

type countingReader struct {
	rc   io.ReadCloser
	l    *progressLayer
	done int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.rc.Read(b)
	c.done += int64(n)
	if n > 0 || err == io.EOF {
		c.l.report(LayerProgress{Digest: c.l.digest.String(), Size: c.l.size, Done: c.done, Complete: err == io.EOF})
	}
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }
