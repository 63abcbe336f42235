// Command lifecycle benchmarks Myrmex's container lifecycle and stats against its peers on the same engine, in
// the same run.
//
// The lifecycle part runs N create→start→stop→remove cycles of a sleeping busybox container through the Myrmex
// library, the docker CLI one step at a time, the docker CLI under xargs -P, and raw Engine API calls over the
// socket. The stats part samples N running Myrmex containers with GetContainerMetrics and with
// docker stats --no-stream. Each contender runs several rounds, in a random order drawn anew for every round from a
// recorded seed; the report gives every round, the median, and Myrmex's median divided by each peer's. Every
// contender's work is verified, and every container the run makes carries the label io.codomyrmex.bench.run=<run id>
// and is removed at the end, also on failure or interrupt. Results are written only from a clean commit, unless
// -allow-dirty.
//
// Results go to stdout as a table and to bench/results/lifecycle-<date>.md and .json with the machine and
// engine. Run it with `make bench`, or against a running engine:
//
//	DOCKER_HOST=unix:///run/myrmex-test/docker.sock go run ./bench/lifecycle
//
// See bench/README.md for how to read the ratios.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// runLabel marks every container of a run, whoever made it, with the run's ID.
const runLabel = "io.codomyrmex.bench.run"

// sleepCmd is what every benchmark container runs. As PID 1 without a handler, sleep ignores SIGTERM, so a stop
// always waits out its timeout and then kills: the timeout is the same for every contender.
var sleepCmd = []string{"sleep", "3600"}

type config struct {
	cycles      int
	concurrency int
	rounds      int
	warmup      int
	census      int
	stopTimeout int // seconds
	statsN      int
	statsRounds int
	scale       []int // cycle counts of the scale part
	scaleRounds int
	image       string
	docker      string
	shared      *benchkit.Flags
}

func main() {
	var cfg config
	flag.IntVar(&cfg.cycles, "cycles", 50, "create→start→stop→remove cycles per contender and round")
	flag.IntVar(&cfg.concurrency, "concurrency", 8, "cycles at once for the concurrent contenders")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of every lifecycle contender; the median is reported")
	flag.IntVar(&cfg.warmup, "warmup", 8, "unrecorded cycles per contender before the first round")
	flag.IntVar(&cfg.census, "census", 2, "untimed cycles per contender through a counting proxy, to count Engine API requests (0 skips)")
	flag.IntVar(&cfg.stopTimeout, "stop-timeout", 0, "stop timeout in seconds, the same for every contender")
	flag.IntVar(&cfg.statsN, "stats", 50, "running containers sampled in the stats part (0 skips it)")
	flag.IntVar(&cfg.statsRounds, "stats-rounds", 3, "rounds of every stats contender")
	scale := flag.String("scale", "10,50,200", "cycle counts at which the concurrent contenders run again, to show how the cost grows (empty skips)")
	flag.IntVar(&cfg.scaleRounds, "scale-rounds", 2, "rounds of every contender at every scale count")
	flag.StringVar(&cfg.image, "image", testimages.Busybox, "local image the containers run")
	flag.StringVar(&cfg.docker, "docker", "docker", "docker CLI binary")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	var err error
	if cfg.scale, err = benchkit.Counts(*scale, 1, 10000); err != nil {
		fmt.Fprintln(os.Stderr, "bench/lifecycle: -scale", err)
		os.Exit(2)
	}
	benchkit.Main("lifecycle", func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) (err error) {
	if cfg.cycles < 1 || cfg.concurrency < 1 || cfg.rounds < 1 || cfg.statsRounds < 1 || cfg.stopTimeout < 0 || cfg.statsN < 0 || cfg.warmup < 0 || cfg.census < 0 {
		return errors.New("cycles, concurrency, rounds and stats-rounds must be positive; stop-timeout, stats, warmup and census not negative")
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	docker, err := exec.LookPath(cfg.docker)
	if err != nil {
		return fmt.Errorf("docker CLI: %w", err)
	}
	eng, err := engine.New(ctx, engine.Options{})
	if err != nil {
		return err
	}
	defer eng.Close()
	raw, err := newRawAPI(eng.Host(), max(cfg.concurrency, 2))
	if err != nil {
		return err
	}
	if ok, err := eng.ImageExists(ctx, cfg.image); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("image %s is not in the engine: seed it with `go run ./internal/tools/seedimages`", cfg.image)
	}

	b := &bench{eng: eng, raw: raw, docker: docker, cfg: cfg, runID: benchkit.NewRunID(), order: cfg.shared.Order()}
	// Whatever happens, remove every container of this run, with a context the interrupt has not cancelled.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		n, cerr := raw.removeAll(cctx, runLabel, b.runID)
		if n > 0 {
			benchkit.Logf("cleanup: removed %d leftover containers of run %s", n, b.runID)
		}
		err = errors.Join(err, cerr)
	}()

	rep := &report{Header: benchkit.Header{Started: time.Now(), RunID: b.runID, Source: src, Order: b.order}, Settings: settingsOf(cfg, docker)}
	rep.Machine, rep.Notes = describe(ctx, raw, docker)
	benchkit.Logf("run %s on %s (engine %s, API %s), %d cycles, concurrency %d, stop timeout %ds, %d rounds; %s; %s",
		b.runID, raw.host, rep.Machine.EngineVersion, rep.Machine.EngineAPI, cfg.cycles, cfg.concurrency, cfg.stopTimeout, cfg.rounds,
		src.Summary(), b.order.Summary())

	if rep.Lifecycle, err = b.lifecycle(ctx); err != nil {
		return err
	}
	if len(cfg.scale) > 0 {
		if rep.Scale, err = b.scale(ctx); err != nil {
			return err
		}
	}
	if cfg.statsN > 0 {
		var notes []string
		if rep.Stats, notes, err = b.stats(ctx); err != nil {
			return err
		}
		rep.Notes = append(rep.Notes, notes...)
	}
	rep.Notes = append(rep.Notes, rep.End(ctx, &rep.Machine.Host, "CPUs and possibly the engine")...)
	rep.ratios()

	rep.printTable(os.Stdout)
	if err := cfg.shared.WriteFigures("lifecycle", rep.Started, rep.figures()); err != nil {
		return err
	}
	return cfg.shared.Write("lifecycle", rep.Started, rep, rep.markdown())
}

// scaleKeys are the contenders of the scale part: the concurrent ones (the sequential CLI would take minutes at
// the largest count and says nothing the others do not).
var scaleKeys = []string{"myrmex", "cli-xargs", "raw-api"}

// scale runs the concurrent lifecycle contenders again at each cycle count of -scale, in a random order per round,
// to show how the cost grows with the work.
func (b *bench) scale(ctx context.Context) ([]scalePoint, error) {
	var cs []lifecycleContender
	for _, c := range b.lifecycleContenders() {
		if slices.Contains(scaleKeys, c.key) {
			cs = append(cs, c)
		}
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	var out []scalePoint
	for _, n := range b.cfg.scale {
		ms := make([]measurement, len(cs))
		for i, c := range cs {
			ms[i] = measurement{Key: c.key, Title: c.title, How: c.how, Concurrency: c.concurrency, Ops: n}
		}
		for r, order := range b.order.Rounds(fmt.Sprintf("scale %d", n), keys, b.cfg.scaleRounds) {
			for _, i := range order {
				s, err := b.lifecycleRound(ctx, cs[i], fmt.Sprintf("s%d-r%d", n, r+1), n)
				if err != nil {
					return nil, fmt.Errorf("scale %d, round %d of %s: %w", n, r+1, cs[i].title, err)
				}
				ms[i].add(s)
				benchkit.Logf("scale %d round %d  %-28s %8.3fs", n, r+1, cs[i].title, s.seconds)
			}
		}
		for i := range ms {
			ms[i].summarize()
		}
		out = append(out, scalePoint{Cycles: n, Contenders: ms})
	}
	return out, nil
}

// lifecycle runs the warm-up and then the rounds, each contender once per round in a random order of the round's
// own (b.order), so that no contender is bound to run first (cold) or right after another (in its garbage).
func (b *bench) lifecycle(ctx context.Context) ([]measurement, error) {
	cs := b.lifecycleContenders()
	ms := make([]measurement, len(cs))
	for i, c := range cs {
		ms[i] = measurement{Key: c.key, Title: c.title, How: c.how, Concurrency: c.concurrency, Ops: b.cfg.cycles}
	}
	if b.cfg.warmup > 0 {
		for _, c := range cs {
			if _, err := b.lifecycleRound(ctx, c, "w", b.cfg.warmup); err != nil {
				return nil, fmt.Errorf("warm-up of %s: %w", c.title, err)
			}
		}
		benchkit.Logf("warm-up done (%d cycles each)", b.cfg.warmup)
	}
	if b.cfg.census > 0 {
		if err := b.lifecycleCensus(ctx, cs, ms, b.cfg.census); err != nil {
			return nil, err
		}
		for _, m := range ms {
			benchkit.Logf("census  %-28s %5.1f requests/cycle: %s", m.Title, m.Requests.PerOp, m.Requests)
		}
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	for r, order := range b.order.Rounds("lifecycle", keys, b.cfg.rounds) {
		for _, i := range order {
			s, err := b.lifecycleRound(ctx, cs[i], fmt.Sprintf("r%d", r+1), b.cfg.cycles)
			if err != nil {
				return nil, fmt.Errorf("round %d of %s: %w", r+1, cs[i].title, err)
			}
			ms[i].add(s)
			benchkit.Logf("round %d  %-28s %8.3fs", r+1, cs[i].title, s.seconds)
		}
	}
	for i := range ms {
		ms[i].summarize()
	}
	return ms, nil
}

// sample is one timed run of a contender.
type sample struct {
	seconds        float64
	alloc, mallocs uint64 // this process's, for in-process contenders
	extra          int    // stats: containers sampled that are not the benchmark's
}

// lifecycleRound times one contender over n fresh names and verifies the result: n distinct container IDs came
// back, and no container of the run is left on the engine.
func (b *bench) lifecycleRound(ctx context.Context, c lifecycleContender, round string, n int) (sample, error) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-%s-%s-%02d", b.runID, c.key, round, i+1)
	}
	var s sample
	var ids []string
	err := measure(&s, c.inProcess, func() (err error) {
		ids, err = c.run(ctx, names)
		return err
	})
	if err != nil {
		return s, err
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if len(id) != 64 || seen[id] {
			return s, fmt.Errorf("container IDs: got %q among %d, want %d distinct 64-hex IDs", id, len(ids), n)
		}
		seen[id] = true
	}
	if len(seen) != n {
		return s, fmt.Errorf("%d containers cycled, want %d", len(seen), n)
	}
	left, err := b.raw.list(ctx, runLabel, b.runID)
	if err != nil {
		return s, err
	}
	if len(left) > 0 {
		return s, fmt.Errorf("%d containers left on the engine after the round, want 0 (first: %v)", len(left), left[0].Names)
	}
	return s, nil
}

// measure times fn and, for an in-process contender, counts what this process allocated meanwhile. A GC first
// keeps one contender's garbage out of the next one's time.
func measure(s *sample, inProcess bool, fn func() error) error {
	runtime.GC()
	var before, after runtime.MemStats
	if inProcess {
		runtime.ReadMemStats(&before)
	}
	start := time.Now()
	err := fn()
	s.seconds = time.Since(start).Seconds()
	if inProcess {
		runtime.ReadMemStats(&after)
		s.alloc, s.mallocs = after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs
	}
	return err
}

// stats starts statsN containers through Myrmex, samples them with every stats contender in a random order per
// round, and removes them. Running Myrmex containers that are not the benchmark's are sampled by
// GetContainerMetrics too; the notes say how many there were.
func (b *bench) stats(ctx context.Context) ([]measurement, []string, error) {
	n := b.cfg.statsN
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-stats-%02d", b.runID, i+1)
	}
	opts := containerization.ManageOptions{Engine: b.eng}
	start := time.Now()
	_, err := parallel(ctx, names, b.cfg.concurrency, func(ctx context.Context, name string) (string, error) {
		cfg := &containerization.ContainerConfig{Image: b.cfg.image, Command: sleepCmd, Labels: b.labels()}
		if _, err := containerization.ManageContainers(ctx, containerization.OpCreate, name, cfg, opts); err != nil {
			return "", err
		}
		res, err := containerization.ManageContainers(ctx, containerization.OpStart, name, nil, opts)
		return res.ContainerID, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the stats containers: %w", err)
	}
	if !b.allRunning(ctx, n) {
		return nil, nil, fmt.Errorf("not all %d Myrmex containers of the run are running", n)
	}
	benchkit.Logf("stats: %d containers running (started in %.1fs)", n, time.Since(start).Seconds())

	cs := b.statsContenders(n)
	ms := make([]measurement, len(cs))
	for i, c := range cs {
		ms[i] = measurement{Key: c.key, Title: c.title, How: c.how, Concurrency: c.concurrency, Ops: n}
	}
	var notes []string
	if b.cfg.census > 0 {
		if err := b.statsCensus(ctx, cs, ms, names); err != nil {
			return nil, nil, err
		}
		for _, m := range ms {
			benchkit.Logf("census  %-28s %5.1f requests/container: %s", m.Title, m.Requests.PerOp, m.Requests)
		}
	}
	maxExtra := 0
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	for r, order := range b.order.Rounds("stats", keys, b.cfg.statsRounds) {
		for _, i := range order {
			var s sample
			var sampled []string
			for attempt := 1; ; attempt++ {
				err := measure(&s, cs[i].inProcess, func() (err error) {
					sampled, s.extra, err = cs[i].run(ctx, names)
					return err
				})
				if err == nil {
					break
				}
				// GetContainerMetrics samples every running Myrmex container on the engine, and fails when one
				// of someone else's is removed while it is sampled. When all of ours are still running, the
				// round says nothing about the library's speed: run it again, and say so in the report.
				if attempt == maxAttempts || ctx.Err() != nil || !b.allRunning(ctx, n) {
					return nil, nil, fmt.Errorf("stats round %d of %s: %w", r+1, cs[i].title, err)
				}
				benchkit.Logf("stats round %d  %s failed with every benchmark container running; running it again: %v", r+1, cs[i].title, err)
				notes = append(notes, fmt.Sprintf("stats round %d of %s failed with all %d benchmark containers running, and was run again: %v",
					r+1, cs[i].title, n, strings.ReplaceAll(err.Error(), "\n", "; ")))
			}
			slices.Sort(sampled)
			if !slices.Equal(sampled, names) {
				return nil, nil, fmt.Errorf("stats round %d of %s: figures for %d of the %d containers", r+1, cs[i].title, len(sampled), n)
			}
			maxExtra = max(maxExtra, s.extra)
			ms[i].add(s)
			benchkit.Logf("stats round %d  %-28s %8.3fs  (%d sampled, %d others)", r+1, cs[i].title, s.seconds, len(sampled), s.extra)
		}
	}
	for i := range ms {
		ms[i].summarize()
	}

	force := containerization.ManageOptions{Engine: b.eng, Force: true}
	if _, err := parallel(ctx, names, b.cfg.concurrency, func(ctx context.Context, name string) (string, error) {
		res, err := containerization.ManageContainers(ctx, containerization.OpRemove, name, nil, force)
		return res.ContainerID, err
	}); err != nil {
		return nil, nil, fmt.Errorf("removing the stats containers: %w", err)
	}
	if maxExtra > 0 {
		notes = append(notes, fmt.Sprintf("GetContainerMetrics also sampled up to %d running Myrmex containers that were not the benchmark's "+
			"(it samples all of Myrmex's): the Myrmex stats times cover %d+ containers, docker stats' %d.", maxExtra, n, n))
	}
	return ms, notes, nil
}

// maxAttempts bounds the runs of a stats round that foreign containers spoil.
const maxAttempts = 3

// allRunning reports whether the run's n Myrmex containers are all running.
func (b *bench) allRunning(ctx context.Context, n int) bool {
	cs, err := b.raw.list(ctx, runLabel, b.runID)
	if err != nil {
		return false
	}
	running := 0
	for _, c := range cs {
		if c.State == "running" && c.Labels[engine.ManagedLabel] == "true" {
			running++
		}
	}
	return running == n
}
