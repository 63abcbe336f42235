// Command build benchmarks Myrmex's image build against `docker build` and `buildctl`, cold and warm, on a
// multi-stage Dockerfile, in the same run and on the same builders.
//
// Four contenders, in pairs that share a builder: Myrmex's build.Build on the engine's BuildKit and the docker
// CLI's classic builder (DOCKER_BUILDKIT=0, since no buildx plugin is installed) on the same engine, which is a
// different builder, so their ratio is labelled so; and Myrmex's build.Build with Options.Builder against a
// standalone buildkitd v0.34.2 and buildctl against the same daemon, which compare like with like.
//
// Cold rounds start from a pruned build cache (`docker builder prune -af` and the classic builder's images
// removed; `buildctl prune --all`); warm rounds repeat the same build at once. Every build is checked to have
// made an image, and the files its final stage holds are hashed and compared across contenders. Every round runs
// the contenders in a random order of its own, drawn from a recorded seed.
//
// The benchmark makes what it needs and removes it at the end: the build context, an in-process registry on
// 127.0.0.1 holding the engine's myrmex.local/busybox:test (nothing is pulled from the internet), a buildkitd
// with a fresh state directory, and its images on the engine. buildkitd and buildctl are built once from
// buildkit's module (internal/testenv.BuildkitdBinary's throwaway module). Run it against a running engine:
//
//	DOCKER_HOST=unix:///run/myrmex-test/docker.sock go run ./bench/build
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

// baseImage is the local image every stage starts from; the engine holds it, buildkitd gets it from a registry.
const baseImage = "myrmex.local/busybox:test"

type config struct {
	rounds     int
	dockerHost string
	docker     string
	shared     *benchkit.Flags
}

func main() {
	var cfg config
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of every contender, cold then warm; the median is reported")
	flag.StringVar(&cfg.dockerHost, "docker-host", benchkit.DockerHost(), "engine address, for Myrmex and the docker CLI")
	flag.StringVar(&cfg.docker, "docker", "docker", "docker CLI binary")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	benchkit.Main("build", func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) (err error) {
	if cfg.rounds < 1 {
		return errors.New("rounds must be positive")
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	docker, err := exec.LookPath(cfg.docker)
	if err != nil {
		return fmt.Errorf("docker CLI: %w", err)
	}
	if err := os.Setenv("DOCKER_HOST", cfg.dockerHost); err != nil {
		return err
	}
	eng, err := engine.New(ctx, engine.Options{Host: cfg.dockerHost})
	if err != nil {
		return err
	}
	defer eng.Close()
	tmp, err := os.MkdirTemp("", "myrmex-bench-build-")
	if err != nil {
		return err
	}
	b := &bench{eng: eng, docker: docker, cfg: cfg, tmp: tmp, runID: benchkit.NewRunID(), order: cfg.shared.Order()}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, b.cleanup(cctx))
	}()

	rep := &report{Header: benchkit.Header{Started: time.Now(), RunID: b.runID, Source: src, Order: b.order}, Rounds: cfg.rounds}
	if err := b.setup(ctx, rep); err != nil {
		return err
	}
	rep.Machine = describe(ctx, b)
	benchkit.Logf("run %s: engine %s (dockerd %s), buildkitd %s; %s; %s", b.runID, cfg.dockerHost, rep.Machine.EngineVersion,
		rep.Machine.Buildkitd, src.Summary(), b.order.Summary())
	if err := b.measure(ctx, rep); err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, rep.End(ctx, &rep.Machine.Host, "CPUs and possibly the engine")...)
	rep.finish()
	rep.printTable(os.Stdout)
	return cfg.shared.Write("build", rep.Started, rep, rep.markdown())
}
