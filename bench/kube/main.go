// Command kube benchmarks Myrmex's Kubernetes apply-and-wait against kubectl, on the same control plane in the
// same run: N Deployments (50 by default, one replica each) applied and waited for until every one is rolled out.
//
// Three contenders, each in a fresh namespace of its own per round: `kubectl apply -f DIR` (client-side apply,
// the usual way) then `kubectl rollout status deployment/NAME` for each Deployment in turn, as a user's script
// does; the same with `kubectl apply --server-side`; and one kube.Client.Apply of the N objects with Wait, as one
// application. Every contender's namespace is created (with its default service account) before the timer starts
// and deleted, waiting until it is gone, after the round, so that no two contenders' work overlaps. After each
// contender the benchmark reads the Deployments back and fails unless all N are available (one ready, updated,
// available replica, the spec observed) and were applied by that contender's field manager.
//
// Every round runs the contenders in a random order of its own, drawn from a recorded seed.
//
// Before the timed rounds, each contender does the same work once, untimed, with its API requests counted (a
// counting transport under Myrmex's client; kubectl's own request log at -v=6), so that the report can say what
// each one asks of the API server.
//
// Results go to stdout and to bench/results/kube-<date>.md and .json with the machine and the control plane. Run
// it with `make bench-kube`, or against a control plane that is up (scripts/kube.sh up):
//
//	go run ./bench/kube
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
	"path/filepath"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/kube"
)

// defaultKubeconfig is where scripts/kube.sh writes the control plane's kubeconfig.
const defaultKubeconfig = "/run/myrmex-test/kube/kubeconfig"

// runLabel marks every namespace of a run with the run's ID; the cleanup deletes what carries it.
const runLabel = "io.codomyrmex.bench.run"

type config struct {
	n           int
	rounds      int
	census      bool
	diagnose    bool
	kubeconfig  string
	kubectl     string
	image       string
	timeout     time.Duration
	scale       []int // Deployment counts of the scale part
	scaleRounds int
	shared      *benchkit.Flags
}

func main() {
	var cfg config
	kc := os.Getenv("MYRMEX_TEST_KUBECONFIG")
	if kc == "" {
		kc = defaultKubeconfig
	}
	flag.IntVar(&cfg.n, "n", 50, "Deployments applied and waited for by every contender in every round")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of every contender; the median is reported")
	flag.BoolVar(&cfg.census, "census", true, "before the rounds, run every contender once untimed and count its API requests")
	flag.BoolVar(&cfg.diagnose, "diagnose", true, "also time Myrmex with client-go's rate limit lifted (QPS, Burst): "+
		"diagnostic rows, not in the headline ratios")
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", kc, "kubeconfig of the control plane (scripts/kube.sh up)")
	flag.StringVar(&cfg.kubectl, "kubectl", "", "kubectl binary; empty: the one `scripts/kube.sh bin` names, else kubectl on PATH")
	flag.StringVar(&cfg.image, "image", "myrmex.local/busybox:test", "image of the Deployments' container (KWOK nodes pull nothing)")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "longest a contender may take to roll out all Deployments")
	scale := flag.String("scale", "10,50,200", "Deployment counts at which Myrmex and kubectl --server-side run again, to show how time and requests grow (empty skips)")
	flag.IntVar(&cfg.scaleRounds, "scale-rounds", 2, "rounds of every contender at every scale count")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	var err error
	if cfg.scale, err = benchkit.Counts(*scale, 1, 999); err != nil {
		fmt.Fprintln(os.Stderr, "bench/kube: -scale", err)
		os.Exit(2)
	}
	benchkit.Main("kube", func(ctx context.Context) error { return run(ctx, cfg) })
}

func run(ctx context.Context, cfg config) (err error) {
	if cfg.n < 1 || cfg.n > 999 || cfg.rounds < 1 {
		return errors.New("n must be between 1 and 999, rounds positive")
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	if cfg.kubectl, err = findKubectl(ctx, cfg.kubectl); err != nil {
		return err
	}
	c, err := kube.New(kube.Config{Kubeconfig: cfg.kubeconfig})
	if err != nil {
		return err
	}
	if err := c.Ping(ctx); err != nil {
		return fmt.Errorf("%w (start the control plane with scripts/kube.sh up)", err)
	}
	tmp, err := os.MkdirTemp("", "myrmex-bench-kube-")
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, c: c, tmp: tmp, runID: benchkit.NewRunID(), order: cfg.shared.Order()}
	// Whatever happens, delete every namespace of this run, with a context the interrupt has not cancelled.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		n, cerr := b.deleteRunNamespaces(cctx)
		if n > 0 {
			benchkit.Logf("cleanup: deleted %d leftover namespaces of run %s", n, b.runID)
		}
		err = errors.Join(err, cerr, os.RemoveAll(tmp))
	}()

	rep := &report{Header: benchkit.Header{Started: time.Now(), RunID: b.runID, Source: src, Order: b.order}, N: cfg.n, Rounds: cfg.rounds,
		Image: cfg.image}
	rep.Machine = describe(ctx, b)
	others, err := b.otherNamespaces(ctx)
	if err != nil {
		return err
	}
	rep.OtherNamespacesBefore = others
	benchkit.Logf("run %s: %s (Kubernetes %s, %d KWOK nodes), kubectl %s, %d Deployments, %d rounds; %s; %s",
		b.runID, rep.Machine.Server, rep.Machine.ServerVersion, rep.Machine.Nodes, rep.Machine.Kubectl, cfg.n, cfg.rounds,
		src.Summary(), b.order.Summary())
	if err := b.setup(rep); err != nil {
		return err
	}
	if err := b.measure(ctx, rep); err != nil {
		return err
	}
	if len(cfg.scale) > 0 {
		if rep.Scale, err = b.scale(ctx); err != nil {
			return err
		}
		rep.ScaleRounds = cfg.scaleRounds
	}
	rep.Notes = append(rep.Notes, rep.End(ctx, &rep.Machine.Host, "CPUs and the control plane, which runs on the same machine")...)
	if rep.OtherNamespacesAfter, err = b.otherNamespaces(ctx); err != nil {
		return err
	}
	rep.finish()
	rep.printTable(os.Stdout)
	if err := cfg.shared.WriteFigures("kube", rep.Started, rep.figures()); err != nil {
		return err
	}
	return cfg.shared.Write("kube", rep.Started, rep, rep.markdown())
}

// findKubectl is the kubectl given, else the one scripts/kube.sh built (the control plane's own release), else
// kubectl on PATH.
func findKubectl(ctx context.Context, given string) (string, error) {
	if given != "" {
		return exec.LookPath(given)
	}
	if out, err := exec.CommandContext(ctx, "scripts/kube.sh", "bin").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "kubectl")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		return "", fmt.Errorf("no kubectl: build it with scripts/kube.sh build, or give -kubectl: %w", err)
	}
	return p, nil
}
