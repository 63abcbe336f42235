package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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

// drain reads a progress channel until it is closed, failing the test if it is not closed in time.
func drain(t *testing.T, ch <-chan v1.Update) (updates int, last v1.Update) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return updates, last
			}
			updates, last = updates+1, u
		case <-timeout:
			t.Fatalf("the progress channel was not closed after %d updates", updates)
		}
	}
}

func TestProgressIsClosedOnEveryPath(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)

	ch := make(chan v1.Update, 64)
	opts.Progress = ch
	done := make(chan struct{})
	var n int
	var last v1.Update
	go func() { n, last = drain(t, ch); close(done) }()
	if _, err := registry.Push(ctx, eng, testimages.Busybox, ref(t, ep, "p/busybox:1"), ep, registry.PushOptions{}, opts); err != nil {
		t.Fatal(err)
	}
	<-done
	if n == 0 || last.Complete != last.Total || last.Total == 0 {
		t.Errorf("push progress: %d updates, last %+v; want updates ending complete", n, last)
	}

	ch = make(chan v1.Update, 64)
	opts.Progress = ch
	done = make(chan struct{})
	go func() { n, last = drain(t, ch); close(done) }()
	res, err := registry.Pull(ctx, eng, ref(t, ep, "p/busybox:1"), ep, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), res.Reference, imageRemove()) })
	<-done
	if n == 0 || last.Error != nil || last.Complete == 0 {
		t.Errorf("pull progress: %d updates, last %+v; want byte counts and no io.EOF passed on", n, last)
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
		"copy of a missing tag": func(o registry.Options) error {
			_, err := registry.Copy(ctx, ref(t, ep, "p/busybox:missing"), ep, o, ref(t, ep, "p/y:1"), ep, o)
			return err
		},
		"list": func(o registry.Options) error {
			_, err := registry.ListTags(ctx, ref(t, ep, "p/busybox:1").Context(), ep, o)
			return err
		},
	} {
		ch := make(chan v1.Update, 64)
		opts.Progress = ch
		_ = fail(opts)
		select {
		case _, ok := <-ch:
			if ok {
				// An update before the close is fine; the close must follow.
				drain(t, ch)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: the progress channel was not closed", name)
		}
	}
}
