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

// TestEnsureDebian builds the scanner's Debian image (or finds it), checks that its manifest says what the
// engine and the image's own dpkg say, and that a second call returns the same image from the cache.
func TestEnsureDebian(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	eng := testenv.Engine(t)
	img, err := testimages.EnsureDebian(ctx, eng, testimages.DebianOptions{Logger: testLogger(t)})
	if errors.Is(err, errdefs.ErrUnavailable) && !testenv.Required() {
		t.Skipf("cannot build the Debian test image here: %v", err)
	}
	if err != nil {
		t.Fatalf("EnsureDebian() error = %v", err)
	}

	res, err := eng.API().ImageInspect(ctx, testimages.DebianScan)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != img.ID {
		t.Errorf("EnsureDebian().ID = %s, want the engine's %s", img.ID, res.ID)
	}
	if got := len(res.RootFS.Layers); got != 4 || len(img.Layers) != 4 {
		t.Fatalf("image has %d layers and the manifest %d, want 4", got, len(img.Layers))
	}
	for i, l := range img.Layers {
		if res.RootFS.Layers[i] != l.DiffID {
			t.Errorf("layer %d diff ID = %s, manifest says %s", i, res.RootFS.Layers[i], l.DiffID)
		}
	}
	if got, want := res.Config.Labels[testimages.ImageLabel], "debian-scan/"+img.Key; got != want {
		t.Errorf("label %s = %q, want %q", testimages.ImageLabel, got, want)
	}
	if res.Config.User != "" || res.Config.Healthcheck != nil {
		t.Errorf("config user %q, healthcheck %v: want root and none, for the compliance checks to find", res.Config.User, res.Config.Healthcheck)
	}
	hist, err := eng.API().ImageHistory(ctx, testimages.DebianScan)
	if err != nil {
		t.Fatal(err)
	}
	var history []string
	for _, h := range hist.Items {
		history = append(history, h.CreatedBy)
	}
	for _, want := range []string{"debootstrap --variant=minbase bookworm", "npm install", "go build -trimpath", "requests-2.25.0.dist-info"} {
		if !slices.ContainsFunc(history, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("image history %q has no step with %q", history, want)
		}
	}

	if img.Debian.VersionID != "12" || img.Debian.Codename != "bookworm" || !strings.HasPrefix(img.Debian.PointRelease, "12.") {
		t.Errorf("EnsureDebian().Debian = %+v, want bookworm 12.x", img.Debian)
	}
	if n := len(img.Dpkg); n < 80 || n > 120 {
		t.Errorf("EnsureDebian() lists %d dpkg packages, want about 90", n)
	}
	if libc, ok := img.DpkgPackage("libc6"); !ok || libc.SourceName != "glibc" || !strings.HasPrefix(libc.Version, "2.36-") {
		t.Errorf(`DpkgPackage("libc6") = %+v, %v, want source glibc 2.36-*`, libc, ok)
	}
	npm := map[string]string{}
	for _, p := range img.Npm {
		npm[p.Name] = p.Version
	}
	if npm["lodash"] != "4.17.20" || npm["minimist"] != "1.2.5" {
		t.Errorf("EnsureDebian().Npm = %+v, want lodash 4.17.20 and minimist 1.2.5", img.Npm)
	}
	if !slices.Contains(img.Go.Modules, testimages.GoModule{Path: "golang.org/x/text", Version: "v0.3.5",
		Sum: "h1:i6eZZ+zk0SOf0xgBpEpPD18qWcJda6q1sxt3S0kzyUQ="}) || !strings.HasPrefix(img.Go.GoVersion, "go1.") {
		t.Errorf("EnsureDebian().Go = %+v, want golang.org/x/text v0.3.5", img.Go)
	}
	if len(img.Python) != 1 || img.Python[0].Name != "requests" || img.Python[0].Version != "2.25.0" {
		t.Errorf("EnsureDebian().Python = %+v, want requests 2.25.0", img.Python)
	}

	run := testenv.NewRun(t, eng)
	t.Run("os-release", func(t *testing.T) {
		out := runIn(ctx, t, eng, run, "os-release", "cat", "/etc/os-release")
		if !strings.Contains(out, `VERSION_ID="12"`) || !strings.Contains(out, "VERSION_CODENAME=bookworm") {
			t.Errorf("cat /etc/os-release = %q, want Debian 12", out)
		}
	})
	t.Run("dpkg agrees", func(t *testing.T) {
		out := runIn(ctx, t, eng, run, "dpkg", "dpkg-query", "-W",
			"-f=${db:Status-Status} ${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}\n")
		var want []string
		for _, p := range img.Dpkg {
			want = append(want, fmt.Sprintf("installed %s %s %s %s %s", p.Name, p.Version, p.Architecture, p.SourceName, p.SourceVersion))
		}
		got := strings.Split(strings.TrimSpace(out), "\n")
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("dpkg-query in the image:\n%s\nwant the manifest's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("go binary runs", func(t *testing.T) {
		if out := runIn(ctx, t, eng, run, "app", "/app/bin/app", "de-CH, de;q=0.9"); !strings.HasPrefix(out, "de") {
			t.Errorf("/app/bin/app = %q, want German", out)
		}
	})
	t.Run("npm packages are there", func(t *testing.T) {
		out := runIn(ctx, t, eng, run, "npm", "grep", "-h", `"version"`, "/app/node_modules/lodash/package.json", "/app/node_modules/minimist/package.json")
		if !strings.Contains(out, `"4.17.20"`) || !strings.Contains(out, `"1.2.5"`) {
			t.Errorf("versions in /app/node_modules = %q, want 4.17.20 and 1.2.5", out)
		}
	})

	// With the image in the engine, the second call builds nothing: none of the build's steps is logged.
	var steps bytes.Buffer
	again, err := testimages.EnsureDebian(ctx, eng, testimages.DebianOptions{Logger: slog.New(slog.NewTextHandler(&steps, nil))})
	if err != nil {
		t.Fatalf("EnsureDebian() again: %v", err)
	}
	if again.ID != img.ID || again.Digest != img.Digest || len(again.Dpkg) != len(img.Dpkg) {
		t.Errorf("EnsureDebian() again = %s %s, want the same image %s %s", again.ID, again.Digest, img.ID, img.Digest)
	}
	for _, step := range []string{"debootstrap", "archived the root filesystem", "npm install", "go build", "loaded the image"} {
		if strings.Contains(steps.String(), step) {
			t.Errorf("EnsureDebian() with the image in the engine ran %q, want it from the cache; its log:\n%s", step, steps.String())
		}
	}
}

// testLogger shows EnsureDebian's steps and their durations in the test's output.
func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// runIn runs command in a container of the Debian image and returns its output, failing t when it fails.
func runIn(ctx context.Context, t *testing.T, eng *engine.Client, run *testenv.Run, suffix string, command ...string) string {
	t.Helper()
	name := run.Name(suffix)
	if _, err := eng.Create(ctx, name, run.Config(testimages.DebianScan, command...), engine.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	wait := eng.API().ContainerWait(ctx, name, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case res := <-wait.Result:
		code = res.StatusCode
	case err := <-wait.Error:
		t.Fatalf("waiting for %q: %v", command, err)
	}
	logs, err := eng.Logs(ctx, name, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("%q exited with %d: %q", command, code, logs.Combined)
	}
	if _, err := eng.Remove(ctx, name, engine.RemoveOptions{}); err != nil {
		t.Error(err)
	}
	return logs.Stdout
}
