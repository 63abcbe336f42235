package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/optimize"
)

// probeFlags are the flags of an optimization: the probe, and what to keep and drop.
type probeFlags struct {
	sensor, probeExec, probeRun, probeOutput, probeBody   string
	probeHTTP, keep, drop, removeLayers                   []string
	probeStatus, probeExitCode                            int
	probeTimeout                                          time.Duration
	healthcheck, keepShell, keepPackageManager, noUpgrade bool
	user                                                  string
	targetSize                                            float64
}

type optimizeFlags struct {
	probeFlags
	typ, target, caFile, platform, dbDir, registry, measureRepo string
	noScan, push                                                bool
	measureRounds                                               int
	creds                                                       credentialFlags
}

func newOptimizeCmd(g *globalOptions) *cobra.Command {
	var o optimizeFlags
	cmd := &cobra.Command{
		Use:   "optimize IMAGE",
		Short: "Rewrite an image smaller and prove it still works (optimize_containers); analyse an image for waste",
		Long: `Optimize IMAGE: flatten it into one layer without the data later layers hide, package-manager caches and
temporary files; with a probe, run it under a sensor that records every file it opens, executes or lists, and
keep only those, what they need (ELF interpreter and libraries, users, name service, certificates, the OS
package database) and the paths given with --keep. Then verify: the same probe on the original and the
optimized image (it must pass on both and answer the same), and a scan of both (no more vulnerabilities, no
lower compliance score). An optimized image that fails verification is removed and the command exits 7.

A probe is one or more --probe-http PORT/PATH requests (asked in order from the container's own network
namespace; the first waits for the server), --probe-exec commands run inside the running container, or
--probe-cmd, which runs the image with that command and waits for it to end. Without a probe the image's own
HEALTHCHECK is the probe; without either only lossless changes are made.

The optimized image is written to the engine as -t NAME (default: the original's repository with -optimized
after its tag). The original is never modified. Profiling copies the static myrmex-sensor program into the
container (with CAP_SYS_ADMIN for the sensor only); it is looked for with --sensor, $MYRMEX_SENSOR, beside
myrmex, then on PATH. Progress goes to stderr. --type security hardens the image instead; performance measures push, pull and start of both images
(--measure-repository); multi does all three (docs/optimizing.md).`,
		Example: `  myrmex optimize myrmex.local/app-python:test --probe-http 8000/ --probe-http 8000/second
  myrmex optimize app:1 --probe-cmd "app --version" --probe-output "app 1." -t app:1-slim
  myrmex optimize app:1 --probe-http 8080/healthz --keep /app/templates --target-size 50 -o json
  myrmex optimize analyze myrmex.local/web:test`,
		Args: func(cmd *cobra.Command, args []string) error {
			// "optimize analyse X" is a mistyped subcommand, not two images.
			if len(args) > 1 {
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					return &usageError{fmt.Errorf("unknown command %q for %q (did you mean %s?)", args[0], cmd.CommandPath(), strings.Join(s, ", "))}
				}
			}
			return exactArgs(1, "one IMAGE")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOptimize(cmd, g, o, args[0])
		},
	}
	cmd.AddCommand(newOptimizeAnalyzeCmd(g))
	cmd.SuggestionsMinimumDistance = 2
	fl := cmd.Flags()
	fl.StringVar(&o.typ, "type", "size", "size, security, performance (size, measured) or multi (security, size, measured)")
	fl.StringVarP(&o.target, "tag", "t", "", "name of the optimized image (default: IMAGE's repository, its tag with -optimized)")
	fl.StringVar(&o.measureRepo, "measure-repository", "", "performance and multi: where both images are pushed to be timed (REGISTRY/REPO, http://HOST:PORT/REPO for plain HTTP)")
	fl.IntVar(&o.measureRounds, "measure-rounds", 0, "performance and multi: times each image is pushed, pulled and started (default 3)")
	fl.BoolVar(&o.push, "push", false, "push the optimized image once it is verified")
	fl.StringVar(&o.registry, "registry", "", "registry to push to: host[:port], https://host, or http://host:port for plain HTTP (default: the registry the name names)")
	fl.BoolVar(&o.noScan, "no-scan", false, "do not scan the original and the result for the comparison")
	fl.StringVar(&o.dbDir, "db-dir", "", "advisory database for the scans (default: myrmex db's; without one, compliance only)")
	o.probeFlags.add(cmd)
	fl.StringVar(&o.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's, for an image read from a registry")
	fl.StringVar(&o.platform, "platform", "", "image from a multi-platform index, OS/ARCH[/VARIANT] (default linux/amd64)")
	o.creds.add(cmd, "", "u", "the image's registry")
	return cmd
}

// add defines the probe and selection flags on cmd.
func (o *probeFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&o.probeHTTP, "probe-http", nil, "probe: GET http://127.0.0.1:PORT/PATH inside the container (repeat for more requests)")
	fl.IntVar(&o.probeStatus, "probe-status", 0, "status every --probe-http answer must have (default: any below 400)")
	fl.StringVar(&o.probeBody, "probe-body", "", "text every --probe-http answer's body must hold")
	fl.StringVar(&o.probeExec, "probe-exec", "", "probe: a command run inside the running container (split on spaces)")
	fl.StringVar(&o.probeRun, "probe-cmd", "", "probe: run the image with this command (split on spaces) and wait for it to end")
	fl.IntVar(&o.probeExitCode, "probe-exit-code", 0, "exit code --probe-exec or --probe-cmd must end with")
	fl.StringVar(&o.probeOutput, "probe-output", "", "text the output of --probe-exec or --probe-cmd must hold")
	fl.DurationVar(&o.probeTimeout, "probe-timeout", 0, "how long the probe waits for the first answer (default 1m)")
	fl.BoolVar(&o.healthcheck, "probe-healthcheck", false, "probe: the image's HEALTHCHECK must report healthy (the default without another probe)")
	fl.StringArrayVar(&o.keep, "keep", nil, "a path (and what is under it) the optimized image keeps (repeatable)")
	fl.StringArrayVar(&o.drop, "drop", nil, "a path (and what is under it) the optimized image loses (repeatable)")
	fl.StringArrayVar(&o.removeLayers, "remove-layer", nil, "a layer (index from 0, or diff ID) whose changes are left out (repeatable)")
	fl.Float64Var(&o.targetSize, "target-size", 0, "size in MB the result is measured against (target_reached)")
	fl.StringVar(&o.sensor, "sensor", "", "path of the myrmex-sensor program")
	fl.BoolVar(&o.keepShell, "keep-shell", false, "keep the image's shells whatever the probe used")
	fl.BoolVar(&o.keepPackageManager, "keep-package-manager", false, "keep the image's package manager whatever the probe used")
	fl.BoolVar(&o.noUpgrade, "no-upgrade", false, "security and multi: leave the OS packages as they are (default: upgrade the vulnerable ones that have a fix)")
	fl.StringVar(&o.user, "user", "", "security and multi: the user to run as, NAME or UID[:GID] (default: the image's unprivileged user, else one created)")
}

// options turns the flags into the library's options (without the scan's, the registry's or the name).
func (o probeFlags) options() (containerization.OptimizeOptions, error) {
	probe := optimize.Probe{Timeout: o.probeTimeout, HealthCheck: o.healthcheck}
	for _, h := range o.probeHTTP {
		port, p, _ := strings.Cut(h, "/")
		n, err := strconv.Atoi(port)
		if err != nil {
			return containerization.OptimizeOptions{}, invalidf("--probe-http %q: want PORT/PATH, e.g. 8080/healthz", h)
		}
		probe.HTTP = append(probe.HTTP, optimize.HTTPCheck{Port: n, Path: "/" + p, Status: o.probeStatus, Body: o.probeBody})
	}
	if o.probeExec != "" {
		probe.Exec = append(probe.Exec, optimize.CommandCheck{Cmd: strings.Fields(o.probeExec), ExitCode: o.probeExitCode, Output: o.probeOutput})
	}
	if o.probeRun != "" {
		probe.Run = &optimize.CommandCheck{Cmd: strings.Fields(o.probeRun), ExitCode: o.probeExitCode, Output: o.probeOutput}
	}
	return containerization.OptimizeOptions{
		TargetSizeMB: o.targetSize, LayersToRemove: o.removeLayers, Probe: probe, Keep: o.keep, Drop: o.drop, Sensor: o.sensor,
		KeepShells: o.keepShell, KeepPackageManagers: o.keepPackageManager, User: o.user, NoUpgrade: o.noUpgrade,
	}, nil
}

func runOptimize(cmd *cobra.Command, g *globalOptions, o optimizeFlags, image string) error {
	ro, err := readOptions(g, image, o.caFile, o.platform, o.creds)
	if err != nil {
		return err
	}
	opts, err := o.probeFlags.options()
	if err != nil {
		return err
	}
	opts.OptimizedImage, opts.NoScan, opts.Scan, opts.Registry = o.target, o.noScan, containerization.ScanOptions{DBDir: o.dbDir}, ro
	opts.Push, opts.PushRegistry = o.push, o.registry
	opts.MeasureRepository, opts.MeasureRounds = o.measureRepo, o.measureRounds
	opts.Host, opts.Logger, opts.Progress = g.host, g.log, g.kubeProgress()
	res, err := g.myrmex().OptimizeContainers(cmd.Context(), image, o.typ, opts)
	if res == nil {
		return err
	}
	if err := show(g, res, printOptimization); err != nil {
		return err
	}
	return err
}

func printOptimization(w io.Writer, r *containerization.OptimizationResult) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Original:\t%s\n", r.OriginalImage)
	if r.OptimizedImage != "" {
		fmt.Fprintf(tw, "Optimized:\t%s\n", r.OptimizedImage)
	}
	if d := r.Result; d != nil {
		ratio := 0.0
		if d.SizeAfter > 0 {
			ratio = float64(d.SizeBefore) / float64(d.SizeAfter)
		}
		fmt.Fprintf(tw, "Size:\t%s → %s (%.1f× smaller, %.1f MB less)\n", mb(d.SizeBefore), mb(d.SizeAfter), ratio, r.SizeReductionMB)
		fmt.Fprintf(tw, "Layers:\t%d → %d\n", d.LayersBefore, d.LayersAfter)
		fmt.Fprintf(tw, "Files:\t%d → %d\n", d.FilesBefore, d.FilesAfter)
		fmt.Fprintf(tw, "Efficiency (dive):\t%.2f %% → %.2f %%\n", 100*d.EfficiencyBefore, 100*d.EfficiencyAfter)
		if d.TargetReached != nil {
			fmt.Fprintf(tw, "Target reached:\t%v\n", *d.TargetReached)
		}
		if d.Minified {
			fmt.Fprintf(tw, "Minified:\tyes: %d paths used under the probe, %d kept as their dependencies\n", d.FilesProfiled, d.FilesAdded)
		} else if d.Lossless != "" {
			fmt.Fprintf(tw, "Minified:\tno: %s\n", d.Lossless)
		}
		for _, rm := range d.Removed {
			fmt.Fprintf(tw, "Removed (%s):\t%d files, %s\n", rm.Reason, rm.Files, mb(rm.Bytes))
		}
		for _, p := range []struct {
			name string
			r    *optimize.ProbeResult
		}{{"Probe (original)", d.ProbeOriginal}, {"Probe (optimized)", d.ProbeOptimized}} {
			if p.r == nil {
				continue
			}
			verdict := "passed"
			if !p.r.Passed {
				verdict = "FAILED: " + p.r.Failure
			}
			fmt.Fprintf(tw, "%s:\t%s (%d checks)\n", p.name, verdict, len(p.r.Checks))
		}
		for _, s := range []struct {
			name string
			s    *optimize.Security
		}{{"Scan (original)", d.SecurityBefore}, {"Scan (optimized)", d.SecurityAfter}} {
			if s.s == nil {
				continue
			}
			score := "n/a"
			if s.s.ComplianceScore != nil {
				score = fmt.Sprintf("%.1f", *s.s.ComplianceScore)
			}
			fmt.Fprintf(tw, "%s:\t%d vulnerabilities (%d critical, %d high), compliance %s (%s scan)\n", s.name, s.s.Vulnerabilities, s.s.Critical, s.s.High, score, s.s.Scanned)
		}
		for i, imp := range r.SecurityImprovements {
			if i == 20 {
				fmt.Fprintf(tw, "Security:\t… %d more (-o json lists them all)\n", len(r.SecurityImprovements)-i)
				break
			}
			fmt.Fprintf(tw, "Security:\t%s\n", imp)
		}
		if u := d.Upgrades; u != nil {
			if u.Skipped != "" {
				fmt.Fprintf(tw, "Packages:\tnot upgraded: %s\n", u.Skipped)
			}
			for _, n := range u.NotFixed {
				fmt.Fprintf(tw, "Packages:\t%s %s: the fix (%s) is not in the image's repositories\n", n.Package, n.From, n.Fixed)
			}
		}
		if p := d.Performance; p != nil {
			fmt.Fprintf(tw, "Push+pull+start:\t%.2f s → %.2f s (median of %d), %.1f %% faster\n", p.Original.MedianTotal, p.Optimized.MedianTotal, p.Rounds, p.Improvement)
		}
		fmt.Fprintf(tw, "Verified:\t%v\n", d.Verified)
		for _, issue := range d.VerificationIssues {
			fmt.Fprintf(tw, "Issue:\t%s\n", issue)
		}
		for _, n := range d.Notes {
			fmt.Fprintf(tw, "Note:\t%s\n", n)
		}
	}
	if r.PushedTo != "" {
		fmt.Fprintf(tw, "Pushed:\t%s@%s\n", r.PushedTo, r.ImageDigest)
	}
	fmt.Fprintf(tw, "Time:\t%.1f s\n", r.BuildTime)
	return tw.Flush()
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
	if err := show(g, res, printAnalysis); err != nil {
		return err
	}
	return policyExit(g, err, o.exitCode)
}

// show writes a result: encoded with -o json or yaml, else by print as a table.
func show[T any](g *globalOptions, res T, print func(io.Writer, T) error) error {
	if g.structured() {
		return g.encode(res)
	}
	return print(g.out, res)
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
