package optimize_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
)

func engineImage(ctx context.Context, t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := daemon.Image(r, daemon.WithContext(ctx))
	if err != nil {
		t.Fatalf("daemon.Image(%s) = %v", ref, err)
	}
	return img
}

// Each test app (Python, Node, a static Go server on Debian) is minified with a probe that asks for both its
// pages, and the result answers both as the original does.
func TestOptimizeApps(t *testing.T) {
	o, ctx, apps := withApps(t)
	for _, app := range apps {
		t.Run(app.Lang, func(t *testing.T) {
			target := app.Ref + "-optimized"
			probe := optimize.Probe{HTTP: []optimize.HTTPCheck{
				{Port: app.Port, Path: "/", Status: 200, Body: app.FirstBody},
				{Port: app.Port, Path: "/second", Status: 200, Body: app.SecondBody},
			}}
			res, err := o.Optimize(ctx, optimize.Request{Source: app.Ref, Image: engineImage(ctx, t, app.Ref), Target: target, Probe: probe})
			if err != nil {
				t.Fatalf("Optimize(%s) = %v\n%+v", app.Ref, err, res)
			}
			t.Cleanup(func() { o.Remove(target) })
			ratio := float64(res.SizeBefore) / float64(res.SizeAfter)
			t.Logf("%s: %d → %d bytes (%.1f×), files %d → %d (%d profiled, %d added), removed %+v",
				app.Lang, res.SizeBefore, res.SizeAfter, ratio, res.FilesBefore, res.FilesAfter, res.FilesProfiled, res.FilesAdded, res.Removed)
			if !res.Verified || !res.Minified || !res.ProbeOptimized.Passed {
				t.Errorf("verified %v, minified %v, probe %+v", res.Verified, res.Minified, res.ProbeOptimized)
			}
			// Node's floor is what it loads: Debian's libnode (47 MB) and ICU's data (31 MB).
			if want := map[string]float64{"python": 10, "node": 4, "go": 10}[app.Lang]; ratio < want {
				t.Errorf("%s: %.1f× smaller, want at least %.0f×", app.Lang, ratio, want)
			}
			if res.LayersAfter != 1 || res.LayersBefore < 2 {
				t.Errorf("layers %d → %d", res.LayersBefore, res.LayersAfter)
			}
			if exists, err := o.Engine.ImageExists(ctx, target); err != nil || !exists {
				t.Errorf("the optimized image %s is not in the engine (%v)", target, err)
			}
		})
	}
}

// A file the app reads only on its second page: a probe that asks for that page keeps it; one that does not
// leaves an image that breaks there; dropping it on purpose is caught by verification, which names the check.
func TestOptimizeSecondRequest(t *testing.T) {
	o, ctx, apps := withApps(t)
	app := apps[0]
	img := engineImage(ctx, t, app.Ref)
	first := optimize.HTTPCheck{Port: app.Port, Path: "/", Status: 200, Body: app.FirstBody}
	second := optimize.HTTPCheck{Port: app.Port, Path: "/second", Status: 200, Body: app.SecondBody}

	// Probed on the first page only: the second breaks in the result.
	target := app.Ref + "-first-only"
	res, err := o.Optimize(ctx, optimize.Request{Source: app.Ref, Image: img, Target: target, Probe: optimize.Probe{HTTP: []optimize.HTTPCheck{first}}})
	if err != nil {
		t.Fatalf("Optimize(first page only) = %v", err)
	}
	defer o.Remove(target)
	pr, err := o.Prober.Check(ctx, target, optimize.Probe{HTTP: []optimize.HTTPCheck{first, second}})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Passed || !strings.Contains(pr.Failure, "/second") {
		t.Errorf("the second page on an image profiled without it: %+v, want a failure at /second", pr)
	}
	_ = res

	// The file dropped on purpose, with a probe that asks for it: refused, the check named, the image removed.
	target = app.Ref + "-dropped"
	res, err = o.Optimize(ctx, optimize.Request{Source: app.Ref, Image: img, Target: target,
		Probe: optimize.Probe{HTTP: []optimize.HTTPCheck{first, second}}, Drop: []string{"/app/data/second.txt"}})
	if !errors.Is(err, optimize.ErrVerification) || !errors.Is(err, errdefs.ErrPolicyViolation) || res == nil {
		t.Fatalf("Optimize(dropping the file the probe needs) = %v, want ErrVerification with the result", err)
	}
	if !strings.Contains(err.Error(), "GET :8000/second") {
		t.Errorf("error %q does not name the failed check", err)
	}
	if exists, _ := o.Engine.ImageExists(ctx, target); exists {
		t.Errorf("the refused image %s is still in the engine", target)
	}
	if exists, _ := o.Engine.ImageExists(ctx, app.Ref); !exists {
		t.Errorf("the original %s is gone", app.Ref)
	}
}

// The security type on the Python app: it runs as a created unprivileged user, the shells and package managers
// it does not use are gone, no setuid or setgid bit is left, and it still answers both pages.
func TestOptimizeSecurity(t *testing.T) {
	o, ctx, apps := withApps(t)
	app := apps[0]
	target := app.Ref + "-hardened"
	res, err := o.Optimize(ctx, optimize.Request{Source: app.Ref, Image: engineImage(ctx, t, app.Ref), Target: target, Type: optimize.TypeSecurity,
		Probe: optimize.Probe{HTTP: []optimize.HTTPCheck{
			{Port: app.Port, Path: "/", Status: 200, Body: app.FirstBody},
			{Port: app.Port, Path: "/second", Status: 200, Body: app.SecondBody},
		}}})
	if err != nil {
		t.Fatalf("Optimize(security) = %v\n%+v", err, res)
	}
	t.Cleanup(func() { o.Remove(target) })
	if res.User != "10001:10001" || !res.Verified || res.Minified {
		t.Errorf("user %q, verified %v, minified %v", res.User, res.Verified, res.Minified)
	}
	changed := map[string]bool{}
	setid := 0
	for _, c := range res.Changes {
		changed[c.Path] = true
		if strings.HasPrefix(c.Change, "cleared setuid") {
			setid++
		}
	}
	for _, p := range []string{"/usr/bin/bash", "/usr/bin/dash", "/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/su"} {
		if !changed[p] {
			t.Errorf("%s was not removed", p)
		}
	}
	if setid == 0 {
		t.Errorf("no setuid/setgid bit cleared; Debian has some (chage, expiry, unix_chkpwd)")
	}
	if changed["/usr/bin/python3.11"] {
		t.Errorf("python3.11 was removed; the app runs on it")
	}
	ins, err := o.Engine.API().ImageInspect(ctx, target)
	if err != nil || ins.Config == nil || ins.Config.User != "10001:10001" {
		t.Errorf("the hardened image's user = %+v, %v", ins.Config, err)
	}
}

// withApps is an optimizer, a context for the test and the test apps (made on the first call on a machine).
func withApps(t *testing.T) (*optimize.Optimizer, context.Context, []testimages.App) {
	t.Helper()
	o := optimizer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	apps, err := testimages.EnsureApps(ctx, o.Engine, testimages.DebianOptions{})
	if err != nil {
		t.Fatalf("EnsureApps = %v", err)
	}
	return o, ctx, apps
}
