package registry_test

import (
	"context"
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

func TestOpenImageFromEverySource(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)

	// The engine first, for a plain reference it holds.
	img, cleanup, err := registry.OpenImage(ctx, eng, testimages.Busybox, opts)
	if err != nil {
		t.Fatalf("OpenImage(%s) = %v", testimages.Busybox, err)
	}
	if layers, _ := img.Layers(); len(layers) != 1 {
		t.Errorf("OpenImage(engine) = %d layers, want the busybox image's 1", len(layers))
	}
	cleanup()

	// The registry, for a reference the engine does not hold, and for docker:// always.
	pushed := pushRandom(t, reg, ep, "open/app:1")
	for _, src := range []string{reg.Host + "/open/app:1", "docker://" + reg.Host + "/open/app:1"} {
		img, cleanup, err := registry.OpenImage(ctx, eng, src, opts)
		if err != nil {
			t.Fatalf("OpenImage(%s) = %v", src, err)
		}
		if d, _ := img.Digest(); d != pushed {
			t.Errorf("OpenImage(%s) digest = %s, want %s", src, d, pushed)
		}
		cleanup()
	}

	// An OCI layout holding an index: the linux/amd64 image, or the platform asked for.
	amd, _ := random.Image(512, 1)
	arm, _ := random.Image(512, 1)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty(), "application/vnd.oci.image.index.v1+json"),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	dir := t.TempDir()
	if _, err := layout.Write(dir, idx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		platform *v1.Platform
		want     v1.Image
	}{{nil, amd}, {&v1.Platform{OS: "linux", Architecture: "arm64"}, arm}} {
		o := opts
		o.Platform = tt.platform
		img, cleanup, err := registry.OpenImage(ctx, nil, "oci:"+dir, o)
		if err != nil {
			t.Fatalf("OpenImage(oci layout, %v) = %v", tt.platform, err)
		}
		got, _ := img.Digest()
		want, _ := tt.want.Digest()
		if got != want {
			t.Errorf("OpenImage(oci layout, %v) = %s, want %s", tt.platform, got, want)
		}
		cleanup()
	}

	for _, src := range []string{reg.Host + "/open/app:missing", "docker-archive:/nonexistent.tar", "oci:/nonexistent"} {
		if _, _, err := registry.OpenImage(ctx, eng, src, opts); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("OpenImage(%s) error = %v, want ErrNotFound", src, err)
		}
	}
}
