package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// DirtyWarning is what a results file says, prominently, when the work tree it ran from was not its commit.
const DirtyWarning = "dirty: results not reproducible from a commit"

// maxChanges bounds the changed paths a results file lists.
const maxChanges = 100

// Source is the code a run measured: the commit checked out (git rev-parse HEAD) and whether the work tree was
// that commit (git status --porcelain printed nothing). Changes under the results directory do not count: they are
// results, not code, and a run that follows another would otherwise always be dirty.
type Source struct {
	Commit   string `json:"commit"`             // git rev-parse HEAD; "" when unknown
	Describe string `json:"describe,omitempty"` // git describe --always
	Clean    bool   `json:"clean"`
	// Warning is DirtyWarning when the tree was not clean or the commit could not be read.
	Warning string `json:"warning,omitempty"`
	// Changes are git status --porcelain's lines, at most maxChanges, when the tree was not clean.
	Changes      []string `json:"changes,omitempty"`
	ChangesTotal int      `json:"changes_total,omitempty"`
	NotCounted   string   `json:"not_counted,omitempty"` // the results directory, relative to the work tree's top
	Error        string   `json:"error,omitempty"`       // why the commit or the status could not be read
	// ChangedDuringRun says how the work tree differed at the end of the run from its start, if it did. The
	// program measured was built before the start, so the start is what was measured.
	ChangedDuringRun string `json:"changed_during_run,omitempty"`

	dir, outDir string
}

// ReadSource reads the commit and the state of the work tree that holds dir (the benchmark's working directory,
// "."). outDir is the results directory; changes under it do not count. Nothing is written: git status runs with
// --no-optional-locks, so it does not even refresh the index.
func ReadSource(ctx context.Context, dir, outDir string) Source {
	s := Source{dir: dir, outDir: outDir}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"--no-optional-locks", "-C", dir}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && len(ee.Stderr) > 0 {
				err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimRight(string(out), "\n"), nil
	}
	fail := func(err error) Source {
		s.Clean, s.Warning, s.Error = false, DirtyWarning, err.Error()
		return s
	}
	var err error
	if s.Commit, err = git("rev-parse", "HEAD"); err != nil {
		return fail(err)
	}
	s.Describe, _ = git("describe", "--always")
	prefix, err := git("rev-parse", "--show-prefix") // dir relative to the top, "" or "a/b/"
	if err != nil {
		return fail(err)
	}
	args := []string{"status", "--porcelain", "--", ":(top)"}
	if rel, ok := underTop(prefix, outDir); ok {
		s.NotCounted = rel
		args = append(args, ":(top,exclude)"+rel)
	}
	status, err := git(args...)
	if err != nil {
		return fail(err)
	}
	var lines []string
	if status != "" {
		lines = strings.Split(status, "\n")
	}
	s.Clean = len(lines) == 0
	if !s.Clean {
		s.Warning = DirtyWarning
		s.ChangesTotal = len(lines)
		s.Changes = lines[:min(len(lines), maxChanges)]
	}
	return s
}

// underTop returns outDir relative to the work tree's top, when it is a relative path inside it; prefix is the
// working directory relative to the top (git rev-parse --show-prefix).
func underTop(prefix, outDir string) (string, bool) {
	if outDir == "" || filepath.IsAbs(outDir) {
		return "", false
	}
	rel := filepath.ToSlash(filepath.Clean(filepath.Join(prefix, outDir)))
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}

// Check refuses a run that would write results from a tree that is not its commit, unless allowDirty.
func (s Source) Check(allowDirty bool) error {
	if s.Clean || allowDirty {
		return nil
	}
	why := fmt.Sprintf("the work tree differs from commit %s (%s; first: %s)", short(s.Commit), changed(s.ChangesTotal), first(s.Changes))
	if s.Error != "" {
		why = "the commit cannot be read: " + s.Error
	}
	return fmt.Errorf("%s: %s. Commit or set aside the changes and run again, or give -allow-dirty to write results "+
		"marked %q (or -out '' to write none)", DirtyWarning, why, DirtyWarning)
}

// Recheck reads the work tree again at the end of a run and, when its commit or its changes differ from those at
// the start, says so in ChangedDuringRun and returns that note.
func (s *Source) Recheck(ctx context.Context) string {
	now := ReadSource(ctx, s.dir, s.outDir)
	if now.Commit == s.Commit && now.Clean == s.Clean && slices.Equal(now.Changes, s.Changes) && now.Error == s.Error {
		return ""
	}
	state := "clean"
	if !now.Clean {
		state = changed(now.ChangesTotal)
	}
	s.ChangedDuringRun = fmt.Sprintf("The work tree changed during the run: at the end, commit %s, %s (at the start: commit %s, %s). "+
		"The program measured was built before the run started; these results are those of the start.",
		short(now.Commit), state, short(s.Commit), s.state())
	return s.ChangedDuringRun
}

func (s Source) state() string {
	if s.Clean {
		return "clean"
	}
	if s.Error != "" {
		return "unknown (" + s.Error + ")"
	}
	return changed(s.ChangesTotal)
}

func changed(n int) string {
	if n == 1 {
		return "1 changed path"
	}
	return fmt.Sprintf("%d changed paths", n)
}

// Summary is one line for a benchmark's table on stdout.
func (s Source) Summary() string {
	if s.Clean {
		return fmt.Sprintf("commit %s (%s), clean", s.Commit, s.Describe)
	}
	return fmt.Sprintf("commit %s, %s: %s", orUnknown(s.Commit), s.state(), strings.ToUpper(DirtyWarning))
}

// Banner is what a results file says right under its title: nothing for a clean tree, a warning otherwise.
func (s Source) Banner() []string {
	if s.Clean {
		return nil
	}
	out := []string{fmt.Sprintf("> **%s.** The benchmark ran from a work tree that was not commit `%s` (%s), with "+
		"`-allow-dirty`.", DirtyWarning, orUnknown(s.Commit), s.state())}
	if len(s.Changes) > 0 {
		out = append(out, ">", "> Changed: "+code(s.Changes[:min(len(s.Changes), 20)])+more(s.ChangesTotal, 20))
	}
	return append(out, "")
}

// Rows are the machine table's rows on the code measured.
func (s Source) Rows() []string {
	rows := []string{fmt.Sprintf("| commit | `%s` (%s) |", orUnknown(s.Commit), orUnknown(s.Describe))}
	if s.Clean {
		note := ""
		if s.NotCounted != "" {
			note = fmt.Sprintf(" (changes under %s, the results, not counted)", s.NotCounted)
		}
		rows = append(rows, fmt.Sprintf("| work tree | clean: the commit%s |", note))
	} else {
		rows = append(rows, fmt.Sprintf("| work tree | **%s**: %s |", DirtyWarning, s.state()))
	}
	if s.ChangedDuringRun != "" {
		rows = append(rows, fmt.Sprintf("| changed during the run | %s |", s.ChangedDuringRun))
	}
	return rows
}

func short(commit string) string { return orUnknown(commit[:min(12, len(commit))]) }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func first(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.TrimSpace(xs[0])
}

func code(xs []string) string {
	c := make([]string, len(xs))
	for i, x := range xs {
		c[i] = "`" + strings.TrimSpace(x) + "`"
	}
	return strings.Join(c, ", ")
}

func more(total, shown int) string {
	if total <= shown {
		return ""
	}
	return fmt.Sprintf(" and %d more", total-shown)
}
