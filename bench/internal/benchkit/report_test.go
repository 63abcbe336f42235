package benchkit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestHeader(t *testing.T) {
	started := time.Date(2026, 11, 28, 14, 50, 0, 0, time.UTC)
	h := Header{Started: started, Finished: started.Add(time.Minute), RunID: "abc123", Source: Source{Commit: "c0ffee", Clean: true},
		Order: NewOrder(7)}

	// Embedded first in a report, its fields stay at the top of the JSON, first and in this order.
	js, err := json.Marshal(struct {
		Header
		Rounds int `json:"rounds"`
	}{h, 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"started":"2026-11-28T14:50:00Z","finished":"2026-11-28T14:51:00Z","run_id":"abc123","source":{"commit":"c0ffee",`; !strings.HasPrefix(string(js), want) ||
		!strings.HasSuffix(string(js), `,"rounds":3}`) {
		t.Errorf("JSON %s", js)
	}

	intro := strings.Join(h.Intro("Scan benchmark", "`go run ./bench/scan`"), "\n")
	if want := "# Scan benchmark, 2026-11-28\n\nRun abc123, 2026-11-28T14:50:00Z to 2026-11-28T14:51:00Z. Reproduce with " +
		"`go run ./bench/scan`; see [../README.md](../README.md) for what is measured.\n"; intro != want {
		t.Errorf("intro:\n%s\nwant:\n%s", intro, want)
	}
	h.Source.Clean = false
	if intro := h.Intro("Scan benchmark", "x"); intro[2] != "> **"+DirtyWarning+".** The benchmark ran from a work tree that was not commit `c0ffee` (0 changed paths), with `-allow-dirty`." {
		t.Errorf("dirty intro: %q", intro)
	}

	table := h.MachineTable("Machine and tools", Host{NProc: 2}, "| Go | go1.26 |")
	if table[0] != "## Machine and tools" || table[4] != "| date | 2026-11-28 14:50 UTC |" || table[11] != "| Go | go1.26 |" ||
		!strings.HasPrefix(table[12], "| commit | `c0ffee`") || table[len(table)-1] != "" {
		t.Errorf("machine table: %q", table)
	}
}

func TestSections(t *testing.T) {
	if got := strings.Join(ReproduceSection("make bench", "go run ./bench/x"), "\n"); got != "## Reproduce\n\n```\nmake bench\ngo run ./bench/x\n```" {
		t.Errorf("reproduce: %q", got)
	}
	steps := []SetupStep{{Step: "seed", Seconds: 1.25}, {Step: "start", Seconds: 0.5}}
	if got := SetupList(steps, 1); got != "seed 1.2 s; start 0.5 s" {
		t.Errorf("setup, 1 decimal: %q", got)
	}
	if got := SetupList(steps, 2); got != "seed 1.25 s; start 0.50 s" {
		t.Errorf("setup, 2 decimals: %q", got)
	}
	if got := PerRound([]float64{1, 2, 3}, []float64{2, 4}); len(got) != 2 || got[0] != 0.5 || got[1] != 0.5 {
		t.Errorf("per round: %v", got)
	}
	if PerRound(nil, []float64{1}) != nil {
		t.Error("per round of no rounds is not nil")
	}
	rs := RatiosSection([]Ratio{{Name: "push: Myrmex / docker push", Value: 0.52, PerRound: []float64{0.5, 0.55}}})
	if rs[0] != "## Ratios" || rs[6] != "| push: Myrmex / docker push | **0.52** | 0.50 0.55 |" || rs[7] != "" {
		t.Errorf("ratios: %q", rs)
	}
	var md Markdown
	md.P("# %s", "title")
	md.Lines([]string{"", "a 100%"})
	if md.String() != "# title\n\na 100%\n" {
		t.Errorf("markdown: %q", md.String())
	}
}
