package optimize_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/errdefs"
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

// A failed optimization leaves the target's name as it was: an image the user had under it keeps it, and a target
// that is the source under another spelling (its ID) is refused before anything is written.
func TestFailedOptimizeKeepsTheTargetsImage(t *testing.T) {
	o := optimizer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	target := "myrmex.local/keep:target"
	if _, err := o.Engine.API().ImageTag(ctx, client.ImageTagOptions{Source: testimages.Busybox, Target: target}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Remove(target) })
	before, err := o.Engine.API().ImageInspect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Optimize(ctx, optimize.Request{Source: testimages.Web, Image: engineImage(ctx, t, testimages.Web), Target: target,
		Probe: optimize.Probe{HTTP: []optimize.HTTPCheck{{Port: 8080, Path: "/", Body: "Hello"}}}, Drop: []string{"/www"}})
	if !errors.Is(err, optimize.ErrVerification) {
		t.Fatalf("Optimize(dropping the site) = %v, want ErrVerification", err)
	}
	if after, err := o.Engine.API().ImageInspect(ctx, target); err != nil || after.ID != before.ID {
		t.Errorf("%s named %s before the failed optimization, now %s (%v)", target, before.ID, after.ID, err)
	}

	web, err := o.Engine.API().ImageInspect(ctx, testimages.Web)
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Optimize(ctx, optimize.Request{Source: web.ID, Image: engineImage(ctx, t, testimages.Web), Target: testimages.Web,
		Probe: optimize.Probe{HTTP: []optimize.HTTPCheck{{Port: 8080, Path: "/"}}}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Optimize(the source by its ID into its own tag) = %v, want ErrInvalidArgument", err)
	}
	if now, err := o.Engine.API().ImageInspect(ctx, testimages.Web); err != nil || now.ID != web.ID {
		t.Errorf("%s is now %s (%v), was %s", testimages.Web, now.ID, err, web.ID)
	}
}

// The profiling container has CAP_SYS_ADMIN for the sensor alone: an exec check runs without it, and the report
// is written (the container is stopped with SIGTERM whatever the image's STOPSIGNAL).
func TestProfileChecksRunWithoutSysAdmin(t *testing.T) {
	o := optimizer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pr, rep, err := o.Prober.Profile(ctx, testimages.Healthy, optimize.Probe{Exec: []optimize.CommandCheck{{Cmd: []string{"grep", "CapEff", "/proc/self/status"}, Output: "CapEff"}}})
	if err != nil || !pr.Passed || rep == nil || len(rep.Files) == 0 {
		t.Fatalf("Profile = %+v, %+v, %v", pr, rep, err)
	}
	out := pr.Checks[0].Output
	_, hex, _ := strings.Cut(out, "CapEff:")
	caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	if err != nil {
		t.Fatalf("CapEff in %q: %v", out, err)
	}
	if caps&(1<<21) != 0 { // CAP_SYS_ADMIN
		t.Errorf("the exec check ran with CAP_SYS_ADMIN (CapEff %x)", caps)
	}
}
