// Command client measures what one long-lived containerization.Client saves over the package-level functions,
// which open their connections for every call: N sequential ManageContainers inspects of one container (a new
// engine client per call, with its API version negotiation, against one), and N sequential
// GetKubernetesDeployment reads of one Deployment (a new cluster client per call, with its discovery, against one).
// Each contender runs several rounds, in a random order drawn anew for every round from a recorded seed; every
// call's answer is checked. Results go to stdout and to bench/results/client-<date>.md and .json.
//
//	make bench-client
//	go run ./bench/client -kubeconfig /run/myrmex-test/kube/kubeconfig   # engine at DOCKER_HOST
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/internal/testimages"
)

type config struct {
	n, rounds  int
	kubeconfig string
	shared     *benchkit.Flags
}

func main() {
	var cfg config
	flag.IntVar(&cfg.n, "n", 50, "sequential calls per contender and round")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds per contender")
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", "/run/myrmex-test/kube/kubeconfig", "the cluster to read a Deployment from (scripts/kube.sh's by default)")
	cfg.shared = benchkit.RegisterFlags(flag.CommandLine)
	flag.Parse()
	benchkit.Main("client", func(ctx context.Context) error { return run(ctx, cfg) })
}

// row is one contender's rounds.
type row struct {
	Key    string    `json:"key"`
	Title  string    `json:"title"`
	How    string    `json:"how"`
	Rounds []float64 `json:"rounds_s"`
	Median float64   `json:"median_s"`
}

type part struct {
	Name  string  `json:"name"`
	Rows  []row   `json:"rows"`
	Ratio float64 `json:"ratio"` // the Client's median / the package functions'
}

type report struct {
	Machine benchkit.Host   `json:"machine"`
	Source  benchkit.Source `json:"source"`
	Order   *benchkit.Order `json:"order"`
	Go      string          `json:"go"`
	Myrmex  string          `json:"myrmex"`
	N       int             `json:"n"`
	Parts   []part          `json:"parts"`
	Notes   []string        `json:"notes,omitempty"`
}

type contender struct {
	key, title, how string
	run             func(ctx context.Context) error
}

func run(ctx context.Context, cfg config) error {
	if cfg.n < 1 || cfg.rounds < 1 {
		return errors.New("-n and -rounds must be positive")
	}
	src, err := cfg.shared.Source(ctx)
	if err != nil {
		return err
	}
	started := time.Now()
	rep := report{Machine: benchkit.ReadHost(), Order: cfg.shared.Order(), Go: runtime.Version(), Myrmex: containerization.Version(), N: cfg.n}
	runID := benchkit.NewRunID()

	// The container every inspect reads, and the Deployment every read reads, made through the library.
	setup, err := containerization.New(ctx, containerization.Config{Kubeconfig: cfg.kubeconfig})
	if err != nil {
		return err
	}
	defer setup.Close()
	name := "bench-client-" + runID
	if _, err := setup.ManageContainers(ctx, containerization.OpCreate, name, &containerization.ContainerConfig{
		Image: testimages.Busybox, Command: []string{"sleep", "3600"},
	}, containerization.ManageOptions{}); err != nil {
		return fmt.Errorf("creating the container (seed the images with `go run ./internal/tools/seedimages`): %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = setup.ManageContainers(cctx, containerization.OpRemove, name, nil, containerization.ManageOptions{Force: true})
	}()
	ns := "bench-client-" + runID
	kopts := containerization.KubernetesOptions{Kubeconfig: cfg.kubeconfig, CreateNamespace: true, Wait: true, Timeout: 2 * time.Minute}
	if _, err := setup.OrchestrateKubernetes(ctx, "myrmex-demo-web", "examples/k8s", ns, kopts); err != nil {
		return fmt.Errorf("deploying examples/k8s to %s (start the control plane with scripts/kube.sh up): %w", ns, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _ = setup.DeleteKubernetesDeployment(cctx, "myrmex-demo-web", ns, containerization.KubernetesOptions{Kubeconfig: cfg.kubeconfig})
	}()

	inspected := func(res *containerization.ContainerResult, err error) error {
		if err != nil {
			return err
		}
		if !res.Success || res.ContainerName != name || res.ContainerID == "" || res.Status != "created" {
			return fmt.Errorf("inspect answered %+v", res)
		}
		return nil
	}
	read := func(d *containerization.KubernetesDeployment, err error) error {
		if err != nil {
			return err
		}
		if d.Name != "myrmex-demo-web" || d.Namespace != ns || d.Status != "running" || d.ReadyReplicas != d.Replicas || len(d.Pods) == 0 {
			return fmt.Errorf("the deployment read back as %+v", d)
		}
		return nil
	}
	kread := containerization.KubernetesOptions{Kubeconfig: cfg.kubeconfig}
	parts := []struct {
		name string
		cs   []contender
	}{
		{"inspect", []contender{
			{"functions", "ManageContainers (package function)", fmt.Sprintf("%d × containerization.ManageContainers(ctx, \"inspect\", NAME, nil, ManageOptions{}): an engine client per call", cfg.n),
				func(ctx context.Context) error {
					for range cfg.n {
						if err := inspected(containerization.ManageContainers(ctx, containerization.OpInspect, name, nil, containerization.ManageOptions{})); err != nil {
							return err
						}
					}
					return nil
				}},
			{"client", "Client.ManageContainers", fmt.Sprintf("containerization.New, %d × c.ManageContainers(ctx, \"inspect\", …), c.Close: one engine client", cfg.n),
				func(ctx context.Context) error {
					c, err := containerization.New(ctx, containerization.Config{})
					if err != nil {
						return err
					}
					defer c.Close()
					for range cfg.n {
						if err := inspected(c.ManageContainers(ctx, containerization.OpInspect, name, nil, containerization.ManageOptions{})); err != nil {
							return err
						}
					}
					return nil
				}},
		}},
		{"kube-read", []contender{
			{"functions", "GetKubernetesDeployment (package function)", fmt.Sprintf("%d × containerization.GetKubernetesDeployment(ctx, APP, NS, KubernetesOptions{Kubeconfig}): a cluster client (and its discovery) per call", cfg.n),
				func(ctx context.Context) error {
					for range cfg.n {
						if err := read(containerization.GetKubernetesDeployment(ctx, "myrmex-demo-web", ns, kread)); err != nil {
							return err
						}
					}
					return nil
				}},
			{"client", "Client.GetKubernetesDeployment", fmt.Sprintf("containerization.New(Config{Kubeconfig}), %d × c.GetKubernetesDeployment, c.Close: one cluster client", cfg.n),
				func(ctx context.Context) error {
					c, err := containerization.New(ctx, containerization.Config{Kubeconfig: cfg.kubeconfig})
					if err != nil {
						return err
					}
					defer c.Close()
					for range cfg.n {
						if err := read(c.GetKubernetesDeployment(ctx, "myrmex-demo-web", ns, containerization.KubernetesOptions{})); err != nil {
							return err
						}
					}
					return nil
				}},
		}},
	}
	for _, p := range parts {
		keys := make([]string, len(p.cs))
		for i, c := range p.cs {
			keys[i] = c.key
		}
		rows := make([]row, len(p.cs))
		for i, c := range p.cs {
			rows[i] = row{Key: c.key, Title: c.title, How: c.how}
		}
		for r, order := range rep.Order.Rounds(p.name, keys, cfg.rounds) {
			for _, i := range order {
				t0 := time.Now()
				if err := p.cs[i].run(ctx); err != nil {
					return fmt.Errorf("%s, %s, round %d: %w", p.name, p.cs[i].key, r+1, err)
				}
				rows[i].Rounds = append(rows[i].Rounds, time.Since(t0).Seconds())
			}
		}
		for i := range rows {
			rows[i].Median = benchkit.Median(rows[i].Rounds)
		}
		rep.Parts = append(rep.Parts, part{Name: p.name, Rows: rows, Ratio: rows[1].Median / rows[0].Median})
	}
	rep.Source = src
	rep.Notes = append(rep.Notes, benchkit.Ended(ctx, &rep.Source, &rep.Machine, "CPUs with the engine and the control plane")...)
	md := markdown(rep, started)
	fmt.Print(md)
	return cfg.shared.Write("client", started, rep, md)
}

func markdown(rep report, started time.Time) string {
	var b []string
	b = append(b, "# One Client against a client per call", "")
	b = append(b, rep.Source.Banner()...)
	b = append(b, fmt.Sprintf("%d sequential calls per round, %s; Go %s, Myrmex %s. Below 1: the Client is faster.", rep.N, rep.Order.Summary(), rep.Go, rep.Myrmex), "")
	b = append(b, "| part | contender | how | rounds (s) | median (s) |", "|---|---|---|---|---|")
	for _, p := range rep.Parts {
		for _, r := range p.Rows {
			b = append(b, fmt.Sprintf("| %s | %s | %s | %s | %.3f |", p.Name, r.Title, r.How, benchkit.Floats(r.Rounds, "%.3f", ", "), r.Median))
		}
	}
	b = append(b, "", "| ratio | value |", "|---|---|")
	for _, p := range rep.Parts {
		b = append(b, fmt.Sprintf("| %s: Client / package function | **%.2f** |", p.Name, p.Ratio))
	}
	b = append(b, "", "## Machine", "", "| | |", "|---|---|")
	b = append(b, rep.Machine.Rows(started)...)
	b = append(b, rep.Source.Rows()...)
	b = append(b, "")
	b = append(b, rep.Order.Markdown()...)
	b = append(b, benchkit.NotesSection(rep.Notes)...)
	return strings.Join(b, "\n") + "\n"
}
