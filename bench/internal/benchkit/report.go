package benchkit

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Header is what every benchmark's report starts with: when the run started and ended, its id, the code it
// measured and the order of its rounds. A report embeds it first, so its JSON fields stay at the top level, first.
type Header struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	RunID    string    `json:"run_id"`
	Source   Source    `json:"source"` // the commit measured, and whether the work tree was clean
	Order    *Order    `json:"order"`  // the seed and the contenders' order in every round
}

// End records the end of a run on host: Finished, then Ended's notes.
func (h *Header) End(ctx context.Context, host *Host, sharers string) []string {
	h.Finished = time.Now()
	return Ended(ctx, &h.Source, host, sharers)
}

// Ended reads the machine and the work tree again at the end of a run: it sets host's LoadAfter and returns the
// notes they call for, on a work tree that changed during the run (Source.Recheck) and on a busy machine
// (Host.BusyNote, with sharers).
func Ended(ctx context.Context, src *Source, host *Host, sharers string) []string {
	host.LoadAfter = LoadAvg()
	var notes []string
	for _, n := range []string{src.Recheck(ctx), host.BusyNote(sharers)} {
		if n != "" {
			notes = append(notes, n)
		}
	}
	return notes
}

// Intro is the top of a results file: its title with the date of the run, the Source's banner, and the run's id,
// start and end and how to reproduce it (markdown: "`go run ./bench/NAME`", say).
func (h Header) Intro(title, reproduce string) []string {
	out := []string{fmt.Sprintf("# %s, %s", title, h.Started.Format("2006-01-02")), ""}
	out = append(out, h.Source.Banner()...)
	return append(out, fmt.Sprintf("Run %s, %s to %s. Reproduce with %s; see [../README.md](../README.md) for what is measured.",
		h.RunID, h.Started.Format(time.RFC3339), h.Finished.Format(time.RFC3339), reproduce), "")
}

// MachineTable is a results file's section on the machine, titled heading: the date and the host, the
// benchmark's own rows (its engine, its tools), and the code measured.
func (h Header) MachineTable(heading string, host Host, rows ...string) []string {
	out := append([]string{"## " + heading, "", "| | |", "|---|---|"}, host.Rows(h.Started)...)
	out = append(append(out, rows...), h.Source.Rows()...)
	return append(out, "")
}

// ReproduceSection is a results file's last section: the commands that make it again.
func ReproduceSection(commands ...string) []string {
	out := append([]string{"## Reproduce", "", "```"}, commands...)
	return append(out, "```")
}

// Markdown is a results file being written, line by line.
type Markdown struct{ b strings.Builder }

// P writes a line: format and args as fmt.Sprintf takes them.
func (m *Markdown) P(format string, args ...any) { fmt.Fprintf(&m.b, format+"\n", args...) }

// Lines writes lines as they are.
func (m *Markdown) Lines(lines []string) {
	for _, l := range lines {
		m.b.WriteString(l + "\n")
	}
}

// String is what was written.
func (m *Markdown) String() string { return m.b.String() }

// SetupStep is an untimed step of a benchmark's setup and how long it took.
type SetupStep struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"`
}

// SetupList lists steps for a results file, "step 1.2 s; …", with decimals digits to the seconds.
func SetupList(steps []SetupStep, decimals int) string {
	s := make([]string, len(steps))
	for i, st := range steps {
		s[i] = fmt.Sprintf("%s %.*f s", st.Step, decimals, st.Seconds)
	}
	return strings.Join(s, "; ")
}

// Ratio is one contender's median wall time over another's: below 1 the first is faster, above 1 slower.
// PerRound divides the times of each round, which ran close together, so that drift in the machine's load shows
// as spread.
type Ratio struct {
	Name     string    `json:"name"`
	Value    float64   `json:"value"`
	PerRound []float64 `json:"per_round"`
}

// RatiosSection is a results file's section on ratios of Myrmex's median wall time to its peers'.
func RatiosSection(ratios []Ratio) []string {
	out := []string{"## Ratios", "", "Myrmex's median wall time over the peer's: below 1 Myrmex is faster, above 1 slower.", "",
		"| ratio | of the medians | round by round |", "|---|---:|---|"}
	for _, x := range ratios {
		out = append(out, fmt.Sprintf("| %s | **%.2f** | %s |", x.Name, x.Value, Floats(x.PerRound, "%.2f", " ")))
	}
	return append(out, "")
}

// PerRound divides a by b round by round, over the rounds both have.
func PerRound(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		out = append(out, a[i]/b[i])
	}
	return out
}
