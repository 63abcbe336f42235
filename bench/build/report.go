package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/internal/testenv"
)

// report is everything a results file holds; the JSON file is this struct.
type report struct {
	benchkit.Header
	Machine    machine              `json:"machine"`
	Rounds     int                  `json:"rounds"`
	Dockerfile string               `json:"dockerfile"`
	Setup      []benchkit.SetupStep `json:"setup"`
	Contenders []measurement        `json:"contenders"`
	Identical  bool                 `json:"content_identical_across_contenders"`
	Ratios     []ratio              `json:"ratios"`
	Notes      []string             `json:"notes,omitempty"`
	Command    string               `json:"command"`
}

type machine struct {
	benchkit.Host
	EngineVersion string `json:"engine_version"`
	EngineHost    string `json:"engine_host"`
	DockerCLI     string `json:"docker_cli"`
	Buildkitd     string `json:"buildkitd"`
	Buildctl      string `json:"buildctl"`
	Runc          string `json:"runc"`
	GoVersion     string `json:"go_version"`
}

// measurement is one contender's rounds, cold and warm, and what they built.
type measurement struct {
	Key        string    `json:"key"`
	Title      string    `json:"title"`
	Builder    string    `json:"builder"`
	How        string    `json:"how"`
	Cold       []float64 `json:"cold_seconds"`
	Warm       []float64 `json:"warm_seconds"`
	MedianCold float64   `json:"median_cold_seconds"`
	MedianWarm float64   `json:"median_warm_seconds"`
	CacheHits  []int     `json:"cache_hits"` // cold, warm per round; -1: the tool does not report them
	Images     []string  `json:"images"`     // image IDs (engine) or OCI manifest digests, cold, warm per round
	Content    string    `json:"content"`    // contentDigest of the final stage's files
	Files      int       `json:"files"`
}

// ratio is Myrmex's median wall time over a peer's: below 1 Myrmex is faster, above 1 slower.
type ratio struct {
	Name        string    `json:"name"`
	SameBuilder bool      `json:"same_builder"`
	Value       float64   `json:"value"`
	PerRound    []float64 `json:"per_round"`
}

func describe(ctx context.Context, b *bench) machine {
	m := machine{Host: benchkit.ReadHost(), EngineHost: b.cfg.dockerHost, GoVersion: runtime.Version()}
	first := func(name string, args ...string) string {
		out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
		return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	m.DockerCLI = first(b.docker, "version", "--format", "{{.Client.Version}}")
	m.EngineVersion = first(b.docker, "version", "--format", "{{.Server.Version}}")
	// Built from buildkit's module, the binaries carry no version stamp: the module version is the one required.
	m.Buildkitd = testenv.BuildkitVersion + ", " + b.buildkitdBin
	m.Buildctl = testenv.BuildkitVersion + ", " + b.buildctl
	m.Runc = first("runc", "--version")
	return m
}

func (r *report) finish() {
	r.Dockerfile = dockerfile
	r.Command = "DOCKER_HOST=" + r.Machine.EngineHost + " go run ./bench/build"
	if r.Rounds != 3 {
		r.Command += fmt.Sprintf(" -rounds %d", r.Rounds)
	}
	r.Identical = true
	for i := range r.Contenders {
		c := &r.Contenders[i]
		c.MedianCold, c.MedianWarm = benchkit.Median(c.Cold), benchkit.Median(c.Warm)
		if c.Content != r.Contenders[0].Content {
			r.Identical = false
		}
	}
	if !r.Identical {
		r.Notes = append(r.Notes, "The contenders' final images do NOT hold identical files under /out and /etc/app; see the content column.")
	}
	add := func(num, den, name string, same bool) {
		a, b := r.find(num), r.find(den)
		for _, k := range []struct {
			kind string
			x, y []float64
		}{{"cold", a.Cold, b.Cold}, {"warm", a.Warm, b.Warm}} {
			r.Ratios = append(r.Ratios, ratio{Name: k.kind + ": " + name, SameBuilder: same, Value: benchkit.Median(k.x) / benchkit.Median(k.y),
				PerRound: benchkit.PerRound(k.x, k.y)})
		}
	}
	add("myrmex-buildkitd", "buildctl", "Myrmex on buildkitd / buildctl (same builder)", true)
	add("myrmex-engine", "docker-classic", "Myrmex on the engine's BuildKit / docker build classic (DIFFERENT builders)", false)
}

func (r *report) find(key string) *measurement {
	for i := range r.Contenders {
		if r.Contenders[i].Key == key {
			return &r.Contenders[i]
		}
	}
	panic("no contender " + key)
}

func (r *report) printTable(w io.Writer) {
	fmt.Fprintf(w, "%s\n%s\n\n", r.Source.Summary(), r.Order.Summary())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "contender\tbuilder\tcold median s\twarm median s\tcold rounds\twarm rounds")
	for _, c := range r.Contenders {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%s\t%s\n", c.Key, c.Builder, c.MedianCold, c.MedianWarm, benchkit.Floats(c.Cold, "%.2f", ", "), benchkit.Floats(c.Warm, "%.2f", ", "))
	}
	tw.Flush()
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "%-100s %.2f  (%s)\n", x.Name, x.Value, benchkit.Floats(x.PerRound, "%.2f", ", "))
	}
}

func (r *report) markdown() string {
	var md benchkit.Markdown
	p := md.P
	m := r.Machine
	md.Lines(r.Intro("Build benchmark", "`"+r.Command+"`"))
	md.Lines(r.MachineTable("Machine", m.Host,
		fmt.Sprintf("| engine | dockerd %s at %s |", m.EngineVersion, m.EngineHost),
		fmt.Sprintf("| docker CLI | %s |", m.DockerCLI),
		fmt.Sprintf("| buildkitd | %s |", m.Buildkitd),
		fmt.Sprintf("| buildctl | %s |", m.Buildctl),
		fmt.Sprintf("| runc | %s |", m.Runc),
		fmt.Sprintf("| Go | %s |", m.GoVersion)))
	p("## Build")
	p("")
	p("%d rounds; in each, every contender (in a random order drawn anew for every round, below) builds once from a pruned cache "+
		"(*cold*) and once more at once (*warm*). Cold on the engine: the run's images removed and `docker builder prune -af`; "+
		"cold on buildkitd: `buildctl prune --all`, which also drops the base image, so buildkitd's cold builds pull it (2 MB) "+
		"from a registry on loopback, while the engine has it in its store.", r.Rounds)
	p("")
	p("```dockerfile")
	p("%s```", r.Dockerfile)
	p("")
	p("Untimed setup: %s.", benchkit.SetupList(r.Setup, 1))
	p("")
	p("## Results")
	p("")
	p("| contender | builder | how | cold rounds (s) | cold median (s) | warm rounds (s) | warm median (s) | Myrmex cache hits (cold, warm…) |")
	p("|---|---|---|---|---:|---|---:|---|")
	for _, c := range r.Contenders {
		hits := "—"
		if len(c.CacheHits) > 0 && c.CacheHits[0] >= 0 {
			hits = fmt.Sprint(c.CacheHits)
		}
		p("| %s | %s | %s | %s | **%.2f** | %s | **%.2f** | %s |", c.Title, c.Builder, c.How, benchkit.Floats(c.Cold, "%.2f", ", "), c.MedianCold,
			benchkit.Floats(c.Warm, "%.2f", ", "), c.MedianWarm, hits)
	}
	p("")
	md.Lines(r.Order.Markdown())
	p("## Verification")
	p("")
	p("Every build returned an image (an ID in the engine, or an OCI layout with one manifest), which was read back "+
		"(`docker save`, or the OCI tarball) and the names and bytes of the files its final stage holds under /out and "+
		"/etc/app hashed. Identical across contenders: **%v**.", r.Identical)
	p("")
	p("| contender | files | content digest | images (cold, warm per round) |")
	p("|---|---:|---|---|")
	for _, c := range r.Contenders {
		p("| %s | %d | `%s` | %s |", c.Key, c.Files, c.Content, shortIDs(c.Images))
	}
	p("")
	p("## Ratios")
	p("")
	p("Myrmex's median wall time over the peer's: below 1 Myrmex is faster, above 1 slower. Only the buildkitd pair " +
		"runs on the same builder; the engine pair compares BuildKit with the classic builder, so it measures the builders " +
		"as much as the clients.")
	p("")
	p("| ratio | same builder | of the medians | round by round |")
	p("|---|---|---:|---|")
	for _, x := range r.Ratios {
		p("| %s | %v | **%.2f** | %s |", x.Name, x.SameBuilder, x.Value, benchkit.Floats(x.PerRound, "%.2f", ", "))
	}
	p("")
	md.Lines(benchkit.NotesSection(r.Notes))
	md.Lines(benchkit.ReproduceSection(r.Command))
	return md.String()
}

func shortIDs(ids []string) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = "`" + strings.TrimPrefix(id, "sha256:")[:min(12, len(strings.TrimPrefix(id, "sha256:")))] + "`"
	}
	return strings.Join(s, " ")
}
