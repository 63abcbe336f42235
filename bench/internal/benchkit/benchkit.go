// Package benchkit holds what Myrmex's benchmarks share: reading the machine they ran on and summarising rounds.
package benchkit

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// ProcField returns the value of the first "key: value" line of a /proc file, or "" when it has none.
func ProcField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAvg returns the 1, 5 and 15-minute load averages as /proc/loadavg writes them, or "".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// Load1 reads the 1-minute figure of a LoadAvg string.
func Load1(avg string) float64 {
	var l float64
	_, _ = fmt.Sscanf(avg, "%g", &l)
	return l
}

// Median returns the median of xs, 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Floats formats xs with format, joined by sep.
func Floats(xs []float64, format, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, sep)
}

// Logf writes a timestamped progress line to stderr.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// NewRunID returns a short random id that names what one run of a benchmark makes.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WriteResults writes a benchmark's results to dir as NAME-DATE.json (report, indented) and NAME-DATE.md
// (markdown), and returns the two paths, markdown first.
func WriteResults(dir, name string, started time.Time, report any, markdown string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	base := filepath.Join(dir, name+"-"+started.Format("2006-01-02"))
	js, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".md", []byte(markdown), 0o644); err != nil {
		return "", "", err
	}
	return base + ".md", base + ".json", nil
}

// Host is the machine a benchmark ran on: every benchmark's machine record embeds it (its JSON fields stay at the
// top level of the record).
type Host struct {
	Hostname   string `json:"hostname"`
	CPU        string `json:"cpu"`
	NProc      int    `json:"nproc"`
	MemoryMiB  int    `json:"memory_mib"`
	Kernel     string `json:"kernel"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"` // set by the benchmark when it ends: LoadAvg()
}

// ReadHost reads this machine, with the load average now as LoadBefore.
func ReadHost() Host {
	h := Host{CPU: ProcField("/proc/cpuinfo", "model name"), NProc: runtime.NumCPU(), LoadBefore: LoadAvg()}
	h.Hostname, _ = os.Hostname()
	var kib int
	if _, err := fmt.Sscanf(ProcField("/proc/meminfo", "MemTotal"), "%d kB", &kib); err == nil {
		h.MemoryMiB = kib / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	return h
}

// Rows are the first rows of a results file's machine table: the date the run started, then the host.
func (h Host) Rows(started time.Time) []string {
	return []string{
		fmt.Sprintf("| date | %s |", started.Format("2006-01-02 15:04 MST")),
		fmt.Sprintf("| hostname | %s |", h.Hostname),
		fmt.Sprintf("| CPU | %s |", h.CPU),
		fmt.Sprintf("| nproc | %d |", h.NProc),
		fmt.Sprintf("| memory | %d MiB |", h.MemoryMiB),
		fmt.Sprintf("| kernel | %s |", h.Kernel),
		fmt.Sprintf("| load average before / after | %s / %s |", h.LoadBefore, h.LoadAfter),
	}
}

// BusyNote says that the machine was busy (a 1-minute load, before or after, above its CPUs), or "" when it was
// not; sharers names what else shares the CPUs ("CPUs and possibly the engine").
func (h Host) BusyNote(sharers string) string {
	busy := max(Load1(h.LoadBefore), Load1(h.LoadAfter))
	if busy <= float64(h.NProc) {
		return ""
	}
	return fmt.Sprintf("The machine was busy: a 1-minute load of %.1f on %d CPUs (other work shares the %s). Ratios "+
		"within this run compare like with like; absolute times are inflated.", busy, h.NProc, sharers)
}

// NotesSection is a results file's "## Notes" section, one bullet a note, or nothing when there are none.
func NotesSection(notes []string) []string {
	if len(notes) == 0 {
		return nil
	}
	out := []string{"## Notes", ""}
	for _, n := range notes {
		out = append(out, "- "+n)
	}
	return append(out, "")
}
