// Command scan benchmarks Myrmex's image scanning against Syft and Grype on the real Debian test image
// (testimages.DebianScan: a debootstrapped bookworm with npm packages, a Go binary and Python metadata), read by
// every tool from the same docker save archive, in the same run.
//
// Seven contenders run several rounds each, in a random order drawn anew for every round from a recorded seed:
// Myrmex's package inventory with an empty layer cache (cold) and with the layer cache a previous scan left (warm:
// Myrmex's layer cache, which Syft has no equivalent of); Myrmex's full scan through the facade
// (ScanContainerSecurity: inventory, advisory match, compliance checks) with an empty cache and as a re-scan of the
// unchanged archive; Grype's `grype docker-archive:FILE -o json`; and Syft's `syft scan docker-archive:FILE -o
// syft-json` with an empty and with a kept cache directory. Both advisory databases hold the same 54,014 OSV
// records, which the benchmark generates from the shapes of the real ones, the real fixtures inside
// (advisories.go): Myrmex's imported with vulndb.Import, Grype's built by Grype's own builder from the records in
// its providers' formats (grype.go). Every scan runs in a child process of its own, Myrmex's too (the benchmark
// runs itself with the `child` argument), started by a small launcher, so that wall time, CPU seconds and peak
// memory (the child's ru_maxrss) are measured the same way for every contender.
//
// Every round is verified and any error is fatal: each contender must find the same packages (Grype: the same
// findings) in every round, the warm inventory must have read every layer from its cache and found what the cold
// one found, and the full scan must have scanned as many packages as the inventory. The packages of Myrmex and
// Syft are then compared by ecosystem (deb, npm, go-module, python) and by name@version, against the image's own
// manifest too, and the vulnerabilities Myrmex and Grype found are compared.
//
// Syft and Grype are built once from their Go modules, in throwaway modules, into a cache next to the Go build
// cache; the main module's go.mod is never touched. Results go to stdout as a table and to
// bench/results/scan-<date>.md and .json with the machine and the tools' versions. Run it against a running
// engine:
//
//	DOCKER_HOST=unix:///run/myrmex-test/docker.sock go run ./bench/scan
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
)

type config struct {
	rounds     int
	dockerHost string
	syft       string
	grype      string
	scaleMB    []int // sizes of the scale images
	scaleRound int
	shared     *benchkit.Flags
}

func main() {
	// The benchmark runs each of Myrmex's scans in a child process: itself, with "child" first.
	if len(os.Args) > 1 && os.Args[1] == childArg {
		if err := child(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench/scan child:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds of every contender; the median is reported")
	flag.StringVar(&cfg.dockerHost, "docker-host", benchkit.DockerHost(), "engine address, where the Debian test image is made or found")
	flag.StringVar(&cfg.syft, "syft", "", "syft binary; empty builds syft "+syftVersion+" once into a cache next to GOCACHE")
	flag.StringVar(&cfg.grype, "grype", "", "grype binary; empty builds grype "+grypeVersion+" once into a cache next to GOCACHE "+
		"(its database builder is built there either way)")
	scale := flag.String("scale", "50,200,1000", "sizes in MB of the scale images, scanned by Myrmex, Grype and Syft to show how time and memory grow (empty skips)")
	flag.IntVar(&cfg.scaleRound, "scale-rounds", 2, "rounds of every contender at every scale size")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	var err error
	if cfg.scaleMB, err = benchkit.Counts(*scale, 10, 20000); err != nil {
		fmt.Fprintln(os.Stderr, "bench/scan: -scale", err)
		os.Exit(2)
	}
	benchkit.Main("scan", func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) (err error) {
	if cfg.rounds < 1 {
		return errors.New("rounds must be positive")
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to run its scans: %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	syft, build, err := ensureSyft(ctx, cfg.syft)
	if err != nil {
		return err
	}
	grype, err := ensureGrype(ctx, cfg.grype)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "myrmex-bench-scan-")
	if err != nil {
		return err
	}
	// The archive, the databases, the caches and every child's temporary files are under tmp, and go with it,
	// also after a failure or an interrupt.
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()

	b := &bench{cfg: cfg, self: self, syft: syft, grype: grype, root: root, tmp: tmp, runID: benchkit.NewRunID(), order: cfg.shared.Order()}
	rep := &report{Header: benchkit.Header{Started: time.Now(), RunID: b.runID, Source: src, Order: b.order}}
	if b.launcher, err = buildLauncher(ctx, tmp); err != nil {
		return fmt.Errorf("building the launcher: %w", err)
	}
	floor := exec.Command("/bin/true")
	floor.Dir = tmp
	p, err := runChild(b.launcher, floor)
	if err != nil {
		return fmt.Errorf("measuring the launcher's floor: %w", err)
	}
	rep.Machine, rep.Notes = describe(ctx, b)
	rep.LaunchFloorMB = float64(p.maxRSS) / 1e6
	rep.Machine.SyftBuild, rep.Machine.GrypeBuild = build, grype.how
	benchkit.Logf("run %s: syft %s (%s), osv-scalibr %s, %s; %s; %s", b.runID, rep.Machine.SyftVersion, syft, rep.Machine.ScalibrVersion,
		rep.Machine.GoVersion, src.Summary(), b.order.Summary())

	if err := b.setup(ctx, rep); err != nil {
		return err
	}
	if rep.Contenders, err = b.rounds(ctx, b.contenders()); err != nil {
		return err
	}
	if rep.Packages, err = b.compare(); err != nil {
		return err
	}
	rep.Findings = b.compareFindings()
	if len(cfg.scaleMB) > 0 {
		if rep.Scale, err = b.scale(ctx); err != nil {
			return err
		}
	}
	rep.Notes = append(rep.Notes, b.notes...)
	rep.Notes = append(rep.Notes, rep.End(ctx, &rep.Machine.Host, "CPUs")...)
	rep.finish(cfg)

	rep.printTable(os.Stdout)
	if err := cfg.shared.WriteFigures("scan", rep.Started, rep.figures()); err != nil {
		return err
	}
	return cfg.shared.Write("scan", rep.Started, rep, rep.markdown())
}
