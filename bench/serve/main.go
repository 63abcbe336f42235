// Command serve measures `myrmex serve`, the HTTP API, as a real process on loopback:
//
//   - Overhead: what a read through the API costs over the same read through the library, on one running
//     container: GET /v1/containers/{name}/metrics against Client.GetContainerMetrics, and GET
//     /v1/containers/{name} against Client.ManageContainers(inspect). Every call is timed on its own; each round
//     runs the two contenders of a part in a random order drawn anew for the round from a recorded seed; the
//     report gives p50 and p99 of each and the ratio API / library.
//   - Load: -clients concurrent clients (100), each on a connection of its own, for -duration (30 s), reading a mix
//     of inspect, metrics, container list, job list and health, twice (-runs): throughput, errors (every non-2xx
//     answer, transport error and wrong answer counts, and the first few are printed), p50 and p99 per route and
//     overall, and the server's memory (VmRSS and VmHWM of /proc/PID/status, its threads and open files) before
//     and after each run.
//
// Every answer is checked: the right container, its metrics present, the list holding it, the seeded jobs. The
// server is bin/myrmex, built from this tree, started with a temporary --state and a token made by `myrmex serve
// token create`; the run stops it, removes its container and deletes its state at the end, also after a failure or
// an interrupt. Results go to stdout and to bench/results/serve-<date>.md and .json.
//
//	make bench-serve
//	go run ./bench/serve -duration 3s -clients 20      # a quick run while developing (engine at DOCKER_HOST)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// runLabel marks every container a run makes, with the run's id, so that cleanup finds them.
const runLabel = "io.codomyrmex.bench.run"

type config struct {
	myrmex     string
	dockerHost string

	rounds, inspectN, metricsN int

	clients  int
	duration time.Duration
	runs     int
	mix      string
	jobs     int

	shared *benchkit.Flags
}

func main() {
	var cfg config
	flag.StringVar(&cfg.myrmex, "myrmex", "", "the myrmex binary to serve; empty builds bin/myrmex from this tree (go build ./cmd/myrmex)")
	flag.StringVar(&cfg.dockerHost, "docker-host", benchkit.DockerHost(), "engine address, for the server and the library")
	flag.IntVar(&cfg.rounds, "rounds", 10, "overhead: rounds per part, each running the two contenders in a random order")
	flag.IntVar(&cfg.inspectN, "inspect-n", 100, "overhead: sequential inspects per contender and round")
	flag.IntVar(&cfg.metricsN, "metrics-n", 10, "overhead: sequential metrics reads per contender and round (each waits one to two seconds for the engine's sample)")
	flag.IntVar(&cfg.clients, "clients", 100, "load: concurrent clients, each with a connection of its own")
	flag.DurationVar(&cfg.duration, "duration", 30*time.Second, "load: how long each run lasts")
	flag.IntVar(&cfg.runs, "runs", 2, "load: runs, one after the other, the server's memory read before and after each")
	flag.StringVar(&cfg.mix, "mix", defaultMix, "load: the reads each client draws from, route=weight, comma-separated")
	flag.IntVar(&cfg.jobs, "jobs", 25, "load: jobs made (scans of an image that does not exist, which fail at once) before the load, for the job list to list")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	benchkit.Main("serve", func(ctx context.Context) error { return run(ctx, cfg) })
}

// report is what a run writes to bench/results/serve-<date>.json.
type report struct {
	benchkit.Header
	Machine  machine              `json:"machine"`
	Setup    []benchkit.SetupStep `json:"setup"`
	Overhead []part               `json:"overhead"`
	Load     loadReport           `json:"load"`
	Notes    []string             `json:"notes,omitempty"`
}

type machine struct {
	benchkit.Host
	Engine string `json:"engine"`
	Go     string `json:"go"`
	Myrmex string `json:"myrmex"` // the served binary's `myrmex version`
	Binary string `json:"binary"` // its path
	Built  bool   `json:"built"`  // whether this run built it from the work tree (the commit measured)
	// Containers is how many containers the engine held when the load started, and how many of them Myrmex's (the
	// container list's answer, the run's own included): the list's cost grows with them, and other people's runs
	// share the engine.
	Containers       int `json:"containers"`
	MyrmexContainers int `json:"myrmex_containers"`
}

func (cfg config) check() error {
	switch {
	case cfg.rounds < 1 || cfg.inspectN < 1 || cfg.metricsN < 1:
		return errors.New("-rounds, -inspect-n and -metrics-n must be positive")
	case cfg.clients < 1 || cfg.clients > 10000:
		return errors.New("-clients must be from 1 to 10000")
	case cfg.duration <= 0 || cfg.duration > time.Hour:
		return errors.New("-duration must be from 1ns to 1h")
	case cfg.runs < 1 || cfg.runs > 10:
		return errors.New("-runs must be from 1 to 10")
	case cfg.jobs < 0 || cfg.jobs > 100:
		return errors.New("-jobs must be from 0 to 100 (the job list answers the newest 100)")
	}
	_, err := parseMix(cfg.mix)
	return err
}

func run(ctx context.Context, cfg config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	mix, _ := parseMix(cfg.mix)
	rep := &report{Header: benchkit.Header{Started: time.Now(), RunID: benchkit.NewRunID(), Source: src, Order: cfg.shared.Order()}}
	rep.Machine = machine{Host: benchkit.ReadHost(), Go: runtime.Version()}
	step := func(name string, t0 time.Time) {
		rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: name, Seconds: time.Since(t0).Seconds()})
	}

	t0 := time.Now()
	bin, built, err := myrmexBinary(ctx, cfg.myrmex)
	if err != nil {
		return err
	}
	rep.Machine.Binary, rep.Machine.Built = bin, built
	if built {
		step("go build ./cmd/myrmex", t0)
	}
	rep.Machine.Myrmex = myrmexVersion(ctx, bin)

	// The library's side: one long-lived Client, as the server holds one.
	lib, err := containerization.New(ctx, containerization.Config{Host: cfg.dockerHost})
	if err != nil {
		return err
	}
	defer lib.Close()
	eng, err := lib.Engine(ctx)
	if err != nil {
		return fmt.Errorf("the engine at %s: %w", cfg.dockerHost, err)
	}
	rep.Machine.Engine = engineVersion(ctx, eng)

	// The one running container every read reads.
	t0 = time.Now()
	name := "bench-serve-" + rep.RunID
	defer removeRun(eng, rep.RunID)
	if _, err := lib.ManageContainers(ctx, containerization.OpCreate, name, &containerization.ContainerConfig{
		Image: testimages.Busybox, Command: []string{"sleep", "3600"}, Labels: map[string]string{runLabel: rep.RunID},
	}, containerization.ManageOptions{}); err != nil {
		return fmt.Errorf("creating the container (seed the images with `go run ./internal/tools/seedimages`): %w", err)
	}
	started, err := lib.ManageContainers(ctx, containerization.OpStart, name, nil, containerization.ManageOptions{})
	if err != nil {
		return fmt.Errorf("starting the container: %w", err)
	}
	target := container{name: name, id: started.ContainerID}
	step("create and start the container", t0)

	t0 = time.Now()
	srv, err := startServer(ctx, bin, cfg.dockerHost)
	if err != nil {
		return err
	}
	defer srv.stop()
	step("myrmex serve: token create, start, first answer", t0)
	idle, err := srv.status("at its start (idle)")
	if err != nil {
		return err
	}
	benchkit.Logf("run %s: %s serving on %s (pid %d); engine %s (%s)", rep.RunID, bin, srv.url, srv.pid(), cfg.dockerHost, rep.Machine.Engine)

	if rep.Overhead, err = overhead(ctx, cfg, rep.Order, lib, srv, target); err != nil {
		return err
	}

	t0 = time.Now()
	jobIDs, err := seedJobs(ctx, srv, rep.RunID, cfg.jobs)
	if err != nil {
		return err
	}
	step(fmt.Sprintf("%d scan jobs made and ended", cfg.jobs), t0)
	rep.Machine.Containers, rep.Machine.MyrmexContainers = countContainers(ctx, eng)
	if rep.Load, err = load(ctx, cfg, mix, srv, target, jobIDs, idle); err != nil {
		return err
	}
	if err := srv.alive(); err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, loadNotes(rep.Load)...)
	rep.Notes = append(rep.Notes, rep.End(ctx, &rep.Machine.Host, "CPUs: the server, the engine and this load generator share them")...)
	md := markdown(rep)
	fmt.Print(md)
	return cfg.shared.Write("serve", rep.Started, rep, md)
}

// container is the one the reads read.
type container struct{ name, id string }

// removeRun force-removes every container of the run, also after a failure or an interrupt.
func removeRun(eng *engine.Client, runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := eng.List(ctx, engine.ListOptions{Foreign: true})
	if err != nil {
		benchkit.Logf("cleanup: listing containers: %v", err)
		return
	}
	for _, c := range list {
		if c.Labels[runLabel] == runID {
			if _, err := eng.Remove(ctx, c.ID, engine.RemoveOptions{Force: true}); err != nil {
				benchkit.Logf("cleanup: removing %s: %v", c.Name, err)
			}
		}
	}
}
