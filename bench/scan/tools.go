package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// Syft is built from its own module at this version, the newest the Go module proxy served when the benchmark
// was written, with the version stamped in as its releases are (-X main.version), so that `syft version` and the
// SBOM's descriptor name it.
const (
	syftModule  = "github.com/anchore/syft"
	syftPackage = syftModule + "/cmd/syft"
	syftVersion = "v1.57.1"
)

// ensureSyft returns the syft binary to run and how it was built: the one named, or syft@syftVersion, built once
// into $(go env GOCACHE)/../myrmex-bench-bin/syft-VERSION/ so that later runs do not build it again (several
// minutes cold). The build runs outside the main module and never touches its go.mod.
func ensureSyft(ctx context.Context, named string) (bin, how string, err error) {
	if named != "" {
		bin, err := exec.LookPath(named)
		return bin, "given with -syft", err
	}
	dir, err := benchkit.BinDir(ctx, "syft-"+syftVersion)
	if err != nil {
		return "", "", fmt.Errorf("%w (or name a syft binary with -syft)", err)
	}
	bin = filepath.Join(dir, "syft")
	record := filepath.Join(dir, "BUILD")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		b, _ := os.ReadFile(record)
		return bin, strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(work)
	goVersion, _ := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	ldflags := "-ldflags=-X main.version=" + syftVersion
	benchkit.Logf("building syft %s into %s (once; several minutes when the module cache is cold)", syftVersion, dir)
	start := time.Now()
	built := filepath.Join(work, "syft")
	how = fmt.Sprintf("go install %s %s@%s (GOWORK=off, %s)", ldflags, syftPackage, syftVersion, strings.TrimSpace(string(goVersion)))
	if err := benchkit.GoCmd(ctx, work, []string{"GOBIN=" + work}, "install", ldflags, syftPackage+"@"+syftVersion); err != nil {
		// `go install pkg@version` refuses a module whose go.mod has replace directives; a throwaway module that
		// requires it builds it all the same.
		benchkit.Logf("go install failed (%v); building syft from a throwaway module", err)
		mod := filepath.Join(work, "mod")
		if err := os.MkdirAll(mod, 0o755); err != nil {
			return "", "", err
		}
		gomod := fmt.Sprintf("module myrmex.local/bench/syftbuild\n\ngo 1.26\n\nrequire %s %s\n", syftModule, syftVersion)
		if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
			return "", "", err
		}
		if err := benchkit.GoCmd(ctx, mod, nil, "get", syftPackage+"@"+syftVersion); err != nil {
			return "", "", err
		}
		if err := benchkit.GoCmd(ctx, mod, nil, "build", ldflags, "-o", built, syftPackage); err != nil {
			return "", "", err
		}
		how = fmt.Sprintf("go build %s %s in a throwaway module requiring %s %s (GOWORK=off, %s)", ldflags, syftPackage, syftModule,
			syftVersion, strings.TrimSpace(string(goVersion)))
	}
	how += fmt.Sprintf(", built in %.0f s", time.Since(start).Seconds())
	if err := os.WriteFile(record, []byte(how+"\n"), 0o644); err != nil {
		return "", "", err
	}
	if err := os.Rename(built, bin); err != nil {
		return "", "", err
	}
	return bin, how, nil
}

// proc is what a child process cost: wall time from start to exit, the CPU seconds it used and its peak resident
// memory, both from the rusage wait4 returns.
type proc struct {
	seconds, user, system float64
	maxRSS                int64 // bytes
	stdout                []byte
}

// launchSource is the launcher every contender runs through (see runChild).
//
//go:embed testdata/launch/main.go
var launchSource []byte

// buildLauncher builds the launcher into dir, from a module of its own.
func buildLauncher(ctx context.Context, dir string) (string, error) {
	src := filepath.Join(dir, "launch-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module myrmex.local/bench/launch\n\ngo 1.26\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), launchSource, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "launch")
	return bin, benchkit.GoCmd(ctx, src, nil, "build", "-o", bin, ".")
}

// runChild runs cmd to its end and measures it, through the launcher (testdata/launch), which runs cmd as its
// own child and reports cmd's wall time, CPU seconds and ru_maxrss. Measured from this process instead, every
// contender would weigh at least as much as the benchmark: on Linux a child's ru_maxrss is at least its parent's
// peak resident set when it called exec (exec records the peak of the memory it leaves, and os/exec's child runs
// on the parent's memory until then), and the benchmark holds the advisory export for a while. The launcher holds
// about 2.5 MB, the floor under every figure (the results give it, measured on /bin/true).
func runChild(launcher string, cmd *exec.Cmd) (proc, error) {
	var stdout, stderr bytes.Buffer
	stats, err := os.CreateTemp(cmd.Dir, "launch-*.json")
	if err != nil {
		return proc{}, err
	}
	stats.Close()
	defer os.Remove(stats.Name())
	l := exec.Command(launcher, append([]string{stats.Name(), cmd.Path}, cmd.Args[1:]...)...)
	l.Dir, l.Env = cmd.Dir, cmd.Env
	l.Stdout, l.Stderr = &stdout, &stderr
	err = l.Run()
	p := proc{stdout: stdout.Bytes()}
	var st struct {
		Seconds float64 `json:"seconds"`
		User    float64 `json:"user"`
		System  float64 `json:"system"`
		MaxRSS  int64   `json:"max_rss"`
	}
	if b, rerr := os.ReadFile(stats.Name()); rerr == nil && json.Unmarshal(b, &st) == nil {
		p.seconds, p.user, p.system, p.maxRSS = st.Seconds, st.User, st.System, st.MaxRSS
	}
	if err != nil {
		return p, fmt.Errorf("%s %s: %w: %s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "), err,
			benchkit.LastLines(append(stdout.Bytes(), stderr.Bytes()...), 15))
	}
	if p.maxRSS == 0 {
		return p, errors.New("the launcher reported no ru_maxrss for the child")
	}
	return p, nil
}

// moduleRoot is the main module's directory, found upwards from the working directory: the real advisories the
// generated export holds are there.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/codomyrmex/containerization\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark from within the github.com/codomyrmex/containerization module")
		}
		dir = parent
	}
}
