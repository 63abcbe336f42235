package benchkit

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if f.Out != "bench/results" {
		t.Errorf("-out defaults to %q", f.Out)
	}
	dir := filepath.Join(t.TempDir(), "results")
	if err := fs.Parse([]string{"-out", dir, "-seed", "42", "-allow-dirty"}); err != nil {
		t.Fatal(err)
	}
	if f.Out != dir || f.Seed != 42 || !f.AllowDirty || f.Order().Seed != 42 {
		t.Errorf("flags: %+v", f)
	}
	started := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	if err := f.Write("x", started, map[string]int{"n": 1}, "# x\n"); err != nil {
		t.Fatal(err)
	}
	if js, err := os.ReadFile(filepath.Join(dir, "x-2026-12-02.json")); err != nil || string(js) != "{\n  \"n\": 1\n}\n" {
		t.Errorf("json: %q, %v", js, err)
	}
	if md, err := os.ReadFile(filepath.Join(dir, "x-2026-12-02.md")); err != nil || string(md) != "# x\n" {
		t.Errorf("markdown: %q, %v", md, err)
	}
	f.Out = ""
	if err := f.Write("y", started, nil, ""); err != nil {
		t.Errorf("no -out: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "y-2026-12-02.md")); !os.IsNotExist(err) {
		t.Errorf("no -out wrote results: %v", err)
	}
	if _, err := f.Source(t.Context()); err != nil {
		t.Errorf("no -out refused: %v", err)
	}
}
