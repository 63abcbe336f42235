// Command registry benchmarks Myrmex's push, pull and registry-to-registry copy of a 300 MB, five-layer image
// against crane and the docker CLI, on the same engine and the same local registries, in the same run.
//
// The benchmark makes everything it needs and removes it at the end, also on failure or interrupt: an image of
// seeded random bytes and log-like text (the same digests in every run), loaded into the engine; two CNCF
// distribution servers on 127.0.0.1 (Debian's docker-registry), one holding the image that pull and copy read,
// the other emptied and moved to a new port before every push and copy; and crane, built once from its Go module
// into a cache next to the Go build cache. It also measures the machine's limits on the same data (sha256, gzip,
// loopback TCP, disk), so that each contender's MB/s can be read against them.
//
// Each contender runs several rounds, in a random order drawn anew for every round from a recorded seed; the
// report gives every round, the median, the CPU seconds of the client, dockerd and the registries, and Myrmex's
// median divided by each peer's. Every result is verified against the registry or the engine, and any error is
// fatal. Results are written only from a clean commit, unless -allow-dirty.
//
// Results go to stdout as a table and to bench/results/registry-<date>.md and .json with the machine and the
// tools' versions. Run it against a running engine:
//
//	DOCKER_HOST=unix:///run/myrmex-test/docker.sock go run ./bench/registry
//
// See bench/README.md for what is measured and how to read it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
)

type config struct {
	rounds         int
	layers         int
	layerMB        int
	dockerHost     string
	dockerdPidFile string
	docker         string
	crane          string
	distribution   string
	time           string
	limits         bool
	shared         *benchkit.Flags
}

func main() {
	// The benchmark runs each of Myrmex's operations in a child process: itself, with "child" first.
	if len(os.Args) > 1 && os.Args[1] == childArg {
		if err := child(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench/registry child:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	host := benchkit.DockerHost()
	pidFile := ""
	if host == benchkit.DefaultDockerHost {
		pidFile = "/run/myrmex-test/dockerd.pid"
	}
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds of every contender; the median is reported")
	flag.IntVar(&cfg.layers, "layers", 5, "layers of the benchmark image")
	flag.IntVar(&cfg.layerMB, "layer-mb", 60, "content of each layer in MB (10^6 bytes): half random bytes, half log-like text")
	flag.StringVar(&cfg.dockerHost, "docker-host", host, "engine address, for Myrmex and the docker CLI")
	flag.StringVar(&cfg.dockerdPidFile, "dockerd-pidfile", pidFile, "pidfile of the engine's dockerd, to count its CPU time; empty skips it")
	flag.StringVar(&cfg.docker, "docker", "docker", "docker CLI binary")
	flag.StringVar(&cfg.crane, "crane", "", "crane binary; empty builds crane "+craneVersion+" once into a cache next to GOCACHE")
	flag.StringVar(&cfg.distribution, "distribution", "/usr/bin/docker-registry", "CNCF distribution server binary (Debian's docker-registry)")
	flag.StringVar(&cfg.time, "time", "/usr/bin/time", "GNU time, which reads each contender's peak memory (apt-get install time); empty skips it")
	flag.BoolVar(&cfg.limits, "limits", true, "measure the machine's limits (sha256, gzip, loopback TCP, disk) on the same data")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	benchkit.Main("registry", func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) (err error) {
	if cfg.rounds < 1 || cfg.layers < 1 || cfg.layerMB < 2 {
		return errors.New("rounds and layers must be positive, layer-mb at least 2")
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	docker, err := exec.LookPath(cfg.docker)
	if err != nil {
		return fmt.Errorf("docker CLI: %w", err)
	}
	if _, err := os.Stat(cfg.distribution); err != nil {
		return fmt.Errorf("the distribution registry (apt-get install docker-registry, or scripts/engine.sh up): %w", err)
	}
	// The docker CLI processes inherit the engine address.
	if err := os.Setenv("DOCKER_HOST", cfg.dockerHost); err != nil {
		return err
	}
	eng, err := engine.New(ctx, engine.Options{Host: cfg.dockerHost})
	if err != nil {
		return err
	}
	defer eng.Close()
	crane, err := ensureCrane(ctx, cfg.crane)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "myrmex-bench-registry-")
	if err != nil {
		return err
	}
	// Myrmex's push from the engine saves the image to a temporary file: under TMPDIR, it lands in the run's
	// directory and goes with it.
	if err := os.Setenv("TMPDIR", tmp); err != nil {
		return err
	}
	b := &bench{eng: eng, docker: docker, crane: crane, cfg: cfg, tmp: tmp, runID: benchkit.NewRunID(), engineRefs: map[string]bool{},
		order: cfg.shared.Order()}
	b.dockerdPID = readPidFile(cfg.dockerdPidFile, "dockerd")
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if cfg.time != "" {
		if b.timeBin, err = exec.LookPath(cfg.time); err != nil {
			return fmt.Errorf("GNU time, to read peak memory (or -time ''): %w", err)
		}
	}
	// Whatever happens, stop the registries, remove the engine images the run made and the temporary files, with
	// a context the interrupt has not cancelled.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, b.cleanup(cctx))
	}()

	rep := &report{Header: benchkit.Header{Started: time.Now(), RunID: b.runID, Source: src, Order: b.order}, Settings: settingsOf(cfg, docker, crane)}
	rep.Machine, rep.Notes = describe(ctx, b)
	benchkit.Logf("run %s: engine %s (dockerd %s), crane %s, %s; %s; %s", b.runID, cfg.dockerHost, rep.Machine.EngineVersion,
		rep.Machine.CraneVersion, rep.Machine.Distribution, src.Summary(), b.order.Summary())

	if err := b.setup(ctx, rep); err != nil {
		return err
	}
	for _, ph := range []struct {
		name string
		out  *[]measurement
		run  func(context.Context) ([]measurement, error)
	}{
		{"push", &rep.Push, b.pushPhase},
		{"copy", &rep.Copy, b.copyPhase},
		{"pull", &rep.Pull, b.pullPhase}, // last: it removes the image from the engine
	} {
		ms, err := ph.run(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
		*ph.out = ms
	}
	rep.Notes = append(rep.Notes, b.notes...)
	rep.Notes = append(rep.Notes, rep.End(ctx, &rep.Machine.Host, "CPUs and possibly the engine")...)
	rep.finish()

	rep.printTable(os.Stdout)
	return cfg.shared.Write("registry", rep.Started, rep, rep.markdown())
}
