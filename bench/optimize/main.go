// Command optimize benchmarks `myrmex optimize` on the test apps (Python, Node and a static Go server on Debian,
// internal/testimages.EnsureApps) against the flattening peers: `docker export | docker import` and `crane
// flatten`, in the same run, on the same images.
//
// Four contenders per app: Myrmex's size optimization with a probe that asks for both pages (profiling,
// minifying, verifying), Myrmex's lossless rewrite (no probe), the docker CLI's export of a created container
// piped into import (with the image's CMD, ENTRYPOINT, ENV, WORKDIR, USER and EXPOSE given back as --change), and
// crane flatten (built from go-containerregistry's module, the version Myrmex requires) on an in-process registry
// on 127.0.0.1, its result pulled into the engine with crane pull and docker load (not timed). Every result is
// checked with the same probe (both pages must answer as on the original); a result that fails it is reported as
// broken. For each: the time, the size as the engine counts it, the layers, dive's efficiency (optimize.Analyze,
// equal to dive's), and the time from `docker run` to the first page answering (start to ready), measured for the
// original and every result in a random order per round.
//
// Pull time is not measured: the original's layers are in the engine already, so a pull of it would be free, and
// a fair cold pull would need a second engine.
//
//	DOCKER_HOST=unix:///run/myrmex-test/docker.sock go run ./bench/optimize
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
)

type config struct {
	rounds, startRounds int
	dockerHost, docker  string
	shared              *benchkit.Flags
}

func main() {
	var cfg config
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of every contender's optimization (the median time is reported)")
	flag.IntVar(&cfg.startRounds, "start-rounds", 5, "rounds of start to ready for the original and every result")
	flag.StringVar(&cfg.dockerHost, "docker-host", benchkit.DockerHost(), "engine address, for Myrmex and the docker CLI")
	flag.StringVar(&cfg.docker, "docker", "docker", "docker CLI binary")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	benchkit.Main("optimize", func(ctx context.Context) error { return run(ctx, cfg) })
}

var contenders = []struct{ key, title string }{
	{"myrmex-size", "myrmex optimize (size, probed)"},
	{"myrmex-lossless", "myrmex optimize (lossless, no probe)"},
	{"docker-export-import", `docker export \| docker import`},
	{"crane-flatten", "crane flatten"},
}

// report is everything a results file holds; the JSON file is this struct.
type report struct {
	benchkit.Header
	Machine     machine     `json:"machine"`
	Rounds      int         `json:"rounds"`
	StartRounds int         `json:"start_rounds"`
	Apps        []appResult `json:"apps"`
	Notes       []string    `json:"notes,omitempty"`
}

type machine struct {
	benchkit.Host
	EngineVersion string `json:"engine_version"`
	DockerCLI     string `json:"docker_cli"`
	Crane         string `json:"crane"`
	GoVersion     string `json:"go_version"`
}

type appResult struct {
	App        string   `json:"app"`
	Image      string   `json:"image"`
	Original   image    `json:"original"`
	Contenders []result `json:"contenders"`
}

type image struct {
	Ref          string    `json:"ref"`
	SizeBytes    int64     `json:"size_bytes"`
	Layers       int       `json:"layers"`
	Efficiency   float64   `json:"dive_efficiency"`
	StartSeconds []float64 `json:"start_to_ready_seconds"`
	MedianStart  float64   `json:"median_start_to_ready_seconds"`
}

type result struct {
	Key     string    `json:"key"`
	Title   string    `json:"title"`
	Seconds []float64 `json:"seconds"`
	Median  float64   `json:"median_seconds"`
	image
	Smaller   float64 `json:"times_smaller"`
	ProbeOK   bool    `json:"probe_passed"`
	ProbeNote string  `json:"probe_failure,omitempty"`
}

type bench struct {
	cfg     config
	eng     *engine.Client
	docker  string
	crane   string
	sensor  string
	regHost string
	tmp     string
	prober  *optimize.Prober
	myrmex  *containerization.Client
}

func run(ctx context.Context, cfg config) (err error) {
	if cfg.rounds < 1 || cfg.startRounds < 1 {
		return errors.New("rounds must be positive")
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	if err := os.Setenv("DOCKER_HOST", cfg.dockerHost); err != nil {
		return err
	}
	b := &bench{cfg: cfg}
	if b.docker, err = exec.LookPath(cfg.docker); err != nil {
		return fmt.Errorf("docker CLI: %w", err)
	}
	if b.eng, err = engine.New(ctx, engine.Options{Host: cfg.dockerHost}); err != nil {
		return err
	}
	defer b.eng.Close()
	if b.myrmex, err = containerization.New(ctx, containerization.Config{Host: cfg.dockerHost}); err != nil {
		return err
	}
	if b.tmp, err = os.MkdirTemp("", "myrmex-bench-optimize-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	benchkit.Logf("building crane and myrmex-sensor")
	b.crane, b.sensor = filepath.Join(b.tmp, "crane"), filepath.Join(b.tmp, "myrmex-sensor")
	for _, c := range [][]string{{"-o", b.crane, "github.com/google/go-containerregistry/cmd/crane"}, {"-trimpath", "-o", b.sensor, "./cmd/myrmex-sensor"}} {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, c...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %v: %v: %s", c, err, out)
		}
	}
	b.prober = &optimize.Prober{Engine: b.eng, Sensor: b.sensor}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(ln)
	defer srv.Close()
	b.regHost = ln.Addr().String()

	benchkit.Logf("making the test apps (cached after the first run)")
	apps, err := testimages.EnsureApps(ctx, b.eng, testimages.DebianOptions{})
	if err != nil {
		return err
	}
	order := cfg.shared.Order()
	rep := &report{Header: benchkit.Header{Started: time.Now(), RunID: benchkit.NewRunID(), Source: src, Order: order}, Rounds: cfg.rounds, StartRounds: cfg.startRounds}
	rep.Machine = machine{Host: benchkit.ReadHost(), GoVersion: runtime.Version(), Crane: "go-containerregistry " + moduleVersion(ctx, "github.com/google/go-containerregistry")}
	rep.Machine.DockerCLI = first(ctx, b.docker, "version", "--format", "{{.Client.Version}}")
	rep.Machine.EngineVersion = first(ctx, b.docker, "version", "--format", "{{.Server.Version}}")
	benchkit.Logf("run %s: %s; %s", rep.RunID, src.Summary(), order.Summary())
	var made []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, ref := range made {
			_, _ = b.eng.API().ImageRemove(cctx, ref, client.ImageRemoveOptions{Force: true})
		}
	}()
	keys := make([]string, len(contenders))
	for i, c := range contenders {
		keys[i] = c.key
	}
	for _, app := range apps {
		ar := appResult{App: app.Lang, Image: app.Ref}
		probe := optimize.Probe{HTTP: []optimize.HTTPCheck{
			{Port: app.Port, Path: "/", Status: 200, Body: app.FirstBody},
			{Port: app.Port, Path: "/second", Status: 200, Body: app.SecondBody},
		}}
		if ar.Original, err = b.describe(ctx, app.Ref); err != nil {
			return err
		}
		results := make([]result, len(contenders))
		for r, ord := range order.Rounds(app.Lang+" optimize", keys, cfg.rounds) {
			for _, i := range ord {
				ref := fmt.Sprintf("myrmex.bench/%s:%s-%d", app.Lang, contenders[i].key, r)
				made = append(made, ref)
				benchkit.Logf("%s: %s, round %d", app.Lang, contenders[i].key, r+1)
				start := time.Now()
				if err := b.contend(ctx, contenders[i].key, app.Ref, ref, probe); err != nil {
					return fmt.Errorf("%s on %s: %w", contenders[i].key, app.Ref, err)
				}
				results[i].Seconds = append(results[i].Seconds, time.Since(start).Seconds())
				results[i].Ref = ref
			}
		}
		for i := range results {
			res := &results[i]
			res.Key, res.Title, res.Median = contenders[i].key, contenders[i].title, benchkit.Median(res.Seconds)
			ref := res.Ref
			if res.image, err = b.describe(ctx, ref); err != nil {
				return err
			}
			res.Smaller = float64(ar.Original.SizeBytes) / float64(max(res.SizeBytes, 1))
			pr, err := b.prober.Check(ctx, ref, probe)
			if err != nil {
				return err
			}
			res.ProbeOK, res.ProbeNote = pr.Passed, pr.Failure
		}
		// Start to ready: the original and every result, a random order per round.
		refs := []string{app.Ref}
		for _, res := range results {
			refs = append(refs, res.Ref)
		}
		starts := make([][]float64, len(refs))
		for _, ord := range order.Rounds(app.Lang+" start", refs, cfg.startRounds) {
			for _, i := range ord {
				pr, err := b.prober.Check(ctx, refs[i], optimize.Probe{HTTP: probe.HTTP[:1]})
				if err != nil {
					return err
				}
				if pr.Passed {
					starts[i] = append(starts[i], pr.Duration)
				}
			}
		}
		ar.Original.StartSeconds, ar.Original.MedianStart = starts[0], benchkit.Median(starts[0])
		for i := range results {
			results[i].StartSeconds, results[i].MedianStart = starts[i+1], benchkit.Median(starts[i+1])
		}
		ar.Contenders = results
		rep.Apps = append(rep.Apps, ar)
	}
	rep.Notes = append(rep.Notes, rep.End(ctx, &rep.Machine.Host, "CPUs and the engine")...)
	md := rep.markdown()
	fmt.Print(md)
	return cfg.shared.Write("optimize", rep.Started, rep, md)
}

// contend makes ref from src the contender's way.
func (b *bench) contend(ctx context.Context, key, src, ref string, probe optimize.Probe) error {
	switch key {
	case "myrmex-size", "myrmex-lossless":
		opts := containerization.OptimizeOptions{OptimizedImage: ref, Sensor: b.sensor, Engine: b.eng, NoScan: true}
		if key == "myrmex-size" {
			opts.Probe = probe
		}
		_, err := b.myrmex.OptimizeContainers(ctx, src, "size", opts)
		return err
	case "docker-export-import":
		ins, err := b.eng.API().ImageInspect(ctx, src)
		if err != nil {
			return err
		}
		c := ins.Config
		var changes []string
		add := func(instr string, v any) {
			j, _ := json.Marshal(v)
			changes = append(changes, "--change", instr+" "+string(j))
		}
		if len(c.Entrypoint) > 0 {
			add("ENTRYPOINT", c.Entrypoint)
		}
		if len(c.Cmd) > 0 {
			add("CMD", c.Cmd)
		}
		for _, e := range c.Env {
			changes = append(changes, "--change", "ENV "+e)
		}
		if c.WorkingDir != "" {
			changes = append(changes, "--change", "WORKDIR "+c.WorkingDir)
		}
		if c.User != "" {
			changes = append(changes, "--change", "USER "+c.User)
		}
		for p := range c.ExposedPorts {
			changes = append(changes, "--change", "EXPOSE "+p)
		}
		id, err := exec.CommandContext(ctx, b.docker, "create", src).Output()
		if err != nil {
			return fmt.Errorf("docker create: %w", err)
		}
		cid := strings.TrimSpace(string(id))
		defer exec.Command(b.docker, "rm", "-f", cid).Run()
		export := exec.CommandContext(ctx, b.docker, "export", cid)
		imp := exec.CommandContext(ctx, b.docker, append(append([]string{"import"}, changes...), "-", ref)...)
		pipe, err := export.StdoutPipe()
		if err != nil {
			return err
		}
		imp.Stdin = pipe
		if err := export.Start(); err != nil {
			return err
		}
		out, ierr := imp.CombinedOutput()
		if err := errors.Join(export.Wait(), ierr); err != nil {
			return fmt.Errorf("docker export | docker import: %w: %s", err, out)
		}
		return nil
	case "crane-flatten":
		// Pushing the original is part of using crane on an engine's image: timed, as Myrmex's reading of it is.
		orig, flat := b.regHost+"/bench/"+strings.ReplaceAll(ref, ":", "-")+":orig", b.regHost+"/bench/"+strings.ReplaceAll(ref, ":", "-")+":flat"
		tarPath := filepath.Join(b.tmp, "orig.tar")
		defer os.Remove(tarPath)
		if err := b.eng.SaveImageFile(ctx, src, tarPath); err != nil {
			return err
		}
		for _, args := range [][]string{{"push", tarPath, orig}, {"flatten", orig, "-t", flat}, {"pull", flat, filepath.Join(b.tmp, "flat.tar")}} {
			if out, err := exec.CommandContext(ctx, b.crane, args...).CombinedOutput(); err != nil {
				return fmt.Errorf("crane %s: %w: %s", args[0], err, out)
			}
		}
		defer os.Remove(filepath.Join(b.tmp, "flat.tar"))
		f, err := os.Open(filepath.Join(b.tmp, "flat.tar"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := b.eng.LoadImage(ctx, f); err != nil {
			return err
		}
		_, err = b.eng.API().ImageTag(ctx, client.ImageTagOptions{Source: flat, Target: ref})
		_, _ = b.eng.API().ImageRemove(ctx, flat, client.ImageRemoveOptions{})
		return err
	}
	return fmt.Errorf("unknown contender %s", key)
}

// describe measures an image in the engine: its size, layers and dive's efficiency.
func (b *bench) describe(ctx context.Context, ref string) (image, error) {
	ins, err := b.eng.API().ImageInspect(ctx, ref)
	if err != nil {
		return image{}, err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return image{}, err
	}
	img, err := daemon.Image(r, daemon.WithContext(ctx))
	if err != nil {
		return image{}, err
	}
	a, err := optimize.Analyze(ctx, img, optimize.AnalyzeOptions{})
	if err != nil {
		return image{}, err
	}
	return image{Ref: ref, SizeBytes: ins.Size, Layers: len(ins.RootFS.Layers), Efficiency: a.Efficiency}, nil
}

func first(ctx context.Context, name string, args ...string) string {
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
}

func moduleVersion(ctx context.Context, mod string) string {
	return first(ctx, "go", "list", "-m", "-f", "{{.Version}}", mod)
}

func (r *report) markdown() string {
	out := r.Intro("Optimizing images", "`make bench-optimize`")
	out = append(out, r.MachineTable("Machine", r.Machine.Host,
		fmt.Sprintf("| engine | dockerd %s |", r.Machine.EngineVersion),
		fmt.Sprintf("| docker CLI | %s |", r.Machine.DockerCLI),
		fmt.Sprintf("| crane | %s |", r.Machine.Crane),
		fmt.Sprintf("| Go | %s |", r.Machine.GoVersion))...)
	out = append(out, "## Results", "",
		"Size as the engine counts it (its layers unpacked); efficiency is dive's; time is the whole contender's work (for Myrmex with a probe: profiling, two probe runs and the rewrite; for crane: push of the original, flatten, pull); start to ready is `docker run` to the first page answering, median of the rounds. Every result was checked with the probe (both pages).", "")
	for _, a := range r.Apps {
		out = append(out, fmt.Sprintf("### %s (`%s`)", a.App, a.Image), "",
			"| | size | smaller | layers | dive efficiency | probe | time (median s) | start to ready (median s) |",
			"|---|---|---|---|---|---|---|---|",
			fmt.Sprintf("| original | %.1f MB | 1.0× | %d | %.4f | passes | | %.2f |", mb(a.Original.SizeBytes), a.Original.Layers, a.Original.Efficiency, a.Original.MedianStart))
		for _, c := range a.Contenders {
			probe := "passes"
			if !c.ProbeOK {
				probe = "**broken**: " + c.ProbeNote
			}
			out = append(out, fmt.Sprintf("| %s | %.1f MB | %.1f× | %d | %.4f | %s | %.1f | %.2f |", c.Title, mb(c.SizeBytes), c.Smaller, c.Layers, c.Efficiency, probe, c.Median, c.MedianStart))
		}
		out = append(out, "")
		if i := slices.IndexFunc(a.Contenders, func(c result) bool { return c.Key == "myrmex-size" }); i >= 0 {
			for _, c := range a.Contenders {
				if c.Key == "docker-export-import" || c.Key == "crane-flatten" {
					out = append(out, fmt.Sprintf("- Myrmex's size over %s's: %.3f", c.Title, float64(a.Contenders[i].SizeBytes)/float64(max(c.SizeBytes, 1))))
				}
			}
			out = append(out, "")
		}
	}
	out = append(out, benchkit.NotesSection(r.Notes)...)
	out = append(out, benchkit.ReproduceSection("make bench-optimize",
		fmt.Sprintf("DOCKER_HOST=unix:///run/myrmex-test/docker.sock go run ./bench/optimize -rounds %d -start-rounds %d -seed %d", r.Rounds, r.StartRounds, r.Order.Seed))...)
	return strings.Join(out, "\n") + "\n"
}

func mb(n int64) float64 { return float64(n) / 1e6 }
