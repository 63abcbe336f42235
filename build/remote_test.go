package build_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	bkclient "github.com/moby/buildkit/client"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// remoteFixture is a standalone buildkitd and the plain-HTTP registry it pulls its base image from: nothing
// can be pulled from the internet here.
type remoteFixture struct {
	t       *testing.T
	reg     *testenv.Registry
	builder string
	base    string
}

func newRemoteFixture(t *testing.T) *remoteFixture {
	t.Helper()
	reg := testenv.InProcess(t)
	f := &remoteFixture{t: t, reg: reg, base: reg.Ref("busybox:test")}
	rootfs, err := testimages.Rootfs()
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(rootfs)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	// buildkitd resolves the platform of a base image from its configuration.
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(f.ref(f.base), img, remote.WithTransport(reg.Transport())); err != nil {
		t.Fatalf("pushing the base image: %v", err)
	}
	f.builder = testenv.Buildkitd(t, reg.Host)
	return f
}

func (f *remoteFixture) ref(s string) name.Reference {
	f.t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		f.t.Fatal(err)
	}
	return ref
}

// context writes a build context whose Dockerfile's "FROM BASE" is the registry's busybox.
func (f *remoteFixture) context(dockerfile string) string {
	f.t.Helper()
	dir := f.t.TempDir()
	df := strings.ReplaceAll(dockerfile, "FROM BASE", "FROM "+f.base)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return dir
}

func (f *remoteFixture) build(opts build.Options) (*build.Result, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts.Builder = f.builder
	return build.Build(ctx, nil, opts)
}

// readOCI reads the single image of an OCI layout tarball.
func readOCI(t *testing.T, path string) v1.Image {
	t.Helper()
	dir := t.TempDir()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tr := tar.NewReader(fh)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("layout.ImageIndexFromPath(%s) = %v", path, err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("index of %s = %d manifests, %v; want 1", path, len(m.Manifests), err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatalf("image %s of %s: %v", m.Manifests[0].Digest, path, err)
	}
	return img
}

func TestRemoteOCIOutput(t *testing.T) {
	f := newRemoteFixture(t)
	dir := f.context(`FROM BASE AS compile
ARG GREETING=unset
RUN echo "$GREETING" > /greeting

FROM BASE
ARG GREETING
COPY --from=compile /greeting /greeting
RUN test "$(cat /greeting)" = hello
LABEL greeting=$GREETING
`)
	out := filepath.Join(t.TempDir(), "image.tar")
	res, err := f.build(build.Options{
		ContextPath: dir,
		BuildArgs:   map[string]string{"GREETING": "hello"},
		Labels:      map[string]string{"org.example.team": "ants"},
		Output:      "oci:" + out,
	})
	if err != nil {
		t.Fatalf("Build(oci) = %v", err)
	}
	if res.Source != "oci:"+out {
		t.Errorf("Build(oci).Source = %q, want oci:%s", res.Source, out)
	}
	img := readOCI(t, out)
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if res.ImageID != cfgName.String() {
		t.Errorf("Build().ImageID = %s, want the tarball's config digest %s", res.ImageID, cfgName)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"greeting": "hello", "org.example.team": "ants"} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
}

func TestRemoteDockerOutput(t *testing.T) {
	f := newRemoteFixture(t)
	tag := "myrmex.local/remote-docker:v1"
	out := filepath.Join(t.TempDir(), "image.tar")
	res, err := f.build(build.Options{ContextPath: f.context("FROM BASE\nRUN echo built > /built\n"),
		Output: "docker:" + out, Tags: []string{tag}})
	if err != nil {
		t.Fatalf("Build(docker) = %v", err)
	}
	if res.Source != "docker-archive:"+out {
		t.Errorf("Build(docker).Source = %q, want docker-archive:%s", res.Source, out)
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatalf("tarball.ImageFromPath(%s) = %v", out, err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if res.ImageID != cfgName.String() {
		t.Errorf("Build().ImageID = %s, want the tarball's config digest %s", res.ImageID, cfgName)
	}
}

func TestRemoteRegistryOutput(t *testing.T) {
	f := newRemoteFixture(t)
	tag := f.reg.Ref("app:v1")
	res, err := f.build(build.Options{
		ContextPath: f.context("FROM BASE\nRUN echo built > /built\n"),
		Output:      build.OutputRegistry,
		Tags:        []string{tag},
	})
	if err != nil {
		t.Fatalf("Build(registry) = %v", err)
	}
	if res.Source != "docker://"+tag {
		t.Errorf("Build(registry).Source = %q, want docker://%s", res.Source, tag)
	}
	img, err := remote.Image(f.ref(tag), remote.WithTransport(f.reg.Transport()))
	if err != nil {
		t.Fatalf("remote.Image(%s) = %v", tag, err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if res.ImageID != cfgName.String() {
		t.Errorf("Build().ImageID = %s, want the pushed config digest %s", res.ImageID, cfgName)
	}
}

func TestRemoteLocalCache(t *testing.T) {
	f := newRemoteFixture(t)
	// Each RUN writes a random value: a step that runs again changes the image.
	dir := f.context("FROM BASE\nRUN cat /proc/sys/kernel/random/uuid > /one\nRUN cat /proc/sys/kernel/random/uuid > /two\n")
	cache := t.TempDir()
	first, err := f.build(build.Options{
		ContextPath: dir,
		Output:      "oci:" + filepath.Join(t.TempDir(), "first.tar"),
		CacheTo:     []string{"type=local,mode=max,dest=" + cache},
	})
	if err != nil {
		t.Fatalf("Build(cache-to) = %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "index.json")); err != nil {
		t.Fatalf("cache-to wrote no OCI layout: %v", err)
	}

	// Empty the daemon's own cache, so that only the imported cache can serve the second build.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := bkclient.New(ctx, f.builder)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Prune(ctx, nil, bkclient.PruneAll); err != nil {
		t.Fatalf("Prune() = %v", err)
	}
	if du, err := c.DiskUsage(ctx); err != nil || len(du) != 0 {
		t.Fatalf("DiskUsage() after prune = %d records, %v; want none", len(du), err)
	}

	// The image is the proof that the steps came from the cache: each RUN writes a random value. BuildKit
	// v0.34.2 reports the first RUN as cached but the last one, whose layer it loads from the imported cache,
	// as completed without the cached flag, so the count of cache hits is a floor.
	var ran, cached []string
	second, err := f.build(build.Options{
		ContextPath: dir,
		Output:      "oci:" + filepath.Join(t.TempDir(), "second.tar"),
		CacheFrom:   []string{"type=local,src=" + cache},
		Progress: func(e build.Event) {
			if e.Kind == build.StepCompleted && strings.Contains(e.Name, "RUN ") {
				if e.Cached {
					cached = append(cached, e.Name)
				} else {
					ran = append(ran, e.Name)
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("Build(cache-from) = %v", err)
	}
	if second.CacheHits == 0 || len(cached) == 0 {
		t.Errorf("Build(cache-from) = %d cache hits, RUN steps cached %q and not %q; want RUN steps from the cache",
			second.CacheHits, cached, ran)
	}
	if second.ImageID != first.ImageID {
		t.Errorf("Build(cache-from).ImageID = %s, want the first build's %s", second.ImageID, first.ImageID)
	}
}

func TestRemoteFailingStep(t *testing.T) {
	f := newRemoteFixture(t)
	// The failing instruction appears twice (the first in a stage the build skips), so its line can come only
	// from the source location that buildkitd attaches to the error, not from searching the Dockerfile.
	dir := f.context("FROM BASE AS unused\nRUN echo going down && exit 3\n\nFROM BASE\nRUN echo fine\nRUN echo going down && exit 3\nRUN echo never\n")
	_, err := f.build(build.Options{ContextPath: dir, Output: "oci:" + filepath.Join(t.TempDir(), "x.tar")})
	var se *build.StepError
	if !errors.As(err, &se) {
		t.Fatalf("Build() = %v, want a *StepError", err)
	}
	if se.Line != 6 || se.ExitCode != 3 || se.Instruction != "RUN echo going down && exit 3" {
		t.Errorf("StepError = %q line %d exit %d, want %q line 6 exit 3", se.Instruction, se.Line, se.ExitCode,
			"RUN echo going down && exit 3")
	}
	if !strings.Contains(strings.Join(se.Output, "\n"), "going down") {
		t.Errorf("StepError.Output = %q, want the step's output", se.Output)
	}
}

func TestRemoteInvalid(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const addr = "unix:///nonexistent/buildkitd.sock"
	for _, tc := range []struct {
		name string
		opts build.Options
	}{
		{"output without builder", build.Options{Output: "oci:/tmp/x.tar"}},
		{"builder without output", build.Options{Builder: addr}},
		{"builder not an address", build.Options{Builder: "buildkitd", Output: build.OutputRegistry, Tags: []string{"a/b:c"}}},
		{"registry without tags", build.Options{Builder: addr, Output: build.OutputRegistry}},
		{"oci without path", build.Options{Builder: addr, Output: "oci:"}},
		{"unknown output", build.Options{Builder: addr, Output: "s3:bucket"}},
		{"cache without type", build.Options{CacheFrom: []string{"src=/tmp"}}},
		{"local cache-from without src", build.Options{CacheFrom: []string{"type=local,dest=/tmp"}}},
		{"local cache-to without dest", build.Options{CacheTo: []string{"type=local,src=/tmp"}}},
		{"registry cache without ref", build.Options{CacheTo: []string{"type=registry,mode=max"}}},
		{"cache field without value", build.Options{CacheTo: []string{"type=local,dest"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.ContextPath = dir
			_, err := build.Build(context.Background(), nil, tc.opts)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Build(%+v) = %v, want ErrInvalidArgument", tc.opts, err)
			}
		})
	}
}

func TestRemoteUnavailable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := build.Build(ctx, nil, build.Options{
		ContextPath: dir,
		Builder:     "unix://" + filepath.Join(dir, "absent.sock"),
		Output:      "oci:" + filepath.Join(dir, "x.tar"),
	})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Build(absent builder) = %v, want ErrUnavailable", err)
	}
}
