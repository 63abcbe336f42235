package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// testLabel marks every container these tests create; its value is the container's own name.
const testLabel = "io.codomyrmex.myrmex.clitest"

// result is one in-process run of the myrmex command.
type result struct {
	stdout, stderr string
	code           int
}

// myrmex runs the real cobra root in-process, as the binary would, with an empty stdin.
func myrmex(t *testing.T, args ...string) result {
	t.Helper()
	return myrmexIn(t, strings.NewReader(""), args...)
}

func myrmexIn(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(t.Context(), args, stdin, &out, &errb)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustRun runs myrmex and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := myrmex(t, args...)
	if r.code != 0 {
		t.Fatalf("myrmex %q = exit %d, want 0; stderr:\n%s", args, r.code, r.stderr)
	}
	return r
}

// testEngine connects to the engine at DOCKER_HOST and makes sure the test images exist. Without an engine the
// test skips on a laptop, and fails under CI or MYRMEX_REQUIRE_ENGINE, where a skip would hide a broken setup.
func testEngine(t *testing.T) *engine.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, engine.Options{})
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("MYRMEX_REQUIRE_ENGINE") != "" {
			t.Fatalf("the CLI tests need a container engine: %v", err)
		}
		t.Skipf("no container engine (export DOCKER_HOST, or run `make test`): %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	if err := testimages.Ensure(ctx, eng); err != nil {
		t.Fatalf("seeding test images: %v", err)
	}
	return eng
}

// containerName returns a name unique to this test run and removes the container of that name, if any, when
// the test ends. Nothing else is ever removed.
func containerName(t *testing.T, eng *engine.Client, suffix string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "clitest-" + hex.EncodeToString(b) + "-" + suffix
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := eng.Remove(ctx, name, engine.RemoveOptions{Force: true, Volumes: true})
		if err != nil && !errors.Is(err, containerization.ErrNotFound) {
			t.Errorf("cleanup: removing %s: %v", name, err)
		}
	})
	return name
}

// create runs container create NAME with the test label and the given flags.
func create(t *testing.T, name string, args ...string) result {
	t.Helper()
	return mustRun(t, append([]string{"container", "create", name, "--label", testLabel + "=" + name}, args...)...)
}

// inspected is the part of the engine's inspect document that the tests read.
type inspected struct {
	ID    string
	Name  string
	State struct {
		Status   string
		Running  bool
		ExitCode int
	}
	Config struct {
		Image  string
		Env    []string
		Cmd    []string
		Labels map[string]string
	}
	HostConfig struct {
		Memory        int64
		NanoCpus      int64
		RestartPolicy struct {
			Name              string
			MaximumRetryCount int
		}
		PortBindings map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string
		}
		Mounts []struct {
			Type, Source, Target string
			ReadOnly             bool
		}
	}
}

func inspect(t *testing.T, name string) inspected {
	t.Helper()
	r := mustRun(t, "container", "inspect", name, "-o", "json")
	var ins inspected
	if err := json.Unmarshal([]byte(r.stdout), &ins); err != nil {
		t.Fatalf("inspect %s -o json: %v\n%s", name, err, r.stdout)
	}
	return ins
}

// binding returns the host side of a port binding as "ip:port".
func (ins inspected) binding(port string) string {
	var out []string
	for _, b := range ins.HostConfig.PortBindings[port] {
		out = append(out, b.HostIP+":"+b.HostPort)
	}
	return strings.Join(out, ",")
}

// waitExited waits until the container has stopped by itself.
func waitExited(t *testing.T, eng *engine.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ins, err := eng.Inspect(t.Context(), name)
		if err != nil {
			t.Fatalf("Inspect(%q) = %v", name, err)
		}
		if ins.State != nil && !ins.State.Running && ins.State.Status == "exited" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("container %s did not exit within 15s", name)
}

func TestCreateFromFlags(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	name := containerName(t, eng, "flags")
	site := t.TempDir()

	r := create(t, name, "--image", testimages.Web,
		"--env", "MODE=test", "-e", "EMPTY=",
		"-p", "8080/tcp=127.0.0.1:18080",
		"-p", "127.0.0.1:18081:9090/tcp",
		"-p", "53/udp=1053",
		"-v", site+":/www:ro",
		"--label", "team=ants",
		"--restart", "on-failure:2",
		"--memory", "64m", "--cpus", "0.5", "--memory-reservation", "32m",
		"--", "httpd", "-f", "-p", "8080", "-h", "/www")
	if !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "created") {
		t.Errorf("create %s stdout = %q, want the name and created", name, r.stdout)
	}

	ins := inspect(t, name)
	for _, env := range []string{"MODE=test", "EMPTY="} {
		if !slices.Contains(ins.Config.Env, env) {
			t.Errorf("Env = %q, want it to hold %q", ins.Config.Env, env)
		}
	}
	for port, want := range map[string]string{"8080/tcp": "127.0.0.1:18080", "9090/tcp": "127.0.0.1:18081", "53/udp": ":1053"} {
		if got := ins.binding(port); got != want {
			t.Errorf("PortBindings[%q] = %q, want %q", port, got, want)
		}
	}
	if got := ins.Config.Labels["team"]; got != "ants" {
		t.Errorf("Labels[team] = %q, want ants", got)
	}
	if got := ins.Config.Labels[engine.ManagedLabel]; got != "true" {
		t.Errorf("Labels[%s] = %q, want true", engine.ManagedLabel, got)
	}
	if rp := ins.HostConfig.RestartPolicy; rp.Name != "on-failure" || rp.MaximumRetryCount != 2 {
		t.Errorf("RestartPolicy = %+v, want on-failure with 2 retries", rp)
	}
	if got, want := ins.HostConfig.Memory, int64(64<<20); got != want {
		t.Errorf("Memory = %d, want %d", got, want)
	}
	if got, want := ins.HostConfig.NanoCpus, int64(5e8); got != want {
		t.Errorf("NanoCpus = %d, want %d", got, want)
	}
	if want := []string{"httpd", "-f", "-p", "8080", "-h", "/www"}; !slices.Equal(ins.Config.Cmd, want) {
		t.Errorf("Cmd = %q, want %q", ins.Config.Cmd, want)
	}
	if len(ins.HostConfig.Mounts) != 1 || ins.HostConfig.Mounts[0].Source != site || !ins.HostConfig.Mounts[0].ReadOnly {
		t.Errorf("Mounts = %+v, want %s on /www read-only", ins.HostConfig.Mounts, site)
	}
}

func TestCreateFromFile(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)

	t.Run("yaml file, flags extend it", func(t *testing.T) {
		t.Parallel()
		name := containerName(t, eng, "yaml")
		file := filepath.Join(t.TempDir(), "web.yaml")
		config := fmt.Sprintf(`name: %s
image: %s
environment:
  MODE: file
  KEEP: "yes"
ports:
  8080/tcp: 18082
resources:
  memory_limit: 128m
restart_policy: always
labels:
  team: ants
  %s: %s
`, name, testimages.Web, testLabel, name)
		if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		r := mustRun(t, "container", "create", "-f", file, "--env", "MODE=flag", "--label", "extra=1", "-o", "json")
		var res containerization.ContainerResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("create -o json: %v\n%s", err, r.stdout)
		}
		if res.ContainerName != name || !res.Success || res.Operation != "create" {
			t.Errorf("create -o json = %+v, want create of %s with success", res, name)
		}

		ins := inspect(t, name)
		for _, env := range []string{"MODE=flag", "KEEP=yes"} {
			if !slices.Contains(ins.Config.Env, env) {
				t.Errorf("Env = %q, want it to hold %q", ins.Config.Env, env)
			}
		}
		if got, want := ins.binding("8080/tcp"), ":18082"; got != want {
			t.Errorf("PortBindings[8080/tcp] = %q, want %q", got, want)
		}
		if ins.Config.Labels["team"] != "ants" || ins.Config.Labels["extra"] != "1" {
			t.Errorf("Labels = %v, want team=ants from the file and extra=1 from the flag", ins.Config.Labels)
		}
		if got := ins.HostConfig.RestartPolicy.Name; got != "always" {
			t.Errorf("RestartPolicy.Name = %q, want always", got)
		}
		if got, want := ins.HostConfig.Memory, int64(128<<20); got != want {
			t.Errorf("Memory = %d, want %d", got, want)
		}
	})

	t.Run("json on stdin, name from the command line", func(t *testing.T) {
		t.Parallel()
		name := containerName(t, eng, "stdin")
		config := fmt.Sprintf(`{"image": %q, "command": ["sleep", "60"], "labels": {%q: %q}}`, testimages.Busybox, testLabel, name)
		r := myrmexIn(t, strings.NewReader(config), "container", "create", name, "-f", "-")
		if r.code != 0 {
			t.Fatalf("create -f - = exit %d, want 0; stderr:\n%s", r.code, r.stderr)
		}
		if ins := inspect(t, name); !slices.Equal(ins.Config.Cmd, []string{"sleep", "60"}) {
			t.Errorf("Cmd = %q, want [sleep 60]", ins.Config.Cmd)
		}
	})
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	name := containerName(t, eng, "life")
	create(t, name, "--image", testimages.Busybox, "--", "sleep", "300")

	if r := mustRun(t, "container", "start", name); !strings.Contains(r.stdout, "running") {
		t.Errorf("start %s stdout = %q, want running", name, r.stdout)
	}
	if r := mustRun(t, "container", "start", name); !strings.Contains(r.stdout, "already running") {
		t.Errorf("start %s again stdout = %q, want already running", name, r.stdout)
	}
	if r := mustRun(t, "container", "stop", "--timeout", "1s", name); strings.Contains(r.stdout, "already") {
		t.Errorf("stop %s stdout = %q, want a stop", name, r.stdout)
	}
	if r := mustRun(t, "container", "stop", "-t", "1", name); !strings.Contains(r.stdout, "(already stopped)") {
		t.Errorf("stop %s again stdout = %q, want (already stopped)", name, r.stdout)
	}

	r := mustRun(t, "container", "ls")
	if lines := strings.Split(r.stdout, "\n"); !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "PORTS") {
		t.Errorf("ls header = %q, want NAME … PORTS", lines[0])
	}
	if !strings.Contains(r.stdout, name) {
		t.Errorf("ls stdout = %q, want %s listed", r.stdout, name)
	}
	r = mustRun(t, "container", "ls", "-o", "json")
	var list []engine.Container
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ls -o json: %v\n%s", err, r.stdout)
	}
	if !slices.ContainsFunc(list, func(c engine.Container) bool { return c.Name == name && c.State == "exited" }) {
		t.Errorf("ls -o json = %+v, want %s exited", list, name)
	}

	r = mustRun(t, "container", "restart", "-t", "1", name, "-o", "yaml")
	if !strings.Contains(r.stdout, "operation: restart") || !strings.Contains(r.stdout, "status: running") {
		t.Errorf("restart -o yaml = %q, want operation: restart and status: running", r.stdout)
	}

	if r := myrmex(t, "container", "rm", name); r.code != cli.ExitConflict {
		t.Errorf("rm of a running container = exit %d, want %d; stderr:\n%s", r.code, cli.ExitConflict, r.stderr)
	}
	if r := mustRun(t, "container", "rm", "--force", name); !strings.Contains(r.stdout, "removed") {
		t.Errorf("rm --force %s stdout = %q, want removed", name, r.stdout)
	}
	if r := mustRun(t, "container", "ls"); strings.Contains(r.stdout, name) {
		t.Errorf("ls after rm = %q, want %s gone", r.stdout, name)
	}
}

func TestSeveralNames(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	a, b := containerName(t, eng, "a"), containerName(t, eng, "b")
	missing := containerName(t, eng, "missing")
	for _, n := range []string{a, b} {
		create(t, n, "--image", testimages.Busybox, "--", "sleep", "300")
	}

	r := myrmex(t, "container", "start", a, missing, b, "-o", "json")
	if r.code != cli.ExitNotFound {
		t.Errorf("start %s %s %s = exit %d, want %d", a, missing, b, r.code, cli.ExitNotFound)
	}
	var results []containerization.ContainerResult
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil {
		t.Fatalf("start -o json of three names: %v\n%s", err, r.stdout)
	}
	var got []string
	for _, res := range results {
		got = append(got, fmt.Sprintf("%s %v %s", res.ContainerName, res.Success, res.Status))
	}
	want := []string{a + " true running", missing + " false ", b + " true running"}
	if !slices.Equal(got, want) {
		t.Errorf("start results = %q, want %q", got, want)
	}
	// With -o json stderr is the one JSON error object (the first failure); each failure is in the results.
	var body struct {
		Error containerization.ErrorObject `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stderr), &body); err != nil || body.Error.Subject != missing || body.Error.Code != "not_found" {
		t.Errorf("stderr = %q (%v), want one JSON error object naming %s", r.stderr, err, missing)
	}
	if r := myrmex(t, "container", "start", a, missing, b); !strings.Contains(r.stderr, missing) || strings.Count(r.stderr, "myrmex:") != 1 {
		t.Errorf("without -o json stderr = %q, want one error line naming %s", r.stderr, missing)
	}

	if r := mustRun(t, "container", "rm", "-f", a, b); strings.Count(r.stdout, "removed") != 2 {
		t.Errorf("rm -f of two stdout = %q, want two removed lines", r.stdout)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	name := containerName(t, eng, "logs")
	create(t, name, "--image", testimages.Busybox, "--", "sh", "-c", "echo out; echo err >&2")
	mustRun(t, "container", "start", name)
	waitExited(t, eng, name)

	for _, tc := range []struct {
		flags          []string
		stdout, stderr string
	}{
		{nil, "out\n", "err\n"},
		{[]string{"--stdout"}, "out\n", ""},
		{[]string{"--stderr"}, "", "err\n"},
		{[]string{"--stdout", "--stderr"}, "out\n", "err\n"},
		{[]string{"--tail", "0"}, "", ""},
	} {
		args := append([]string{"container", "logs", name}, tc.flags...)
		r := mustRun(t, args...)
		if r.stdout != tc.stdout || r.stderr != tc.stderr {
			t.Errorf("myrmex %q = stdout %q, stderr %q; want %q, %q", args, r.stdout, r.stderr, tc.stdout, tc.stderr)
		}
	}

	r := mustRun(t, "container", "logs", name, "-o", "json")
	var res containerization.ContainerResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("logs -o json: %v\n%s", err, r.stdout)
	}
	if res.Stdout != "out\n" || res.Stderr != "err\n" || !strings.Contains(res.Logs, "out\n") || !strings.Contains(res.Logs, "err\n") {
		t.Errorf("logs -o json = stdout %q, stderr %q, logs %q; want out, err and both", res.Stdout, res.Stderr, res.Logs)
	}
	if r := myrmex(t, "container", "logs", name, "-f", "-o", "json"); r.code != cli.ExitUsage {
		t.Errorf("logs -f -o json = exit %d, want %d", r.code, cli.ExitUsage)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	eng := testEngine(t)
	name := containerName(t, eng, "stats")
	create(t, name, "--image", testimages.Busybox, "--memory", "64m", "--", "sleep", "300")
	mustRun(t, "container", "start", name)

	r := mustRun(t, "container", "stats", name, "-o", "json")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("stats -o json: %v\n%s", err, r.stdout)
	}
	if len(raw) != 1 {
		t.Fatalf("stats %s -o json = %d entries, want 1", name, len(raw))
	}
	// The specification's field names are the contract.
	for _, field := range []string{"container_name", "timestamp", "cpu_usage_percent", "memory_usage_mb",
		"memory_limit_mb", "network_rx_mb", "network_tx_mb", "disk_read_mb", "disk_write_mb", "uptime_seconds",
		"restart_count", "health_status", "performance_score"} {
		if _, ok := raw[0][field]; !ok {
			t.Errorf("stats -o json has no field %q: %v", field, raw[0])
		}
	}
	if got := raw[0]["container_name"]; got != name {
		t.Errorf("container_name = %v, want %s", got, name)
	}
	if got := raw[0]["memory_limit_mb"]; got != 64.0 {
		t.Errorf("memory_limit_mb = %v, want 64", got)
	}

	// Without names: every running container of Myrmex's, ours among them, even while other tests start and
	// stop containers (one that stops while it is sampled is left out, not an error).
	if r = myrmex(t, "container", "stats", "-o", "json"); r.code != 0 {
		t.Errorf("stats -o json = exit %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	var all []containerization.ContainerMetrics
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		t.Fatalf("stats -o json: %v\n%s", err, r.stdout)
	}
	if !slices.ContainsFunc(all, func(m containerization.ContainerMetrics) bool { return m.ContainerName == name }) {
		t.Errorf("stats -o json lists %d containers without %s", len(all), name)
	}

	// The engine's readings give the same container's figures (engine/metrics_cgroups_test.go compares the two
	// sources); an unknown source is refused before anything is asked.
	r = mustRun(t, "container", "stats", name, "--via", "engine", "-o", "json")
	var one []containerization.ContainerMetrics
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || len(one) != 1 || one[0].ContainerName != name || one[0].MemoryLimitMB != 64 {
		t.Errorf("stats --via engine -o json = %v (%v), want %s's figures", one, err, name)
	}
	if r = myrmex(t, "container", "stats", name, "--via", "proc"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--via") {
		t.Errorf("stats --via proc = exit %d (%s), want %d naming --via", r.code, r.stderr, cli.ExitUsage)
	}

	r = mustRun(t, "container", "stats", name)
	if header := strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0]); len(header) == 0 || header[0] != "NAME" || header[len(header)-1] != "SCORE" {
		t.Errorf("stats header = %q, want NAME … SCORE", header)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	offline := []struct {
		name string
		args []string
		want int
	}{
		{"unknown flag", []string{"container", "ls", "--bogus"}, cli.ExitUsage},
		{"unknown command", []string{"frobnicate"}, cli.ExitUsage},
		{"unknown subcommand", []string{"container", "frobnicate"}, cli.ExitUsage},
		{"missing name", []string{"container", "start"}, cli.ExitUsage},
		{"bad output", []string{"-o", "xml", "container", "ls"}, cli.ExitUsage},
		{"bad memory", []string{"container", "create", "clitest-bad", "--image", testimages.Busybox, "--memory", "lots"}, cli.ExitUsage},
		{"bad port", []string{"container", "create", "clitest-bad", "--image", testimages.Busybox, "-p", "http=80"}, cli.ExitUsage},
		{"bad volume", []string{"container", "create", "clitest-bad", "--image", testimages.Busybox, "-v", "/data"}, cli.ExitUsage},
		{"bad timeout", []string{"container", "stop", "x", "--timeout", "soon"}, cli.ExitUsage},
		{"no engine", []string{"--host", "unix:///nonexistent.sock", "container", "ls"}, cli.ExitUnavailable},
		{"no engine, several names", []string{"--host", "unix:///nonexistent.sock", "container", "stop", "a", "b"}, cli.ExitUnavailable},
	}
	for _, tc := range offline {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := myrmex(t, tc.args...)
			if r.code != tc.want {
				t.Errorf("myrmex %q = exit %d, want %d; stderr:\n%s", tc.args, r.code, tc.want, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "myrmex: ") {
				t.Errorf("myrmex %q stderr = %q, want it to start with \"myrmex: \"", tc.args, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("myrmex %q stdout = %q, want nothing", tc.args, r.stdout)
			}
		})
	}

	t.Run("engine", func(t *testing.T) {
		t.Parallel()
		eng := testEngine(t)
		missing := containerName(t, eng, "missing")
		for _, args := range [][]string{
			{"container", "inspect", missing},
			{"container", "start", missing},
			{"container", "rm", missing},
			{"container", "logs", missing},
			{"container", "stats", missing},
		} {
			if r := myrmex(t, args...); r.code != cli.ExitNotFound {
				t.Errorf("myrmex %q = exit %d, want %d; stderr:\n%s", args, r.code, cli.ExitNotFound, r.stderr)
			}
		}

		twice := containerName(t, eng, "twice")
		create(t, twice, "--image", testimages.Busybox)
		args := []string{"container", "create", twice, "--image", testimages.Busybox}
		if r := myrmex(t, args...); r.code != cli.ExitConflict {
			t.Errorf("myrmex %q = exit %d, want %d; stderr:\n%s", args, r.code, cli.ExitConflict, r.stderr)
		}
	})
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	wrap := func(sentinel error) error {
		return &containerization.ContainerManagementError{Op: "start", Container: "web", Err: fmt.Errorf("starting: %w", sentinel)}
	}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, cli.ExitOK},
		{errors.New("boom"), cli.ExitError},
		{wrap(containerization.ErrInvalidArgument), cli.ExitUsage},
		{wrap(containerization.ErrNotFound), cli.ExitNotFound},
		{wrap(containerization.ErrAlreadyExists), cli.ExitConflict},
		{wrap(containerization.ErrConflict), cli.ExitConflict},
		{wrap(containerization.ErrUnavailable), cli.ExitUnavailable},
		{wrap(containerization.ErrUnauthorized), cli.ExitUnauthorized},
		{wrap(containerization.ErrPolicyViolation), cli.ExitPolicy},
		{wrap(containerization.ErrNotImplemented), cli.ExitNotImplemented},
		{wrap(context.Canceled), cli.ExitInterrupted},
	} {
		if got := cli.ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errb bytes.Buffer
	if code := cli.Main(ctx, []string{"container", "ls"}, strings.NewReader(""), &out, &errb); code != cli.ExitInterrupted {
		t.Errorf("Main(cancelled, container ls) = %d, want %d; stderr:\n%s", code, cli.ExitInterrupted, errb.String())
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	type version struct {
		Version   string          `json:"version"`
		GoVersion string          `json:"go_version"`
		Engine    *map[string]any `json:"engine"`
	}

	r := mustRun(t, "--host", "unix:///nonexistent.sock", "version", "-o", "json")
	var v version
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, r.stdout)
	}
	if v.Version == "" || v.GoVersion == "" || v.Engine != nil {
		t.Errorf("version without an engine = %+v, want a version, a Go version and no engine", v)
	}
	if !strings.Contains(r.stderr, "nonexistent.sock") {
		t.Errorf("version without an engine stderr = %q, want the address tried", r.stderr)
	}

	testEngine(t)
	r = mustRun(t, "version", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, r.stdout)
	}
	if v.Engine == nil || (*v.Engine)["api_version"] == "" {
		t.Errorf("version with an engine = %s, want the engine's version and API", r.stdout)
	}
}

// With -o json a failure is also a JSON object on stderr, for callers outside Go; without it, the usual line.
func TestJSONError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args            []string
		exit            int
		class, code, op string
		subject         string
	}{
		{[]string{"registry", "pull", "127.0.0.1:1/none:1", "-o", "json"}, cli.ExitUnavailable, "RegistryError", "unavailable", "pull", "127.0.0.1:1/none:1"},
		{[]string{"-o", "json", "--host", "unix:///nonexistent.sock", "container", "start", "web"}, cli.ExitUnavailable, "ContainerManagementError", "unavailable", "start", "web"},
		{[]string{"-o", "json", "--host", "unix:///nonexistent.sock", "container", "stop", "a", "b"}, cli.ExitUnavailable, "ContainerManagementError", "unavailable", "stop", "a"},
		{[]string{"-o", "json", "--host", "unix:///nonexistent.sock", "container", "stats"}, cli.ExitUnavailable, "ContainerManagementError", "unavailable", "stats", ""},
		{[]string{"-o", "json", "--host", "unix:///nonexistent.sock", "container", "logs", "web"}, cli.ExitUnavailable, "ContainerManagementError", "unavailable", "logs", "web"},
		{[]string{"-o", "json", "container", "stop", "x", "--timeout", "soon"}, cli.ExitUsage, "Error", "invalid_argument", "", ""},
	} {
		r := myrmex(t, tc.args...)
		if r.code != tc.exit {
			t.Errorf("myrmex %q = exit %d, want %d; stderr:\n%s", tc.args, r.code, tc.exit, r.stderr)
		}
		var body struct {
			Error containerization.ErrorObject `json:"error"`
		}
		if err := json.Unmarshal([]byte(r.stderr), &body); err != nil {
			t.Errorf("myrmex %q stderr is not one JSON object: %v\n%s", tc.args, err, r.stderr)
			continue
		}
		e := body.Error
		if e.Class != tc.class || e.Code != tc.code || e.Op != tc.op || e.Subject != tc.subject || e.Message == "" {
			t.Errorf("myrmex %q error = %+v, want class %s, code %s, op %q, subject %q", tc.args, e, tc.class, tc.code, tc.op, tc.subject)
		}
	}
	if r := myrmex(t, "registry", "pull", "127.0.0.1:1/none:1"); !strings.HasPrefix(r.stderr, "myrmex: ") {
		t.Errorf("without -o json stderr = %q, want the myrmex: line", r.stderr)
	}
}
