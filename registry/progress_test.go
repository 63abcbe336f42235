package registry_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/internal/testenv"
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
