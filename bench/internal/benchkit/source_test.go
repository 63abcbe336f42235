package benchkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a repository with one commit in a temporary directory, and returns it.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
			"-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	run("init", "-q")
	write(t, filepath.Join(dir, "main.go"), "package main\n")
	write(t, filepath.Join(dir, "bench", "results", "old.md"), "# old\n")
	run("add", ".")
	run("commit", "-q", "-m", "one")
	return dir
}

func write(t *testing.T, file, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSource(t *testing.T) {
	ctx := context.Background()
	dir := gitRepo(t)
	s := ReadSource(ctx, dir, "bench/results")
	if len(s.Commit) != 40 || !s.Clean || s.Warning != "" || s.Error != "" || s.NotCounted != "bench/results" {
		t.Fatalf("a fresh commit: %+v", s)
	}
	if err := s.Check(false); err != nil {
		t.Errorf("clean tree refused: %v", err)
	}
	if s.Banner() != nil || !strings.Contains(strings.Join(s.Rows(), "\n"), "| work tree | clean") {
		t.Errorf("clean tree: banner %q, rows %q", s.Banner(), s.Rows())
	}

	// Results, changed or new, do not make the tree dirty: the next benchmark of a `make` run must not refuse.
	write(t, filepath.Join(dir, "bench", "results", "old.md"), "# new\n")
	write(t, filepath.Join(dir, "bench", "results", "scan-2026-12-01.json"), "{}\n")
	if s2 := ReadSource(ctx, dir, "bench/results"); !s2.Clean {
		t.Errorf("changes under the results directory counted: %+v", s2)
	}
	if s2 := ReadSource(ctx, dir, ""); s2.Clean || s2.ChangesTotal != 2 {
		t.Errorf("with no results directory, its changes must count: %+v", s2)
	}
	// From a subdirectory, the results directory is relative to it.
	if s2 := ReadSource(ctx, filepath.Join(dir, "bench"), "results"); !s2.Clean || s2.NotCounted != "bench/results" {
		t.Errorf("from bench/ with -out results: %+v", s2)
	}

	// A changed file and an untracked one make it dirty.
	write(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	write(t, filepath.Join(dir, "new.go"), "package main\n")
	d := ReadSource(ctx, dir, "bench/results")
	if d.Clean || d.Warning != DirtyWarning || d.ChangesTotal != 2 || d.Commit != s.Commit {
		t.Fatalf("dirty tree: %+v", d)
	}
	err := d.Check(false)
	if err == nil || !strings.Contains(err.Error(), DirtyWarning) || !strings.Contains(err.Error(), "-allow-dirty") {
		t.Errorf("dirty tree, no -allow-dirty: %v", err)
	}
	if err := d.Check(true); err != nil {
		t.Errorf("dirty tree with -allow-dirty: %v", err)
	}
	banner := strings.Join(d.Banner(), "\n")
	if !strings.HasPrefix(banner, "> **"+DirtyWarning+".**") || !strings.Contains(banner, "`M main.go`") || !strings.Contains(banner, "`?? new.go`") {
		t.Errorf("banner:\n%s", banner)
	}
	if rows := strings.Join(d.Rows(), "\n"); !strings.Contains(rows, "**"+DirtyWarning+"**") {
		t.Errorf("rows:\n%s", rows)
	}

	// The tree changing during a run is noted; not changing, not.
	if note := d.Recheck(ctx); note != "" {
		t.Errorf("unchanged tree: %q", note)
	}
	if err := os.Remove(filepath.Join(dir, "new.go")); err != nil {
		t.Fatal(err)
	}
	if note := d.Recheck(ctx); !strings.Contains(note, "changed during the run") || d.ChangedDuringRun != note {
		t.Errorf("changed tree: %q", note)
	}

	// Not a repository: unknown, refused without -allow-dirty.
	u := ReadSource(ctx, t.TempDir(), "bench/results")
	if u.Clean || u.Error == "" || u.Warning != DirtyWarning || u.Check(false) == nil {
		t.Errorf("outside a repository: %+v", u)
	}
}
