package containerization_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
)

// buildContext writes a build context: the Dockerfile and the other files given, by path.
func buildContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["Dockerfile"] = dockerfile
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func buildName(t *testing.T, eng interface {
	API() *client.Client
}) string {
	t.Helper()
	n := fmt.Sprintf("myrmex.local/buildfacade-%08x:1", rand.Uint32())
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), n, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	return n
}

func TestBuildContainersRefusesBeforeBuilding(t *testing.T) {
	ctx := context.Background()
	ok := buildContext(t, "FROM "+testimages.Busybox+"\n", map[string]string{})
	relative := buildContext(t, "FROM "+testimages.Busybox+"\nWORKDIR app\n", map[string]string{})
	tests := []struct {
		name, image string
		opts        containerization.BuildOptions
		op          string
		want        error
	}{
		{"bad image name", "App:1", containerization.BuildOptions{Options: build.Options{ContextPath: ok}}, "build", containerization.ErrInvalidArgument},
		{"bad scan", "app:1", containerization.BuildOptions{Options: build.Options{ContextPath: ok}, Scan: "deep"}, "build", containerization.ErrInvalidArgument},
		{"bad optimization", "app:1", containerization.BuildOptions{Options: build.Options{ContextPath: ok}, Optimization: "fast"}, "build", containerization.ErrInvalidArgument},
		{"optimization on a standalone builder", "app:1", containerization.BuildOptions{Options: build.Options{ContextPath: ok, Builder: "tcp://127.0.0.1:1"}, Optimization: "size"}, "build", containerization.ErrInvalidArgument},
		{"no Dockerfile", "app:1", containerization.BuildOptions{Options: build.Options{ContextPath: t.TempDir()}}, "build", containerization.ErrInvalidArgument},
		{"bad lint threshold", "app:1", containerization.BuildOptions{Options: build.Options{ContextPath: ok}, LintFailureThreshold: "fatal"}, "lint", containerization.ErrInvalidArgument},
		// A CA file that cannot be read (it was ignored, and the image read back without it).
		{"bad CA file", "app:1", containerization.BuildOptions{Options: build.Options{ContextPath: ok}, RegistryOptions: containerization.RegistryOptions{CAFile: "/nonexistent/ca.pem"}}, "build", containerization.ErrInvalidArgument},
		// DL3000 (a relative WORKDIR) is an error in hadolint: with that threshold nothing is built.
		{"lint gate", "app:1", containerization.BuildOptions{Options: build.Options{ContextPath: relative}, LintFailureThreshold: "error", Host: nowhere}, "lint", containerization.ErrPolicyViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Host = nowhere // an engine call would fail with ErrUnavailable instead
			res, err := containerization.BuildContainers(ctx, tt.image, tt.opts)
			var cbe *containerization.ContainerBuildError
			if !errors.Is(err, tt.want) || !errors.As(err, &cbe) || cbe.Op != tt.op {
				t.Fatalf("BuildContainers(%s) error = %v, want a %s ContainerBuildError wrapping %v", tt.name, err, tt.op, tt.want)
			}
			if tt.name == "lint gate" && (len(res.Lint) == 0 || res.Lint[0].Rule != "DL3000" || res.Lint[0].Line != 2) {
				t.Errorf("lint findings = %+v, want DL3000 on line 2", res.Lint)
			}
		})
	}
}

func TestBuildContainersBuildsScansGatesAndPushes(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	db := advisoryDB(t, nil)
	dockerfile := "FROM " + testimages.Busybox + "\n" +
		"LABEL org.opencontainers.image.title=demo\n" +
		"COPY node_modules /app/node_modules\n" +
		"RUN echo built > /app/built\n"
	ctxDir := buildContext(t, dockerfile, map[string]string{
		"node_modules/minimist/package.json": `{"name": "minimist", "version": "1.2.5"}`,
	})

	// The gate: minimist 1.2.5 has a critical finding. The build fails its gate and nothing is pushed.
	image := buildName(t, eng)
	target := reg.Host + "/" + strings.TrimPrefix(image, "myrmex.local/")
	res, err := containerization.BuildContainers(ctx, image, containerization.BuildOptions{
		Options: build.Options{ContextPath: ctxDir}, Engine: eng, Scan: "full", ScanThreshold: "critical",
		ScanOptions:    containerization.ScanOptions{DBDir: db, Cache: t.TempDir()},
		PushToRegistry: true, Registry: "http://" + reg.Host,
	})
	var cbe *containerization.ContainerBuildError
	if !errors.Is(err, containerization.ErrPolicyViolation) || !errors.As(err, &cbe) || cbe.Op != "scan" {
		t.Fatalf("BuildContainers(gate critical) error = %v, want a scan ContainerBuildError wrapping ErrPolicyViolation", err)
	}
	if res.SecurityScanPassed || res.VulnerabilitiesFound == 0 || res.ImageID == "" || res.ImageDigest != "" {
		t.Errorf("gated build = %+v, want built, scan failed, findings counted, not pushed", res)
	}
	if _, err := remote.Head(mustRef(t, target), remote.WithTransport(reg.Transport())); err == nil {
		t.Errorf("%s is in the registry after a failed gate", target)
	}

	// Without the gate it is pushed, and the result carries every field; one stream of events tells the build's
	// steps, the scan's phases and the push's bytes.
	var events []containerization.Event
	res, err = containerization.BuildContainers(ctx, image, containerization.BuildOptions{
		Options: build.Options{ContextPath: ctxDir}, Engine: eng, Scan: "full",
		ScanOptions:    containerization.ScanOptions{DBDir: db, Cache: t.TempDir()},
		PushToRegistry: true, Registry: "http://" + reg.Host,
		Progress: func(e containerization.Event) { events = append(events, e) },
	})
	if err != nil {
		t.Fatalf("BuildContainers() = %v", err)
	}
	seen := map[string]bool{}
	var pushed int64
	for _, e := range events {
		if e.Time.IsZero() {
			t.Errorf("event without a time: %+v", e)
		}
		seen[e.Op+" "+e.Phase+" "+e.Status] = true
		if e.Op == "build" && (e.Status == "done" || e.Status == "cached") && strings.Contains(e.Subject, "RUN echo built") {
			seen["the RUN step done"] = true
		}
		if e.Op == "push" && e.Status == "done" {
			pushed = e.BytesDone
		}
	}
	for _, want := range []string{"build step started", "the RUN step done", "scan open done", "scan scan done", "push transfer running", "push transfer done"} {
		if !seen[want] {
			t.Errorf("no %q event among %d: %v", want, len(events), seen)
		}
	}
	if pushed <= 0 {
		t.Errorf("the push's last event counts %d bytes", pushed)
	}
	if !strings.HasPrefix(res.ImageID, "sha256:") || res.BuildTime <= 0 || res.SizeMB <= 0 || res.Layers < 2 ||
		!res.SecurityScanPassed || res.VulnerabilitiesFound == 0 || res.OptimizationApplied || res.CacheHits == 0 {
		t.Errorf("BuildContainers() = %+v, want an image id, time, size, ≥2 layers, scan passed with findings, cache hits from the first build", res)
	}
	desc, err := remote.Head(mustRef(t, target), remote.WithTransport(reg.Transport()))
	if err != nil || desc.Digest.String() != res.ImageDigest {
		t.Errorf("registry has %v, %v; want the pushed digest %s", desc, err, res.ImageDigest)
	}
}

// With an optimization the built image is optimized and verified before the scan: the scan and the result are
// the optimized image's; a verification that fails fails the build and leaves the image as built.
func TestBuildContainersOptimizes(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	db := advisoryDB(t, nil)
	dockerfile := "FROM " + testimages.Web + "\n" +
		"COPY www /www\n" +
		"COPY node_modules /app/node_modules\n"
	ctxDir := buildContext(t, dockerfile, map[string]string{
		"www/index.html":                     "optimized and built\n",
		"node_modules/minimist/package.json": `{"name": "minimist", "version": "1.2.5"}`,
	})
	image := "myrmex.test/build-optimized:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { eng.API().ImageRemove(context.Background(), image, imageRemoveForce()) })
	probe := optimize.Probe{HTTP: []optimize.HTTPCheck{{Port: 8080, Path: "/", Status: 200, Body: "optimized and built"}}}
	opts := containerization.BuildOptions{
		Options: build.Options{ContextPath: ctxDir}, Engine: eng, Scan: "full",
		ScanOptions:  containerization.ScanOptions{DBDir: db, Cache: t.TempDir()},
		Optimization: "size", OptimizeOptions: containerization.OptimizeOptions{Probe: probe, Sensor: testenv.Sensor(t)},
	}
	res, err := containerization.BuildContainers(ctx, image, opts)
	if err != nil {
		t.Fatalf("BuildContainers(optimized) = %v", err)
	}
	if !res.OptimizationApplied || res.Optimization == nil || !res.Optimization.Verified || res.Layers != 1 {
		t.Fatalf("BuildContainers(optimized) = %+v, want optimization applied, verified, one layer", res)
	}
	// minimist's metadata is nothing httpd reads: gone, and its advisory with it.
	if res.VulnerabilitiesFound != 0 || res.Optimization.SecurityBefore == nil || res.Optimization.SecurityBefore.Vulnerabilities == 0 {
		t.Errorf("vulnerabilities after %d, before %+v", res.VulnerabilitiesFound, res.Optimization.SecurityBefore)
	}
	if ins, err := eng.API().ImageInspect(ctx, image); err != nil || ins.ID != res.ImageID || len(ins.RootFS.Layers) != 1 {
		t.Errorf("%s is %v (%v), want the optimized image %s", image, ins.ID, err, res.ImageID)
	}

	opts.OptimizeOptions.Drop = []string{"/www"}
	res, err = containerization.BuildContainers(ctx, image, opts)
	var cbe *containerization.ContainerBuildError
	if !errors.Is(err, containerization.ErrPolicyViolation) || !errors.As(err, &cbe) || cbe.Op != "optimize" {
		t.Fatalf("BuildContainers(dropping the site) = %v, want an optimize ContainerBuildError wrapping ErrPolicyViolation", err)
	}
	if res.OptimizationApplied || res.Optimization == nil || res.Optimization.Verified {
		t.Errorf("refused optimization = %+v", res)
	}
	if ins, err := eng.API().ImageInspect(ctx, image); err != nil || ins.ID != res.ImageID || len(ins.RootFS.Layers) < 2 {
		t.Errorf("%s after a refused optimization is %v (%v), want the image as built %s", image, ins.ID, err, res.ImageID)
	}
}

func TestBuildContainersNamesTheFailingStep(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	ctxDir := buildContext(t, "FROM "+testimages.Busybox+"\nRUN echo starting\nRUN echo broken >&2 && exit 3\n", map[string]string{})
	res, err := containerization.BuildContainers(ctx, buildName(t, eng), containerization.BuildOptions{Options: build.Options{ContextPath: ctxDir}, Engine: eng, Scan: "off"})
	var step *build.StepError
	var cbe *containerization.ContainerBuildError
	if !errors.As(err, &step) || !errors.As(err, &cbe) || cbe.Op != "build" {
		t.Fatalf("BuildContainers(failing RUN) error = %v, want a build ContainerBuildError wrapping a StepError", err)
	}
	if step.Line != 3 || step.ExitCode != 3 || !strings.Contains(step.Instruction, "exit 3") || !strings.Contains(strings.Join(step.Output, "\n"), "broken") {
		t.Errorf("StepError = %+v, want line 3, exit 3, the instruction and its output", step)
	}
	if res.ImageID != "" {
		t.Errorf("result of a failed build = %+v, want no image", res)
	}
}

// TestBuildContainersWithoutADatabase: the default scan cannot run on a machine with no advisory database yet;
// the build stands and says it was not scanned, while an explicit scan fails.
func TestBuildContainersWithoutADatabase(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	t.Setenv("MYRMEX_CACHE_DIR", t.TempDir()) // no database here
	ctxDir := buildContext(t, "FROM "+testimages.Busybox+"\nRUN echo hi\n", map[string]string{})
	image := buildName(t, eng)
	res, err := containerization.BuildContainers(ctx, image, containerization.BuildOptions{Options: build.Options{ContextPath: ctxDir}, Engine: eng})
	if err != nil {
		t.Fatalf("BuildContainers(default scan, no database) = %v, want the build to stand", err)
	}
	if res.ImageID == "" || res.SecurityScanPassed || res.Scan != nil || !hasLine(res.Recommendations, "the image was not scanned") {
		t.Errorf("result = %+v, want built, not scanned, and a recommendation saying so", res)
	}
	_, err = containerization.BuildContainers(ctx, image, containerization.BuildOptions{Options: build.Options{ContextPath: ctxDir}, Engine: eng, Scan: "quick"})
	var cbe *containerization.ContainerBuildError
	if !errors.As(err, &cbe) || cbe.Op != "scan" || !errors.Is(err, containerization.ErrNotFound) {
		t.Errorf("BuildContainers(explicit scan, no database) error = %v, want a scan ContainerBuildError wrapping ErrNotFound", err)
	}
}

// TestBuildContainersOnARemoteBuildkitd builds on a standalone buildkitd, which pushes the image to the registry
// as it builds; the gate then scans what the registry holds, and the result names the pushed digest.
func TestBuildContainersOnARemoteBuildkitd(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	reg := testenv.InProcess(t)
	base := reg.Host + "/base/busybox:test"
	if _, err := containerization.ManageContainerRegistry(ctx, containerization.RegistryPush, testimages.Busybox, "http://"+reg.Host,
		containerization.RegistryOptions{Engine: eng, Destination: "base/busybox:test"}); err != nil {
		t.Fatal(err)
	}
	// Over TCP (loopback only): the build package's own tests use the unix socket.
	_, builder := testenv.BuildkitdAddrs(t, reg.Host)
	ctxDir := buildContext(t, "FROM "+base+"\nRUN echo remote > /built\nUSER nobody\n", map[string]string{})
	image := reg.Host + "/team/remote:1"
	res, err := containerization.BuildContainers(ctx, image, containerization.BuildOptions{
		Options: build.Options{ContextPath: ctxDir, Builder: builder}, Scan: "compliance",
		RegistryOptions: containerization.RegistryOptions{Transport: reg.Transport()},
	})
	if err != nil {
		t.Fatalf("BuildContainers(remote) = %v", err)
	}
	desc, err := remote.Head(mustRef(t, image), remote.WithTransport(reg.Transport()))
	if err != nil || desc.Digest.String() != res.ImageDigest || res.PushedTo != image {
		t.Errorf("registry has %v, %v; result says %s at %s", desc, err, res.ImageDigest, res.PushedTo)
	}
	if res.Scan == nil || res.Scan.ComplianceScore == nil || !res.SecurityScanPassed || res.Layers < 2 || res.SizeMB <= 0 {
		t.Errorf("remote build result = %+v, want the registry's image scanned, its layers and size", res)
	}
}
