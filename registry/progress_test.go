package registry_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

func TestPushReportsEachLayer(t *testing.T) {
	ctx := context.Background()
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	img, err := random.Image(256<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/image.tar"
	if err := tarball.WriteToFile(file, name.MustParseReference("p/app:1"), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()

	push := func() map[string]registry.LayerProgress {
		var mu sync.Mutex
		last := map[string]registry.LayerProgress{}
		opts.LayerProgress = func(p registry.LayerProgress) {
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := last[p.Digest]; ok && prev.Complete && !p.Complete {
				t.Errorf("layer %s reported %d bytes after it completed", p.Digest, p.Done)
			}
			last[p.Digest] = p
		}
		if _, err := registry.Push(ctx, nil, "docker-archive:"+file, ref(t, ep, "p/app:1"), ep, registry.PushOptions{}, opts); err != nil {
			t.Fatalf("Push() = %v", err)
		}
		return last
	}
	first := push()
	if len(first) != len(layers) {
		t.Fatalf("first push reported %d layers, want %d", len(first), len(layers))
	}
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		if p := first[d.String()]; !p.Complete || p.Skipped || p.Done != size || p.Size != size {
			t.Errorf("first push, layer %s = %+v, want complete, sent, %d bytes", d, p, size)
		}
	}
	for d, p := range push() {
		if !p.Skipped || !p.Complete {
			t.Errorf("second push, layer %s = %+v, want skipped: the registry has it", d, p)
		}
	}
}

// transfers records the reports of one operation, failing the test on a report after the operation returned.
type transfers struct {
	t        *testing.T
	mu       sync.Mutex
	got      []registry.Transfer
	returned bool
}

func (r *transfers) report(tr registry.Transfer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.returned {
		r.t.Errorf("progress reported after the operation returned: %+v", tr)
	}
	r.got = append(r.got, tr)
}

// run runs op with a fresh recorder and returns what it reported.
func (r *transfers) run(opts registry.Options, op func(registry.Options) error) ([]registry.Transfer, error) {
	r.mu.Lock()
	r.got, r.returned = nil, false
	r.mu.Unlock()
	opts.Progress = r.report
	err := op(opts)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.returned = true
	return r.got, err
}

func TestProgressEndsOnEveryPath(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	rec := &transfers{t: t}

	got, err := rec.run(opts, func(o registry.Options) error {
		_, err := registry.Push(ctx, eng, testimages.Busybox, ref(t, ep, "p/busybox:1"), ep, registry.PushOptions{}, o)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got); n < 2 || !got[n-1].Finished || got[n-1].Done != got[n-1].Total || got[n-1].Total == 0 || got[n-2].Finished {
		t.Errorf("push progress: %+v; want byte counts, then one finished report with every byte done", got)
	}

	for _, via := range []registry.PullVia{registry.PullEngine, registry.PullLoad} {
		var res registry.Result
		o := opts
		o.PullVia = via
		got, err = rec.run(o, func(o registry.Options) (err error) {
			res, err = registry.Pull(ctx, eng, ref(t, ep, "p/busybox:1"), ep, o)
			return err
		})
		if err != nil || res.Via != string(via) {
			t.Fatalf("Pull via %s = %+v, %v", via, res, err)
		}
		t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), res.Reference, imageRemove()) })
		if n := len(got); n < 2 || !got[n-1].Finished || got[n-1].Done != got[n-1].Total || got[n-1].Total == 0 {
			t.Errorf("pull progress via %s: %+v; want byte counts ending in a finished report with every byte done", via, got)
		}
		for _, tr := range got {
			if tr.Err != nil {
				t.Errorf("pull progress via %s passed on an error: %+v (tarball.Write ends with io.EOF)", via, tr)
			}
		}
	}

	for name, fail := range map[string]func(registry.Options) error{
		"push of a missing image": func(o registry.Options) error {
			_, err := registry.Push(ctx, eng, "myrmex.local/missing:1", ref(t, ep, "p/x:1"), ep, registry.PushOptions{}, o)
			return err
		},
		"pull of a missing tag": func(o registry.Options) error {
			_, err := registry.Pull(ctx, eng, ref(t, ep, "p/busybox:missing"), ep, o)
			return err
		},
		"pull without an engine": func(o registry.Options) error {
			_, err := registry.Pull(ctx, nil, ref(t, ep, "p/busybox:1"), ep, o)
			return err
		},
		"copy of a missing tag": func(o registry.Options) error {
			_, err := registry.Copy(ctx, ref(t, ep, "p/busybox:missing"), ep, o, ref(t, ep, "p/y:1"), ep, o)
			return err
		},
	} {
		got, err := rec.run(opts, fail)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		for _, tr := range got {
			if tr.Finished {
				t.Errorf("%s: reported a finished transfer: %+v", name, got)
			}
		}
	}
}
