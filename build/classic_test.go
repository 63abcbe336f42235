package build_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// noBuildKit is the real engine behind a proxy that refuses BuildKit's endpoints (/grpc, /session), as an engine
// without BuildKit answers: the one fault here the real engine cannot produce. Everything else, /build among it,
// reaches the engine.
func noBuildKit(t *testing.T, real *engine.Client) *engine.Client {
	t.Helper()
	// The proxy dials the engine where it is: a unix socket or a plain TCP address.
	host := real.Host()
	network, addr, _ := strings.Cut(host, "://")
	if network != "unix" && network != "tcp" {
		if testenv.Required() {
			t.Fatalf("the proxy reaches the engine over unix:// or tcp://, and it is at %s", host)
		}
		t.Skipf("the proxy reaches the engine over unix:// or tcp://, and it is at %s", host)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: "http", Host: "docker"}) },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/grpc") || strings.HasSuffix(r.URL.Path, "/session") {
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	eng, err := engine.New(context.Background(), engine.Options{Host: "tcp://" + srv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func TestBuildFallsBackToTheClassicBuilder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	real := testenv.Engine(t)
	eng := noBuildKit(t, real)
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile": "FROM " + testimages.Busybox + "\nARG GREETING\nCOPY . /ctx/\n" +
			"RUN test -e /ctx/kept.txt && test ! -e /ctx/ignored.txt && echo \"$GREETING\" > /greeting\nLABEL team=ants\n",
		"kept.txt":      "kept\n",
		"ignored.txt":   "ignored\n",
		".dockerignore": "ignored.txt\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tag := "myrmex.local/classic-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + ":1"
	t.Cleanup(func() {
		_, _ = real.API().ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	var started int
	res, err := build.Build(ctx, eng, build.Options{
		ContextPath: dir, Tags: []string{tag}, BuildArgs: map[string]string{"GREETING": "hello"},
		Progress: func(e build.Event) {
			if e.Kind == build.StepStarted {
				started++
			}
		},
	})
	if err != nil {
		t.Fatalf("Build(no BuildKit) = %v, want the classic builder's image", err)
	}
	ins, err := real.API().ImageInspect(ctx, tag)
	if err != nil || ins.ID != res.ImageID || ins.Config.Labels["team"] != "ants" {
		t.Errorf("image %s = %v, %v; want ID %s labelled team=ants", tag, ins.ID, err, res.ImageID)
	}
	if res.Steps != 5 || started != 5 {
		t.Errorf("steps = %d (events %d), want the Dockerfile's 5", res.Steps, started)
	}

	// A failing step names its instruction, line, exit code and output, as on BuildKit.
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+testimages.Busybox+"\nRUN echo going down && exit 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = build.Build(ctx, eng, build.Options{ContextPath: dir, Tags: []string{tag}})
	var se *build.StepError
	if !errors.As(err, &se) || se.Line != 2 || se.ExitCode != 4 || !strings.Contains(strings.Join(se.Output, "\n"), "going down") {
		t.Errorf("Build(failing RUN, classic) error = %v (%+v), want a StepError at line 2, exit 4, with its output", err, se)
	}
}
