package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RunTool runs a CLI, with env added to this process's environment, and returns its stdout and the CPU seconds
// (user and system) it used. Its error ends with the last lines of its output.
func RunTool(ctx context.Context, env []string, bin string, args ...string) (string, float64, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	cpu := 0.0
	if ps := cmd.ProcessState; ps != nil {
		cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	if err != nil {
		return stdout.String(), cpu, fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err,
			LastLines(append(stdout.Bytes(), stderr.Bytes()...), 10))
	}
	return stdout.String(), cpu, nil
}

// LastLines returns the last n lines of b, for an error message.
func LastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// GoCmd runs the go command in dir, with env added, and the workspace off, so the main module is never consulted.
func GoCmd(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, LastLines(out, 10))
	}
	return nil
}

// BinDir is the directory a benchmark builds a tool into once, so that later runs do not build it again:
// $(go env GOCACHE)/../myrmex-bench-bin/NAME, name holding the tool's version ("crane-v0.22.1").
func BinDir(ctx context.Context, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOCACHE").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "", fmt.Errorf("go env GOCACHE: %v", err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "myrmex-bench-bin", name), nil
}
