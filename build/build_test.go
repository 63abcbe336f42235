package build_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// fixture is one test's engine, image repository and build contexts.
type fixture struct {
	t    *testing.T
	eng  *engine.Client
	repo string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	eng := testenv.Engine(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	f := &fixture{t: t, eng: eng, repo: "myrmex.local/buildtest-" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := eng.API().ImageList(ctx, client.ImageListOptions{
			Filters: client.Filters{}.Add("reference", f.repo),
		})
		if err != nil {
			t.Logf("listing test images: %v", err)
			return
		}
		for _, img := range res.Items {
			_, _ = eng.API().ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	})
	return f
}

// tag returns an image name in the test's repository.
func (f *fixture) tag(tag string) string { return f.repo + ":" + tag }

// context writes a build context: name → content. A Dockerfile's "BASE" is replaced by the test base image.
func (f *fixture) context(files map[string]string) string {
	f.t.Helper()
	dir := f.t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		content = strings.ReplaceAll(content, "FROM BASE", "FROM "+testimages.Busybox)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	return dir
}

func (f *fixture) build(opts build.Options) (*build.Result, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return build.Build(ctx, f.eng, opts)
}

func (f *fixture) mustBuild(opts build.Options) *build.Result {
	f.t.Helper()
	res, err := f.build(opts)
	if err != nil {
		f.t.Fatalf("Build(%s) = %v", opts.ContextPath, err)
	}
	if !strings.HasPrefix(res.ImageID, "sha256:") {
		f.t.Fatalf("Build(%s).ImageID = %q, want sha256:…", opts.ContextPath, res.ImageID)
	}
	return res
}

// check builds a throwaway image FROM image whose RUN steps are the assertions: the build fails when one does.
func (f *fixture) check(image string, commands ...string) {
	f.t.Helper()
	df := "FROM " + image + "\n"
	for _, c := range commands {
		df += "RUN " + c + "\n"
	}
	if _, err := f.build(build.Options{ContextPath: f.context(map[string]string{"Dockerfile": df}), NoCache: true}); err != nil {
		f.t.Fatalf("checking %s: %v", image, err)
	}
}

func TestBuildArgsAndLabels(t *testing.T) {
	f := newFixture(t)
	dir := f.context(map[string]string{"Dockerfile": `FROM BASE
ARG GREETING=unset
RUN test "$GREETING" = hello && echo "$GREETING" > /greeting
`})
	tag := f.tag("args")
	res := f.mustBuild(build.Options{
		ContextPath: dir,
		BuildArgs:   map[string]string{"GREETING": "hello"},
		Labels:      map[string]string{"org.example.team": "ants"},
		Tags:        []string{tag},
	})
	if !slices.Equal(res.Tags, []string{tag}) {
		t.Errorf("Build().Tags = %v, want [%s]", res.Tags, tag)
	}
	if res.Source != tag {
		t.Errorf("Build().Source = %q, want the tag %s in the engine", res.Source, tag)
	}
	ins, err := f.eng.API().ImageInspect(context.Background(), tag)
	if err != nil {
		t.Fatalf("ImageInspect(%q) = %v", tag, err)
	}
	if ins.ID != res.ImageID {
		t.Errorf("ImageInspect(%q).ID = %s, want Build().ImageID %s", tag, ins.ID, res.ImageID)
	}
	if got := ins.Config.Labels["org.example.team"]; got != "ants" {
		t.Errorf("label org.example.team = %q, want %q", got, "ants")
	}
	f.check(tag, `test "$(cat /greeting)" = hello`)
}

func TestBuildTarget(t *testing.T) {
	f := newFixture(t)
	dir := f.context(map[string]string{"Dockerfile": `FROM BASE AS base
RUN echo base > /base

FROM base AS final
RUN echo final > /final
`})
	tag := f.tag("target")
	f.mustBuild(build.Options{ContextPath: dir, Target: "base", Tags: []string{tag}})
	f.check(tag, "test -e /base", "test ! -e /final")
}

func TestBuildCache(t *testing.T) {
	f := newFixture(t)
	dir := f.context(map[string]string{"Dockerfile": `FROM BASE
RUN echo one > /one
RUN echo two > /two
`})
	opts := build.Options{ContextPath: dir, Tags: []string{f.tag("cache")}}
	first := f.mustBuild(opts)
	var events []build.Event
	opts.Progress = func(e build.Event) { events = append(events, e) }
	second := f.mustBuild(opts)
	if second.ImageID != first.ImageID {
		t.Errorf("second Build().ImageID = %s, want %s", second.ImageID, first.ImageID)
	}
	if second.CacheHits == 0 {
		t.Errorf("second Build().CacheHits = 0, want > 0 (Steps %d)", second.Steps)
	}
	runs := 0
	for _, e := range events {
		if e.Kind == build.StepCompleted && strings.Contains(e.Name, "RUN ") {
			runs++
			if !e.Cached {
				t.Errorf("second build: step %q not cached", e.Name)
			}
		}
	}
	if runs != 2 {
		t.Errorf("second build: %d completed RUN steps, want 2", runs)
	}
}

func TestBuildDockerignore(t *testing.T) {
	f := newFixture(t)
	dir := f.context(map[string]string{
		"Dockerfile":    "FROM BASE\nCOPY . /ctx\nRUN test -e /ctx/keep.txt && test ! -e /ctx/secret.txt && test ! -e /ctx/logs/a.log\n",
		".dockerignore": "secret.txt\nlogs\n",
		"keep.txt":      "keep",
		"secret.txt":    "do not send",
		"logs/a.log":    "noise",
	})
	tag := f.tag("ignore")
	f.mustBuild(build.Options{ContextPath: dir, Tags: []string{tag}})
	f.check(tag, "test -e /ctx/keep.txt", "test ! -e /ctx/secret.txt", "test ! -e /ctx/logs")
}

func TestBuildCacheMount(t *testing.T) {
	f := newFixture(t)
	id := strings.TrimPrefix(f.repo, "myrmex.local/")
	// The second Dockerfile differs from the first, so its RUN is not a cache hit: it can only see the stamp
	// through the cache mount.
	first := f.context(map[string]string{"Dockerfile": "FROM BASE\nRUN --mount=type=cache,id=" + id +
		",target=/cache echo stamp > /cache/stamp\n"})
	second := f.context(map[string]string{"Dockerfile": "FROM BASE\nRUN --mount=type=cache,id=" + id +
		",target=/cache test \"$(cat /cache/stamp)\" = stamp && cp /cache/stamp /seen\n"})
	f.mustBuild(build.Options{ContextPath: first})
	tag := f.tag("cachemount")
	f.mustBuild(build.Options{ContextPath: second, Tags: []string{tag}})
	f.check(tag, "test -e /seen", "test ! -e /cache/stamp")
}

func TestBuildSecret(t *testing.T) {
	f := newFixture(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := f.context(map[string]string{"Dockerfile": `FROM BASE
RUN --mount=type=secret,id=token test "$(cat /run/secrets/token)" = s3cret && wc -c < /run/secrets/token > /length
`})
	tag := f.tag("secret")
	f.mustBuild(build.Options{ContextPath: dir, Secrets: map[string]string{"token": secret}, Tags: []string{tag}})
	f.check(tag, `test "$(cat /length)" -eq 6`, "test ! -e /run/secrets/token", "! grep -rq s3cret /length /run /tmp")
}

func TestBuildFailingStep(t *testing.T) {
	f := newFixture(t)
	dir := f.context(map[string]string{"Dockerfile": "FROM BASE\n" +
		"RUN echo fine\n" +
		"\n" +
		"RUN for i in $(seq 1 30); do echo out-$i; done; echo last; exit 3\n" +
		"RUN echo never\n"})
	_, err := f.build(build.Options{ContextPath: dir, Tags: []string{f.tag("fail")}})
	var se *build.StepError
	if !errors.As(err, &se) {
		t.Fatalf("Build() = %v, want a *StepError", err)
	}
	if !strings.HasPrefix(se.Instruction, "RUN for i in") || !strings.HasSuffix(se.Instruction, "exit 3") {
		t.Errorf("StepError.Instruction = %q, want the failing RUN", se.Instruction)
	}
	if se.Line != 4 {
		t.Errorf("StepError.Line = %d, want 4", se.Line)
	}
	if se.ExitCode != 3 {
		t.Errorf("StepError.ExitCode = %d, want 3", se.ExitCode)
	}
	if want := append(seq("out-", 12, 30), "last"); !slices.Equal(se.Output, want) {
		t.Errorf("StepError.Output = %q, want %q", se.Output, want)
	}
}

func seq(prefix string, from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, prefix+strconv.Itoa(i))
	}
	return s
}

func TestBuildProgress(t *testing.T) {
	f := newFixture(t)
	dir := f.context(map[string]string{"Dockerfile": "FROM BASE\nRUN echo hello-progress && echo to-stderr >&2\n"})
	var events []build.Event
	res := f.mustBuild(build.Options{ContextPath: dir, NoCache: true, Progress: func(e build.Event) {
		events = append(events, e)
	}})
	var started, completed, logged, stderr bool
	for _, e := range events {
		if !strings.Contains(e.Name, "RUN echo hello-progress") {
			continue
		}
		switch e.Kind {
		case build.StepStarted:
			started = true
		case build.StepCompleted:
			completed = e.Error == "" && !e.Cached
		case build.StepLog:
			logged = logged || e.Line == "hello-progress" && e.Stream == 1
			stderr = stderr || e.Line == "to-stderr" && e.Stream == 2
		}
	}
	if !started || !completed || !logged || !stderr {
		t.Errorf("RUN step events: started %v, completed uncached %v, logged stdout %v and stderr %v; want all (events %+v)",
			started, completed, logged, stderr, events)
	}
	if res.Steps == 0 {
		t.Errorf("Build().Steps = 0, want > 0")
	}
}

func TestBuildInvalid(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		opts build.Options
	}{
		{"missing context", build.Options{ContextPath: filepath.Join(empty, "nope")}},
		{"missing dockerfile", build.Options{ContextPath: empty}},
		{"bad tag", build.Options{ContextPath: empty, DockerfilePath: "/dev/null", Tags: []string{"Bad Tag"}}},
		{"comma in tag", build.Options{ContextPath: empty, DockerfilePath: "/dev/null", Tags: []string{"a:1,b:2"}}},
		{"missing secret", build.Options{ContextPath: empty, DockerfilePath: "/dev/null", Secrets: map[string]string{"x": "/nope"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A nil engine: bad input must fail before any call.
			_, err := build.Build(context.Background(), nil, tt.opts)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Build(%+v) = %v, want ErrInvalidArgument", tt.opts, err)
			}
		})
	}
}

// An engine that answers the Engine API but has no BuildKit (an old or non-Docker engine): the fault the real
// engine here cannot produce.
func TestBuildUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("API-Version", "1.41")
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			_, _ = w.Write([]byte("OK"))
			return
		}
		http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, engine.Options{Host: "tcp://" + srv.Listener.Addr().String()})
	if err != nil {
		t.Fatalf("engine.New() = %v", err)
	}
	defer eng.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = build.Build(ctx, eng, build.Options{ContextPath: dir})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Build() = %v, want ErrUnavailable", err)
	}
	t.Logf("error: %v", err)
}
