package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// statusField reads a field of /proc/1/status as the container's process sees it.
func procStatus(t *testing.T, eng *engine.Client, name string) map[string]string {
	t.Helper()
	logs, err := eng.Logs(context.Background(), name, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(logs.Stdout, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// Every isolation field is observed in the running container, by the engine's inspect and by the process's own
// status: user, read-only root with a tmpfs, capabilities, no-new-privileges, the seccomp filter, the process
// limit; the hardened preset turns them on at once; privileged is off unless asked.
func TestIsolationInTheRunningContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	// The script reports what the process sees, then waits to be inspected.
	script := `grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
if touch /rootfs-write 2>/dev/null; then echo 'RootWrite: yes'; else echo 'RootWrite: no'; fi
if touch /tmp/ok 2>/dev/null; then echo 'TmpWrite: yes'; else echo 'TmpWrite: no'; fi
echo "PidsMax: $(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
sleep 600`
	start := func(cfg engine.ContainerConfig) (engine.Details, map[string]string) {
		t.Helper()
		if _, err := eng.Create(ctx, cfg.Name, cfg, engine.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", cfg.Name, err)
		}
		if _, err := eng.Start(ctx, cfg.Name); err != nil {
			t.Fatalf("start %s: %v", cfg.Name, err)
		}
		var st map[string]string
		testenv.Eventually(20*time.Second, func() bool { st = procStatus(t, eng, cfg.Name); return st["PidsMax"] != "" })
		d, err := eng.Details(ctx, cfg.Name)
		if err != nil {
			t.Fatal(err)
		}
		return d, st
	}

	profile := filepath.Join(t.TempDir(), "seccomp.json")
	// Allow everything but mkdir: a profile of the tests' own that the engine must pass to the kernel.
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	explicit := run.Config(testimages.Busybox, "sh", "-c", "mkdir /tmp/dir 2>/dev/null && echo 'Mkdir: yes' || echo 'Mkdir: no'\n"+script)
	explicit.Name = run.Name("explicit")
	explicit.User, explicit.ReadOnly, explicit.Tmpfs = "1234:2345", true, map[string]string{"/tmp": "size=16m,mode=1777"}
	explicit.CapDrop, explicit.CapAdd = []string{"ALL"}, []string{"cap_net_bind_service"}
	explicit.NoNewPrivileges, explicit.PidsLimit, explicit.SeccompProfile = true, 64, profile
	d, st := start(explicit)
	if d.User != "1234:2345" || !d.ReadOnlyRootfs || d.Tmpfs["/tmp"] != "size=16m,mode=1777" || !slices.Equal(d.CapDrop, []string{"ALL"}) ||
		!slices.Equal(d.CapAdd, []string{"CAP_NET_BIND_SERVICE"}) || d.PidsLimit != 64 || d.Privileged ||
		!slices.Contains(d.SecurityOpt, "no-new-privileges:true") || !slices.Contains(d.SecurityOpt, "seccomp=<profile>") {
		t.Errorf("inspect: %+v", d)
	}
	// NET_BIND_SERVICE is bit 10: 0x400, alone in the effective set of a non-root process that was given it?
	// A non-root process starts with no effective capabilities; the bounding set holds only the one added.
	want := map[string]string{"Uid": "1234\t1234\t1234\t1234", "Gid": "2345\t2345\t2345\t2345", "CapBnd": "0000000000000400",
		"NoNewPrivs": "1", "Seccomp": "2", "RootWrite": "no", "TmpWrite": "yes", "PidsMax": "64", "Mkdir": "no"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("the process sees %s %q, want %q (all: %v)", k, st[k], v, st)
		}
	}

	hardened := run.Config(testimages.Busybox, "sh", "-c", script)
	hardened.Name, hardened.Hardened = run.Name("hardened"), true
	d, st = start(hardened)
	if !d.ReadOnlyRootfs || d.Tmpfs["/tmp"] != "size=64m" || !slices.Equal(d.CapDrop, []string{"ALL"}) || d.PidsLimit != 512 ||
		!slices.Contains(d.SecurityOpt, "no-new-privileges:true") || d.Privileged {
		t.Errorf("hardened inspect: %+v", d)
	}
	for k, v := range map[string]string{"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1", "RootWrite": "no", "TmpWrite": "yes", "PidsMax": "512", "Seccomp": "2"} {
		if st[k] != v {
			t.Errorf("hardened: the process sees %s %q, want %q", k, st[k], v)
		}
	}

	// Without the fields: the engine's defaults (root, writable root, the default capabilities, seccomp on).
	plain := run.Config(testimages.Busybox, "sh", "-c", script)
	plain.Name = run.Name("plain")
	_, st = start(plain)
	if st["RootWrite"] != "yes" || st["CapEff"] == "0000000000000000" || st["Seccomp"] != "2" || st["NoNewPrivs"] != "0" {
		t.Errorf("plain: %v", st)
	}

	// Bad input is refused before the engine is called.
	for _, c := range []engine.ContainerConfig{
		{Image: "x", Hardened: true, Privileged: true}, {Image: "x", CapAdd: []string{"CAP_TELEPORT"}}, {Image: "x", CapAdd: []string{"ALL"}},
		{Image: "x", Tmpfs: map[string]string{"tmp": ""}}, {Image: "x", Tmpfs: map[string]string{"/tmp": "size=1g,exec;rm"}},
		{Image: "x", PidsLimit: -1}, {Image: "x", User: "root user"}, {Image: "x", SeccompProfile: "/nonexistent.json"},
		{Image: "x", SeccompProfile: profile + "x"}, {Image: "x", Hardened: true, SeccompProfile: "unconfined"},
	} {
		if err := c.Validate("n1"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidArgument", c, err)
		}
	}
}
