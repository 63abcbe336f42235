package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
)

func newOptimizeCmd(g *globalOptions) *cobra.Command {
	return group("optimize", "Analyse images for waste (optimize_containers)", newOptimizeAnalyzeCmd(g))
}

type analyzeOptions struct {
	lowestEfficiency, highestUserWasted float64
	highestWastedBytes                  int64
	exitCode                            int
	caFile, platform                    string
	creds                               credentialFlags
}

func newOptimizeAnalyzeCmd(g *globalOptions) *cobra.Command {
	var o analyzeOptions
	cmd := &cobra.Command{
		Use:   "analyze IMAGE",
		Short: "Show an image's layers, dive's efficiency figures and the bytes a rewrite could drop",
		Long: `Analyze IMAGE: read each layer once and show its size, the instruction that made it and its wasted bytes;
dive's image efficiency, wasted bytes and user-wasted ratio, computed as dive computes them; and the waste a
rewrite could drop: files overwritten or deleted by later layers, package-manager caches and lists, temporary
files and duplicate contents.

IMAGE is read as myrmex scan reads it: from the engine, docker://REF (a registry only), docker-archive:FILE or
oci:DIR[:TAG].

The gate flags are dive's CI rules (.dive-ci): a rule failed prints the analysis as usual and exits 7, or
--exit-code N. Without them nothing fails.`,
		Example: `  myrmex optimize analyze myrmex.local/web:test
  myrmex optimize analyze docker-archive:./app.tar --lowest-efficiency 0.95 --highest-user-wasted-percent 0.1
  myrmex optimize analyze registry.example.com/team/web:1.4 -o json`,
		Args: exactArgs(1, "one IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAnalyze(cmd, g, o, args[0])
		},
	}
	fl := cmd.Flags()
	fl.Float64Var(&o.lowestEfficiency, "lowest-efficiency", 0, "fail when the efficiency (0 to 1) is below this (dive's lowestEfficiency)")
	fl.Int64Var(&o.highestWastedBytes, "highest-wasted-bytes", 0, "fail when dive's wasted bytes are more than this (dive's highestWastedBytes)")
	fl.Float64Var(&o.highestUserWasted, "highest-user-wasted-percent", 0, "fail when wasted bytes over the bytes the layers above the first add (0 to 1) are more than this (dive's highestUserWastedPercent)")
	fl.IntVar(&o.exitCode, "exit-code", ExitPolicy, "exit code when a gate rule fails (0 to succeed anyway)")
	fl.StringVar(&o.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's, for an image read from a registry")
	fl.StringVar(&o.platform, "platform", "", "image from a multi-platform index, OS/ARCH[/VARIANT] (default linux/amd64)")
	o.creds.add(cmd, "", "u", "the image's registry")
	return cmd
}

func runAnalyze(cmd *cobra.Command, g *globalOptions, o analyzeOptions, image string) error {
	if o.exitCode < 0 || o.exitCode > 255 {
		return invalidf("--exit-code %d: want 0 to 255", o.exitCode)
	}
	ro, err := readOptions(g, image, o.caFile, o.platform, o.creds)
	if err != nil {
		return err
	}
	opts := containerization.AnalyzeOptions{Host: g.host, Logger: g.log, Registry: ro}
	fl := cmd.Flags()
	if fl.Changed("lowest-efficiency") {
		opts.Gate.LowestEfficiency = &o.lowestEfficiency
	}
	if fl.Changed("highest-wasted-bytes") {
		opts.Gate.HighestWastedBytes = &o.highestWastedBytes
	}
	if fl.Changed("highest-user-wasted-percent") {
		opts.Gate.HighestUserWastedPercent = &o.highestUserWasted
	}
	res, err := g.myrmex().AnalyzeImage(cmd.Context(), image, opts)
	if res == nil {
		return err
	}
	var perr error
	if g.structured() {
		perr = g.encode(res)
	} else {
		perr = printAnalysis(g.out, res)
	}
	if perr != nil {
		return perr
	}
	return policyExit(g, err, o.exitCode)
}

// mb writes bytes as megabytes with one decimal (10^6, as docker images and dive print sizes).
func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func printAnalysis(w io.Writer, a *containerization.ImageAnalysis) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Image:\t%s\n", a.Image)
	fmt.Fprintf(tw, "Size:\t%s in %d layers (%d files, %s as it runs)\n", mb(a.SizeBytes), len(a.Layers), a.Files, mb(a.ContentBytes))
	fmt.Fprintf(tw, "Efficiency (dive):\t%.2f %%\n", 100*a.Efficiency)
	fmt.Fprintf(tw, "Wasted (dive):\t%s, %.1f %% of the bytes above the first layer\n", mb(a.WastedBytes), 100*a.UserWastedPercent)
	ws := a.Waste
	fmt.Fprintf(tw, "Reclaimable:\t%s (overwritten %s, deleted %s, package caches %s, temporary %s, duplicates %s)\n",
		mb(ws.Total), mb(ws.Overwritten), mb(ws.Deleted), mb(ws.PackageCaches), mb(ws.Temporary), mb(ws.Duplicates))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "LAYER\tSIZE\tWASTED\tCREATED BY")
	for _, l := range a.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", l.Index, mb(l.SizeBytes), mb(l.WastedBytes), oneLine(l.CreatedBy, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(a.Items) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "WASTE\tLAYER\tSIZE\tFILES\tPATH\tWHY")
		for i, it := range a.Items {
			if i == 15 {
				fmt.Fprintf(tw, "…\t\t\t\t%d more in -o json\t\n", len(a.Items)-i)
				break
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", it.Kind, it.Layer, mb(it.Bytes), it.Files, it.Path, it.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, v := range a.Violations {
		fmt.Fprintf(w, "\nFAIL %s: %s", v.Rule, v.Message)
	}
	if len(a.Violations) > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

// oneLine shortens an instruction to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
