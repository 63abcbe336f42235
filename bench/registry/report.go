package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// report is everything a results file holds; the JSON file is this struct.
type report struct {
	benchkit.Header
	Machine  machine              `json:"machine"`
	Settings settings             `json:"settings"`
	Image    imageInfo            `json:"image"`
	Setup    []benchkit.SetupStep `json:"setup"` // untimed preparation, for the record
	Limits   []limit              `json:"limits,omitempty"`
	Push     []measurement        `json:"push"`
	Copy     []measurement        `json:"copy"`
	Pull     []measurement        `json:"pull"`
	Ratios   []benchkit.Ratio     `json:"ratios"` // Myrmex's median wall time over a peer's
	Notes    []string             `json:"notes,omitempty"`
	Command  string               `json:"command"`
}

type machine struct {
	benchkit.Host
	EngineVersion string `json:"engine_version"`
	EngineAPI     string `json:"engine_api"`
	StorageDriver string `json:"storage_driver"`
	EngineHost    string `json:"engine_host"`
	DockerdPID    int    `json:"dockerd_pid,omitempty"` // 0: dockerd's CPU time was not read
	DockerCLI     string `json:"docker_cli"`
	CraneVersion  string `json:"crane_version"`
	Distribution  string `json:"distribution"`
	GoVersion     string `json:"go_version"`
}

type settings struct {
	Rounds           int    `json:"rounds"`
	Layers           int    `json:"layers"`
	LayerMB          int    `json:"layer_mb"`
	DockerCLIPath    string `json:"docker_cli_path"`
	CranePath        string `json:"crane_path"`
	DistributionPath string `json:"distribution_path"`
	Concurrency      string `json:"concurrency"`
	Freshness        string `json:"freshness"`
}

func settingsOf(cfg config, docker, crane string) settings {
	return settings{
		Rounds: cfg.rounds, Layers: cfg.layers, LayerMB: cfg.layerMB,
		DockerCLIPath: docker, CranePath: crane, DistributionPath: cfg.distribution,
		Concurrency: "every tool at its defaults: Myrmex and crane move 4 blobs at once (go-containerregistry's default), " +
			"dockerd 5 uploads and 3 downloads at once",
		Freshness: "before every push and copy, the destination registry is replaced by an empty one on a new port (no client, dockerd " +
			"included, knows a blob of it); before every pull, the engine holds none of the image's layers",
	}
}

// imageInfo describes the benchmark image.
type imageInfo struct {
	Reference string `json:"reference"`
	ID        string `json:"id"`
	Digest    string `json:"digest"` // as go-containerregistry writes it
	Layers    int    `json:"layers"`
	Bytes     int64  `json:"bytes"`      // uncompressed layer tarballs
	GzipBytes int64  `json:"gzip_bytes"` // config and gzip level-1 layers
	Content   string `json:"content"`
}

// measurement is one contender's rounds and their medians. A derived row sums two contenders round by round
// (they ran in the same round).
type measurement struct {
	Key            string    `json:"key"`
	Title          string    `json:"title"`
	How            string    `json:"how"`
	Myrmex         bool      `json:"myrmex"` // run in a child process that reports its allocations and reads
	Derived        bool      `json:"derived,omitempty"`
	Rounds         []float64 `json:"rounds_seconds"`
	Median         float64   `json:"median_seconds"`
	ImageMBps      float64   `json:"median_image_mb_per_s"` // image bytes (uncompressed) per second
	WireBytes      []int64   `json:"wire_bytes"`            // blobs or archive moved, per round
	WireMBps       float64   `json:"median_wire_mb_per_s"`
	ClientCPU      []float64 `json:"client_cpu_seconds"`
	DockerdCPU     []float64 `json:"dockerd_cpu_seconds"`
	RegistryCPU    []float64 `json:"registry_cpu_seconds"`
	MedClientCPU   float64   `json:"median_client_cpu_seconds"`
	MedDockerdCPU  float64   `json:"median_dockerd_cpu_seconds"`
	MedRegistryCPU float64   `json:"median_registry_cpu_seconds"`
	ClientRSS      []int64   `json:"client_peak_rss_bytes"`  // the client process's peak resident memory, per round
	DockerdRSS     []int64   `json:"dockerd_peak_rss_bytes"` // dockerd's over the round (0: not read)
	MedClientRSS   float64   `json:"median_client_peak_rss_mib"`
	MedDockerdRSS  float64   `json:"median_dockerd_peak_rss_mib"`
	AllocBytes     []uint64  `json:"alloc_bytes,omitempty"`
	ReadBytes      []int64   `json:"read_bytes,omitempty"` // read(2) by Myrmex's process, files and sockets
	MedianAllocMiB float64   `json:"median_alloc_mib,omitempty"`
	medianWireMB   float64
	medianReadMB   float64
}

func (m *measurement) add(s sample) {
	m.Rounds = append(m.Rounds, s.seconds)
	m.WireBytes = append(m.WireBytes, s.wire)
	m.ClientCPU = append(m.ClientCPU, s.client)
	m.DockerdCPU = append(m.DockerdCPU, s.dockerd)
	m.RegistryCPU = append(m.RegistryCPU, s.registry)
	m.ClientRSS = append(m.ClientRSS, s.clientRSS)
	m.DockerdRSS = append(m.DockerdRSS, s.dockerdRSS)
	if m.Myrmex {
		m.AllocBytes = append(m.AllocBytes, s.alloc)
		m.ReadBytes = append(m.ReadBytes, s.read)
	}
}

func (m *measurement) summarize(imageBytes int64) {
	m.Median = benchkit.Median(m.Rounds)
	m.ImageMBps = float64(imageBytes) / 1e6 / m.Median
	wire := make([]float64, len(m.WireBytes))
	for i, w := range m.WireBytes {
		wire[i] = float64(w)
	}
	m.medianWireMB = benchkit.Median(wire) / 1e6
	m.WireMBps = m.medianWireMB / m.Median
	m.MedClientCPU, m.MedDockerdCPU, m.MedRegistryCPU = benchkit.Median(m.ClientCPU), benchkit.Median(m.DockerdCPU), benchkit.Median(m.RegistryCPU)
	mib := func(xs []int64) float64 {
		f := make([]float64, len(xs))
		for i, x := range xs {
			f[i] = float64(x)
		}
		return benchkit.Median(f) / (1 << 20)
	}
	m.MedClientRSS, m.MedDockerdRSS = mib(m.ClientRSS), mib(m.DockerdRSS)
	if m.Myrmex {
		f := make([]float64, len(m.AllocBytes))
		for i, a := range m.AllocBytes {
			f[i] = float64(a)
		}
		m.MedianAllocMiB = benchkit.Median(f) / (1 << 20)
		r := make([]float64, len(m.ReadBytes))
		for i, n := range m.ReadBytes {
			r[i] = float64(n)
		}
		m.medianReadMB = benchkit.Median(r) / 1e6
	}
}

// sum is the derived row of contenders a and b run one after the other, round by round.
func sum(ms []measurement, key, title, a, b string, imageBytes int64) measurement {
	x, y := find(ms, a), find(ms, b)
	s := measurement{Key: key, Title: title, Derived: true, How: fmt.Sprintf("%s, then %s: the two rows above added round by round (they ran in the same round)", x.Key, y.Key)}
	for i := range min(len(x.Rounds), len(y.Rounds)) {
		s.add(sample{
			seconds: x.Rounds[i] + y.Rounds[i], wire: y.WireBytes[i],
			client: x.ClientCPU[i] + y.ClientCPU[i], dockerd: x.DockerdCPU[i] + y.DockerdCPU[i], registry: x.RegistryCPU[i] + y.RegistryCPU[i],
			clientRSS: max(x.ClientRSS[i], y.ClientRSS[i]), dockerdRSS: max(x.DockerdRSS[i], y.DockerdRSS[i]),
		})
	}
	s.summarize(imageBytes)
	return s
}

func find(ms []measurement, key string) *measurement {
	for i := range ms {
		if ms[i].Key == key {
			return &ms[i]
		}
	}
	return nil
}

func (r *report) finish() {
	add := func(ms []measurement, num, den, name string) {
		a, b := find(ms, num), find(ms, den)
		if a == nil || b == nil || b.Median == 0 {
			return
		}
		r.Ratios = append(r.Ratios, benchkit.Ratio{Name: name, Value: a.Median / b.Median, PerRound: benchkit.PerRound(a.Rounds, b.Rounds)})
	}
	add(r.Push, "myrmex-engine", "docker-push", "push: Myrmex from the engine / docker push")
	add(r.Push, "myrmex-engine-gzip6", "docker-push", "push at equal compression: Myrmex from the engine at gzip level 6 / docker push (level 6)")
	add(r.Push, "myrmex-engine", "save+crane-push", "push: Myrmex from the engine / docker save + crane push")
	add(r.Push, "myrmex-archive", "crane-push", "push: Myrmex from the archive / crane push of the same archive")
	add(r.Copy, "myrmex-copy", "crane-copy", "copy: Myrmex / crane copy")
	add(r.Pull, "myrmex-pull", "docker-pull", "pull: Myrmex into the engine / docker pull")
	add(r.Pull, "myrmex-pull-load", "crane-pull+docker-load", "pull by load: Myrmex / crane pull + docker load")
	add(r.Pull, "myrmex-pull-load", "docker-pull", "pull by load: Myrmex / docker pull")
	r.Notes = append(r.Notes, "Myrmex gzips the layers it compresses at level 1 by default (klauspost's BestSpeed), dockerd at "+
		"level 6 (compress/gzip's default), which costs dockerd several times more CPU per byte and sends fewer bytes (the *wire MB* "+
		"column): the row \"push at equal compression\" has Myrmex at level 6 too (registry.PushOptions.GzipLevel).")
	r.Command = "DOCKER_HOST=" + r.Machine.EngineHost + " go run ./bench/registry"
	if len(os.Args) > 1 {
		r.Command += " " + strings.Join(os.Args[1:], " ")
	}
}

// describe reads the machine, the engine and the tools. What it cannot read is left empty and said in the notes.
func describe(ctx context.Context, b *bench) (machine, []string) {
	m := machine{Host: benchkit.ReadHost(), GoVersion: runtime.Version(), EngineHost: b.cfg.dockerHost, DockerdPID: b.dockerdPID}
	var notes []string
	cmd := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).Output()
		if err != nil {
			notes = append(notes, fmt.Sprintf("`%s %s` failed: %v", filepath.Base(name), strings.Join(args, " "), err))
		}
		return strings.TrimSpace(string(out))
	}
	ver := cmd(b.docker, "version", "--format", "{{.Server.Version}}|{{.Server.APIVersion}}|{{.Client.Version}}")
	if f := strings.Split(ver, "|"); len(f) == 3 {
		m.EngineVersion, m.EngineAPI, m.DockerCLI = f[0], f[1], f[2]
	}
	m.StorageDriver = cmd(b.docker, "info", "--format", "{{.Driver}}")
	m.CraneVersion = cmd(b.crane, "version")
	// It prints its own path first: "/usr/bin/docker-registry github.com/docker/distribution 2.8.2+ds1".
	if f := strings.Fields(cmd(b.cfg.distribution, "--version")); len(f) > 1 {
		m.Distribution = strings.Join(f[1:], " ")
	}
	if b.dockerdPID == 0 {
		notes = append(notes, "dockerd's CPU time was not read (no readable -dockerd-pidfile naming a running dockerd): its column is 0.")
	}
	return m, notes
}

// phases are the report's sections, in the order they ran.
func (r *report) phases() []struct {
	title string
	ms    []measurement
} {
	return []struct {
		title string
		ms    []measurement
	}{
		{"push", r.Push},
		{"copy (registry to registry)", r.Copy},
		{"pull", r.Pull},
	}
}

func (r *report) printTable(w io.Writer) {
	fmt.Fprintf(w, "%s\n%s\n\n", r.Source.Summary(), r.Order.Summary())
	fmt.Fprintf(w, "image %s: %d layers, %.1f MB uncompressed, %.1f MB gzipped (level 1); image MB/s counts the uncompressed MB\n\n",
		r.Image.Digest, r.Image.Layers, float64(r.Image.Bytes)/1e6, float64(r.Image.GzipBytes)/1e6)
	for _, ph := range r.phases() {
		fmt.Fprintf(w, "%s\n\n", ph.title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "contender\trounds (s)\tmedian (s)\timage MB/s\twire MB\twire MB/s\tCPU s client/dockerd/registry\tpeak RSS MiB client/dockerd\talloc MiB\t\n")
		for _, m := range ph.ms {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f / %.1f / %.1f\t%s\t%s\t\n", m.Title, benchkit.Floats(m.Rounds, "%.2f", " "), m.Median,
				m.ImageMBps, m.medianWireMB, m.WireMBps, m.MedClientCPU, m.MedDockerdCPU, m.MedRegistryCPU, m.rss(), m.alloc())
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if len(r.Limits) > 0 {
		fmt.Fprintf(w, "limits (one goroutine, this process)\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "what\tMB/s\tMB per CPU s\tout\t\n")
		for _, l := range r.Limits {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t\n", l.Title, l.MBps, l.MBpsCPU, l.out())
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "%-64s %6.2f   (per round: %s)\n", x.Name, x.Value, benchkit.Floats(x.PerRound, "%.2f", " "))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// rss is the client's and dockerd's median peak resident memory; dockerd's is "–" when it was not read.
func (m measurement) rss() string {
	d := "–"
	if m.MedDockerdRSS > 0 {
		d = fmt.Sprintf("%.0f", m.MedDockerdRSS)
	}
	return fmt.Sprintf("%.0f / %s", m.MedClientRSS, d)
}

func (m measurement) alloc() string {
	if !m.Myrmex {
		return "–"
	}
	return fmt.Sprintf("%.1f", m.MedianAllocMiB)
}

func (l limit) out() string {
	if l.OutBytes == 0 || l.Key == "gunzip" || l.Key == "klauspost-gunzip" {
		return ""
	}
	return fmt.Sprintf("%.1f MB out (%.0f%%)", float64(l.OutBytes)/1e6, 100*float64(l.OutBytes)/float64(l.InBytes))
}

func (r *report) markdown() string {
	var md benchkit.Markdown
	p := md.P
	m, s, img := r.Machine, r.Settings, r.Image
	md.Lines(r.Intro("Registry benchmark", "`"+r.Command+"`"))
	md.Lines(r.MachineTable("Machine", m.Host,
		fmt.Sprintf("| engine | dockerd %s, API %s, %s, at %s |", m.EngineVersion, m.EngineAPI, m.StorageDriver, m.EngineHost),
		fmt.Sprintf("| docker CLI | %s, %s |", m.DockerCLI, s.DockerCLIPath),
		fmt.Sprintf("| crane | %s, %s |", m.CraneVersion, s.CranePath),
		fmt.Sprintf("| registry | %s, %s |", m.Distribution, s.DistributionPath),
		fmt.Sprintf("| Go | %s |", m.GoVersion)))
	p("## Image and settings")
	p("")
	p("`%s`, image ID `%s`, digest `%s` as go-containerregistry pushes it. %s: %.1f MB uncompressed, %.1f MB as config and "+
		"gzip level-1 layers. *Image MB/s* divides the uncompressed %.1f MB by the time; *wire MB* is what the contender moved "+
		"(blobs pushed or pulled, archive written or read).", img.Reference, img.ID, img.Digest, img.Content,
		float64(img.Bytes)/1e6, float64(img.GzipBytes)/1e6, float64(img.Bytes)/1e6)
	p("")
	p("%d rounds per contender, in a random order drawn anew for every round (seed %d, below); the median round is reported. "+
		"%s; %s. Every contender is a process of its own: a CLI, or Myrmex's operation in a child of the benchmark. CPU seconds are "+
		"the client process's, dockerd's with the children it waited for, and the two registries'. *Peak RSS* is the client process's "+
		"(rusage maxrss) and dockerd's over the round (VmHWM, reset before each round with clear_refs; without its docker-untar "+
		"children, and with whatever else the engine served meanwhile).", s.Rounds, r.Order.Seed, upperFirst(s.Freshness), s.Concurrency)
	p("")
	p("Untimed setup: %s.", benchkit.SetupList(r.Setup, 1))
	p("")
	for _, ph := range r.phases() {
		p("## %s", upperFirst(ph.title))
		p("")
		p("| contender | how | rounds (s) | median (s) | image MB/s | wire MB | wire MB/s | CPU s client / dockerd / registry | peak RSS MiB client / dockerd | alloc MiB |")
		p("|---|---|---|---:|---:|---:|---:|---|---|---:|")
		for _, x := range ph.ms {
			title := x.Title
			if x.Derived {
				title = "*" + title + "*"
			}
			p("| %s | %s | %s | **%.2f** | %.1f | %.1f | %.1f | %.1f / %.1f / %.1f | %s | %s |", title, x.How, benchkit.Floats(x.Rounds, "%.2f", " "), x.Median,
				x.ImageMBps, x.medianWireMB, x.WireMBps, x.MedClientCPU, x.MedDockerdCPU, x.MedRegistryCPU, x.rss(), x.alloc())
		}
		p("")
	}
	if len(r.Limits) > 0 {
		p("## The machine's limits")
		p("")
		p("Measured in this run on the image's own uncompressed layers, on one goroutine (two for loopback: sender and "+
			"receiver), in this process; each the faster of %d tries. *MB per CPU s* divides by the CPU time the work took, which "+
			"other load on the machine inflates less than wall time. With %d cores, work that runs in parallel can go up to %d× "+
			"these rates.", limitTries, m.NProc, m.NProc)
		p("")
		p("| what | MB/s | MB per CPU s | in MB | out | note |")
		p("|---|---:|---:|---:|---|---|")
		for _, l := range r.Limits {
			p("| %s | %.1f | **%.1f** | %.1f | %s | %s |", l.Title, l.MBps, l.MBpsCPU, float64(l.InBytes)/1e6, l.out(), l.Note)
		}
		p("")
	}
	md.Lines(r.Order.Markdown())
	md.Lines(benchkit.RatiosSection(r.Ratios))
	md.Lines(benchkit.NotesSection(r.Notes))
	md.Lines(benchkit.ReproduceSection(r.Command))
	return md.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
