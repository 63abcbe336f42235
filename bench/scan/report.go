package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
)

// report is everything a results file holds; the JSON file is this struct.
type report struct {
	benchkit.Header
	Machine  machine              `json:"machine"`
	Rounds   int                  `json:"rounds"`
	Image    imageInfo            `json:"image"`
	Database database             `json:"database"`
	Setup    []benchkit.SetupStep `json:"setup"` // untimed preparation, for the record
	// LaunchFloorMB is the peak RSS /bin/true reports through the launcher: the floor under every contender's.
	LaunchFloorMB float64            `json:"launch_floor_rss_mb"`
	Contenders    []measurement      `json:"contenders"`
	Ratios        []ratio            `json:"ratios"`
	Packages      comparison         `json:"packages"`
	FullScan      fullScan           `json:"full_scan"`
	Findings      findingsComparison `json:"findings"`
	Scale         []scalePoint       `json:"scale,omitempty"`
	Notes         []string           `json:"notes,omitempty"`
	Command       string             `json:"command"`
}

type machine struct {
	benchkit.Host
	EngineHost      string `json:"engine_host"`
	EngineVersion   string `json:"engine_version"`
	SyftVersion     string `json:"syft_version"`    // `syft version`
	SyftDescriptor  string `json:"syft_descriptor"` // what Syft writes in its SBOM
	SyftPath        string `json:"syft_path"`
	SyftBuild       string `json:"syft_build"`
	GrypeVersion    string `json:"grype_version"`    // `grype version`
	GrypeDescriptor string `json:"grype_descriptor"` // what Grype writes in its output
	GrypePath       string `json:"grype_path"`
	GrypeBuild      string `json:"grype_build"`
	ScalibrVersion  string `json:"osv_scalibr_version"`
	GGCRVersion     string `json:"go_containerregistry_version"`
	GoVersion       string `json:"go_version"`
}

// imageInfo describes the scanned image and what its manifest (testimages') lists.
type imageInfo struct {
	Reference    string         `json:"reference"`
	ID           string         `json:"id"`
	Debian       string         `json:"debian"`
	Layers       int            `json:"layers"`
	ArchiveBytes int64          `json:"archive_bytes"`
	Manifest     map[string]int `json:"manifest_packages"`
}

// database describes the advisories both tools matched against.
type database struct {
	Generator    string         `json:"generator"`
	Seed         uint64         `json:"seed"`
	Records      int            `json:"records"`
	ByFamily     map[string]int `json:"records_by_family"`
	Fixtures     []string       `json:"fixtures"` // the real records inside it
	JSONBytes    int64          `json:"json_bytes"`
	ZipBytes     int64          `json:"zip_bytes"`
	MyrmexBytes  int64          `json:"myrmex_db_bytes"`
	GrypeItems   map[string]int `json:"grype_items"`   // records in each of Grype's provider formats
	GrypeSkipped []string       `json:"grype_skipped"` // records with no equivalent in Grype's sources
	GrypeBytes   int64          `json:"grype_db_bytes"`
}

// fullScan is what Myrmex's full scan found, the same in every round.
type fullScan struct {
	Scanned         int      `json:"packages_scanned"`
	Findings        []string `json:"findings"` // package@version CVE
	ComplianceScore float64  `json:"compliance_score"`
}

// measurement is one contender's rounds and their medians.
type measurement struct {
	Key               string    `json:"key"`
	Title             string    `json:"title"`
	How               string    `json:"how"`
	Tool              string    `json:"tool"`
	Caveat            string    `json:"caveat,omitempty"` // what the row is not, when it is not a like-for-like measurement
	Rounds            []float64 `json:"rounds_seconds"`   // the child process's wall time, start to exit
	Median            float64   `json:"median_seconds"`
	CPU               []float64 `json:"cpu_seconds"` // user and system
	MedianCPU         float64   `json:"median_cpu_seconds"`
	MaxRSSMB          []float64 `json:"max_rss_mb"` // the child's ru_maxrss, MB (10^6 bytes)
	MedianMaxRSSMB    float64   `json:"median_max_rss_mb"`
	PeakMaxRSSMB      float64   `json:"peak_max_rss_mb"`        // the largest of the rounds
	ScanSeconds       []float64 `json:"scan_seconds,omitempty"` // Myrmex: the scan alone, in the child
	MedianScanSeconds float64   `json:"median_scan_seconds,omitempty"`
	Packages          []int     `json:"packages"`
}

func (m *measurement) add(s sample) {
	m.Rounds = append(m.Rounds, s.seconds)
	m.CPU = append(m.CPU, s.user+s.system)
	m.MaxRSSMB = append(m.MaxRSSMB, float64(s.maxRSS)/1e6)
	if s.scanSeconds > 0 {
		m.ScanSeconds = append(m.ScanSeconds, s.scanSeconds)
	}
	m.Packages = append(m.Packages, s.packages)
}

func (m *measurement) summarize() {
	m.Median, m.MedianCPU, m.MedianMaxRSSMB = benchkit.Median(m.Rounds), benchkit.Median(m.CPU), benchkit.Median(m.MaxRSSMB)
	m.PeakMaxRSSMB = slices.Max(m.MaxRSSMB)
	m.MedianScanSeconds = benchkit.Median(m.ScanSeconds)
}

func find(ms []measurement, key string) *measurement {
	for i := range ms {
		if ms[i].Key == key {
			return &ms[i]
		}
	}
	return nil
}

// ratio divides one contender's medians by another's: wall time, CPU seconds and peak memory. Below 1 the first
// is faster or smaller. SecondsPerRound divides the times of each round, which ran close together, so that drift
// in the machine's load shows as spread.
type ratio struct {
	Name            string    `json:"name"`
	Caveat          string    `json:"caveat,omitempty"` // why the two sides do not do the same work, when they do not
	Seconds         float64   `json:"seconds"`
	SecondsPerRound []float64 `json:"seconds_per_round"`
	CPU             float64   `json:"cpu_seconds"`
	MaxRSS          float64   `json:"median_max_rss"`
}

func (r *report) finish(cfg config) {
	add := func(num, den, name string) {
		a, b := find(r.Contenders, num), find(r.Contenders, den)
		if a == nil || b == nil || b.Median == 0 {
			return
		}
		caveat := "" // a tool against itself is like for like
		if a.Tool != b.Tool {
			caveat = cmp.Or(a.Caveat, b.Caveat)
		}
		r.Ratios = append(r.Ratios, ratio{Name: name, Caveat: caveat, Seconds: a.Median / b.Median, SecondsPerRound: benchkit.PerRound(a.Rounds, b.Rounds),
			CPU: a.MedianCPU / b.MedianCPU, MaxRSS: a.MedianMaxRSSMB / b.MedianMaxRSSMB})
	}
	add("inventory-cold", "syft-cold", "Myrmex inventory, cold / Syft, cold")
	add("inventory-warm", "syft-warm", "warm: Myrmex's layer cache (Syft has none) / Syft, warm")
	add("inventory-warm", "syft-cold", "warm: Myrmex's layer cache (Syft has none) / Syft, cold")
	add("full", "grype", "Myrmex full scan, cold / Grype, cold")
	add("full-warm", "grype", "Myrmex full scan, warm re-scan / Grype, cold")
	add("full", "syft-cold", "Myrmex full scan, cold / Syft, cold")
	add("full-warm", "full", "Myrmex full scan: warm re-scan / cold")
	add("inventory-warm", "inventory-cold", "Myrmex's layer cache: inventory warm / cold")
	add("syft-warm", "syft-cold", "Syft's second run: warm / cold")
	r.Rounds = cfg.rounds
	r.Command = "DOCKER_HOST=" + cfg.dockerHost + " go run ./bench/scan"
	if len(os.Args) > 1 {
		r.Command += " " + strings.Join(os.Args[1:], " ")
	}
}

// describe reads the machine and the tools. What it cannot read is left empty and said in the notes.
func describe(ctx context.Context, b *bench) (machine, []string) {
	m := machine{Host: benchkit.ReadHost(), GoVersion: runtime.Version(), EngineHost: b.cfg.dockerHost, SyftPath: b.syft, GrypePath: b.grype.grype}
	var notes []string
	cmd := func(dir, name string, args ...string) string {
		c := exec.CommandContext(ctx, name, args...)
		c.Dir = dir
		out, err := c.Output()
		if err != nil {
			notes = append(notes, fmt.Sprintf("`%s %s` failed: %v", filepath.Base(name), strings.Join(args, " "), err))
		}
		return strings.TrimSpace(string(out))
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(cmd("", b.syft, "version", "-o", "json")), &v); err == nil {
		m.SyftVersion = v.Version
	}
	v.Version = ""
	if err := json.Unmarshal([]byte(cmd("", b.grype.grype, "version", "-o", "json")), &v); err == nil {
		m.GrypeVersion = v.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/google/osv-scalibr":
				m.ScalibrVersion = d.Version
			case "github.com/google/go-containerregistry":
				m.GGCRVersion = d.Version
			}
		}
	}
	return m, notes
}

func engineVersion(ctx context.Context, eng *engine.Client) string {
	v, err := eng.API().ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return ""
	}
	return "dockerd " + v.Version + ", API " + v.APIVersion
}

func (r *report) printTable(w io.Writer) {
	fmt.Fprintf(w, "%s\n%s\n\n", r.Source.Summary(), r.Order.Summary())
	fmt.Fprintf(w, "%s (%s, Debian %s): %d layers, docker save archive %.1f MB; syft %s, grype %s, osv-scalibr %s, %s; %d advisories\n\n",
		r.Image.Reference, short(r.Image.ID), r.Image.Debian, r.Image.Layers, float64(r.Image.ArchiveBytes)/1e6,
		r.Machine.SyftVersion, r.Machine.GrypeVersion, r.Machine.ScalibrVersion, r.Machine.GoVersion, r.Database.Records)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "contender\trounds (s)\tmedian (s)\tCPU s\tpeak RSS MB (median / max)\tin-process scan (s)\tpackages\t\n")
	for _, m := range r.Contenders {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.0f / %.0f\t%s\t%s\t\n", m.Title, benchkit.Floats(m.Rounds, "%.2f", " "), m.Median, m.MedianCPU,
			m.MedianMaxRSSMB, m.PeakMaxRSSMB, m.scan(), m.packages())
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "%-62s time %5.2f  CPU %5.2f  peak RSS %5.2f   (time per round: %s)\n", x.Name, x.Seconds, x.CPU, x.MaxRSS,
			benchkit.Floats(x.SecondsPerRound, "%.2f", " "))
	}
	fmt.Fprintln(w)
	p := r.Packages
	fmt.Fprintf(w, "packages: Myrmex %d, Syft %d, both %d, image manifest %d\n", p.Myrmex, p.Syft, p.Both, p.Image)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kind\tMyrmex\tSyft\tboth\timage\tonly Myrmex\tonly Syft\t\n")
	for _, k := range p.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", k.Kind, k.Myrmex, k.Syft, k.Both, k.Image, list(k.OnlyMyrmex), list(k.OnlySyft))
	}
	tw.Flush()
	for _, n := range p.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	f := r.Findings
	fmt.Fprintf(w, "vulnerabilities: Myrmex %d, Grype %d, both %d; from the real records: Myrmex %d, Grype %d\n", f.Myrmex, f.Grype, f.Both,
		len(f.FixturesMyrmex), len(f.FixturesGrype))
	fmt.Fprintf(w, "only Myrmex: %s\nonly Grype: %s\n", list(firstN(f.OnlyMyrmex, 20)), list(firstN(f.OnlyGrype, 20)))
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// packages is the packages the first round found; Grype's JSON lists its matches, not the packages it cataloged.
func (m measurement) packages() string {
	if m.Packages[0] == 0 && m.Tool == "Grype" {
		return "–"
	}
	return fmt.Sprint(m.Packages[0])
}

func (m measurement) scan() string {
	if len(m.ScanSeconds) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", m.MedianScanSeconds)
}

// firstN is the first n items of s and a count of the rest.
func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more (the JSON lists them all)", len(s)-n))
}

func list(s []string) string {
	if len(s) == 0 {
		return "–"
	}
	return strings.Join(s, ", ")
}

func short(id string) string {
	_, hex, _ := strings.Cut(id, ":")
	return hex[:min(12, len(hex))]
}

func (r *report) markdown() string {
	var md benchkit.Markdown
	p := md.P
	m, img := r.Machine, r.Image
	md.Lines(r.Intro("Scan benchmark", "`"+r.Command+"`"))
	md.Lines(r.MachineTable("Machine and tools", m.Host,
		fmt.Sprintf("| engine (makes the image) | %s, at %s |", m.EngineVersion, m.EngineHost),
		fmt.Sprintf("| Syft | %s (SBOM descriptor: %s), %s |", m.SyftVersion, m.SyftDescriptor, m.SyftPath),
		fmt.Sprintf("| Syft built by | %s |", m.SyftBuild),
		fmt.Sprintf("| Grype | %s (its output's descriptor: %s), %s |", m.GrypeVersion, m.GrypeDescriptor, m.GrypePath),
		fmt.Sprintf("| Grype built by | %s |", m.GrypeBuild),
		fmt.Sprintf("| Myrmex | osv-scalibr %s, go-containerregistry %s |", m.ScalibrVersion, m.GGCRVersion),
		fmt.Sprintf("| Go | %s (Myrmex, Syft and Grype) |", m.GoVersion)))
	p("## Image and settings")
	p("")
	var manifest []string
	for _, k := range slices.Sorted(maps.Keys(img.Manifest)) {
		manifest = append(manifest, fmt.Sprintf("%d %s", img.Manifest[k], k))
	}
	p("`%s`, image ID `%s`, Debian %s, %d layers, read by every contender from the same docker save archive of %.1f MB "+
		"(uncompressed layers). Its manifest (what testimages read from the image's files when it built it) lists %s.",
		img.Reference, img.ID, img.Debian, img.Layers, float64(img.ArchiveBytes)/1e6, strings.Join(manifest, ", "))
	p("")
	p("%d rounds per contender, in a random order drawn anew for every round (seed %d, below); the median round is reported. Every scan runs in a child process: "+
		"*seconds* are its wall time from start to exit, *CPU s* its user and system time, *peak RSS* its ru_maxrss, "+
		"all from the rusage wait4 returns to a small launcher that starts it (a child's ru_maxrss is at least what its parent held "+
		"at exec: through the launcher that floor is %.1f MB, /bin/true's figure, where the benchmark's own would be hundreds). "+
		"*In-process scan* is Myrmex's scan alone, timed inside the child.", r.Rounds, r.Order.Seed, r.LaunchFloorMB)
	p("")
	d := r.Database
	var fams []string
	for _, k := range slices.Sorted(maps.Keys(d.ByFamily)) {
		fams = append(fams, fmt.Sprintf("%d %s", d.ByFamily[k], k))
	}
	var items []string
	for _, k := range slices.Sorted(maps.Keys(d.GrypeItems)) {
		items = append(items, fmt.Sprintf("%d %s", d.GrypeItems[k], k))
	}
	p("The advisories: **%d OSV records** (%s), %.0f MB of JSON in %.0f MB of zips, made by the benchmark (%s, seed %d) "+
		"from the shapes of osv.dev's records, with the repository's %d real records inside (%s). Myrmex's database "+
		"(vulndb.Import of the zips): %.0f MB. Grype's (its own builder, grype/db.Build, from the same records in its "+
		"providers' formats: %s; then `grype db import`): %.0f MB. Not in Grype's: %s (a Debian advisory, which vunnel "+
		"folds into the CVE's record).", d.Records, strings.Join(fams, ", "), float64(d.JSONBytes)/1e6, float64(d.ZipBytes)/1e6,
		d.Generator, d.Seed, len(d.Fixtures), strings.Join(d.Fixtures, ", "), float64(d.MyrmexBytes)/1e6, strings.Join(items, ", "),
		float64(d.GrypeBytes)/1e6, list(d.GrypeSkipped))
	p("")
	p("Untimed setup: %s.", benchkit.SetupList(r.Setup, 1))
	p("")
	p("## Results")
	p("")
	p("| contender | how | rounds (s) | median (s) | CPU s | peak RSS MB, median (max) | in-process scan (s) | packages |")
	p("|---|---|---|---:|---:|---:|---:|---:|")
	for _, x := range r.Contenders {
		how := x.How
		if x.Caveat != "" {
			how += ". *" + x.Caveat + "*"
		}
		p("| %s | %s | %s | **%.2f** | %.2f | **%.0f** (%.0f) | %s | %s |", x.Title, how, benchkit.Floats(x.Rounds, "%.2f", " "), x.Median,
			x.MedianCPU, x.MedianMaxRSSMB, x.PeakMaxRSSMB, x.scan(), x.packages())
	}
	p("")
	r.scaleMarkdown(&md)
	md.Lines(r.Order.Markdown())
	p("## Ratios")
	p("")
	p("The first contender's median over the second's: below 1 the first is faster (or uses less CPU, or less memory). " +
		"A ratio of Myrmex's *warm* inventory to Syft is Myrmex's layer cache against a scanner without one: it measures the " +
		"cache, not the two scanners doing the same work (its `caveat` in the JSON says so too).")
	p("")
	p("| ratio | wall time | round by round | CPU s | peak RSS |")
	p("|---|---:|---|---:|---:|")
	for _, x := range r.Ratios {
		p("| %s | **%.2f** | %s | %.2f | **%.2f** |", x.Name, x.Seconds, benchkit.Floats(x.SecondsPerRound, "%.2f", " "), x.CPU, x.MaxRSS)
	}
	p("")
	pk := r.Packages
	p("## Packages found")
	p("")
	p("By the untimed first run of each tool, which every round was checked against (each round found exactly the same "+
		"packages). Matched by %s. *Image* is the image's manifest.", pk.Match)
	p("")
	p("| kind | Myrmex | Syft | both | image | only Myrmex | only Syft | not in the image's manifest: Myrmex / Syft | in the manifest, not found: Myrmex / Syft |")
	p("|---|---:|---:|---:|---:|---|---|---|---|")
	for _, k := range pk.Kinds {
		p("| %s | %d | %d | %d | %d | %s | %s | %s / %s | %s / %s |", k.Kind, k.Myrmex, k.Syft, k.Both, k.Image, list(k.OnlyMyrmex),
			list(k.OnlySyft), list(k.MyrmexExtra), list(k.SyftExtra), list(k.MyrmexMissing), list(k.SyftMissing))
	}
	p("| **total** | **%d** | **%d** | **%d** | **%d** | | | | |", pk.Myrmex, pk.Syft, pk.Both, pk.Image)
	p("")
	for _, n := range pk.Notes {
		p("%s", n)
		p("")
	}
	if f := r.FullScan; f.Scanned > 0 {
		p("Myrmex's full scan (every round the same) scanned %d packages and found %d vulnerabilities; compliance score %.1f.",
			f.Scanned, len(f.Findings), f.ComplianceScore)
		p("")
	}
	fc := r.Findings
	p("## Vulnerabilities found")
	p("")
	p("By the untimed first run of Myrmex's full scan and of Grype, which every round was checked against. A finding is " +
		"package@version and the CVE among the record's ids (else its own id), as each tool wrote them.")
	p("")
	p("| | Myrmex | Grype |")
	p("|---|---:|---:|")
	p("| findings | %d | %d |", fc.Myrmex, fc.Grype)
	p("| found by both | %d | %d |", fc.Both, fc.Both)
	p("| found by this tool only | %d | %d |", len(fc.OnlyMyrmex), len(fc.OnlyGrype))
	p("| from the real records | %d | %d |", len(fc.FixturesMyrmex), len(fc.FixturesGrype))
	p("")
	p("From the real records, Myrmex: %s.", list(fc.FixturesMyrmex))
	p("")
	p("From the real records, Grype: %s.", list(fc.FixturesGrype))
	p("")
	p("Only Myrmex: %s.", list(firstN(fc.OnlyMyrmex, 40)))
	p("")
	p("Only Grype: %s.", list(firstN(fc.OnlyGrype, 40)))
	p("")
	p("Grype keeps a Go vulnerability database record (`GO-*`) only when the Go binary holds one of the vulnerable symbols " +
		"its `ecosystem_specific.imports` lists (Syft reads the binary's symbols); Myrmex matches a Go module by its version " +
		"alone. The generated `GO-*` records name symbols the image's binary does not hold, so a finding only Myrmex makes " +
		"on a Go module is that difference.")
	p("")
	md.Lines(benchkit.NotesSection(r.Notes))
	md.Lines(benchkit.ReproduceSection(r.Command))
	return md.String()
}
