package optimize_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
)

// The other probes: a run check (the image's command replaced, for images that run a job), an exec check inside
// the running container, and the image's own HEALTHCHECK when no probe is given; each profiles and verifies.
func TestOptimizeProbeKinds(t *testing.T) {
	o := optimizer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, c := range []struct {
		name, image string
		probe       optimize.Probe
		check       string
	}{
		{"run", testimages.Busybox, optimize.Probe{Run: &optimize.CommandCheck{Cmd: []string{"echo", "hello from a job"}, Output: "hello from a job"}}, "run echo hello from a job"},
		{"exec", testimages.Web, optimize.Probe{Exec: []optimize.CommandCheck{{Cmd: []string{"cat", "/www/index.html"}, Output: "Hello"}}}, "exec cat /www/index.html"},
		{"healthcheck", testimages.Healthy, optimize.Probe{}, "healthcheck"},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := strings.Replace(c.image, ":test", ":probe-"+c.name, 1)
			res, err := o.Optimize(ctx, optimize.Request{Source: c.image, Image: engineImage(ctx, t, c.image), Target: target, Probe: c.probe})
			if err != nil {
				t.Fatalf("Optimize(%s, %s probe) = %v\n%+v", c.image, c.name, err, res)
			}
			t.Cleanup(func() { o.Remove(target) })
			if !res.Verified || !res.Minified || res.FilesProfiled == 0 || res.ProbeOptimized == nil || len(res.ProbeOptimized.Checks) != 1 ||
				res.ProbeOptimized.Checks[0].Check != c.check {
				t.Errorf("Optimize(%s probe) = verified %v, minified %v, profiled %d, probe %+v", c.name, res.Verified, res.Minified, res.FilesProfiled, res.ProbeOptimized)
			}
		})
	}
	// A run check that fails on the original is the caller's to fix, before anything is written.
	_, err := o.Optimize(ctx, optimize.Request{Source: testimages.Busybox, Image: engineImage(ctx, t, testimages.Busybox), Target: "myrmex.local/busybox:never",
		Probe: optimize.Probe{Run: &optimize.CommandCheck{Cmd: []string{"false"}}}})
	if err == nil || !strings.Contains(err.Error(), "exit code 1, want 0") {
		t.Errorf("Optimize(a run check that fails on the original) = %v", err)
	}
	if ok, _ := o.Engine.ImageExists(ctx, "myrmex.local/busybox:never"); ok {
		t.Errorf("an image was written for a probe that fails on the original")
	}
}
