package testenv_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
)

// The engine killed (SIGKILL) and started again while 50 containers go through create, start, stop and remove
// at once, on a dockerd of the test's own (the suite's engine is not touched): every operation returns success or
// a typed error — nothing hangs, nothing is unclassified — and afterwards what is left of Myrmex's containers is
// what the list shows, so that removing what it lists leaves nothing.
func TestReliabilityEngineRestart(t *testing.T) {
	m := newMachine(t)
	needTools(t, "dockerd", "containerd", "docker")
	d := filepath.Join(m.dir, "eng")
	ctrdSock := filepath.Join(d, "run", "containerd.sock")
	// Last of all: what the engines mounted under the test's directory (a killed dockerd leaves its mounts).
	t.Cleanup(func() {
		killShims(t, ctrdSock)
		unmountUnder(t, d)
	})
	e := m.startContainerd(t, d)
	// After the engine stops and before containerd does: containers that the killed dockerd started and the
	// restarted one no longer knows still run in containerd (Docker's own behaviour); they are the test's, so
	// they are killed.
	t.Cleanup(func() { killTasks(t, e.containerd) })
	startDockerd := func(n int) int { return e.startDockerd(t, fmt.Sprintf("dockerd-%d.log", n)) }
	pid := startDockerd(1)
	waitFor(t, "dockerd", e.answers)
	e.importBusybox(t, "myrmex.local/restart-busybox:1")

	ctx := context.Background()
	c, err := containerization.New(ctx, containerization.Config{Host: e.host})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const n = 50
	var (
		started  atomic.Int64
		killOnce sync.Once
		killed   = make(chan struct{})
		mu       sync.Mutex
		outcomes = map[string]int{}
		bad      []string
	)
	stop := time.Duration(0)
	opts := containerization.ManageOptions{StopTimeout: &stop}
	// Once the engine is killed, it is started again a moment later, so that later operations meet it gone, then
	// coming back up.
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		<-killed
		time.Sleep(500 * time.Millisecond)
		startDockerd(2)
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("restart-%02d", i)
			cfg := &containerization.ContainerConfig{Image: "myrmex.local/restart-busybox:1", Command: []string{"sleep", "300"}}
			for _, op := range []string{containerization.OpCreate, containerization.OpStart, containerization.OpStop, containerization.OpRemove} {
				octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				var conf *containerization.ContainerConfig
				if op == containerization.OpCreate {
					conf = cfg
				}
				_, err := c.ManageContainers(octx, op, name, conf, opts)
				cancel()
				if op == containerization.OpStart && started.Add(1) == n/3 {
					// A third of the containers have started: kill the engine under the rest.
					killOnce.Do(func() { _ = syscall.Kill(pid, syscall.SIGKILL); close(killed) })
				}
				kind := errdefs.KindOf(err)
				mu.Lock()
				outcomes[op+" "+cmp.Or(kind.Code, "ok")]++
				if err != nil && (kind.Code == "internal" || kind.Code == "deadline_exceeded") {
					bad = append(bad, fmt.Sprintf("%s %s: %v", op, name, err))
				}
				mu.Unlock()
				if err != nil {
					return // a container whose step failed is left for the list to show
				}
			}
		})
	}
	wg.Wait()
	<-restarted
	t.Logf("outcomes: %v", outcomes)
	for _, b := range bad {
		t.Errorf("an operation ended in an unclassified error or a hang: %s", b)
	}
	select {
	case <-killed:
	default:
		t.Fatal("the engine was never killed: fewer starts than expected")
	}

	// Afterwards: the engine answers again, and the list shows every container of Myrmex's that is left.
	waitFor(t, "dockerd after the restart", e.answers)
	res, err := c.ManageContainers(ctx, containerization.OpList, "", nil, containerization.ManageOptions{})
	if err != nil {
		t.Fatalf("list after the restart: %v", err)
	}
	listed := map[string]bool{}
	for _, ctr := range res.Containers {
		listed[ctr.Name] = true
	}
	all := strings.Fields(e.docker(t, "ps", "-a", "--filter", "label=io.codomyrmex.myrmex.managed", "--format", "{{.Names}}"))
	for _, name := range all {
		if !listed[name] {
			t.Errorf("%s is left in the engine but not in Myrmex's list", name)
		}
	}
	force := containerization.ManageOptions{Force: true}
	for name := range listed {
		if _, err := c.ManageContainers(ctx, containerization.OpRemove, name, nil, force); err != nil {
			t.Errorf("removing %s, left after the restart: %v", name, err)
		}
	}
	if left := strings.TrimSpace(e.docker(t, "ps", "-aq")); left != "" {
		t.Errorf("containers left after removing what the list showed: %s", left)
	}
}

// killTasks kills and deletes every task in containerd's moby namespace at sock.
func killTasks(t *testing.T, sock string) {
	ctr := func(args ...string) ([]byte, error) {
		return exec.Command("ctr", append([]string{"--address", sock, "--namespace", "moby"}, args...)...).CombinedOutput()
	}
	out, err := ctr("tasks", "ls", "-q")
	if err != nil {
		t.Logf("listing containerd's tasks: %v: %s", err, out)
		return
	}
	for _, id := range strings.Fields(string(out)) {
		t.Logf("killing task %s, left in containerd by the killed engine", id)
		_, _ = ctr("tasks", "kill", "--signal", "SIGKILL", id)
		for range 50 {
			if _, err := ctr("tasks", "delete", id); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// killShims kills the containerd shims serving the containerd at sock, which outlive it when it stops with tasks
// still known to them, and whatever still runs in their containers' cgroups: all of it started by the test.
func killShims(t *testing.T, sock string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 0 || !strings.HasSuffix(args[0], "containerd-shim-runc-v2") || !slices.Contains(args, sock) {
			continue
		}
		if i := slices.Index(args, "-id"); i >= 0 && i+1 < len(args) {
			for _, cg := range []string{"/sys/fs/cgroup/pids/docker/", "/sys/fs/cgroup/docker/"} {
				if pids, err := os.ReadFile(cg + args[i+1] + "/cgroup.procs"); err == nil {
					for _, f := range strings.Fields(string(pids)) {
						if pid, err := strconv.Atoi(f); err == nil {
							_ = syscall.Kill(pid, syscall.SIGKILL)
						}
					}
				}
			}
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			t.Logf("killing shim %d, left by the containerd of the test", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder lazily unmounts every mount under dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Log(err)
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil {
			t.Logf("unmounting %s: %v", points[i], err)
		}
	}
}
