package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// removeNetwork removes a network the test made once the test's containers are gone, and reports a failure.
func removeNetwork(t *testing.T, run *testenv.Run, eng *engine.Client, name string) {
	run.AfterSweep(func() {
		_, err := eng.API().NetworkRemove(context.Background(), name, client.NetworkRemoveOptions{})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("removing network %s: %v", name, err)
		}
	})
}

func TestNewUnavailable(t *testing.T) {
	_, err := engine.New(context.Background(), engine.Options{Host: "unix:///nonexistent/docker.sock"})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("New(nonexistent) error = %v, want ErrUnavailable", err)
	}
	for _, want := range []string{"unix:///nonexistent/docker.sock", "DOCKER_HOST"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(nonexistent) error = %q, want it to name %q", err, want)
		}
	}
}

// TestCreateHonoursEveryField creates a container from a ContainerConfig that uses every field, and checks each one
// in the engine's own view of the container, then runs it and reaches it through the published port.
func TestCreateHonoursEveryField(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)

	existing := run.Name("net-a")
	if _, err := eng.API().NetworkCreate(ctx, existing, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	removeNetwork(t, run, eng, existing)
	created := run.Name("net-b")
	removeNetwork(t, run, eng, created)
	volume := run.Name("vol")
	run.AfterSweep(func() {
		if _, err := eng.API().VolumeRemove(ctx, volume, client.VolumeRemoveOptions{}); err != nil {
			t.Errorf("removing volume %s: %v", volume, err)
		}
	})
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "conf.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	web, udp, lo := freePort(t), freePort(t), freePort(t)
	name := run.Name("web")
	cfg := engine.ContainerConfig{
		Image:       testimages.Web,
		Name:        name,
		Command:     []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
		Environment: map[string]string{"MODE": "test", "EMPTY": ""},
		Ports: engine.PortBindings{
			"8080/tcp":  "127.0.0.1:" + strconv.Itoa(web),
			"5353/udp":  "127.0.0.1:" + strconv.Itoa(udp),
			"9000-9001": fmt.Sprintf("127.0.0.1:%d-%d", lo, lo+1),
		},
		Volumes: map[string]engine.VolumeMount{
			volume:  {Bind: "/data"},
			hostDir: {Bind: "/conf", Mode: "ro"},
		},
		Networks:      []string{existing, created},
		Resources:     engine.Resources{CPULimit: "0.5", MemoryLimit: "256m", CPUReservation: "0.25", MemoryReservation: "128m"},
		RestartPolicy: "on-failure:4",
		Labels:        map[string]string{"team": "ants", testenv.Label: run.ID},
	}
	st, err := eng.Create(ctx, name, cfg, engine.CreateOptions{CreateNetworks: true})
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	if st.ID == "" || st.Status != "created" || !st.Changed {
		t.Errorf("Create() = %+v, want an ID, status created, changed", st)
	}
	ins, err := eng.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.Image != testimages.Web || ins.Name != "/"+name {
		t.Errorf("image, name = %q, %q; want %q, %q", ins.Config.Image, ins.Name, testimages.Web, "/"+name)
	}
	if got := strings.Join(ins.Config.Cmd, " "); got != "httpd -f -p 8080 -h /www" {
		t.Errorf("Cmd = %q, want the configured command", got)
	}
	env := strings.Join(ins.Config.Env, "\n")
	for _, want := range []string{"MODE=test", "EMPTY="} {
		if !strings.Contains(env, want) {
			t.Errorf("Env = %v, want %q", ins.Config.Env, want)
		}
	}
	wantPorts := map[string]string{
		"8080/tcp": strconv.Itoa(web), "5353/udp": strconv.Itoa(udp),
		"9000/tcp": strconv.Itoa(lo), "9001/tcp": strconv.Itoa(lo + 1),
	}
	for p, hostPort := range wantPorts {
		b := ins.HostConfig.PortBindings[network.MustParsePort(p)]
		if len(b) != 1 || b[0].HostPort != hostPort || b[0].HostIP.String() != "127.0.0.1" {
			t.Errorf("PortBindings[%s] = %v, want 127.0.0.1:%s", p, b, hostPort)
		}
	}
	mounts := map[string]container.MountPoint{}
	for _, m := range ins.Mounts {
		mounts[m.Destination] = m
	}
	if m := mounts["/data"]; m.Type != mount.TypeVolume || m.Name != volume || !m.RW {
		t.Errorf("mount /data = %+v, want read-write volume %s", m, volume)
	}
	if m := mounts["/conf"]; m.Type != mount.TypeBind || m.Source != hostDir || m.RW {
		t.Errorf("mount /conf = %+v, want read-only bind of %s", m, hostDir)
	}
	vol, err := eng.API().VolumeInspect(ctx, volume, client.VolumeInspectOptions{})
	if err != nil || vol.Volume.Labels[engine.ManagedLabel] != "true" {
		t.Errorf("volume %s labels = %v, %v; want %s=true", volume, vol.Volume.Labels, err, engine.ManagedLabel)
	}
	for _, n := range []string{existing, created} {
		if _, ok := ins.NetworkSettings.Networks[n]; !ok {
			t.Errorf("Networks = %v, want %s joined", keys(ins.NetworkSettings.Networks), n)
		}
	}
	netb, err := eng.API().NetworkInspect(ctx, created, client.NetworkInspectOptions{})
	if err != nil || netb.Network.Labels[engine.ManagedLabel] != "true" {
		t.Errorf("created network labels = %v, %v; want %s=true", netb.Network.Labels, err, engine.ManagedLabel)
	}
	r := ins.HostConfig.Resources
	if r.NanoCPUs != 5e8 || r.Memory != 256<<20 || r.MemoryReservation != 128<<20 || r.CPUShares != 256 {
		t.Errorf("Resources = NanoCPUs %d, Memory %d, MemoryReservation %d, CPUShares %d; want 5e8, 256MiB, 128MiB, 256",
			r.NanoCPUs, r.Memory, r.MemoryReservation, r.CPUShares)
	}
	if rp := ins.HostConfig.RestartPolicy; rp.Name != container.RestartPolicyOnFailure || rp.MaximumRetryCount != 4 {
		t.Errorf("RestartPolicy = %+v, want on-failure:4", rp)
	}
	if ins.Config.Labels["team"] != "ants" || ins.Config.Labels[engine.ManagedLabel] != "true" {
		t.Errorf("Labels = %v, want team=ants and %s=true", ins.Config.Labels, engine.ManagedLabel)
	}

	// And it works: the published port serves the web root, and the read-only bind cannot be written.
	if _, err := eng.Start(ctx, name); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	// Myrmex's own shape of the same container, once it runs.
	d, err := eng.Details(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != name || d.ID != st.ID || d.Image != testimages.Web || !d.State.Running || d.State.Status != "running" ||
		d.State.StartedAt.IsZero() || !d.State.FinishedAt.IsZero() || strings.Join(d.Cmd, " ") != "httpd -f -p 8080 -h /www" ||
		d.MemoryLimitBytes != 256<<20 || d.MemoryReservationBytes != 128<<20 || d.NanoCPUs != 5e8 || d.CPUShares != 256 ||
		d.RestartPolicy != "on-failure" || d.Labels["team"] != "ants" || d.Privileged {
		t.Errorf("Details = %+v", d)
	}
	for _, want := range []string{fmt.Sprintf("127.0.0.1:%d->8080/tcp", web), fmt.Sprintf("127.0.0.1:%d->5353/udp", udp), fmt.Sprintf("127.0.0.1:%d->9001/tcp", lo+1)} {
		if !slices.Contains(d.Ports, want) {
			t.Errorf("Details.Ports = %v, want %s", d.Ports, want)
		}
	}
	dm := map[string]engine.Mount{}
	for _, m := range d.Mounts {
		dm[m.Destination] = m
	}
	if dm["/conf"].Type != "bind" || !dm["/conf"].ReadOnly || dm["/data"].Type != "volume" || dm["/data"].ReadOnly || dm["/data"].Name != volume {
		t.Errorf("Details.Mounts = %+v", d.Mounts)
	}
	for _, n := range []string{existing, created} {
		if ep, ok := d.Networks[n]; !ok || ep.IPAddress == "" {
			t.Errorf("Details.Networks = %+v, want an address on %s", d.Networks, n)
		}
	}
	var body string
	ok := testenv.Eventually(10*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", web))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if !ok || !strings.Contains(body, "Hello from Myrmex") {
		t.Errorf("GET 127.0.0.1:%d = %q, want the web root", web, body)
	}
	out := execIn(t, eng, name, "sh", "-c", "cat /conf/conf.txt; touch /conf/x 2>/dev/null && echo writable || echo readonly; echo $MODE")
	if want := "from the host\nreadonly\ntest\n"; out != want {
		t.Errorf("exec in container = %q, want %q", out, want)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// execIn runs a command in a running container and returns its combined output.
func execIn(t *testing.T, eng *engine.Client, name string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	ex, err := eng.API().ExecCreate(ctx, name, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("ExecCreate(%v) = %v", cmd, err)
	}
	att, err := eng.API().ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("ExecAttach = %v", err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		t.Fatalf("reading exec output: %v", err)
	}
	return out.String()
}

func TestCreateMissingNetworkLeavesNothing(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	name := run.Name("c")
	cfg := run.Config(testimages.Busybox, "sleep", "60")
	cfg.Networks = []string{run.Name("no-such-net")}
	_, err := eng.Create(ctx, name, cfg, engine.CreateOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), cfg.Networks[0]) {
		t.Fatalf("Create(missing network) error = %v, want ErrNotFound naming the network", err)
	}
	if _, err := eng.Inspect(ctx, name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Inspect after failed create = %v, want ErrNotFound: nothing may be left behind", err)
	}
}

// TestCreateSecondNetworkFailureRemovesContainer fails the join of the second network and checks that the
// half-made container is gone again. Docker 20.10 accepts any join of a container that has not started (even of a
// network deleted a moment before), so the fault is a transport failure injected into the join request: the one
// fake in these tests, for a fault the real engine cannot produce on demand.
func TestCreateSecondNetworkFailureRemovesContainer(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	first, second := run.Name("n1"), run.Name("n2")
	for _, n := range []string{first, second} {
		if _, err := eng.API().NetworkCreate(ctx, n, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
			t.Fatal(err)
		}
		removeNetwork(t, run, eng, n)
	}
	injected := errors.New("injected fault: connection reset by peer")
	var joins atomic.Int32
	faulty, err := engine.New(ctx, engine.Options{RequestHook: func(req *http.Request) error {
		if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/networks/"+second+"/connect") {
			joins.Add(1)
			return injected
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer faulty.Close()
	name := run.Name("c")
	cfg := run.Config(testimages.Busybox, "sleep", "60")
	cfg.Networks = []string{first, second}
	_, err = faulty.Create(ctx, name, cfg, engine.CreateOptions{})
	if joins.Load() != 1 {
		t.Fatalf("join requests for %s = %d, want 1", second, joins.Load())
	}
	if !errors.Is(err, injected) || !strings.Contains(err.Error(), second) {
		t.Errorf("Create(join fails) error = %v, want the injected fault naming %s", err, second)
	}
	if ids, _ := run.Containers(); len(ids) != 0 {
		t.Errorf("containers left after the failed create = %d, want 0", len(ids))
	}
	cfg.Networks = []string{first, "host"}
	if _, err := eng.Create(ctx, name, cfg, engine.CreateOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Create(bridge + host) error = %v, want ErrInvalidArgument", err)
	}
}

func TestLifecycleIsSafeToRepeat(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	name := run.Name("c")
	cfg := run.Config(testimages.Busybox, "sleep", "3600")
	zero := time.Duration(0)
	stop := engine.StopOptions{Timeout: &zero}

	st, err := eng.Create(ctx, name, cfg, engine.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Create(ctx, name, cfg, engine.CreateOptions{}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("Create(twice) error = %v, want ErrAlreadyExists", err)
	}
	steps := []struct {
		op      string
		do      func() (engine.State, error)
		status  string
		changed bool
		wantErr error
	}{
		{"start", func() (engine.State, error) { return eng.Start(ctx, name) }, "running", true, nil},
		{"start again", func() (engine.State, error) { return eng.Start(ctx, name) }, "running", false, nil},
		{"remove running", func() (engine.State, error) { return eng.Remove(ctx, name, engine.RemoveOptions{}) }, "", false, errdefs.ErrConflict},
		{"restart", func() (engine.State, error) { return eng.Restart(ctx, name, stop) }, "running", true, nil},
		{"stop", func() (engine.State, error) { return eng.Stop(ctx, name, stop) }, "exited", true, nil},
		{"stop again", func() (engine.State, error) { return eng.Stop(ctx, name, stop) }, "exited", false, nil},
		{"remove", func() (engine.State, error) { return eng.Remove(ctx, name, engine.RemoveOptions{}) }, "removed", true, nil},
		{"remove again", func() (engine.State, error) { return eng.Remove(ctx, name, engine.RemoveOptions{}) }, "", false, errdefs.ErrNotFound},
		{"start removed", func() (engine.State, error) { return eng.Start(ctx, name) }, "", false, errdefs.ErrNotFound},
		{"stop removed", func() (engine.State, error) { return eng.Stop(ctx, name, stop) }, "", false, errdefs.ErrNotFound},
	}
	for _, s := range steps {
		got, err := s.do()
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Errorf("%s: error = %v, want %v", s.op, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		if got.Status != s.status || got.Changed != s.changed || got.ID != st.ID {
			t.Errorf("%s = %+v, want status %q changed %v id %s", s.op, got, s.status, s.changed, st.ID)
		}
	}
}

func TestRemoveForceAndList(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	name := run.Name("c")
	if _, err := eng.Create(ctx, name, run.Config(testimages.Busybox, "sleep", "3600"), engine.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	// A container that is not ours is listed only when asked for.
	foreign := run.Name("foreign")
	if _, err := eng.API().ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: foreign, Config: &container.Config{Image: testimages.Busybox, Labels: run.Labels()},
	}); err != nil {
		t.Fatal(err)
	}
	find := func(list []engine.Container, n string) *engine.Container {
		for i := range list {
			if list[i].Name == n {
				return &list[i]
			}
		}
		return nil
	}
	ours, err := eng.List(ctx, engine.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := find(ours, name); c == nil || c.State != "running" || !c.Managed {
		t.Errorf("List() entry for %s = %+v, want running and managed", name, c)
	}
	if c := find(ours, foreign); c != nil {
		t.Errorf("List() includes the foreign container %s", foreign)
	}
	all, err := eng.List(ctx, engine.ListOptions{Foreign: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := find(all, foreign); c == nil || c.Managed {
		t.Errorf("List(Foreign) entry for %s = %+v, want present and not managed", foreign, c)
	}
	st, err := eng.Remove(ctx, name, engine.RemoveOptions{Force: true})
	if err != nil || st.Status != "removed" {
		t.Errorf("Remove(force) = %+v, %v; want removed", st, err)
	}
}

// startContainer creates and starts a container, failing the test if either step fails.
func startContainer(t *testing.T, eng *engine.Client, name string, cfg engine.ContainerConfig) {
	t.Helper()
	ctx := context.Background()
	if _, err := eng.Create(ctx, name, cfg, engine.CreateOptions{}); err != nil {
		t.Fatalf("Create(%q) = %v", name, err)
	}
	if _, err := eng.Start(ctx, name); err != nil {
		t.Fatalf("Start(%q) = %v", name, err)
	}
}

func waitExit(t *testing.T, eng *engine.Client, name string) {
	t.Helper()
	res := eng.API().ContainerWait(context.Background(), name, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-res.Result:
	case err := <-res.Error:
		t.Fatalf("waiting for %s: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit in 30s", name)
	}
}

func TestLogs(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	name := run.Name("c")
	cfg := run.Config(testimages.Busybox, "sh", "-c", "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2")
	startContainer(t, eng, name, cfg)
	waitExit(t, eng, name)

	logs, err := eng.Logs(ctx, name, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if logs.Stdout != "out1\nout2\n" || logs.Stderr != "err1\n" || logs.Combined != "out1\nerr1\nout2\n" {
		t.Errorf("Logs() = %+v, want stdout out1,out2, stderr err1, combined in order", logs)
	}
	tests := []struct {
		name string
		opts engine.LogOptions
		want string
	}{
		{"tail", engine.LogOptions{Tail: 1}, "out2\n"},
		{"stdout only", engine.LogOptions{Stdout: true}, "out1\nout2\n"},
		{"stderr only", engine.LogOptions{Stderr: true}, "err1\n"},
		{"since the future", engine.LogOptions{Since: time.Now().Add(time.Hour).Format(time.RFC3339)}, ""},
		{"until the past", engine.LogOptions{Until: "1h"}, ""},
		{"since an hour ago", engine.LogOptions{Since: "1h"}, "out1\nerr1\nout2\n"},
	}
	for _, tt := range tests {
		got, err := eng.Logs(ctx, name, tt.opts)
		if err != nil || got.Combined != tt.want {
			t.Errorf("Logs(%s) = %q, %v; want %q", tt.name, got.Combined, err, tt.want)
		}
	}
	ts, err := eng.Logs(ctx, name, engine.LogOptions{Timestamps: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(ts.Combined), "\n") {
		stamp, text, _ := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil || !strings.HasPrefix(text, "out") {
			t.Errorf("timestamped line %q: want an RFC 3339 time then the text", line)
		}
	}
	if _, err := eng.Logs(ctx, run.Name("missing"), engine.LogOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Logs(missing) error = %v, want ErrNotFound", err)
	}
}

func TestStreamLogsFollows(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	name := run.Name("c")
	cfg := run.Config(testimages.Busybox, "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done")
	startContainer(t, eng, name, cfg)
	// Following starts while the container is still writing, and returns when it exits.
	var out syncBuffer
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := eng.StreamLogs(fctx, name, engine.LogOptions{Follow: true}, &out, io.Discard); err != nil {
		t.Fatalf("StreamLogs(follow) = %v", err)
	}
	if fctx.Err() != nil {
		t.Fatalf("StreamLogs(follow) did not return when the container exited")
	}
	if got, want := out.String(), "line1\nline2\nline3\nline4\nline5\n"; got != want {
		t.Errorf("followed logs = %q, want %q", got, want)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRestartPolicyOnFailureCountsRestarts(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	name := run.Name("c")
	cfg := run.Config(testimages.Busybox, "sh", "-c", "exit 1")
	cfg.RestartPolicy = "on-failure:2"
	startContainer(t, eng, name, cfg)
	var m engine.ContainerMetrics
	ok := testenv.Eventually(30*time.Second, func() bool {
		var err error
		m, err = eng.Metrics(ctx, name)
		return err == nil && m.RestartCount == 2 && m.Status == "exited"
	})
	if !ok {
		t.Fatalf("Metrics() = restart_count %d status %q, want 2 restarts then exited", m.RestartCount, m.Status)
	}
	// It stays at two: the policy allows no more.
	time.Sleep(time.Second)
	if m, _ = eng.Metrics(ctx, name); m.RestartCount != 2 || m.PerformanceScore != 0 {
		t.Errorf("Metrics() later = restart_count %d score %v, want 2 and 0 for a stopped container", m.RestartCount, m.PerformanceScore)
	}
}

func TestHealthStatus(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	for _, tt := range []struct{ image, want string }{
		{testimages.Healthy, engine.HealthHealthy},
		{testimages.Unhealthy, engine.HealthUnhealthy},
		{testimages.Busybox, engine.HealthUnknown},
	} {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			name := run.Name(tt.want)
			cfg := run.Config(tt.image)
			if tt.image == testimages.Busybox {
				cfg.Command = []string{"sleep", "3600"}
			}
			startContainer(t, eng, name, cfg)
			var m engine.ContainerMetrics
			ok := testenv.Eventually(20*time.Second, func() bool {
				m, _ = eng.Metrics(ctx, name)
				return m.HealthStatus == tt.want
			})
			if !ok {
				t.Errorf("Metrics(%s).HealthStatus = %q, want %q", tt.image, m.HealthStatus, tt.want)
			}
			if tt.want == engine.HealthUnhealthy && m.PerformanceScore > 70 {
				t.Errorf("PerformanceScore of an unhealthy container = %v, want at most 70", m.PerformanceScore)
			}
		})
	}
}

func TestMetricsOfABusyContainer(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	busy, idle := run.Name("busy"), run.Name("idle")
	port := freePort(t)
	cfgBusy := run.Config(testimages.Busybox, "sh", "-c", "while :; do :; done")
	cfgBusy.Resources = engine.Resources{CPULimit: "0.5", MemoryLimit: "64m"}
	cfgIdle := run.Config(testimages.Web)
	cfgIdle.Ports = engine.PortBindings{"8080/tcp": "127.0.0.1:" + strconv.Itoa(port)}
	for name, cfg := range map[string]engine.ContainerConfig{busy: cfgBusy, idle: cfgIdle} {
		startContainer(t, eng, name, cfg)
	}
	// Traffic into the web container shows up as received and sent bytes.
	testenv.Eventually(10*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	for range 20 {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			resp.Body.Close()
		}
	}
	time.Sleep(time.Second)

	all, err := eng.MetricsAll(ctx, engine.MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]engine.ContainerMetrics{}
	for _, m := range all {
		byName[m.ContainerName] = m
	}
	b, ok := byName[busy]
	if !ok {
		t.Fatalf("MetricsAll() = %d containers without %s", len(all), busy)
	}
	// Half a CPU allowed, a spinning shell uses what it gets of it: never more than 100% of what it may use, and
	// more than the idle one (on a machine loaded by other work it gets less, at times very little, of its half
	// CPU: no fixed floor).
	i0 := byName[idle]
	if b.CPUUsagePercent > 100.5 || b.CPUUsagePercent <= i0.CPUUsagePercent {
		t.Errorf("busy cpu_usage_percent = %v (idle %v), want at most 100 of its half CPU and above the idle one", b.CPUUsagePercent, i0.CPUUsagePercent)
	}
	if b.MemoryLimitMB != 64 || b.MemoryUsageMB <= 0 || b.MemoryUsageMB > 64 {
		t.Errorf("busy memory = %v of %v MB, want a positive use of a 64 MB limit", b.MemoryUsageMB, b.MemoryLimitMB)
	}
	// The score loses 40 × (cpu − 50) / 50 for CPU above 50%; memory is far below half its limit and costs nothing.
	wantScore := 100 - 40*max(0, b.CPUUsagePercent-50)/50
	if b.UptimeSeconds < 1 || b.HealthStatus != engine.HealthUnknown || math.Abs(b.PerformanceScore-wantScore) > 0.2 {
		t.Errorf("busy uptime %v health %q score %v, want ≥1s, unknown, %.1f", b.UptimeSeconds, b.HealthStatus, b.PerformanceScore, wantScore)
	}
	i, ok := byName[idle]
	if !ok {
		t.Fatalf("MetricsAll() lacks %s", idle)
	}
	if i.NetworkRxMB <= 0 || i.NetworkTxMB <= 0 {
		t.Errorf("idle web network rx/tx = %v/%v MB, want traffic counted", i.NetworkRxMB, i.NetworkTxMB)
	}
	if i.CPUUsagePercent > 20 || i.PerformanceScore < 90 {
		t.Errorf("idle cpu %v score %v, want low use and a score ≥ 90", i.CPUUsagePercent, i.PerformanceScore)
	}
	if _, err := eng.Metrics(ctx, run.Name("missing")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Metrics(missing) error = %v, want ErrNotFound", err)
	}
}

func TestConcurrentLifecycleLeaksNothing(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	const n = 20
	zero := time.Duration(0)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := run.Name("c" + strconv.Itoa(i))
			if _, err := eng.Create(ctx, name, run.Config(testimages.Busybox, "sleep", "3600"), engine.CreateOptions{}); err != nil {
				errs <- fmt.Errorf("create %s: %w", name, err)
				return
			}
			if st, err := eng.Start(ctx, name); err != nil || st.Status != "running" {
				errs <- fmt.Errorf("start %s: %+v %w", name, st, err)
				return
			}
			if _, err := eng.Stop(ctx, name, engine.StopOptions{Timeout: &zero}); err != nil {
				errs <- fmt.Errorf("stop %s: %w", name, err)
				return
			}
			if _, err := eng.Remove(ctx, name, engine.RemoveOptions{}); err != nil {
				errs <- fmt.Errorf("remove %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids, err := run.Containers()
	if err != nil || len(ids) != 0 {
		t.Errorf("containers left after %d concurrent cycles = %d (%v), want 0", n, len(ids), err)
	}
}
