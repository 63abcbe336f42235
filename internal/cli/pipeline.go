package cli

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/pipeline"
)

func newPipelineCmd(g *globalOptions) *cobra.Command {
	return group("pipeline", "Run the build → test → scan → optimize → push → sign → deploy pipeline of a pipeline file",
		newPipelineRunCmd(g), newPipelineCheckCmd(g))
}

func newPipelineRunCmd(g *globalOptions) *cobra.Command {
	var (
		dbDir, cacheDir, kubeconfig, kubeContext string
		reg                                      registryFlags
		skip                                     []string
	)
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a pipeline file stage by stage, stopping at the first that fails",
		Long: `Run the pipeline FILE (docs/pipelines.md): build the image, test it (a probe, a command, or a container
beside it), scan it and hold it to the policy (the file's, else --policy), optimize it when asked, push it with
its scan and SBOM attached, sign the pushed digest, and deploy it pinned to that digest through the policy's
apply gate. Each stage's start and end go to stderr as it happens; stdout gets a line per stage (with -o json, the
whole run as one result, also when it fails). The first stage that fails stops the run, and the exit code is its
error's: a refusal by the policy or a failed test exits 7.`,
		Example: `  myrmex pipeline run pipeline.yaml --policy policy.yaml
  myrmex pipeline run examples/pipeline.yaml -o json`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pipeline.Load(args[0])
			if err != nil {
				return err
			}
			ro, err := reg.options(g)
			if err != nil {
				return err
			}
			var password []byte
			if p.Sign != nil && !slices.Contains(skip, pipeline.StageSign) {
				if password, err = keyPassword(); err != nil {
					return err
				}
			}
			opts := containerization.PipelineOptions{
				Scan:       containerization.ScanOptions{DBDir: dbDir, Cache: cacheDir, Logger: g.log},
				Registry:   ro,
				Kubernetes: containerization.KubernetesOptions{Kubeconfig: kubeconfig, Context: kubeContext},
				Host:       g.host, Logger: g.log, Progress: g.pipelineProgress(), Skip: skip, KeyPassword: password,
			}
			res, err := g.myrmex().RunPipeline(cmd.Context(), p, opts)
			if g.structured() {
				if perr := g.encode(res); perr != nil {
					return perr
				}
				return err
			}
			g.warnVerdict(res.Verdict)
			if perr := printPipeline(g.out, res); perr != nil {
				return perr
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&skip, "skip", nil, "stages not to run this time: test, optimize, push, sign, deploy (repeat or comma-separate)")
	fl.StringVar(&dbDir, "db-dir", "", "advisory database directory (default $MYRMEX_CACHE_DIR/osv, else ~/.cache/myrmex/osv)")
	fl.StringVar(&cacheDir, "cache-dir", "", "layer inventory cache directory (default: Myrmex's; - for none)")
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file for deploy (default $KUBECONFIG, else ~/.kube/config)")
	fl.StringVar(&kubeContext, "context", "", "kubeconfig context for deploy")
	fl.StringVar(&reg.caFile, "ca-file", "", "PEM file of certificate authorities to trust for the push besides the system's")
	reg.creds.add(cmd, "", "u", "the registry the pipeline pushes to (default: the saved registry's login, else the stored one)")
	return cmd
}

func newPipelineCheckCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Check a pipeline file (its fields, values and stages) without running anything",
		Args:  exactArgs(1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pipeline.Load(args[0])
			if err != nil {
				return err
			}
			if g.structured() {
				return g.encode(p)
			}
			fmt.Fprintf(g.out, "%s: pipeline %s for %s is valid\n", args[0], p.Name, p.Image)
			return nil
		},
	}
}

// pipelineProgress prints each stage's start and end on stderr in table mode.
func (g *globalOptions) pipelineProgress() func(containerization.Event) {
	if g.structured() {
		return nil
	}
	w := g.errOut
	started := map[string]time.Time{}
	return func(e containerization.Event) {
		if e.Op != "pipeline" {
			return
		}
		switch e.Status {
		case "started":
			started[e.Phase] = e.Time
			fmt.Fprintf(w, "pipeline %s: %s …\n", e.Subject, e.Phase)
		case containerization.StageSkipped:
			fmt.Fprintf(w, "pipeline %s: %s skipped (%s)\n", e.Subject, e.Phase, e.Message)
		default:
			fmt.Fprintf(w, "pipeline %s: %s %s in %.1fs: %s\n", e.Subject, e.Phase, e.Status, e.Time.Sub(started[e.Phase]).Seconds(), e.Message)
		}
	}
}

// printPipeline writes a line per stage: STAGE STATUS SECONDS SUMMARY.
func printPipeline(w io.Writer, res *containerization.PipelineResult) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "STAGE\tSTATUS\tSECONDS\tSUMMARY")
	for _, s := range res.Stages {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\n", s.Stage, s.Status, s.Duration, s.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Success {
		fmt.Fprintf(w, "pipeline %s passed in %.1fs", res.Name, res.Duration)
		if res.ImageDigest != "" {
			fmt.Fprintf(w, ": %s@%s", res.Reference, res.ImageDigest)
		}
		fmt.Fprintln(w)
	}
	return nil
}
