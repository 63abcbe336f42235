package testenv_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/internal/testimages"
)

// kube.sh takes no port that belongs to something else: when one is taken it starts nothing and names the
// program in the way. The test's own network namespace stands for the machine, so the port is taken there only.
func TestKubeShRefusesATakenPort(t *testing.T) {
	m := newMachine(t)
	needTools(t, "ss")
	const port = "16443" // the API server's default
	pid := m.daemon(t, "listener", filepath.Join(m.dir, "listener.log"), testimages.BusyboxPath, "httpd", "-f", "-p", port, "-h", m.dir)
	waitFor(t, "the listener", func() bool {
		out, _ := m.command(context.Background(), "ss", "-Hltn", "sport = :"+port).Output()
		return len(out) > 0
	})

	out, err := m.script("kube.sh", "up")
	if err == nil {
		m.script("kube.sh", "down")
		t.Fatalf("kube.sh up started although port %s is taken:\n%s", port, out)
	}
	want := fmt.Sprintf("port %s for the API server (MYRMEX_KUBE_PORT) is taken by busybox (pid %d)", port, pid)
	if !strings.Contains(out, want) {
		t.Errorf("kube.sh up's refusal does not say %q:\n%s", want, out)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(m.dir, "priv-run", "kube", name+".pid")); err == nil {
			t.Errorf("kube.sh up started %s although it refused", name)
		}
	}
}

// down stops what up started, by pid, and nothing else: pid files left by a run long gone, whose pids now belong
// to another program, stop nothing.
func TestScriptsStopOnlyWhatTheyStarted(t *testing.T) {
	m := newMachine(t)
	other := exec.Command("sleep", "600")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = other.Wait(); close(exited) }()
	t.Cleanup(func() { _ = other.Process.Kill(); <-exited })
	pid := []byte(fmt.Sprint(other.Process.Pid))

	run := filepath.Join(m.dir, "priv-run")
	files := map[string][]byte{
		"kube/started-by-myrmex": nil, "kube/etcd.pid": pid, "kube/kube-apiserver.pid": pid, "kube/kwok.pid": pid,
		"started-by-myrmex": nil, "dockerd.pid": pid, "containerd.pid": pid,
	}
	for name, data := range files {
		path := filepath.Join(run, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, path, string(data))
	}
	for _, script := range []string{"kube.sh", "engine.sh"} {
		// As `make engine-down` and `make kube-down` run it: for whoever started it.
		out, err := m.script(script, "down", "MYRMEX_ENGINE_NETNS="+m.engineNetns, "MYRMEX_OWNER=")
		if err != nil {
			t.Errorf("%s down: %v\n%s", script, err, out)
		}
		select {
		case <-exited:
			t.Fatalf("%s down stopped pid %s, which it did not start:\n%s", script, pid, out)
		case <-time.After(500 * time.Millisecond):
		}
	}
	for name := range files {
		if _, err := os.Stat(filepath.Join(run, name)); err == nil {
			t.Errorf("%s is left after down", name)
		}
	}

	// A control plane that one command started is stopped by that command's down, not by another's.
	bin, err := m.script("kube.sh", "bin")
	if err != nil {
		t.Fatalf("kube.sh bin: %v: %s", err, bin)
	}
	// A process whose command line is that of kube.sh's etcd, as `up` starts it.
	etcd := exec.Command("bash", "-c", `exec -a "$0" sleep 600`, filepath.Join(strings.TrimSpace(bin), "etcd")+" --data-dir x")
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	etcdExited := make(chan struct{})
	go func() { _ = etcd.Wait(); close(etcdExited) }()
	t.Cleanup(func() { _ = etcd.Process.Kill(); <-etcdExited })
	writeTestFile(t, filepath.Join(run, "kube/started-by-myrmex"), "make-test-1\n")
	writeTestFile(t, filepath.Join(run, "kube/etcd.pid"), fmt.Sprint(etcd.Process.Pid))
	out, err := m.script("kube.sh", "down", "MYRMEX_OWNER=make-demo-2")
	if err != nil || !strings.Contains(out, "another command started it") {
		t.Errorf("kube.sh down for another owner: %v\n%s", err, out)
	}
	select {
	case <-etcdExited:
		t.Fatalf("kube.sh down for another owner stopped the control plane:\n%s", out)
	case <-time.After(500 * time.Millisecond):
	}
	if out, err := m.script("kube.sh", "down", "MYRMEX_OWNER=make-test-1"); err != nil {
		t.Errorf("kube.sh down for its owner: %v\n%s", err, out)
	}
	select {
	case <-etcdExited:
	case <-time.After(10 * time.Second):
		t.Errorf("kube.sh down for the owner that started it did not stop its etcd")
	}
}
