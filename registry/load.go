package registry

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/codomyrmex/containerization/internal/ctxio"
)

// loadTarball writes img as a docker load tarball to w, named tag, with its layers uncompressed: the engine's
// image load then hashes and unpacks them without gunzipping them first, one after another on one core, as
// dockerd (20.10 at least) does. Layers are fetched and decompressed jobs at a time (klauspost's gzip, faster than
// the engine's), each into a file under dir, since a tar entry needs its size before its bytes; each file goes
// into the stream, in the image's order, as soon as its layer and those before it are in, and is removed then,
// so the disk holds at most the layers in flight. Every blob is checked against its digest as it is read (by
// go-containerregistry); the engine checks every layer against its diff ID as it registers it.
func loadTarball(ctx context.Context, img v1.Image, tag name.Tag, w io.Writer, dir string, jobs int, r *relay) error {
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	prog := &fetchProgress{relay: r}
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			return err
		}
		prog.total += size
	}
	manifest := []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: cfgName.Hex + ".json", RepoTags: []string{tag.String()}}}
	for i := range layers {
		manifest[0].Layers = append(manifest[0].Layers, fmt.Sprintf("%d/layer.tar", i))
	}
	rawManifest, err := json.Marshal(manifest)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	for _, f := range []struct {
		name string
		data []byte
	}{{manifest[0].Config, rawConfig}, {"manifest.json", rawManifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}

	// ready[i] is closed once layer i is in its file (or its fetch failed, and ctx is cancelled).
	ready := make([]chan struct{}, len(layers))
	files := make([]string, len(layers))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	g, gctx := errgroup.WithContext(ctx)
	fetching := make(chan struct{}, max(1, jobs)) // a bound on layers fetched and not yet streamed
	g.Go(func() error {
		for i, l := range layers {
			select {
			case fetching <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				defer close(ready[i])
				files[i] = filepath.Join(dir, fmt.Sprintf("layer-%d.tar", i))
				return fetchLayer(gctx, l, files[i], prog)
			})
		}
		return nil
	})
	g.Go(func() error {
		for i := range layers {
			select {
			case <-ready[i]:
			case <-gctx.Done():
				return gctx.Err()
			}
			if err := gctx.Err(); err != nil {
				return err
			}
			if err := streamFile(tw, manifest[0].Layers[i], files[i]); err != nil {
				return err
			}
			<-fetching
		}
		return tw.Close()
	})
	return g.Wait()
}

// fetchLayer reads l's blob, verified against its digest, and writes it uncompressed to file.
func fetchLayer(ctx context.Context, l v1.Layer, file string, prog *fetchProgress) error {
	mt, err := l.MediaType()
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var rc, blob io.ReadCloser
	switch mt {
	case types.DockerLayer, types.OCILayer:
		if blob, err = l.Compressed(); err != nil {
			return err
		}
		defer blob.Close()
		blob = &countingReadCloser{rc: blob, prog: prog}
		zr, err := gzip.NewReader(ctxio.Reader{Ctx: ctx, R: blob})
		if err != nil {
			return err
		}
		zr.Multistream(true)
		rc = zr
	default: // zstd, uncompressed: go-containerregistry's own decompression
		if rc, err = l.Uncompressed(); err != nil {
			return err
		}
		if size, err := l.Size(); err == nil {
			prog.add(size)
		}
	}
	defer rc.Close()
	if _, err := io.Copy(f, rc); err != nil {
		return err
	}
	if blob != nil {
		// Read the blob to its end, where go-containerregistry checks its digest, whatever gzip left unread.
		if _, err := io.Copy(io.Discard, blob); err != nil {
			return err
		}
	}
	return f.Close()
}

// streamFile writes file into tw as name, then removes it.
func streamFile(tw *tar.Writer, name, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer os.Remove(file)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// fetchProgress reports the compressed bytes read of every layer, from the goroutines that fetch them.
type fetchProgress struct {
	relay       *relay
	mu          sync.Mutex
	done, total int64
}

func (p *fetchProgress) add(n int64) {
	if p.relay == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.relay.ch <- v1.Update{Total: p.total, Complete: p.done}
}

type countingReadCloser struct {
	rc   io.ReadCloser
	prog *fetchProgress
}

func (c *countingReadCloser) Read(b []byte) (int, error) {
	n, err := c.rc.Read(b)
	if n > 0 {
		c.prog.add(int64(n))
	}
	return n, err
}

func (c *countingReadCloser) Close() error { return c.rc.Close() }
