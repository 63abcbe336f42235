package benchkit

import (
	"strings"
	"testing"
	"time"
)

func TestHost(t *testing.T) {
	h := ReadHost()
	if h.NProc < 1 || h.MemoryMiB < 1 || h.Kernel == "" || h.LoadBefore == "" {
		t.Fatalf("ReadHost() = %+v", h)
	}
	h = Host{NProc: 2, LoadBefore: "1.50 1.0 1.0", LoadAfter: "2.00 1.0 1.0"}
	if n := h.BusyNote("CPUs"); n != "" {
		t.Errorf("load 2.0 on 2 CPUs: %q, want no note", n)
	}
	h.LoadAfter = "3.25 1.0 1.0"
	if n := h.BusyNote("CPUs and possibly the engine"); !strings.HasPrefix(n, "The machine was busy: a 1-minute load of 3.2 on 2 CPUs (other work shares the CPUs and possibly the engine).") {
		t.Errorf("busy note = %q", n)
	}
	rows := h.Rows(time.Date(2026, 11, 28, 14, 50, 0, 0, time.UTC))
	if len(rows) != 7 || rows[0] != "| date | 2026-11-28 14:50 UTC |" || rows[6] != "| load average before / after | 1.50 1.0 1.0 / 3.25 1.0 1.0 |" {
		t.Errorf("rows = %q", rows)
	}
	if NotesSection(nil) != nil || strings.Join(NotesSection([]string{"a 100%"}), "|") != "## Notes||- a 100%|" {
		t.Errorf("notes = %q", NotesSection([]string{"a 100%"}))
	}
}
