//go:build linux

package testimages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// TestEnsureApps builds the optimizer's test apps (or finds them), runs each one and asks it for /, /second and a
// path it does not serve from inside its network namespace, then checks that a second call builds nothing.
func TestEnsureApps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	eng := testenv.Engine(t)
	apps, err := testimages.EnsureApps(ctx, eng, testimages.DebianOptions{Logger: testLogger(t)})
	if errors.Is(err, errdefs.ErrUnavailable) && !testenv.Required() {
		t.Skipf("cannot build the test apps here: %v", err)
	}
	if err != nil {
		t.Fatalf("EnsureApps() error = %v", err)
	}
	var refs []string
	for _, a := range apps {
		refs = append(refs, a.Ref)
	}
	if want := []string{testimages.AppPython, testimages.AppNode, testimages.AppGo}; !slices.Equal(refs, want) {
		t.Fatalf("EnsureApps() made %q, want %q", refs, want)
	}

	run := testenv.NewRun(t, eng)
	for _, app := range apps {
		t.Run(app.Lang, func(t *testing.T) {
			if app.Port != 8000 || !strings.Contains(app.FirstBody, app.Lang) || !strings.Contains(app.SecondBody, app.Lang) ||
				app.FirstBody == app.SecondBody {
				t.Errorf("EnsureApps() returned %+v, want port 8000 and two distinct bodies naming %s", app, app.Lang)
			}
			res, err := eng.API().ImageInspect(ctx, app.Ref)
			if err != nil {
				t.Fatal(err)
			}
			cfg := res.Config
			if _, ok := cfg.ExposedPorts["8000/tcp"]; !ok || cfg.WorkingDir != "/app" ||
				!strings.HasPrefix(cfg.Labels[testimages.ImageLabel], "app-"+app.Lang+"/") {
				t.Errorf("image config: exposed %v, workdir %q, labels %v; want 8000/tcp, /app and %s=app-%s/…",
					cfg.ExposedPorts, cfg.WorkingDir, cfg.Labels, testimages.ImageLabel, app.Lang)
			}
			if app.Lang != "go" {
				// The waste the optimizer must find: apt's lists and the downloaded packages.
				code, out := runOnce(ctx, t, eng, run, app.Lang+"-waste", run.Config(app.Ref, "sh", "-c",
					"ls /var/lib/apt/lists | grep -q _Packages && ls /var/cache/apt/archives/*.deb | wc -l"))
				if code != 0 {
					t.Errorf("apt lists or .debs missing from %s: exit %d: %s", app.Ref, code, out)
				}
			}

			name := run.Name(app.Lang)
			st, err := eng.Create(ctx, name, run.Config(app.Ref), engine.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := eng.Start(ctx, name); err != nil {
				t.Fatal(err)
			}
			get := func(suffix, path string) (int64, string) {
				cfg := run.Config(testimages.Busybox, "wget", "-q", "-O", "-", fmt.Sprintf("http://127.0.0.1:%d%s", app.Port, path))
				cfg.Networks = []string{"container:" + st.ID}
				return runOnce(ctx, t, eng, run, app.Lang+"-"+suffix, cfg)
			}
			// Up when / answers; the server may take a moment to listen.
			var code int64
			var out string
			deadline := time.Now().Add(60 * time.Second)
			for try := 0; ; try++ {
				if code, out = get(fmt.Sprintf("first-%d", try), "/"); code == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(300 * time.Millisecond)
			}
			if code != 0 || out != app.FirstBody {
				logs, _ := eng.Logs(ctx, name, engine.LogOptions{})
				t.Fatalf("GET / = exit %d, %q; want %q\nserver's output:\n%s", code, out, app.FirstBody, logs.Combined)
			}
			if code, out = get("second", "/second"); code != 0 || out != app.SecondBody {
				t.Errorf("GET /second = exit %d, %q; want %q", code, out, app.SecondBody)
			}
			if code, out = get("missing", "/missing"); code == 0 || !strings.Contains(out, "404") {
				t.Errorf("GET /missing = exit %d, %q; want a 404", code, out)
			}
			if _, err := eng.Remove(ctx, name, engine.RemoveOptions{Force: true}); err != nil {
				t.Error(err)
			}
		})
	}

	// With the images in the engine, the second call builds nothing.
	var steps bytes.Buffer
	start := time.Now()
	again, err := testimages.EnsureApps(ctx, eng, testimages.DebianOptions{Logger: slog.New(slog.NewTextHandler(&steps, nil))})
	if err != nil {
		t.Fatalf("EnsureApps() again: %v", err)
	}
	if !slices.Equal(again, apps) {
		t.Errorf("EnsureApps() again = %+v, want %+v", again, apps)
	}
	for _, step := range []string{"debootstrap", "imported", "built"} {
		if strings.Contains(steps.String(), step) {
			t.Errorf("EnsureApps() with the images in the engine ran %q, want them from the cache; its log:\n%s", step, steps.String())
		}
	}
	t.Logf("EnsureApps() from the cache took %v", time.Since(start).Round(time.Millisecond))
}

// runOnce runs a container of cfg to its end and returns its exit status and combined output, removing it.
// A container that runs for more than a minute is killed and fails t.
func runOnce(ctx context.Context, t *testing.T, eng *engine.Client, run *testenv.Run, suffix string, cfg engine.ContainerConfig) (int64, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	name := run.Name(suffix)
	st, err := eng.Create(ctx, name, cfg, engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := eng.API().ContainerRemove(rctx, st.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Error(err)
		}
	}()
	if _, err := eng.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	wait := eng.API().ContainerWait(ctx, st.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case res := <-wait.Result:
		code = res.StatusCode
	case err := <-wait.Error:
		t.Fatalf("waiting for %q: %v", cfg.Command, err)
	}
	logs, err := eng.Logs(ctx, st.ID, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return code, logs.Combined
}
