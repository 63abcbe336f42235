package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// crane is built from its own module at this version: the one Myrmex's go-containerregistry is, so that the two
// differ in what they do with the library and not in the library.
const (
	craneModule  = "github.com/google/go-containerregistry"
	cranePackage = craneModule + "/cmd/crane"
	craneVersion = "v0.22.1"
)

// ensureCrane returns the crane binary to run: the one named, or crane@craneVersion, built once into
// $(go env GOCACHE)/../myrmex-bench-bin/crane-VERSION/ so that later runs do not build it again. The build runs
// outside the main module and never touches its go.mod.
func ensureCrane(ctx context.Context, named string) (string, error) {
	if named != "" {
		return exec.LookPath(named)
	}
	dir, err := benchkit.BinDir(ctx, "crane-"+craneVersion)
	if err != nil {
		return "", fmt.Errorf("%w (or name a crane binary with -crane)", err)
	}
	bin := filepath.Join(dir, "crane")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	benchkit.Logf("building crane %s into %s (once)", craneVersion, dir)
	built := filepath.Join(work, "crane")
	if err := benchkit.GoCmd(ctx, work, []string{"GOBIN=" + work}, "install", cranePackage+"@"+craneVersion); err != nil {
		// A go command that refuses `go install pkg@version` (an old toolchain, a GOFLAGS it dislikes) still
		// builds it from a throwaway module that requires it.
		benchkit.Logf("go install failed (%v); building crane from a throwaway module", err)
		mod := filepath.Join(work, "mod")
		if err := os.MkdirAll(mod, 0o755); err != nil {
			return "", err
		}
		gomod := fmt.Sprintf("module myrmex.local/bench/cranebuild\n\ngo 1.24\n\nrequire %s %s\n", craneModule, craneVersion)
		if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
			return "", err
		}
		if err := benchkit.GoCmd(ctx, mod, nil, "get", cranePackage+"@"+craneVersion); err != nil {
			return "", err
		}
		if err := benchkit.GoCmd(ctx, mod, nil, "build", "-o", built, cranePackage); err != nil {
			return "", err
		}
	}
	if err := os.Rename(built, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// usage is what a contender's process used: CPU seconds (user and system, with the children it waited for) and
// its peak resident memory in bytes (0 when GNU time is missing).
type usage struct {
	cpu    float64
	maxRSS int64
}

// tool runs a CLI contender and returns its stdout and what its process used.
//
// The peak memory is the one GNU time reads from wait4 for the process it forks. It cannot be read from this
// process's own wait4: Go starts a process with vfork, and Linux then counts the parent's peak (this benchmark's,
// hundreds of MB after it made the image) into the child's maxrss at exec. time is a small C program that
// forks, so the contender's maxrss is its own (floored at time's couple of MB).
func (b *bench) tool(ctx context.Context, bin string, args ...string) (string, usage, error) {
	rssFile := ""
	if b.timeBin != "" {
		f, err := os.CreateTemp(b.tmp, "rss-")
		if err != nil {
			return "", usage{}, err
		}
		rssFile = f.Name()
		f.Close()
		defer os.Remove(rssFile)
		args = append([]string{"-f", "%M", "-o", rssFile, bin}, args...)
		bin = b.timeBin
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var u usage
	if ps := cmd.ProcessState; ps != nil {
		u.cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	if rssFile != "" {
		// "%M" is the last line; a failed command's status line comes before it.
		out, _ := os.ReadFile(rssFile)
		lines := strings.Fields(string(out))
		if len(lines) > 0 {
			kib, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
			u.maxRSS = kib << 10
		}
	}
	if err != nil {
		return stdout.String(), u, fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err,
			benchkit.LastLines(append(stdout.Bytes(), stderr.Bytes()...), 10))
	}
	return stdout.String(), u, nil
}

// child runs one of Myrmex's operations in a child process (see child.go) and returns what it reported and used.
func (b *bench) child(ctx context.Context, args ...string) (outcome, error) {
	stdout, u, err := b.tool(ctx, b.self, append([]string{childArg}, args...)...)
	out := outcome{usage: u}
	if err != nil {
		return out, err
	}
	var st childStats
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		return out, fmt.Errorf("the child's answer %q: %w", benchkit.LastLines([]byte(stdout), 3), err)
	}
	out.digest, out.via, out.alloc, out.read = st.Digest, st.Via, st.AllocBytes, st.ReadBytes
	return out, nil
}

// resetDockerdPeak sets dockerd's peak resident memory (VmHWM) to its current size, so that dockerdPeak reads
// the peak of the round that follows (clear_refs 5, Linux ≥ 4.0). It does nothing else to dockerd.
func (b *bench) resetDockerdPeak() {
	if b.dockerdPID > 0 {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", b.dockerdPID), []byte("5"), 0)
	}
}

// dockerdPeak is dockerd's peak resident memory in bytes since the last resetDockerdPeak (VmHWM of
// /proc/PID/status): dockerd's own, not its children's (docker-untar); 0 when it cannot be read.
func (b *bench) dockerdPeak() int64 {
	if b.dockerdPID <= 0 {
		return 0
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.dockerdPID))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// selfCPU is the CPU seconds this process has used, all threads.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// readChars is the bytes this process has read through read(2) and its kin, from files and sockets alike
// (rchar of /proc/self/io).
func readChars() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// userHZ is the unit of the times in /proc/PID/stat: USER_HZ, 100 on every Linux architecture Go runs on.
const userHZ = 100

// procCPU returns the CPU seconds that pid and the children it has waited for have used (utime, stime, cutime
// and cstime of /proc/PID/stat): for dockerd, that includes the docker-untar processes it runs to unpack layers.
func procCPU(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces: count fields after its closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unreadable", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return float64(ticks) / userHZ, nil
}

// readPidFile returns the pid in file when that process is running and named comm, else 0.
func readPidFile(file, comm string) int {
	if file == "" {
		return 0
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(c)) != comm {
		return 0
	}
	return pid
}
