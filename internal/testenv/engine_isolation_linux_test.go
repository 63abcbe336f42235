package testenv_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// The private engine of `make test` and `make demo` (scripts/engine.sh) must leave a Docker engine that already
// runs on the machine as it was. A network namespace of the test's own stands for such a machine: a system-like
// dockerd with its defaults (the docker0 bridge, iptables, its own containerd) runs there first, then engine.sh
// brings the private engine up and down from inside that namespace, as it would on a developer's laptop.
func TestPrivateEngineLeavesTheMachinesEngineAlone(t *testing.T) {
	m := newMachine(t)
	needTools(t, "dockerd", "containerd", "ctr", "docker", "iptables-save")
	sys := m.startSystemEngine(t)

	sys.importBusybox(t, "bb:sys")
	sys.docker(t, "run", "-d", "--name", "web-before", "-p", "18080:8080", "bb:sys", "httpd", "-f", "-p", "8080", "-h", "/www")
	m.fetch(t, "127.0.0.1:18080") // a container on the default network, through its published port

	docker0 := m.link(t, "docker0")
	rules := m.iptables(t)
	if !strings.Contains(rules, ":DOCKER-USER") || !strings.Contains(rules, "-o docker0 -j DOCKER") {
		t.Fatalf("the system-like engine did not set up its iptables chains:\n%s", rules)
	}
	routes := m.out(t, "ip", "-4", "route")
	namespaces, containers := sys.containerdState(t)

	// In the way: the private engine refuses to start, saying what is in the way, and touches nothing.
	t.Run("refuses a taken subnet", func(t *testing.T) {
		m.out(t, "ip", "route", "add", "10.214.7.0/24", "dev", "lo")
		out, err := m.engineSh("up")
		if err == nil {
			m.engineSh("down")
		}
		m.out(t, "ip", "route", "del", "10.214.7.0/24", "dev", "lo")
		if err == nil {
			t.Fatalf("engine.sh up started although 10.214.7.0/24 is routed on the machine:\n%s", out)
		}
		if !strings.Contains(out, "10.214.0.0/16") || !strings.Contains(out, "10.214.7.0/24 dev lo") {
			t.Errorf("the refusal does not name the subnet and the route in the way:\n%s", out)
		}
		m.assertUntouched(t, rules, routes)
	})
	t.Run("refuses a taken namespace", func(t *testing.T) {
		m.out(t, "ip", "netns", "add", m.engineNetns)
		out, err := m.engineSh("up")
		if err == nil {
			m.engineSh("down")
		}
		// Still there: not the script's to remove.
		if _, serr := os.Stat("/run/netns/" + m.engineNetns); serr != nil {
			t.Errorf("the namespace that was in the way is gone: %v", serr)
		}
		m.out(t, "ip", "netns", "del", m.engineNetns)
		if err == nil {
			t.Fatalf("engine.sh up started although the namespace %s exists:\n%s", m.engineNetns, out)
		}
		if !strings.Contains(out, "network namespace named "+m.engineNetns) {
			t.Errorf("the refusal does not name the namespace in the way:\n%s", out)
		}
		m.assertUntouched(t, rules, routes)
	})

	out, err := m.engineSh("up")
	if err != nil {
		t.Fatalf("engine.sh up: %v\n%s", err, out)
	}
	upped := true
	t.Cleanup(func() {
		if upped {
			m.engineSh("down")
		}
	})
	priv := &engineProc{m: m, host: "unix://" + filepath.Join(m.dir, "priv-run", "docker.sock")}

	// Another command (another make, say) reuses the engine, and its down leaves it running for the one that
	// started it.
	other := "MYRMEX_OWNER=another-command"
	if out, err := m.script("engine.sh", "up", "MYRMEX_ENGINE_NETNS="+m.engineNetns, other); err != nil || !strings.Contains(out, "reusing the engine") {
		t.Errorf("a second engine.sh up did not reuse the engine: %v\n%s", err, out)
	}
	if out, err := m.script("engine.sh", "down", "MYRMEX_ENGINE_NETNS="+m.engineNetns, other); err != nil || !strings.Contains(out, "another command started it") {
		t.Errorf("engine.sh down for another owner: %v\n%s", err, out)
	}
	priv.docker(t, "version")

	// The machine's engine is as it was while the private one runs.
	if got := m.link(t, "docker0"); got != docker0 {
		t.Errorf("docker0 changed while the private engine runs:\nbefore %s\nafter  %s", docker0, got)
	}
	if got := without(m.iptables(t), m.tag()); got != rules {
		t.Errorf("iptables changed beyond the private engine's tagged rules:\n%s", lineDiff(rules, got))
	}
	if got := dockerChains(m.iptables(t)); got != dockerChains(rules) {
		t.Errorf("the machine's DOCKER chains changed:\n%s", lineDiff(dockerChains(rules), got))
	}
	if ns, cs := sys.containerdState(t); ns != namespaces || cs != containers {
		t.Errorf("the machine's containerd changed: namespaces %q → %q, containers %q → %q", namespaces, ns, containers, cs)
	}
	m.fetch(t, "127.0.0.1:18080")
	sys.docker(t, "run", "-d", "--name", "web-during", "-p", "18082:8080", "bb:sys", "httpd", "-f", "-p", "8080", "-h", "/www")
	m.fetch(t, "127.0.0.1:18082")
	sys.docker(t, "rm", "-f", "web-during")

	// The private engine works: a published port appears on the machine, and its containers reach the machine's
	// network (here the machine's engine's published port, through the link's address on the machine's side).
	priv.importBusybox(t, "bb:priv")
	priv.docker(t, "run", "-d", "--name", "web-private", "-p", "127.0.0.1:18081:8080", "bb:priv", "httpd", "-f", "-p", "8080", "-h", "/www")
	m.fetch(t, "127.0.0.1:18081")
	if got := priv.docker(t, "run", "--rm", "bb:priv", "timeout", "20", "wget", "-qO-", "http://10.213.255.1:18080/"); !strings.Contains(got, "Hello from Myrmex") {
		t.Errorf("a private engine's container fetching the machine's engine's published port got %q", got)
	}
	// The private dockerd reaches a registry on the machine's loopback, as a dockerd in the machine's namespace
	// does (BuildKit pulls bases from one in the build tests).
	regConf := filepath.Join(m.dir, "registry.yml")
	writeTestFile(t, regConf, fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:15001}\n", filepath.Join(m.dir, "registry")))
	m.daemon(t, "registry", filepath.Join(m.dir, "registry.log"), testenv.DistributionBinary, "serve", regConf)
	waitFor(t, "the registry on the machine's loopback", func() bool {
		return m.command(context.Background(), testimages.BusyboxPath, "wget", "-qO-", "http://127.0.0.1:15001/v2/").Run() == nil
	})
	priv.docker(t, "tag", "bb:priv", "127.0.0.1:15001/bb:priv")
	priv.docker(t, "push", "127.0.0.1:15001/bb:priv")
	if got := m.out(t, testimages.BusyboxPath, "wget", "-qO-", "http://127.0.0.1:15001/v2/bb/tags/list"); !strings.Contains(got, `"priv"`) {
		t.Errorf("the registry on the machine's loopback lists %s after the private engine's push", got)
	}

	out, err = m.engineSh("down")
	upped = false
	if err != nil {
		t.Fatalf("engine.sh down: %v\n%s", err, out)
	}

	// And after: everything the private engine added is gone, and the machine's engine still starts containers on
	// its default network.
	m.assertUntouched(t, rules, routes)
	if got := m.link(t, "docker0"); got != docker0 {
		t.Errorf("docker0 changed after the private engine's down:\nbefore %s\nafter  %s", docker0, got)
	}
	if ns, cs := sys.containerdState(t); ns != namespaces || cs != containers {
		t.Errorf("the machine's containerd changed: namespaces %q → %q, containers %q → %q", namespaces, ns, containers, cs)
	}
	m.fetch(t, "127.0.0.1:18080")
	sys.docker(t, "run", "-d", "--name", "web-after", "-p", "18083:8080", "bb:sys", "httpd", "-f", "-p", "8080", "-h", "/www")
	m.fetch(t, "127.0.0.1:18083")
}

// machine is a network namespace standing for a machine, with a directory for what runs in it.
type machine struct {
	ns, dir     string
	engineNetns string // the private engine's namespace, as engine.sh is told to name it
	scripts     string // the repository's scripts/
}

func newMachine(t *testing.T) *machine {
	t.Helper()
	if os.Geteuid() != 0 {
		missingTool(t, "root (network namespaces, a second dockerd)")
	}
	needTools(t, "ip", "nsenter")
	if _, err := os.Stat(testimages.BusyboxPath); err != nil {
		missingTool(t, "busybox-static")
	}
	scripts, err := filepath.Abs("../../scripts")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	// A short directory: unix sockets live under it.
	dir, err := os.MkdirTemp("", "mxit")
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{ns: "mxit-host-" + id, dir: dir, engineNetns: "mxit-eng-" + id, scripts: scripts}
	if out, err := exec.Command("ip", "netns", "add", m.ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", m.ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", m.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", m.ns, err, out)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	m.out(t, "ip", "link", "set", "lo", "up")
	return m
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, tool+" (scripts/engine.sh up installs it)")
		}
	}
}

func missingTool(t *testing.T, what string) {
	t.Helper()
	if testenv.Required() {
		t.Fatalf("this test needs %s", what)
	}
	t.Skipf("needs %s", what)
}

func (m *machine) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + m.ns, "--", name}, args...)...)
}

// out runs a command on the machine and returns its output; it fails the test if the command fails.
func (m *machine) out(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := m.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// engineSh runs scripts/engine.sh on the machine, with its own directories and namespace name.
func (m *machine) engineSh(verb string) (string, error) {
	return m.script("engine.sh", verb, "MYRMEX_ENGINE_NETNS="+m.engineNetns)
}

// script runs one of scripts/ on the machine, with directories of the test's own.
func (m *machine) script(name, verb string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := m.command(ctx, "bash", filepath.Join(m.scripts, name), verb)
	cmd.Env = append(append(os.Environ(),
		"MYRMEX_STATE_DIR="+filepath.Join(m.dir, "priv-state"),
		"MYRMEX_RUN_DIR="+filepath.Join(m.dir, "priv-run"),
		"MYRMEX_DOCKER_HOST=", "MYRMEX_KEEP_ENGINE=", "MYRMEX_KEEP_KUBE=", "MYRMEX_OWNER=test-"+m.ns,
	), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (m *machine) tag() string { return "myrmex-engine:" + m.engineNetns }

// fetch gets the busybox image's web root from addr on the machine.
func (m *machine) fetch(t *testing.T, addr string) {
	t.Helper()
	var out []byte
	var err error
	for i := 0; i < 20; i++ { // httpd in a container just started may not listen yet
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err = m.command(ctx, testimages.BusyboxPath, "wget", "-qO-", "http://"+addr+"/").CombinedOutput()
		cancel()
		if err == nil && strings.Contains(string(out), "Hello from Myrmex") {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Errorf("GET http://%s/ on the machine: %v: %s", addr, err, out)
}

// link describes an interface by what would change if it were deleted and made again: its index, kind, MAC and
// addresses.
func (m *machine) link(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := m.command(ctx, "ip", "-o", "-d", "link", "show", name).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("no interface %s (%v: %s)", name, err, bytes.TrimSpace(o))
	}
	l := strings.Fields(string(o))
	var mac, kind string
	for i, f := range l {
		if f == "link/ether" && i+1 < len(l) {
			mac = l[i+1]
		}
		if f == "bridge" && kind == "" {
			kind = f
		}
	}
	a := strings.Fields(m.out(t, "ip", "-br", "-4", "addr", "show", name))
	return fmt.Sprintf("index %s %s kind %q mac %s addresses %v", l[0], strings.TrimSuffix(l[1], ":"), kind, mac, a[2:])
}

var counters = regexp.MustCompile(` \[\d+:\d+\]$`)

// iptables is the machine's ruleset (filter and nat), without comments and counters.
func (m *machine) iptables(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		for _, line := range strings.Split(m.out(t, "iptables-save", "-t", table), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			b.WriteString(counters.ReplaceAllString(line, "") + "\n")
		}
	}
	return b.String()
}

// assertUntouched checks that the machine's ruleset and routes are what they were, and that nothing of the
// private engine's is left: its namespace, its veth.
func (m *machine) assertUntouched(t *testing.T, rules, routes string) {
	t.Helper()
	if got := m.iptables(t); got != rules {
		t.Errorf("iptables differ:\n%s", lineDiff(rules, got))
	}
	if got := m.out(t, "ip", "-4", "route"); got != routes {
		t.Errorf("routes differ:\n%s", lineDiff(routes, got))
	}
	if _, err := os.Stat("/run/netns/" + m.engineNetns); err == nil {
		t.Errorf("the private engine's namespace %s is left", m.engineNetns)
	}
	if links := m.out(t, "ip", "-br", "link"); strings.Contains(links, "myrmex-veth") {
		t.Errorf("the private engine's veth is left:\n%s", links)
	}
}

func without(s, sub string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if !strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func dockerChains(rules string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(rules, "\n") {
		if strings.Contains(line, "DOCKER") || strings.Contains(line, "docker0") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func lineDiff(want, got string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(the same lines in another order)\n--- want\n" + want + "--- got\n" + got
	}
	return b.String()
}

// engineProc is a dockerd on the machine, talked to with the docker CLI.
type engineProc struct {
	m          *machine
	dir        string // its configuration, state and logs
	host       string
	containerd string // its containerd's socket, when the test started it
}

// startSystemEngine starts a dockerd as a distribution's service does, with its defaults (the docker0 bridge,
// iptables, the userland proxy) and a containerd of its own; only its paths are the test's.
func (m *machine) startSystemEngine(t *testing.T) *engineProc {
	t.Helper()
	e := m.startContainerd(t, filepath.Join(m.dir, "sys"))
	e.startDockerd(t, "dockerd.log")
	waitFor(t, "the system-like dockerd", e.answers)
	return e
}

// startContainerd lays out d for an engine of the test's own (a containerd and a dockerd with their paths under
// d, the dockerd configured as a distribution's service is) and starts its containerd; startDockerd starts the
// dockerd.
func (m *machine) startContainerd(t *testing.T, d string) *engineProc {
	t.Helper()
	for _, sub := range []string{"run", "data", "containerd-root", "containerd-opt"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctrdSock := filepath.Join(d, "run", "containerd.sock")
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = %q\n",
		filepath.Join(d, "containerd-root"), filepath.Join(d, "run", "containerd-state"), ctrdSock, filepath.Join(d, "containerd-opt"))
	writeTestFile(t, filepath.Join(d, "containerd.toml"), config)
	writeTestFile(t, filepath.Join(d, "daemon.json"), fmt.Sprintf(`{"deprecated-key-path": %q}`, filepath.Join(d, "key.json")))
	m.daemon(t, "containerd", filepath.Join(d, "containerd.log"), "containerd", "--config", filepath.Join(d, "containerd.toml"))
	waitFor(t, "containerd's socket", func() bool { _, err := os.Stat(ctrdSock); return err == nil })
	return &engineProc{m: m, dir: d, host: "unix://" + filepath.Join(d, "run", "docker.sock"), containerd: ctrdSock}
}

// startDockerd starts the engine's dockerd, logging to logName in its directory, and returns its pid; it is
// stopped when the test ends. It may be called again after the dockerd was killed.
func (e *engineProc) startDockerd(t *testing.T, logName string) int {
	t.Helper()
	d := e.dir
	return e.m.daemon(t, "dockerd", filepath.Join(d, logName), "dockerd",
		"--host", e.host, "--data-root", filepath.Join(d, "data"), "--exec-root", filepath.Join(d, "run", "exec"),
		"--pidfile", filepath.Join(d, "run", "dockerd.pid"), "--config-file", filepath.Join(d, "daemon.json"),
		"--containerd", e.containerd)
}

// answers reports whether the engine answers.
func (e *engineProc) answers() bool {
	return exec.Command("docker", "-H", e.host, "version").Run() == nil
}

// daemon starts a long-running program on the machine, returns its pid, and stops it (SIGTERM, then SIGKILL) when
// the test ends.
func (m *machine) daemon(t *testing.T, name, logPath string, program string, args ...string) int {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := m.command(context.Background(), program, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		defer logf.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s: killing it", name)
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s's log:\n%s", name, tailLines(string(b), 30))
			}
		}
	})
	return cmd.Process.Pid
}

func (e *engineProc) docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", e.host}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *engineProc) importBusybox(t *testing.T, ref string) {
	t.Helper()
	rootfs, err := testimages.Rootfs()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "-H", e.host, "import", "-", ref)
	cmd.Stdin = bytes.NewReader(rootfs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
}

// containerdState is what the engine's containerd holds: its namespaces, and the containers in moby's.
func (e *engineProc) containerdState(t *testing.T) (namespaces, containers string) {
	t.Helper()
	ns := e.m.out(t, "ctr", "--address", e.containerd, "namespaces", "list", "-q")
	cs := e.m.out(t, "ctr", "--address", e.containerd, "--namespace", "moby", "containers", "list", "-q")
	return strings.TrimSpace(ns), strings.TrimSpace(cs)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up within 60s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
