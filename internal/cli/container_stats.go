package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
)

func newContainerStatsCmd(g *globalOptions) *cobra.Command {
	var all bool
	var via string
	cmd := &cobra.Command{
		Use:   "stats [NAME...]",
		Short: "Sample containers' CPU, memory, network and disk use, health and score",
		Long: `Sample the named containers, or without names every running container of Myrmex's (with --all, every
running container). A running container is sampled over one second, all of them at once. -o json or yaml prints
the list of ContainerMetrics with the specification's field names; sizes are MiB.

The readings come from the containers' cgroups when myrmex runs on the engine's host as root (cgroup v1), else
from the engine's stats stream, which waits for the engine's own rounds (about two seconds for many containers);
--via engine or --via cgroups chooses.`,
		RunE: func(cmd *cobra.Command, names []string) error {
			if all && len(names) > 0 {
				return invalidf("--all samples every running container; give it no names")
			}
			return runStats(cmd, g, names, all, via)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include running containers that Myrmex did not create")
	cmd.Flags().StringVar(&via, "via", "", "where readings come from: cgroups or engine (default: the cgroups when readable)")
	return cmd
}

func runStats(cmd *cobra.Command, g *globalOptions, names []string, all bool, via string) error {
	ctx := cmd.Context()
	opts := containerization.MetricsOptions{Logger: g.log, Foreign: all, Via: via}
	if err := engine.CheckMetricsVia(via); err != nil {
		return invalidf("--via %q: want cgroups or engine", via)
	}

	var (
		metrics []containerization.ContainerMetrics
		first   error
	)
	if len(names) == 0 {
		metrics, first = g.myrmex().GetContainerMetrics(ctx, "", opts)
		if first != nil {
			g.fail(first)
		}
		if len(metrics) == 0 && first == nil && !g.structured() {
			fmt.Fprintln(g.errOut, "myrmex: no running containers of Myrmex's (--all includes the others)")
		}
	} else {
		// Each running container takes a second to sample: sample them together, report in the order asked.
		samples := make([][]containerization.ContainerMetrics, len(names))
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Go(func() { samples[i], errs[i] = g.myrmex().GetContainerMetrics(ctx, name, opts) })
		}
		wg.Wait()
		for i := range names {
			metrics = append(metrics, samples[i]...)
			if errs[i] != nil {
				g.fail(errs[i])
				if first == nil {
					first = errs[i]
				}
			}
		}
	}
	if metrics == nil {
		metrics = []containerization.ContainerMetrics{}
	}
	if err := printMetrics(g, metrics); err != nil {
		return err
	}
	if first != nil {
		return &reported{first}
	}
	return nil
}

func printMetrics(g *globalOptions, metrics []containerization.ContainerMetrics) error {
	if g.structured() {
		return g.encode(metrics)
	}
	tw := newTable(g.out)
	fmt.Fprintln(tw, "NAME\tCPU %\tMEM MB\tLIMIT MB\tNET RX/TX MB\tBLOCK R/W MB\tUPTIME\tRESTARTS\tHEALTH\tSCORE")
	for _, m := range metrics {
		uptime := time.Duration(m.UptimeSeconds * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%.1f\t%.2f / %.2f\t%.2f / %.2f\t%s\t%d\t%s\t%.1f\n",
			m.ContainerName, m.CPUUsagePercent, m.MemoryUsageMB, m.MemoryLimitMB, m.NetworkRxMB, m.NetworkTxMB,
			m.DiskReadMB, m.DiskWriteMB, uptime, m.RestartCount, m.HealthStatus, m.PerformanceScore)
	}
	return tw.Flush()
}
