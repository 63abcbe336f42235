package registry_test

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry"
)

// TestPushFromTheEngineKeepsItsImage: the layers are compressed by Myrmex, once, but the config is the engine's
// byte for byte (the pushed image's ID is the engine's), and every layer still holds the content its diff ID
// names.
func TestPushFromTheEngineKeepsItsImage(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	ep, opts := endpoint(t, reg)
	dst := ref(t, ep, "keep/web:1")
	if _, err := registry.Push(ctx, eng, testimages.Web, dst, ep, registry.PushOptions{}, opts); err != nil {
		t.Fatal(err)
	}
	ins, err := eng.API().ImageInspect(ctx, testimages.Web)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(dst, remoteOpts(reg)...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _ := img.ConfigName(); cfg.String() != ins.ID {
		t.Errorf("pushed config digest = %s, want the engine's image ID %s", cfg, ins.ID)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		want, _ := l.DiffID()
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := v1Hash(rc)
		rc.Close()
		if err != nil || got != want {
			t.Errorf("layer uncompresses to %s, %v; want its diff ID %s", got, err, want)
		}
	}
}
