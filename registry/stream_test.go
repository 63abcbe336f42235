package registry_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"testing"

	ggcrempty "github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

// savingEngine is the real engine whose docker save stream passes through edit, and which records when the
// stream was read to its end.
type savingEngine struct {
	registry.Engine
	edit  func(*tar.Header, []byte) []byte // nil: the stream as it is
	ended atomic.Bool
}

func (e *savingEngine) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := e.Engine.SaveImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	if e.edit == nil {
		return &endReader{rc: rc, ended: &e.ended}, nil
	}
	// A layer whose content is altered on the way: a fault the engine does not produce on demand.
	pr, pw := io.Pipe()
	go func() {
		defer rc.Close()
		tr, tw := tar.NewReader(rc), tar.NewWriter(pw)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				pw.CloseWithError(tw.Close())
				return
			}
			if err == nil {
				var b []byte
				if b, err = io.ReadAll(tr); err == nil {
					b = e.edit(h, b)
					h.Size = int64(len(b))
					if err = tw.WriteHeader(h); err == nil {
						_, err = tw.Write(b)
					}
				}
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr, nil
}

type endReader struct {
	rc    io.ReadCloser
	ended *atomic.Bool
}

func (r *endReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if errors.Is(err, io.EOF) {
		r.ended.Store(true)
	}
	return n, err
}

func (r *endReader) Close() error { return r.rc.Close() }

// patchSeen records whether a blob's bytes were sent before the engine's save had been read to its end.
type patchSeen struct {
	base   http.RoundTripper
	eng    *savingEngine
	before atomic.Bool
}

func (p *patchSeen) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch && !p.eng.ended.Load() {
		p.before.Store(true)
	}
	return p.base.RoundTrip(req)
}

// A push from the engine uploads layers as the engine's save streams them, not after the whole save is read.
func TestPushFromTheEngineStreams(t *testing.T) {
	ctx := context.Background()
	eng := &savingEngine{Engine: testenv.Engine(t)}
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	seen := &patchSeen{base: opts.Transport, eng: eng}
	opts.Transport = seen
	if _, err := registry.Push(ctx, eng, testimages.Web, ref(t, ep, "stream/web:1"), ep, registry.PushOptions{}, opts); err != nil {
		t.Fatalf("Push(%s) = %v", testimages.Web, err)
	}
	if !eng.ended.Load() {
		t.Fatalf("the push did not read the engine's save to its end")
	}
	if !seen.before.Load() {
		t.Errorf("no layer was sent before the engine's save was read to its end: the push did not stream")
	}
}

// A layer whose bytes do not match the diff ID its config names is refused, and nothing of the image is left in
// the repository: no tag, no config, no layer committed.
func TestPushFromTheEngineRefusesALayerThatDoesNotMatch(t *testing.T) {
	ctx := context.Background()
	real := testenv.Engine(t)
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	var altered atomic.Int32
	eng := &savingEngine{Engine: real, edit: func(h *tar.Header, b []byte) []byte {
		if path.Base(h.Name) == "layer.tar" && len(b) > 1024 && altered.Add(1) == 1 {
			b[len(b)/2] ^= 0xff // inside a file's content: still a valid tar
		}
		return b
	}}
	dst := ref(t, ep, "stream/bad:1")
	_, err := registry.Push(ctx, eng, testimages.Web, dst, ep, registry.PushOptions{}, opts)
	if altered.Load() == 0 {
		t.Fatalf("no layer was altered")
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Push(altered layer) = %v, want ErrUnavailable", err)
	}
	t.Logf("Push = %v", err)
	if _, herr := remote.Head(dst, remoteOpts(reg)...); herr == nil {
		t.Errorf("the tag %s exists after a refused push", dst)
	}
	// Myrmex's compression is deterministic: the same push to another registry says which blobs the refused
	// one would have made, and none of them may be in the first registry (committed uploads only count).
	other := testenv.InProcess(t)
	oep, oopts := endpoint(t, other)
	good := ref(t, oep, "stream/good:1")
	if _, err := registry.Push(ctx, real, testimages.Web, good, oep, registry.PushOptions{}, oopts); err != nil {
		t.Fatalf("Push(unaltered) = %v", err)
	}
	img, err := remote.Image(good, remoteOpts(other)...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range append(m.Layers, m.Config) {
		if blobExists(t, reg, dst.Context().RepositoryStr(), d.Digest.String()) {
			t.Errorf("blob %s is in %s after the refused push", d.Digest, dst.Context())
		}
	}
}

func blobExists(t *testing.T, reg *testenv.Registry, repo, digest string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: reg.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// A pull hands the engine every layer uncompressed, whatever the registry holds: gzip layers decompressed by
// Myrmex, and layers of other media types (here uncompressed ones) through go-containerregistry. The engine
// holds the image under its ID, which it computes from the config after checking each layer's diff ID.
func TestPullLoadsLayersOfEveryMediaType(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	gz, err := random.Layer(64<<10, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := random.Layer(64<<10, types.OCIUncompressedLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(ggcrempty.Image, gz, plain)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	src := ref(t, ep, "mixed/app:1")
	if err := remote.Write(src, img, remoteOpts(reg)...); err != nil {
		t.Fatal(err)
	}
	opts.PullVia = registry.PullLoad // the engine's own pull reads every media type too: Myrmex's load is tested
	res, err := registry.Pull(ctx, eng, src, ep, opts)
	if err != nil {
		t.Fatalf("Pull(%s) = %v", src, err)
	}
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), src.String(), imageRemove()) })
	want, _ := img.ConfigName()
	ins, err := eng.API().ImageInspect(ctx, src.String())
	if err != nil {
		t.Fatalf("the engine does not hold %s after Pull = %+v: %v", src, res, err)
	}
	if ins.ID != want.String() {
		t.Errorf("the engine's %s is %s, want the config's digest %s", src, ins.ID, want)
	}
}

// cutEngine is the real engine whose save streams stop with an error after a number of bytes, counting saves.
type cutEngine struct {
	registry.Engine
	after int64
	saves atomic.Int32
}

var errSaveCut = errors.New("save cut by the test")

func (e *cutEngine) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	e.saves.Add(1)
	rc, err := e.Engine.SaveImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &cutReader{rc: rc, left: e.after}, nil
}

type cutReader struct {
	rc   io.ReadCloser
	left int64
}

func (r *cutReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errSaveCut
	}
	n, err := r.rc.Read(p[:min(int64(len(p)), r.left)])
	r.left -= int64(n)
	return n, err
}

func (r *cutReader) Close() error { return r.rc.Close() }

// An engine whose save breaks in the middle of a layer fails the push with the engine as the cause, once: it is
// not a registry failure, and a new save is not tried. The tag is not written.
func TestPushFromTheEngineStopsWhenTheSaveBreaks(t *testing.T) {
	ctx := context.Background()
	eng := &cutEngine{Engine: testenv.Engine(t), after: 256 << 10}
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	dst := ref(t, ep, "stream/cut:1")
	_, err := registry.Push(ctx, eng, testimages.Web, dst, ep, registry.PushOptions{}, opts)
	if !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, errSaveCut) || !strings.Contains(err.Error(), "engine") {
		t.Errorf("Push(save cut) = %v, want ErrUnavailable naming the engine, wrapping the save's error", err)
	}
	if n := eng.saves.Load(); n != 1 {
		t.Errorf("the push saved the image %d times, want 1: a broken save is not the registry's failure", n)
	}
	if _, herr := remote.Head(dst, remoteOpts(reg)...); herr == nil {
		t.Errorf("the tag %s exists after a failed push", dst)
	}
}
