package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// reproduce is the command that makes a results file.
const reproduce = "make bench"

// report is everything a results file holds; the JSON file is this struct.
type report struct {
	benchkit.Header
	Machine   machine          `json:"machine"`
	Settings  settings         `json:"settings"`
	Lifecycle []measurement    `json:"lifecycle"`
	Stats     []measurement    `json:"stats,omitempty"`
	Scale     []scalePoint     `json:"scale,omitempty"`
	Ratios    []benchkit.Ratio `json:"ratios"` // Myrmex's median wall time over a peer's
	Notes     []string         `json:"notes,omitempty"`
	Command   string           `json:"command"`
}

type machine struct {
	benchkit.Host
	EngineVersion string `json:"engine_version"`
	EngineAPI     string `json:"engine_api"`
	StorageDriver string `json:"storage_driver"`
	CgroupVersion string `json:"cgroup_version"`
	CgroupDriver  string `json:"cgroup_driver"`
	EngineHost    string `json:"engine_host"`
	DockerCLI     string `json:"docker_cli"`
	GoVersion     string `json:"go_version"`
}

type settings struct {
	Cycles             int    `json:"cycles"`
	Concurrency        int    `json:"concurrency"`
	Rounds             int    `json:"rounds"`
	Warmup             int    `json:"warmup_cycles"`
	StopTimeoutSeconds int    `json:"stop_timeout_seconds"`
	StatsContainers    int    `json:"stats_containers"`
	StatsRounds        int    `json:"stats_rounds"`
	Scale              []int  `json:"scale_cycles,omitempty"`
	ScaleRounds        int    `json:"scale_rounds,omitempty"`
	Image              string `json:"image"`
	Command            string `json:"container_command"`
	DockerCLIPath      string `json:"docker_cli_path"`
}

func settingsOf(cfg config, docker string) settings {
	return settings{
		Cycles: cfg.cycles, Concurrency: cfg.concurrency, Rounds: cfg.rounds, Warmup: cfg.warmup,
		StopTimeoutSeconds: cfg.stopTimeout, StatsContainers: cfg.statsN, StatsRounds: cfg.statsRounds,
		Scale: cfg.scale, ScaleRounds: cfg.scaleRounds,
		Image: cfg.image, Command: strings.Join(sleepCmd, " "), DockerCLIPath: docker,
	}
}

// scalePoint is the scale part at one cycle count: every concurrent contender's rounds.
type scalePoint struct {
	Cycles     int           `json:"cycles"`
	Contenders []measurement `json:"contenders"`
}

// figures draws the scale part: the whole time and the time per cycle against the number of cycles.
func (r *report) figures() []benchkit.Figure {
	if len(r.Scale) == 0 {
		return nil
	}
	total := benchkit.Figure{Name: "scale", Title: fmt.Sprintf("Container lifecycle at scale: N create→start→stop→remove cycles, %d at once", r.Settings.Concurrency),
		XLabel: "cycles (N)", YLabel: "median seconds for N cycles"}
	per := benchkit.Figure{Name: "scale-per-cycle", Title: "Container lifecycle at scale: cost of one cycle",
		XLabel: "cycles (N)", YLabel: "median ms per cycle"}
	for i, m := range r.Scale[0].Contenders {
		ts, ps := benchkit.Series{Name: m.Title}, benchkit.Series{Name: m.Title}
		for _, pt := range r.Scale {
			if i >= len(pt.Contenders) {
				continue
			}
			c := pt.Contenders[i]
			ts.X, ts.Y = append(ts.X, float64(pt.Cycles)), append(ts.Y, c.Median)
			ps.X, ps.Y = append(ps.X, float64(pt.Cycles)), append(ps.Y, c.PerOpMs)
		}
		total.Series, per.Series = append(total.Series, ts), append(per.Series, ps)
	}
	return []benchkit.Figure{total, per}
}

// measurement is one contender's rounds and their median. Ops is the number of cycles (lifecycle) or containers
// sampled (stats) per round.
type measurement struct {
	Key           string    `json:"key"`
	Title         string    `json:"title"`
	How           string    `json:"how"`
	Concurrency   int       `json:"concurrency,omitempty"`
	Ops           int       `json:"ops_per_round"`
	Rounds        []float64 `json:"rounds_seconds"`
	Median        float64   `json:"median_seconds"`
	PerOpMs       float64   `json:"median_ms_per_op"`
	AllocBytes    []uint64  `json:"alloc_bytes,omitempty"`
	Mallocs       []uint64  `json:"mallocs,omitempty"`
	AllocPerOpKiB float64   `json:"median_alloc_kib_per_op,omitempty"`
	MallocsPerOp  float64   `json:"median_mallocs_per_op,omitempty"`
	OthersSampled []int     `json:"others_sampled,omitempty"`
	Requests      *requests `json:"engine_requests,omitempty"`
	inProcess     bool
}

func (m *measurement) add(s sample) {
	m.Rounds = append(m.Rounds, s.seconds)
	if s.alloc > 0 {
		m.inProcess = true
		m.AllocBytes = append(m.AllocBytes, s.alloc)
		m.Mallocs = append(m.Mallocs, s.mallocs)
	}
	if s.extra > 0 || m.OthersSampled != nil {
		m.OthersSampled = append(m.OthersSampled, s.extra)
	}
}

func (m *measurement) summarize() {
	m.Median = benchkit.Median(m.Rounds)
	m.PerOpMs = m.Median * 1000 / float64(m.Ops)
	if m.inProcess {
		m.AllocPerOpKiB = medianU(m.AllocBytes) / 1024 / float64(m.Ops)
		m.MallocsPerOp = medianU(m.Mallocs) / float64(m.Ops)
	}
}

func medianU(xs []uint64) float64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return benchkit.Median(f)
}

func (r *report) ratios() {
	find := func(ms []measurement, key string) *measurement {
		for i := range ms {
			if ms[i].Key == key {
				return &ms[i]
			}
		}
		return nil
	}
	add := func(ms []measurement, num, den, name string) {
		a, b := find(ms, num), find(ms, den)
		if a == nil || b == nil || b.Median == 0 {
			return
		}
		r.Ratios = append(r.Ratios, benchkit.Ratio{Name: name, Value: a.Median / b.Median, PerRound: benchkit.PerRound(a.Rounds, b.Rounds)})
	}
	c := r.Settings.Concurrency
	add(r.Lifecycle, "myrmex", "cli-seq", "lifecycle: Myrmex / docker CLI sequential")
	add(r.Lifecycle, "myrmex", "cli-xargs", fmt.Sprintf("lifecycle: Myrmex / docker CLI xargs -P%d", c))
	add(r.Lifecycle, "myrmex", "raw-api", fmt.Sprintf("lifecycle: Myrmex / raw Engine API, both -P%d", c))
	add(r.Stats, "myrmex", "docker-stats", "stats: Myrmex / docker stats --no-stream")
	add(r.Stats, "myrmex", "raw-api", "stats: Myrmex / raw Engine API (one request per container)")
	add(r.Stats, "myrmex-engine", "docker-stats", "stats: Myrmex via engine / docker stats --no-stream")
	add(r.Stats, "raw-api", "docker-stats", "stats: raw Engine API / docker stats --no-stream (the floor of any client of the API)")
	for _, pt := range r.Scale {
		add(pt.Contenders, "myrmex", "cli-xargs", fmt.Sprintf("scale %d: Myrmex / docker CLI xargs -P%d", pt.Cycles, c))
		add(pt.Contenders, "myrmex", "raw-api", fmt.Sprintf("scale %d: Myrmex / raw Engine API", pt.Cycles))
	}
	r.Command = reproduce
}

// describe reads the machine and the engine. What it cannot read is left empty and said in the notes.
func describe(ctx context.Context, raw *rawAPI, docker string) (machine, []string) {
	m := machine{Host: benchkit.ReadHost(), GoVersion: runtime.Version(), EngineHost: raw.host}
	var notes []string
	var ver struct{ Version, APIVersion string }
	if err := raw.do(ctx, http.MethodGet, "/version", nil, &ver, http.StatusOK); err != nil {
		notes = append(notes, "engine version unknown: "+err.Error())
	}
	m.EngineVersion, m.EngineAPI = ver.Version, ver.APIVersion
	var info struct{ Driver, CgroupVersion, CgroupDriver string }
	if err := raw.do(ctx, http.MethodGet, "/info", nil, &info, http.StatusOK); err != nil {
		notes = append(notes, "engine info unknown: "+err.Error())
	}
	m.StorageDriver, m.CgroupVersion, m.CgroupDriver = info.Driver, info.CgroupVersion, info.CgroupDriver
	if out, err := exec.CommandContext(ctx, docker, "version", "--format", "{{.Client.Version}} (API {{.Client.APIVersion}}, negotiated)").Output(); err == nil {
		m.DockerCLI = strings.TrimSpace(string(out))
	}
	return m, notes
}

func (r *report) printTable(w io.Writer) {
	fmt.Fprintf(w, "%s\n%s\n\n", r.Source.Summary(), r.Order.Summary())
	section := func(title, per string, ms []measurement) {
		fmt.Fprintf(w, "%s\n\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "contender\tconcurrency\trounds (s)\tmedian (s)\t%s\talloc KiB/op\trequests/op\t\n", per)
		for _, m := range ms {
			alloc := "-"
			if m.inProcess {
				alloc = fmt.Sprintf("%.1f", m.AllocPerOpKiB)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.3f\t%.1f\t%s\t%s\t\n", m.Title, m.Concurrency, benchkit.Floats(m.Rounds, "%.3f", " "), m.Median, m.PerOpMs, alloc, m.Requests.perOpString())
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	section(fmt.Sprintf("lifecycle: %d create→start→stop→remove cycles, stop timeout %ds", r.Settings.Cycles, r.Settings.StopTimeoutSeconds),
		"ms/cycle", r.Lifecycle)
	if len(r.Stats) > 0 {
		section(fmt.Sprintf("stats: %d running containers, one sample each", r.Settings.StatsContainers), "ms/container", r.Stats)
	}
	for _, pt := range r.Scale {
		section(fmt.Sprintf("scale: %d cycles", pt.Cycles), "ms/cycle", pt.Contenders)
	}
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "%-58s %6.2f   (per round: %s)\n", x.Name, x.Value, benchkit.Floats(x.PerRound, "%.2f", " "))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func (r *requests) perOpString() string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.3g", r.PerOp)
}

func (r *report) markdown() string {
	var md benchkit.Markdown
	p := md.P
	m, s := r.Machine, r.Settings
	md.Lines(r.Intro("Lifecycle benchmark", "`"+r.Command+"`"))
	md.Lines(r.MachineTable("Machine", m.Host,
		fmt.Sprintf("| engine | dockerd %s, API %s, %s, cgroup v%s (%s) |", m.EngineVersion, m.EngineAPI, m.StorageDriver, m.CgroupVersion, m.CgroupDriver),
		fmt.Sprintf("| engine address | %s |", m.EngineHost),
		fmt.Sprintf("| docker CLI | %s, %s |", m.DockerCLI, s.DockerCLIPath),
		fmt.Sprintf("| Go | %s |", m.GoVersion)))
	p("## Settings")
	p("")
	p("Container: `%s` running `%s`. Stop timeout %ds for every contender. %d rounds per contender, in a random order "+
		"drawn anew for every round (seed %d, below), after %d unrecorded warm-up cycles each; the median round is reported.",
		s.Image, s.Command, s.StopTimeoutSeconds, s.Rounds, r.Order.Seed, s.Warmup)
	p("")
	table := func(title, per string, ms []measurement) {
		p("## %s", title)
		p("")
		p("| contender | how | concurrency | rounds (s) | median (s) | %s | alloc KiB/op | mallocs/op | API requests/op |", per)
		p("|---|---|---:|---|---:|---:|---:|---:|---:|")
		for _, x := range ms {
			alloc, mallocs := "–", "–"
			if x.inProcess {
				alloc, mallocs = fmt.Sprintf("%.1f", x.AllocPerOpKiB), fmt.Sprintf("%.0f", x.MallocsPerOp)
			}
			p("| %s | %s | %d | %s | **%.3f** | %.1f | %s | %s | %s |", x.Title, x.How, x.Concurrency, benchkit.Floats(x.Rounds, "%.3f", " "), x.Median, x.PerOpMs, alloc, mallocs, x.Requests.perOpString())
		}
		p("")
		for _, x := range ms {
			if x.Requests != nil {
				p("- %s, Engine API requests per op: %s", x.Title, x.Requests)
			}
		}
		p("")
	}
	table(fmt.Sprintf("Lifecycle: %d create→start→stop→remove cycles", s.Cycles), "ms/cycle", r.Lifecycle)
	if len(r.Stats) > 0 {
		table(fmt.Sprintf("Stats: %d running containers, one sample each", s.StatsContainers), "ms/container", r.Stats)
	}
	if len(r.Scale) > 0 {
		p("## Scale: the concurrent contenders at %s cycles", joinInts(s.Scale))
		p("")
		p("The same cycles as above, %d at once, at each count; %d rounds per contender and count, in a random order drawn "+
			"anew for every round; the median round is reported.", s.Concurrency, s.ScaleRounds)
		p("")
		for _, f := range r.figures() {
			p("![%s](%s)", f.Title, benchkit.FigureFile("lifecycle", r.Started, f.Name))
			p("")
		}
		p("| cycles | contender | rounds (s) | median (s) | ms/cycle | alloc KiB/op |")
		p("|---:|---|---|---:|---:|---:|")
		for _, pt := range r.Scale {
			for _, x := range pt.Contenders {
				alloc := "–"
				if x.inProcess {
					alloc = fmt.Sprintf("%.1f", x.AllocPerOpKiB)
				}
				p("| %d | %s | %s | **%.3f** | %.1f | %s |", pt.Cycles, x.Title, benchkit.Floats(x.Rounds, "%.3f", " "), x.Median, x.PerOpMs, alloc)
			}
		}
		p("")
	}
	md.Lines(r.Order.Markdown())
	md.Lines(benchkit.RatiosSection(r.Ratios))
	md.Lines(benchkit.NotesSection(r.Notes))
	md.Lines(benchkit.ReproduceSection(r.Command))
	p("")
	p("or, against an engine that is already up and seeded: `DOCKER_HOST=%s go run ./bench/lifecycle`.", m.EngineHost)
	return md.String()
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
