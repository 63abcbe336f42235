package build_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry"
)

// cacheWatch records a build's events, and whether its RUN step came from the cache.
type cacheWatch struct {
	runCached bool
	events    []string
}

func (w *cacheWatch) progress(e build.Event) {
	w.runCached = w.runCached || e.Kind == build.StepCompleted && e.Cached && strings.Contains(e.Name, "RUN ")
	w.events = append(w.events, fmt.Sprintf("%v %q cached=%v error=%q %s", e.Kind, e.Name, e.Cached, e.Error, e.Line))
}

func (w *cacheWatch) String() string { return strings.Join(w.events, "\n") }

// A registry cache exported by one standalone buildkitd serves another that has never built the Dockerfile (a
// fresh CI builder): the RUN step, which writes a random value, comes from the cache.
//
// It used to export from buildkitd and import on the engine's BuildKit, and passed only while the engine's own
// cache held the step from an earlier run: with that cache empty (a fresh machine) it failed every time. The
// engine's BuildKit (Docker 20.10's v0.8) computes other cache keys than the standalone buildkitd for the same
// Dockerfile, so a cache does not cross between them; TestEngineInlineCache covers the engine.
func TestRegistryCacheAcrossBuildkitds(t *testing.T) {
	rf := newRemoteFixture(t)
	dir := rf.context("FROM BASE\nRUN cat /proc/sys/kernel/random/uuid > /id\n")
	cache := rf.reg.Ref("buildcache:app")
	if _, err := rf.build(build.Options{ContextPath: dir, Output: "oci:" + filepath.Join(t.TempDir(), "image.tar"),
		CacheTo: []string{"type=registry,mode=max,ref=" + cache}}); err != nil {
		t.Fatalf("Build(cache-to registry) on buildkitd = %v", err)
	}
	if _, err := remote.Head(rf.ref(cache), remote.WithTransport(rf.reg.Transport())); err != nil {
		t.Fatalf("remote.Head(%s) = %v, want the exported cache", cache, err)
	}
	// A second buildkitd with a state of its own: only the registry's cache can serve its RUN.
	rf.builder = testenv.Buildkitd(t, rf.reg.Host)
	var w cacheWatch
	res, err := rf.build(build.Options{ContextPath: dir, Output: "oci:" + filepath.Join(t.TempDir(), "again.tar"),
		CacheFrom: []string{cache}, Progress: w.progress})
	if err != nil {
		t.Fatalf("Build(cache-from registry) on a fresh buildkitd = %v", err)
	}
	if res.CacheHits == 0 || !w.runCached {
		t.Errorf("Build(cache-from %s) on a fresh buildkitd = %d cache hits, RUN cached %v; want the RUN from the cache; events:\n%s",
			cache, res.CacheHits, w.runCached, &w)
	}
}

// The engine's BuildKit writes its cache into the image (type=inline, the one cache export Docker 20.10 has);
// pushed to a registry, that image serves a build on an engine whose own build cache is empty.
func TestEngineInlineCache(t *testing.T) {
	rf := newRemoteFixture(t)
	f := newFixture(t)
	ctx := context.Background()
	dir := rf.context("FROM BASE\nRUN cat /proc/sys/kernel/random/uuid > /id\n")
	tag := f.tag("inline-cache")
	f.mustBuild(build.Options{ContextPath: dir, Tags: []string{tag}, CacheTo: []string{"type=inline"}})
	ep, err := registry.ParseEndpoint("http://"+rf.reg.Host, "")
	if err != nil {
		t.Fatal(err)
	}
	remoteTag := rf.reg.Ref("inline:cache")
	dst, err := registry.Normalize(remoteTag, ep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.Push(ctx, f.eng, tag, dst, ep, registry.PushOptions{}, registry.Options{Transport: rf.reg.Transport()}); err != nil {
		t.Fatalf("pushing the image with its inline cache: %v", err)
	}
	// The engine forgets the step: its build cache emptied, the built image gone.
	if _, err := f.eng.API().ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.API().BuildCachePrune(ctx, client.BuildCachePruneOptions{All: true}); err != nil {
		t.Fatalf("emptying the engine's build cache: %v", err)
	}
	// Docker 20.10's BuildKit references the cached layers of an inline cache without fetching them, and its
	// export then fails with "layer does not exist" on an engine that does not hold them (seen on a fresh
	// machine): the cache image is pulled first, as with `docker pull` before `docker build --cache-from`.
	pulled, err := registry.Pull(ctx, f.eng, dst, ep, registry.Options{Transport: rf.reg.Transport()})
	if err != nil {
		t.Fatalf("pulling the cache image: %v", err)
	}
	t.Cleanup(func() {
		_, _ = f.eng.API().ImageRemove(context.Background(), pulled.Reference, client.ImageRemoveOptions{Force: true})
	})
	var w cacheWatch
	res := f.mustBuild(build.Options{ContextPath: dir, Tags: []string{f.tag("inline-again")}, CacheFrom: []string{remoteTag}, Progress: w.progress})
	if res.CacheHits == 0 || !w.runCached {
		t.Errorf("Build(cache-from %s) on the engine with its cache emptied = %d cache hits, RUN cached %v; want the RUN from the image's inline cache; events:\n%s",
			remoteTag, res.CacheHits, w.runCached, &w)
	}
}

// TestEngineLocalCacheRefused records what Docker 20.10's BuildKit answers to a local cache export: it has
// no "local" (nor "registry") cache exporter, and the build fails instead of silently skipping the export.
func TestEngineLocalCacheRefused(t *testing.T) {
	f := newFixture(t)
	dir := f.context(map[string]string{"Dockerfile": "FROM BASE\nRUN true\n"})
	_, err := f.build(build.Options{ContextPath: dir, CacheTo: []string{"type=local,dest=" + t.TempDir()}})
	if err == nil {
		t.Fatal("Build(cache-to type=local) on the engine = nil, want the engine's refusal")
	}
	t.Logf("Build(cache-to type=local) on the engine = %v", err)
}
