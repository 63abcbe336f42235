package optimize_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/daemon"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
)

func optimizer(t *testing.T) *optimize.Optimizer {
	eng := testenv.Engine(t)
	return &optimize.Optimizer{Engine: eng, Prober: &optimize.Prober{Engine: eng, Sensor: testenv.Sensor(t)}}
}

func TestOptimizeWebServer(t *testing.T) {
	o := optimizer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := testimages.Web
	ref, _ := name.ParseReference(src)
	img, err := daemon.Image(ref, daemon.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	target := "myrmex.local/web:test-optimized-" + strings.ToLower(t.Name())
	res, err := o.Optimize(ctx, optimize.Request{
		Source: src, Image: img, Target: target,
		Probe: optimize.Probe{HTTP: []optimize.HTTPCheck{{Port: 8080, Path: "/", Body: "Hello"}}},
	})
	if err != nil {
		t.Fatalf("Optimize = %v (%+v)", err, res)
	}
	t.Cleanup(func() { o.Remove(target) })
	// busybox is one binary and a link per applet: the profile keeps the binary, the links that lead to it and
	// the page served; nothing else was there to remove.
	if !res.Verified || !res.Minified || res.SizeAfter > res.SizeBefore || res.FilesProfiled == 0 {
		t.Errorf("Optimize(%s) = %+v", src, res)
	}
	if res.ProbeOptimized == nil || len(res.ProbeOptimized.Checks) != 1 || res.ProbeOptimized.Checks[0].Output != res.ProbeOriginal.Checks[0].Output {
		t.Errorf("probes: original %+v, optimized %+v", res.ProbeOriginal, res.ProbeOptimized)
	}
}
