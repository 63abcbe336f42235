package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/build"
)

// buildOptions are the flags of myrmex build.
type buildOptions struct {
	tags          []string
	file          string
	buildArgs     []string
	target        string
	labels        []string
	noCache       bool
	pull          bool
	secrets       []string
	platform      string
	scan          string
	scanThreshold string
	dbDir         string
	lintThreshold string
	lintIgnore    []string
	push          bool
	registry      string
	caFile        string
	creds         credentialFlags
	builder       string
	output        string
	cacheFrom     []string
	cacheTo       []string
	optimize      string
	probe         probeFlags
}

func newBuildCmd(g *globalOptions) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build -t NAME [flags] [CONTEXT]",
		Short: "Build an image from a Dockerfile on BuildKit, lint it, scan it, gate it and optionally push it",
		Long: `Build an image from CONTEXT (default ".") and its Dockerfile on the engine's BuildKit, in one call: lint
the Dockerfile (hadolint's rules), build, scan the image (quick by default), gate it on a severity threshold,
and push it when asked. The first -t names the image; more -t give it more names.

-f names the Dockerfile; a relative path is taken from the current directory, as docker build takes it
(default CONTEXT/Dockerfile). CONTEXT's .dockerignore is honoured.

With --lint-threshold, a lint finding at or above it stops before the build; with --scan-threshold, a
vulnerability at or above it fails the gate and nothing is pushed. Either prints the result and exits 7. A
failing step exits 1 and names the instruction, its line and the end of its output.

-o table (the default) prints a summary, the lint findings and the scan's recommendations; json and yaml the
specification's BuildResult. On a terminal, the build's steps are shown on stderr as they run.`,
		Example: `  myrmex build -t myrmex.local/web:1 .
  myrmex build -t web:1 -t web:latest -f docker/Dockerfile --build-arg VERSION=1.4 --target runtime .
  myrmex build -t registry.example.com/team/web:1 --scan full --scan-threshold high --push ./web`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{invalidf("%s takes one CONTEXT at most, got %d arguments", cmd.CommandPath(), len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			contextDir := "."
			if len(args) == 1 {
				contextDir = args[0]
			}
			return runBuild(cmd, g, o, contextDir)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.tags, "tag", "t", nil, "name of the image, NAME[:TAG] (repeat for more names; the first is the image's)")
	fl.StringVarP(&o.file, "file", "f", "", "Dockerfile, relative to the current directory (default CONTEXT/Dockerfile)")
	fl.StringArrayVar(&o.buildArgs, "build-arg", nil, "build argument KEY=VALUE, or KEY to take this environment's value (repeat for several)")
	fl.StringVar(&o.target, "target", "", "build stage to stop at")
	fl.StringArrayVar(&o.labels, "label", nil, "image label KEY=VALUE (repeat for several)")
	fl.BoolVar(&o.noCache, "no-cache", false, "do not use the build cache")
	fl.BoolVar(&o.pull, "pull", false, "look for newer versions of the base images")
	fl.StringArrayVar(&o.secrets, "secret", nil, "file for RUN --mount=type=secret, id=ID,src=PATH (repeat for several)")
	fl.StringVar(&o.platform, "platform", "", "platform to build for, OS/ARCH[/VARIANT] (default the engine's)")
	fl.StringVar(&o.scan, "scan", "", "scan of the built image: quick (the default, skipped with a note when there is no advisory database), full, compliance or off")
	fl.StringVar(&o.scanThreshold, "scan-threshold", "", "fail the gate on vulnerabilities at or above this severity: critical, high, medium or low")
	fl.StringVar(&o.dbDir, "db-dir", "", "advisory database directory (default $MYRMEX_CACHE_DIR/osv, else ~/.cache/myrmex/osv)")
	fl.StringVar(&o.lintThreshold, "lint-threshold", "", "stop before building on lint findings at or above this severity: error, warning, info or style")
	fl.StringArrayVar(&o.lintIgnore, "lint-ignore", nil, "lint rule to leave out, such as DL3008 (repeat for several)")
	fl.BoolVar(&o.push, "push", false, "push the image and its tags once it passed its gate")
	fl.StringVar(&o.registry, "registry", "", "registry to push to: host[:port], https://host, or http://host:port for plain HTTP (default: the registry the image names)")
	fl.StringVar(&o.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's, for the push")
	fl.StringVar(&o.builder, "builder", "", "a standalone buildkitd, unix://… or tcp://… (default: the engine's BuildKit)")
	fl.StringVar(&o.output, "export", "", "where a --builder build puts the image: registry (default: pushed as it is built), oci:PATH or docker:PATH")
	fl.StringArrayVar(&o.cacheFrom, "cache-from", nil, "import build cache: type=registry,ref=IMAGE or type=local,src=DIR (repeat for several)")
	fl.StringArrayVar(&o.cacheTo, "cache-to", nil, "export build cache: type=registry,ref=IMAGE or type=local,dest=DIR")
	fl.StringVar(&o.optimize, "optimize", "", "optimize the built image before the scan and the push: size or security (with the --probe-* flags, as myrmex optimize)")
	o.probe.add(cmd)
	o.creds.add(cmd, "", "u", "the registry pushed to")
	return cmd
}

func runBuild(cmd *cobra.Command, g *globalOptions, o buildOptions, contextDir string) error {
	opts, err := o.options(g, contextDir)
	if err != nil {
		return err
	}
	stop := func() {}
	if !g.structured() && isTerminal(g.errOut) {
		p := newStepPrinter(g.errOut)
		opts.Progress, stop = p.event, p.stop
	}
	res, err := g.myrmex().BuildContainers(cmd.Context(), o.tags[0], opts)
	stop()
	if res != nil {
		g.warnVerdict(res.PolicyVerdict)
	}
	var step *build.StepError
	if errors.As(err, &step) {
		printStepError(g.errOut, step)
		return &reported{err}
	}
	// A gate that failed still shows what it judged, and an image that was built is shown whatever failed
	// after it (the scan, the push).
	if err == nil || errors.Is(err, containerization.ErrPolicyViolation) || (res != nil && res.ImageID != "") {
		if res.Scan != nil {
			for _, w := range res.Scan.Warnings {
				fmt.Fprintf(g.errOut, "myrmex: warning: %s\n", w)
			}
		}
		if perr := printBuild(g, res, o.scanThreshold); perr != nil {
			return perr
		}
	}
	var be *containerization.ContainerBuildError
	if errors.As(err, &be) && be.Op == "scan" && errors.Is(err, containerization.ErrNotFound) {
		err = fmt.Errorf("%w\nmyrmex: hint: --scan off builds without scanning", err)
	}
	return err
}

// options turns the flags into the library's options.
func (o buildOptions) options(g *globalOptions, contextDir string) (containerization.BuildOptions, error) {
	opts := containerization.BuildOptions{
		Options: build.Options{
			ContextPath: contextDir, Target: o.target, NoCache: o.noCache, Pull: o.pull, Platform: o.platform,
			Builder: o.builder, Output: o.output, CacheFrom: o.cacheFrom, CacheTo: o.cacheTo, Logger: g.log,
		},
		LintIgnore: o.lintIgnore, LintFailureThreshold: o.lintThreshold,
		Scan: o.scan, ScanThreshold: o.scanThreshold,
		ScanOptions:    containerization.ScanOptions{DBDir: o.dbDir, Host: g.host, Logger: g.log},
		PushToRegistry: o.push, Registry: o.registry,
		Host: g.host,
	}
	if len(o.tags) == 0 {
		return opts, &usageError{invalidf("-t NAME is required")}
	}
	if o.optimize != "" {
		oo, err := o.probe.options()
		if err != nil {
			return opts, err
		}
		oo.Host, oo.Logger = g.host, g.log
		opts.Optimization, opts.OptimizeOptions = o.optimize, oo
	}
	opts.Tags = o.tags[1:]
	if o.file != "" {
		// docker build reads -f from the current directory, not from the context.
		abs, err := filepath.Abs(o.file)
		if err != nil {
			return opts, invalidf("-f %q: %v", o.file, err)
		}
		opts.DockerfilePath = abs
	}
	if len(o.buildArgs) > 0 {
		opts.BuildArgs = map[string]string{}
		if err := parseKeyValues("build-arg", o.buildArgs, opts.BuildArgs, true); err != nil {
			return opts, err
		}
	}
	if len(o.labels) > 0 {
		opts.Labels = map[string]string{}
		if err := parseKeyValues("label", o.labels, opts.Labels, false); err != nil {
			return opts, err
		}
	}
	for _, s := range o.secrets {
		id, src, err := parseSecret(s)
		if err != nil {
			return opts, err
		}
		if opts.Secrets == nil {
			opts.Secrets = map[string]string{}
		}
		opts.Secrets[id] = src
	}
	if !o.push && (o.registry != "" || o.caFile != "" || o.creds.username != "") {
		return opts, invalidf("--registry, --ca-file and --username need --push")
	}
	if o.push {
		ro := containerization.RegistryOptions{CAFile: o.caFile, Host: g.host, Logger: g.log}
		var err error
		if ro.Credentials, err = o.creds.read(g); err != nil {
			return opts, err
		}
		if ro.Keychain, err = g.keychain(); err != nil {
			return opts, err
		}
		opts.RegistryOptions = ro
	}
	return opts, nil
}

// parseSecret reads a --secret value as docker build takes it: id=ID,src=PATH (source= for src=, and an optional
// type=file).
func parseSecret(s string) (id, src string, err error) {
	for field := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "id":
			id = v
		case "src", "source":
			src = v
		case "type":
			if v != "file" {
				return "", "", invalidf("--secret %q: only type=file is supported", s)
			}
		default:
			return "", "", invalidf("--secret %q: unknown field %q; want id=ID,src=PATH", s, k)
		}
	}
	if id == "" || src == "" {
		return "", "", invalidf("--secret %q: want id=ID,src=PATH", s)
	}
	return id, src, nil
}

// printStepError names the failing step and shows the end of its output, as the build's own log would.
func printStepError(w io.Writer, e *build.StepError) {
	where := "build failed"
	if e.Line > 0 {
		where = fmt.Sprintf("build failed at line %d", e.Line)
	}
	fmt.Fprintf(w, "myrmex: %s: %s\n", where, e.Instruction)
	if e.ExitCode != 0 {
		fmt.Fprintf(w, "myrmex: the step exited with code %d\n", e.ExitCode)
	} else if e.Err != nil {
		fmt.Fprintf(w, "myrmex: %v\n", e.Err)
	}
	for _, l := range e.Output {
		fmt.Fprintf(w, "  | %s\n", l)
	}
}

// printBuild writes a build result in the format of -o.
func printBuild(g *globalOptions, res *containerization.BuildResult, threshold string) error {
	if g.structured() {
		return g.encode(res)
	}
	return printBuildTable(g.out, res, threshold)
}

// printBuildTable writes the result for a person: a summary, the lint findings and the scan's recommendations.
// A result stopped by lint has no image: its image lines are left out.
func printBuildTable(w io.Writer, res *containerization.BuildResult, threshold string) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Image:\t%s\n", res.ImageName)
	if more := otherTags(res); len(more) > 0 {
		fmt.Fprintf(tw, "Tags:\t%s\n", strings.Join(more, ", "))
	}
	if res.ImageID != "" {
		fmt.Fprintf(tw, "ID:\t%s\n", shortID(strings.TrimPrefix(res.ImageID, "sha256:")))
		fmt.Fprintf(tw, "Size:\t%.1f MB\n", res.SizeMB)
		fmt.Fprintf(tw, "Layers:\t%d\n", res.Layers)
		fmt.Fprintf(tw, "Build time:\t%.1fs\n", res.BuildTime)
		fmt.Fprintf(tw, "Cache:\t%d of %d steps cached\n", res.CacheHits, res.Steps)
		if o := res.Optimization; o != nil && o.Result != nil {
			verdict := fmt.Sprintf("%s, %.1f MB smaller, verified", o.OptimizationType, o.SizeReductionMB)
			if !o.Verified {
				verdict = o.OptimizationType + ", refused: " + strings.Join(o.VerificationIssues, "; ")
			}
			fmt.Fprintf(tw, "Optimized:\t%s\n", verdict)
		}
		fmt.Fprintf(tw, "Scan:\t%s\n", scanVerdict(res, threshold))
	}
	fmt.Fprintf(tw, "Lint:\t%s\n", plural(len(res.Lint), "finding"))
	if res.ImageDigest != "" {
		fmt.Fprintf(tw, "Pushed:\t%s@%s\n", cmp.Or(res.PushedTo, res.ImageName), res.ImageDigest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(res.Lint) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "LINE\tRULE\tSEVERITY\tMESSAGE")
		for _, f := range res.Lint {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", f.Line, f.Rule, f.Severity, f.Message)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	// The lint findings' recommendations are the table above; the scan's follow.
	if res.Scan != nil && len(res.Scan.Recommendations) > 0 {
		fmt.Fprintln(w, "\nRecommendations:")
		for _, r := range res.Scan.Recommendations {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	return nil
}

// otherTags are the names the image got besides its own.
func otherTags(res *containerization.BuildResult) []string {
	var out []string
	for _, t := range res.Tags {
		if t != res.ImageName {
			out = append(out, t)
		}
	}
	return out
}

// scanVerdict says how the scan went: "passed (quick: none found)", "failed (full, threshold critical: 1
// critical, 0 high, 0 medium, 0 low)", or "off".
func scanVerdict(res *containerization.BuildResult, threshold string) string {
	s := res.Scan
	if s == nil {
		for _, r := range res.Recommendations {
			if strings.HasPrefix(r, "the image was not scanned") {
				return "not scanned: no advisory database yet (myrmex db import, or --scan off)"
			}
		}
		return "off"
	}
	verdict := "passed"
	if !res.SecurityScanPassed {
		verdict = "failed"
	}
	what := s.ScanType
	if threshold != "" {
		what += ", threshold " + threshold
	}
	if s.ScanType == "compliance" {
		return fmt.Sprintf("%s (%s)", verdict, what)
	}
	return fmt.Sprintf("%s (%s: %s)", verdict, what, counts(s))
}

// plural is "1 finding", "0 findings", "3 findings".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
