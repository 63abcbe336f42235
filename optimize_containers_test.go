package containerization_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
)

// OptimizeContainers on the static Go server: the specification's fields, the default name, the probe on both
// images; a removal the probe needs is refused as an OptimizationError wrapping ErrPolicyViolation, with the
// result, and the optimized image removed.
func TestOptimizeContainers(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	apps, err := testimages.EnsureApps(ctx, eng, testimages.DebianOptions{})
	if err != nil {
		t.Fatalf("EnsureApps = %v", err)
	}
	app := apps[2]
	probe := optimize.Probe{HTTP: []optimize.HTTPCheck{
		{Port: app.Port, Path: "/", Status: 200, Body: app.FirstBody},
		{Port: app.Port, Path: "/second", Status: 200, Body: app.SecondBody},
	}}
	opts := containerization.OptimizeOptions{Probe: probe, Sensor: testenv.Sensor(t), Engine: eng, TargetSizeMB: 50}
	res, err := containerization.OptimizeContainers(ctx, app.Ref, "", opts)
	if err != nil {
		t.Fatalf("OptimizeContainers(%s) = %v", app.Ref, err)
	}
	want := strings.TrimSuffix(app.Ref, ":test") + ":test-optimized"
	t.Cleanup(func() { (&optimize.Optimizer{Engine: eng}).Remove(want) })
	if res.OptimizedImage != want || res.OriginalImage != app.Ref || res.OptimizationType != "size" {
		t.Errorf("names = %q → %q (%s), want %q", res.OriginalImage, res.OptimizedImage, res.OptimizationType, want)
	}
	if res.SizeReductionMB < 100 || res.LayersReduced != 1 || res.BuildTime <= 0 || res.SecurityImprovements == nil {
		t.Errorf("result = %+v", res)
	}
	if res.TargetReached == nil || !*res.TargetReached || !res.Verified || res.SecurityBefore == nil || res.SecurityAfter == nil {
		t.Errorf("target %v, verified %v, scans %+v %+v", res.TargetReached, res.Verified, res.SecurityBefore, res.SecurityAfter)
	}
	b, _ := json.Marshal(res)
	for _, k := range []string{`"size_reduction_mb"`, `"layers_reduced"`, `"probe_optimized"`, `"removed"`, `"size_before"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}

	// Pushed once verified.
	reg := testenv.InProcess(t)
	pushTo := reg.Host + "/apps/go:optimized"
	t.Cleanup(func() { (&optimize.Optimizer{Engine: eng}).Remove(pushTo) })
	pres, err := containerization.OptimizeContainers(ctx, app.Ref, "size", containerization.OptimizeOptions{Probe: probe, Sensor: testenv.Sensor(t),
		Engine: eng, NoScan: true, OptimizedImage: pushTo, Push: true, PushRegistry: "http://" + reg.Host})
	if err != nil || pres.PushedTo == "" || pres.ImageDigest == "" {
		t.Fatalf("OptimizeContainers(push) = %+v, %v", pres, err)
	}
	if desc, err := remote.Head(mustRef(t, pushTo), remote.WithTransport(reg.Transport())); err != nil || desc.Digest.String() != pres.ImageDigest {
		t.Errorf("the registry has %v, %v; want the pushed digest %s", desc, err, pres.ImageDigest)
	}

	// Performance: both images pushed, read back and started, as many times each; the measured tags deleted.
	for _, typ := range []string{"performance", "multi"} {
		target := app.Ref + "-" + typ
		t.Cleanup(func() { (&optimize.Optimizer{Engine: eng}).Remove(target) })
		mres, err := containerization.OptimizeContainers(ctx, app.Ref, typ, containerization.OptimizeOptions{Probe: probe, Sensor: testenv.Sensor(t),
			Engine: eng, NoScan: true, OptimizedImage: target, MeasureRepository: "http://" + reg.Host + "/bench/go", MeasureRounds: 2})
		if err != nil {
			t.Fatalf("OptimizeContainers(%s) = %v", typ, err)
		}
		p := mres.Performance
		if p == nil || p.Rounds != 2 || len(p.Original.Push) != 2 || len(p.Optimized.Pull) != 2 || len(p.Optimized.Start) != 2 ||
			p.Original.MedianTotal <= 0 || mres.PerformanceImprovement != p.Improvement || !mres.Minified {
			t.Errorf("OptimizeContainers(%s) performance = %+v, improvement %v, minified %v", typ, p, mres.PerformanceImprovement, mres.Minified)
		}
		if typ == "multi" && (mres.User != "10001:10001" || len(mres.SecurityImprovements) == 0) {
			t.Errorf("multi: user %q, security improvements %v", mres.User, mres.SecurityImprovements)
		}
		if tags, err := remote.List(mustRepo(t, reg.Host+"/bench/go"), remote.WithTransport(reg.Transport())); err == nil && len(tags) > 0 {
			t.Errorf("%s left measured tags in the registry: %v", typ, tags)
		}
	}

	opts.Drop, opts.OptimizedImage = []string{"/app/data"}, app.Ref+"-broken"
	res, err = containerization.OptimizeContainers(ctx, app.Ref, "size", opts)
	var oe *containerization.OptimizationError
	if !errors.Is(err, containerization.ErrPolicyViolation) || !errors.As(err, &oe) || res == nil || res.Verified {
		t.Fatalf("OptimizeContainers(dropping /app/data) = %+v, %v; want an OptimizationError wrapping ErrPolicyViolation with the result", res, err)
	}
	if res.ProbeOptimized == nil || res.ProbeOptimized.Passed || !strings.Contains(err.Error(), "/second") {
		t.Errorf("probe on the broken image = %+v; error %v", res.ProbeOptimized, err)
	}
	if ok, _ := eng.ImageExists(ctx, app.Ref+"-broken"); ok {
		t.Errorf("the image that failed verification is still in the engine")
	}

	// layers_to_remove that removes what the app is made of: refused by verification.
	opts.Drop, opts.LayersToRemove, opts.OptimizedImage = nil, []string{"1"}, app.Ref+"-no-app-layer"
	res, err = containerization.OptimizeContainers(ctx, app.Ref, "size", opts)
	if !errors.Is(err, containerization.ErrPolicyViolation) || res == nil || res.ProbeOptimized == nil || res.ProbeOptimized.Passed {
		t.Errorf("OptimizeContainers(removing the app's layer) = %v, %+v; want a failed verification", err, res)
	}
	if ok, _ := eng.ImageExists(ctx, app.Ref+"-no-app-layer"); ok {
		t.Errorf("the image without the app's layer is still in the engine")
	}

	for _, bad := range []struct {
		typ  string
		opts containerization.OptimizeOptions
		want error
	}{
		{"fast", containerization.OptimizeOptions{Engine: eng}, containerization.ErrInvalidArgument},
		{"multi", containerization.OptimizeOptions{Engine: eng, Probe: probe, Sensor: testenv.Sensor(t)}, containerization.ErrInvalidArgument},
		{"performance", containerization.OptimizeOptions{Engine: eng, Sensor: testenv.Sensor(t), MeasureRepository: "127.0.0.1:1/x"}, containerization.ErrInvalidArgument},
		{"performance", containerization.OptimizeOptions{Engine: eng, Probe: probe, Sensor: testenv.Sensor(t), MeasureRepository: "Not A Repo"}, containerization.ErrInvalidArgument},
		{"size", containerization.OptimizeOptions{Engine: eng, Probe: optimize.Probe{HTTP: []optimize.HTTPCheck{{Port: 0, Path: "/"}}}}, containerization.ErrInvalidArgument},
		{"size", containerization.OptimizeOptions{Engine: eng, OptimizedImage: app.Ref}, containerization.ErrInvalidArgument},
		{"size", containerization.OptimizeOptions{Engine: eng, Probe: probe, Sensor: "/nonexistent/sensor"}, containerization.ErrNotFound},
		{"size", containerization.OptimizeOptions{Engine: eng, Probe: probe, Sensor: testenv.Sensor(t), LayersToRemove: []string{"7"}}, containerization.ErrInvalidArgument},
	} {
		if _, err := containerization.OptimizeContainers(ctx, app.Ref, bad.typ, bad.opts); !errors.Is(err, bad.want) || !errors.As(err, &oe) {
			t.Errorf("OptimizeContainers(%s, %+v) = %v, want an OptimizationError wrapping %v", bad.typ, bad.opts, err, bad.want)
		}
	}
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
