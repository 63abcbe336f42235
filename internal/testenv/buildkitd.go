package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildkitVersion is the version of the standalone buildkitd that [Buildkitd] builds, the one go.mod requires.
const BuildkitVersion = "v0.34.2"

// BuildkitdBinary returns the path of a buildkitd binary built from github.com/moby/buildkit at
// [BuildkitVersion], building it on first use into ~/.cache/myrmex (about five minutes cold). `go install
// …@version` refuses buildkit's module because of its exclude directives, so it is built in a throwaway module
// that requires it. A file lock keeps parallel test binaries from building it twice.
func BuildkitdBinary() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "myrmex", "buildkitd-"+BuildkitVersion)
	bin := filepath.Join(dir, "buildkitd")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil { // built while we waited for the lock
		return bin, nil
	}
	// buildkit's go.sum covers its build; its exclude directives, ignored in a dependency, are copied so the
	// versions it builds with are the ones selected here.
	dl := exec.Command("go", "mod", "download", "-json", "github.com/moby/buildkit@"+BuildkitVersion)
	dl.Dir = src
	out, err := dl.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download github.com/moby/buildkit@%s: %w", BuildkitVersion, err)
	}
	var mod struct{ Dir, GoMod string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("go mod download: %w", err)
	}
	upstream, err := os.ReadFile(mod.GoMod)
	if err != nil {
		return "", err
	}
	gomod := "module tmp\n\n" + goDirective(string(upstream)) + "\nrequire github.com/moby/buildkit " + BuildkitVersion +
		"\n\n" + excludeBlock(string(upstream))
	sum, err := os.ReadFile(filepath.Join(mod.Dir, "go.sum"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.sum"), sum, 0o644); err != nil {
		return "", err
	}
	tmp := bin + ".tmp"
	for _, args := range [][]string{
		{"mod", "download", "github.com/moby/buildkit"}, // adds buildkit's own go.sum lines
		{"build", "-o", tmp, "github.com/moby/buildkit/cmd/buildkitd"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, tail(out, 20))
		}
	}
	return bin, os.Rename(tmp, bin)
}

// goDirective returns the go line of a go.mod: the throwaway module may not declare an older Go than buildkit,
// or the go command asks for go.mod to be updated.
func goDirective(gomod string) string {
	for _, line := range strings.Split(gomod, "\n") {
		if strings.HasPrefix(line, "go ") {
			return line + "\n"
		}
	}
	return ""
}

// excludeBlock returns the exclude directives of a go.mod.
func excludeBlock(gomod string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(gomod, "\n") {
		switch {
		case strings.HasPrefix(line, "exclude ("):
			in = true
		case strings.HasPrefix(line, "exclude "):
			b.WriteString(line + "\n")
			continue
		}
		if in {
			b.WriteString(line + "\n")
			if line == ")" {
				in = false
			}
		}
	}
	return b.String()
}

// Buildkitd starts a standalone buildkitd ([BuildkitdBinary]) with an OCI worker on Debian's runc and a fresh
// state directory, and returns its address ("unix://…"). insecure lists registries ("127.0.0.1:PORT") that it
// reaches over plain HTTP, such as an [InProcess] one. The daemon stops when the test ends.
//
// It needs root and runc; without them it skips the test, or fails it when the components are [Required].
func Buildkitd(t testing.TB, insecure ...string) string {
	t.Helper()
	unix, _, _ := startBuildkitd(t, false, insecure)
	return unix
}

// BuildkitdKillable starts a buildkitd as [Buildkitd] does and returns its address and a function that kills
// it (SIGKILL, to it and its process group: the steps it runs die with it), for the tests of a builder that
// dies mid-build. Killing it twice, or after the test, does nothing.
func BuildkitdKillable(t testing.TB, insecure ...string) (string, func()) {
	t.Helper()
	unix, _, cmd := startBuildkitd(t, false, insecure)
	var once sync.Once
	return unix, func() {
		once.Do(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	}
}

// BuildkitdAddrs starts a buildkitd as [Buildkitd] does, listening on a unix socket and on a loopback TCP port,
// and returns both addresses ("unix://…", "tcp://127.0.0.1:PORT"). Only the tests of a TCP builder take a port:
// a free port found here may be taken by another test binary before buildkitd binds it.
func BuildkitdAddrs(t testing.TB, insecure ...string) (string, string) {
	t.Helper()
	unix, tcp, _ := startBuildkitd(t, true, insecure)
	return unix, tcp
}

func startBuildkitd(t testing.TB, withTCP bool, insecure []string) (string, string, *exec.Cmd) {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if os.Geteuid() != 0 || err != nil {
		missing(t, "buildkitd needs root and runc (`apt-get install runc`)")
	}
	bin, err := BuildkitdBinary()
	if err != nil {
		missing(t, fmt.Sprintf("building buildkitd: %v", err))
	}
	// Not t.TempDir: a unix socket path must stay under 108 bytes, and test names make long paths.
	dir, err := os.MkdirTemp("", "bkd-")
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	for _, host := range insecure {
		fmt.Fprintf(&conf, "[registry.%q]\n  http = true\n  insecure = true\n", host)
	}
	writeFile(t, filepath.Join(dir, "buildkitd.toml"), []byte(conf.String()))
	sock := filepath.Join(dir, "buildkitd.sock")
	tcpAddr := ""
	if withTCP {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		tcpAddr = "127.0.0.1:" + port
	}
	logf, err := os.Create(filepath.Join(dir, "buildkitd.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", filepath.Join(dir, "buildkitd.toml"), "--addr", "unix://" + sock}
	if withTCP {
		args = append(args, "--addr", "tcp://"+tcpAddr)
	}
	cmd := exec.Command(bin, append(args,
		"--root", filepath.Join(dir, "root"),
		"--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-binary", runc,
		// Host networking needs no CNI configuration, which this machine does not have.
		"--oci-worker-net=host",
	)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting buildkitd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGTERM lets buildkitd unmount its snapshots before the state directory is removed.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("buildkitd log:\n%s", tail(b, 40))
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing buildkitd state: %v", err)
		}
	})
	up := Eventually(30*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	select {
	case <-exited:
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("buildkitd exited at start:\n%s", tail(b, 40))
	default:
	}
	if !up {
		t.Fatalf("buildkitd did not listen on %s within 30s", sock)
	}
	if !withTCP {
		return "unix://" + sock, "", cmd
	}
	if !Eventually(10*time.Second, func() bool {
		c, err := net.Dial("tcp", tcpAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("buildkitd did not listen on %s within 10s", tcpAddr)
	}
	return "unix://" + sock, "tcp://" + tcpAddr, cmd
}

func missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatal(why)
	}
	t.Skip(why)
}
