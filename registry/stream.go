package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/codomyrmex/containerization/errdefs"
)

// Bounds on what a push reads from the engine's docker save stream before it trusts it.
const (
	maxSaveEntries = 100_000  // tar entries
	maxSaveLayers  = 1_000    // layers of the image
	maxSaveJSON    = 16 << 20 // manifest.json, the config, or a small blob of an OCI-format save
)

// The buffers between the engine's save and the gzip, and between the gzip and the upload: up to streamChunks
// chunks of streamChunk bytes each, so that the three (and dockerd and the registry beyond them) run apart.
const (
	streamChunks = 4
	streamChunk  = 256 << 10
)

// pushFromEngine pushes the engine's image ref to dst as the engine's docker save streams it: each layer is
// hashed, gzipped and uploaded as its bytes arrive, with fixed-size buffers and one layer in flight, and nothing
// is written to disk. The save's order is the engine's (layers are not in the config's order, and the config and
// manifest.json may come last), so every upload stays uncommitted until the whole stream has been read and
// every layer's content checked against the diff ID its config names; only then are the blobs committed, the
// config uploaded and the manifest written. A layer that does not match, or a stream that ends early, leaves
// the repository without a blob or a tag of it.
//
// A streamed upload cannot be sent again from the start, so a push the registry fails part-way (a 5xx, a
// dropped connection) runs again from a new save, up to opts.Retries times.
func pushFromEngine(ctx context.Context, eng Engine, ref string, dst name.Reference, ep Endpoint, level int, opts Options, r *relay) (image, error) {
	up, err := newUploader(ctx, dst.Context(), ep, opts)
	if err != nil {
		return image{}, registryError{err}
	}
	if level == 0 {
		level = gzip.BestSpeed
	}
	retries := opts.Retries
	if retries == 0 {
		retries = 4
	}
	wait := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		s := &saveStream{up: up, ep: ep, level: level, relay: r, buf: make([]byte, 128<<10)}
		img, err := s.push(ctx, eng, ref, dst, opts)
		var rerr registryError
		if err == nil || retries < 0 || attempt >= retries || !errors.As(err, &rerr) ||
			!errors.Is(Classify(rerr.err, ep.Host, ""), errdefs.ErrUnavailable) {
			return img, err
		}
		select {
		case <-ctx.Done():
			return image{}, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// registryError marks an error as the registry's answer (retried, and classified against the registry), as
// opposed to the engine's or the image's.
type registryError struct{ err error }

func (e registryError) Error() string { return e.err.Error() }
func (e registryError) Unwrap() error { return e.err }

// saveStream is one attempt at a streamed push.
type saveStream struct {
	up    *uploader
	ep    Endpoint
	level int
	relay *relay
	buf   []byte
	spare [][]byte // the upload pipe's buffers, from one layer to the next
	// Uncompressed bytes of the layers read, and of the layers seen so far: the push's progress. The save
	// announces each layer's size only when it starts, so the total grows as layers come.
	done, total int64
}

// streamedLayer is a layer read from the save and uploaded, not yet committed.
type streamedLayer struct {
	diffID   v1.Hash
	digest   v1.Hash // of the gzipped blob
	size     int64   // of the gzipped blob
	location string  // where to commit the upload
}

// saveManifest is docker save's manifest.json, one entry per image.
type saveManifest []struct {
	Config string
	Layers []string
}

func (s *saveStream) push(ctx context.Context, eng Engine, ref string, dst name.Reference, opts Options) (image, error) {
	save, err := eng.SaveImage(ctx, ref)
	if err != nil {
		return image{}, err
	}
	rc := newReadAhead(save, streamChunks, streamChunk)
	defer rc.Close()
	tr := tar.NewReader(rc)
	small := map[string][]byte{}          // manifest.json, the config, small blobs of an OCI-format save
	layers := map[string]*streamedLayer{} // by path in the save
	links := map[string]string{}          // a link's path → its target's (docker save links a layer it has twice)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return image{}, engineBroke(err)
		}
		if n >= maxSaveEntries || len(layers) > maxSaveLayers {
			return image{}, fmt.Errorf("%w: the engine's save of %s holds more than %d entries or %d layers", errdefs.ErrInvalidArgument, ref, maxSaveEntries, maxSaveLayers)
		}
		p := path.Clean(h.Name)
		switch {
		case h.Typeflag == tar.TypeSymlink:
			links[p] = path.Join(path.Dir(p), h.Linkname)
		case h.Typeflag == tar.TypeLink:
			links[p] = path.Clean(h.Linkname)
		case h.Typeflag != tar.TypeReg:
		case path.Base(p) == "layer.tar" || strings.HasPrefix(p, "blobs/") && h.Size > maxSaveJSON:
			l, err := s.layer(ctx, tr, h.Size)
			if err != nil {
				return image{}, err
			}
			layers[p] = l
		case p == "manifest.json" || strings.HasSuffix(p, ".json") && !strings.Contains(p, "/") || strings.HasPrefix(p, "blobs/"):
			if h.Size > maxSaveJSON {
				return image{}, fmt.Errorf("%w: %s in the engine's save of %s is %d bytes, more than %d", errdefs.ErrInvalidArgument, p, ref, h.Size, maxSaveJSON)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return image{}, engineBroke(err)
			}
			small[p] = b
		}
	}
	// The tar's end is two zero blocks; the engine pads the stream past them. Read to the stream's end, so that a
	// save cut short by the engine is an error here and the connection can serve again.
	if _, err := io.Copy(io.Discard, io.LimitReader(rc, 1<<20)); err != nil {
		return image{}, engineBroke(err)
	}
	resolve := func(p string) string {
		p = path.Clean(p)
		for i := 0; i < 8; i++ {
			t, ok := links[p]
			if !ok {
				break
			}
			p = t
		}
		return p
	}

	var manifest saveManifest
	if err := json.Unmarshal(small["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		return image{}, fmt.Errorf("%w: the engine's save of %s has no manifest.json of one image (%v)", errdefs.ErrUnavailable, ref, err)
	}
	rawConfig, ok := small[resolve(manifest[0].Config)]
	if !ok {
		return image{}, fmt.Errorf("%w: the engine's save of %s lacks its config %s", errdefs.ErrUnavailable, ref, manifest[0].Config)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return image{}, fmt.Errorf("%w: the config of %s in the engine's save: %v", errdefs.ErrUnavailable, ref, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(manifest[0].Layers) {
		return image{}, fmt.Errorf("%w: the engine's save of %s lists %d layers, its config %d", errdefs.ErrUnavailable, ref, len(manifest[0].Layers), len(cfg.RootFS.DiffIDs))
	}
	// Every layer, in the config's order, must hold the content its diff ID names, before anything is committed.
	ordered := make([]*streamedLayer, len(manifest[0].Layers))
	for i, p := range manifest[0].Layers {
		l := layers[resolve(p)]
		if l == nil {
			if b, ok := small[resolve(p)]; ok { // a small layer of an OCI-format save, read whole
				if l, err = s.layer(ctx, bytes.NewReader(b), int64(len(b))); err != nil {
					return image{}, err
				}
				layers[resolve(p)] = l
			}
		}
		if l == nil {
			return image{}, fmt.Errorf("%w: the engine's save of %s lacks layer %s", errdefs.ErrUnavailable, ref, p)
		}
		if want := cfg.RootFS.DiffIDs[i]; l.diffID != want {
			return image{}, fmt.Errorf("%w: layer %d of %s in the engine's save hashes to %s, not the diff ID %s its config names: nothing was pushed",
				errdefs.ErrUnavailable, i+1, ref, l.diffID, want)
		}
		ordered[i] = l
	}

	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(rawConfig)), Digest: sha256Hash(rawConfig)},
	}
	committed := map[string]bool{}
	for _, l := range ordered {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: l.size, Digest: l.digest})
		if committed[l.location] {
			continue
		}
		if err := s.up.commit(ctx, l.location, l.digest); err != nil {
			return image{}, registryError{err}
		}
		committed[l.location] = true
		if opts.LayerProgress != nil {
			opts.LayerProgress(LayerProgress{Digest: l.digest.String(), Size: l.size, Done: l.size, Complete: true})
		}
	}
	ropts := opts.RemoteOptions(ctx, s.ep)
	if err := remote.WriteLayer(dst.Context(), static.NewLayer(rawConfig, types.DockerConfigJSON), ropts...); err != nil {
		return image{}, registryError{err}
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return image{}, err
	}
	gz := &gzImage{rawConfig: rawConfig, rawManifest: rawManifest}
	img, err := partial.CompressedToImage(gz)
	if err != nil {
		return image{}, err
	}
	if err := remote.Put(dst, img, ropts...); err != nil {
		return image{}, registryError{err}
	}
	return image{img: img}, nil
}

// layer hashes, gzips and uploads one layer of size bytes as it is read from rd, and returns it uncommitted.
func (s *saveStream) layer(ctx context.Context, rd io.Reader, size int64) (*streamedLayer, error) {
	s.total += size
	location, err := s.up.start(ctx)
	if err != nil {
		return nil, registryError{err}
	}
	var pw *chunkPipe
	if s.spare != nil {
		pw, s.spare = chunkPipeOf(s.spare), nil
	} else {
		pw = newChunkPipe(streamChunks, streamChunk)
	}
	sent := make(chan error, 1)
	go func() {
		next, err := s.up.patch(ctx, location, pw)
		location = next
		pw.CloseRead(errors.Join(err, errUploadEnded))
		sent <- err
	}()
	compressed, uncompressed := sha256.New(), sha256.New()
	counter := &countingWriter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(pw, compressed, counter), s.level)
	if err != nil {
		pw.CloseWithError(err)
		<-sent
		return nil, err
	}
	copyErr := func() error {
		for {
			n, err := rd.Read(s.buf)
			if n > 0 {
				uncompressed.Write(s.buf[:n])
				if _, werr := zw.Write(s.buf[:n]); werr != nil {
					return werr
				}
				s.done += int64(n)
				s.report()
			}
			if errors.Is(err, io.EOF) {
				return zw.Close()
			}
			if err != nil {
				return engineBroke(err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}()
	pw.CloseWithError(copyErr) // nil: the body ends
	sendErr := <-sent
	switch {
	case copyErr != nil && !errors.Is(copyErr, errUploadEnded):
		return nil, copyErr // the engine's save broke (or ctx ended), and the upload with it
	case sendErr != nil:
		return nil, registryError{sendErr}
	case copyErr != nil:
		return nil, copyErr
	}
	s.spare = pw.buffers() // the upload read them all: the next layer's
	return &streamedLayer{diffID: hashOf(uncompressed), digest: hashOf(compressed), size: counter.n, location: location}, nil
}

var errUploadEnded = errors.New("the upload ended")

// engineBroke is a read of the engine's save that failed: the engine stopped answering (or the push was
// cancelled, which stays as it is). It is not retried: a registry failure is.
func engineBroke(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &errdefs.Classified{Sentinel: errdefs.ErrUnavailable, Msg: "reading the engine's save: " + err.Error(), Err: err}
}

func (s *saveStream) report() {
	if s.relay != nil {
		s.relay.ch <- v1.Update{Total: s.total, Complete: s.done}
	}
}

// uploader speaks the distribution API's blob upload to one repository: start, one streamed PATCH, commit.
type uploader struct {
	repo  name.Repository
	base  string       // scheme://host
	retry *http.Client // for requests without a body, retried on a 5xx or a dropped connection
	once  *http.Client // for a streamed body, which cannot be sent again
}

func newUploader(ctx context.Context, repo name.Repository, ep Endpoint, opts Options) (*uploader, error) {
	var auth authn.Authenticator = authn.Anonymous
	if opts.Auth != nil {
		auth = authn.FromConfig(*opts.Auth)
	} else {
		var err error
		if auth, err = opts.keychain(ep.Kind).Resolve(repo); err != nil {
			return nil, err
		}
	}
	t, err := transport.NewWithContext(ctx, repo.Registry, auth, opts.transport(), []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return nil, err
	}
	retries := max(opts.Retries, 0)
	if opts.Retries == 0 {
		retries = 4
	}
	rt := transport.NewRetry(t,
		transport.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: retries + 1}),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	return &uploader{
		repo:  repo,
		base:  repo.Registry.Scheme() + "://" + repo.RegistryStr(),
		retry: &http.Client{Transport: rt},
		once:  &http.Client{Transport: t},
	}, nil
}

// start opens an upload and returns where to send its bytes.
func (u *uploader) start(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+"/v2/"+u.repo.RepositoryStr()+"/blobs/uploads/", http.NoBody)
	if err != nil {
		return "", err
	}
	return u.do(u.retry, req, http.StatusAccepted)
}

// patch sends body as the upload's content, in one request of unknown length, and returns where to commit it.
func (u *uploader) patch(ctx context.Context, location string, body io.Reader) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, location, body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	return u.do(u.once, req, http.StatusNoContent, http.StatusAccepted, http.StatusCreated)
}

// commit ends the upload at location as the blob digest.
func (u *uploader) commit(ctx context.Context, location string, digest v1.Hash) error {
	loc, err := url.Parse(location)
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", digest.String())
	loc.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = u.do(u.retry, req, http.StatusCreated, http.StatusNoContent)
	return err
}

// do sends req and returns the answer's Location, resolved against the request's URL. A registry may send the
// upload elsewhere (a bucket's pre-signed URL), but not to a private or link-local address of another host, where
// the layer's bytes would go to an internal service (go-containerregistry's rule too).
func (u *uploader) do(c *http.Client, req *http.Request, codes ...int) (string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, codes...); err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if req.Method == http.MethodPut {
		return "", nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("the registry's answer to %s %s has no Location", req.Method, req.URL.Path)
	}
	next, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("the registry's Location %q: %w", loc, err)
	}
	if next.Hostname() != req.URL.Hostname() {
		if ip, err := netip.ParseAddr(next.Hostname()); err == nil && (ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()) {
			return "", fmt.Errorf("the registry sends the upload to %s, a private address of another host: refused", next.Host)
		}
	}
	return next.String(), nil
}
