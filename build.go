package containerization

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/build/lint"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/scan"
)

// BuildOptions are the build options of [BuildContainers]. The zero value builds ./Dockerfile in "." on the
// engine's BuildKit, lints it (reporting, not failing), and runs a quick scan of the result with no gate.
type BuildOptions struct {
	// Options are the build package's: the Dockerfile and context, build arguments, target, labels, secrets,
	// platform, cache, and a standalone Builder with its Output. Tags are more names for the image beside
	// imageName. A remote build (Builder set) has no engine to land in: the image is pushed to its registry as
	// it is built (Output "registry", the default), or written to "oci:PATH" or "docker:PATH"; a pushed image is
	// scanned there. Docker 20.10's BuildKit exports only inline caches. Options.Progress, when set, receives
	// the build package's own events, beside Progress.
	build.Options

	// LintIgnore lists hadolint rule ids not to report; LintFailureThreshold (error, warning, info, style) fails
	// the build before it starts when a finding is that severe. Empty: lint reports and never fails.
	LintIgnore           []string
	LintFailureThreshold string

	// Scan is the scan of the built image: quick (default), full, compliance, or off.
	Scan string
	// ScanThreshold gates the image: findings at or above it (critical, high, medium, low) fail the build
	// with ErrPolicyViolation, and the image is not pushed. Empty: no gate.
	ScanThreshold string
	// ScanOptions tune the scan (database, ignore rules); its threshold is ScanThreshold.
	ScanOptions ScanOptions

	// Optimization, when set (size or security), optimizes the built image and verifies it before the scan
	// gate and the push, as OptimizeContainers does with OptimizeOptions (its probe, above all: without one only
	// lossless changes are made). The optimized image takes the build's name and tags; a failed verification
	// fails the build (Op "optimize") and leaves the image as built. Local builds only.
	Optimization    string
	OptimizeOptions OptimizeOptions

	// PushToRegistry pushes the image (all its tags) after a build that passed its gate, to Registry (the
	// registry imageName names when empty), with RegistryOptions (credentials, CA).
	PushToRegistry  bool
	Registry        string
	RegistryOptions RegistryOptions

	// Progress receives the build's events as they happen: each step's start, output lines and end; then the
	// scan's and the push's.
	Progress func(Event)
	// Engine reuses a connected engine client; else one is opened to Host.
	Engine *engine.Client
	Host   string
	// Policy is held to the built image (the build gate) and to its push, instead of the client's
	// (Config.Policy); a refusal fails the build with Op "policy" and nothing is pushed.
	Policy *policy.Policy
}

// BuildContainers builds an image from a Dockerfile on BuildKit, lints it first, scans it, gates it on a severity
// threshold and optionally pushes it (build_containers): one call, one result.
//
// Errors are *[ContainerBuildError] with Op lint, build, scan or push. A failing step wraps a *build.StepError
// (instruction, line, exit code, output tail); a failing gate wraps ErrPolicyViolation and the image is not
// pushed; both return the result so far. With BuildOptions.Optimization, the image is optimized and verified after
// the build (optimization_applied true, the details in Optimization).
func (c *Client) BuildContainers(ctx context.Context, imageName string, opts BuildOptions) (*BuildResult, error) {
	res := &BuildResult{ImageName: imageName, Tags: []string{}, Lint: []LintFinding{}, Recommendations: []string{}}
	fail := func(op string, err error) (*BuildResult, error) {
		return res, &ContainerBuildError{Op: op, Image: imageName, Err: err}
	}
	if _, err := name.ParseReference(imageName); err != nil || imageName == "" {
		return fail("build", fmt.Errorf("%w: image name %q: %v", ErrInvalidArgument, imageName, err))
	}
	for _, t := range opts.Tags {
		if _, err := name.ParseReference(t); err != nil {
			return fail("build", fmt.Errorf("%w: tag %q: %v", ErrInvalidArgument, t, err))
		}
	}
	scanType := opts.Scan
	switch scanType {
	case "":
		scanType = "quick"
	case "quick", "full", "compliance", "off":
	default:
		return fail("build", fmt.Errorf("%w: scan %q: want quick, full, compliance or off", ErrInvalidArgument, opts.Scan))
	}
	switch opts.Optimization {
	case "", "size", "security":
	default:
		return fail("build", fmt.Errorf("%w: optimization %q: want size or security", ErrInvalidArgument, opts.Optimization))
	}
	if opts.Optimization != "" && opts.Builder != "" {
		return fail("build", fmt.Errorf("%w: optimizing needs the image in the engine: not with a standalone builder", ErrInvalidArgument))
	}
	if opts.Optimization != "" {
		if err := opts.OptimizeOptions.Probe.Validate(); err != nil {
			return fail("build", err)
		}
	}
	threshold, err := lint.ParseSeverity(opts.LintFailureThreshold)
	if err != nil {
		return fail("lint", err)
	}
	// How the built image is read back from a registry or a file (its size, its digest): a CA file that cannot
	// be read is refused here, before anything is built.
	readOpts, err := c.registryOptions(opts.RegistryOptions, "", opts.RegistryOptions.Credentials, nil)
	if err != nil {
		return fail("build", err)
	}

	// Lint first: a Dockerfile that fails its threshold is not built.
	dockerfile, err := os.ReadFile(dockerfilePath(opts))
	if err != nil {
		return fail("build", fmt.Errorf("%w: Dockerfile: %v", ErrInvalidArgument, err))
	}
	report, err := lint.Lint(dockerfile, lint.Options{Ignore: opts.LintIgnore, FailureThreshold: threshold})
	if err != nil {
		return fail("lint", err)
	}
	for _, f := range report.Findings {
		res.Lint = append(res.Lint, LintFinding{Rule: f.Rule, Severity: f.Severity.String(), Line: f.Line, Message: f.Message})
		res.Recommendations = append(res.Recommendations, fmt.Sprintf("Dockerfile line %d: %s (%s)", f.Line, f.Message, f.Rule))
	}
	if report.Failed {
		return fail("lint", fmt.Errorf("the Dockerfile has lint findings at or above %s: %w", opts.LintFailureThreshold, ErrPolicyViolation))
	}

	remote := opts.Builder != ""
	output := opts.Output
	if remote && output == "" {
		output = build.OutputRegistry
	}
	eng := opts.Engine
	if eng == nil && !remote {
		if eng, err = c.engine(ctx); err != nil {
			return fail("build", err)
		}
	}
	bo := opts.Options
	bo.Output = output
	bo.Tags = append([]string{imageName}, opts.Tags...)
	bo.Progress = bothProgress(opts.Options.Progress, buildProgress(opts.Progress))
	out, err := build.Build(ctx, eng, bo)
	if err != nil {
		return fail("build", err)
	}
	res.ImageID, res.Tags, res.BuildTime = out.ImageID, out.Tags, out.Duration.Seconds()
	res.Steps, res.CacheHits = out.Steps, out.CacheHits
	source := out.Source // where the image is to be read from now: the engine, or the registry or file
	if !remote {
		if ins, err := eng.API().ImageInspect(ctx, out.ImageID); err == nil {
			res.SizeMB = float64(ins.Size) / (1 << 20)
			res.Layers = len(ins.RootFS.Layers)
		}
	} else if img, cleanup, err := registry.OpenImage(ctx, nil, source, readOpts); err == nil {
		if layers, err := img.Layers(); err == nil {
			res.Layers = len(layers)
			for _, l := range layers {
				if n, err := l.Size(); err == nil {
					res.SizeMB += float64(n) / (1 << 20)
				}
			}
		}
		cleanup()
	}

	if opts.Optimization != "" {
		if err := c.optimizeBuilt(ctx, eng, imageName, opts, res); err != nil {
			return fail("optimize", err)
		}
	}

	if scanType != "off" {
		so := opts.ScanOptions
		so.SeverityThreshold, so.Engine = opts.ScanThreshold, eng
		if so.Progress == nil {
			so.Progress = opts.Progress // one stream of events for the whole build
		}
		if remote {
			so.Registry = opts.RegistryOptions
		}
		sr, err := c.ScanContainerSecurity(ctx, source, scanType, so)
		res.Scan = sr
		if sr != nil {
			res.VulnerabilitiesFound = len(sr.Vulnerabilities)
			res.SecurityScanPassed = sr.PolicyPassed
			res.Recommendations = append(res.Recommendations, sr.Recommendations...)
		}
		switch {
		case err != nil && opts.Scan == "" && opts.ScanThreshold == "" && errors.Is(err, scan.ErrNoDatabase):
			// The default scan, asked for by nobody, cannot run for want of a database: the build still stands,
			// unscanned, and says so. An explicit scan or gate fails instead.
			res.Scan, res.SecurityScanPassed = nil, false
			res.Recommendations = append(res.Recommendations,
				"the image was not scanned: there is no advisory database yet (import one with `myrmex db import`, or build with --scan off)")
		case err != nil:
			// A failed gate and a scan that could not run both stop here: nothing unscanned is pushed.
			return fail("scan", err)
		}
	} else {
		res.SecurityScanPassed = opts.ScanThreshold == ""
	}

	// The build gate: the image built (optimized, when it was) is held to the policy before it goes anywhere.
	if pol := c.policyFor(opts.Policy); pol != nil {
		img := gateImage{ref: imageName, source: source}
		if res.Scan != nil && res.Scan.ScanType == "full" {
			img.scan = res.Scan
		}
		if remote {
			img.registry = &opts.RegistryOptions
		}
		var gateEng *engine.Client
		if !remote {
			gateEng = eng
		}
		v, err := c.holdToPolicy(ctx, policy.GateBuild, pol, gateEng, []gateImage{img}, nil)
		res.PolicyVerdict = v
		if err != nil {
			return fail("policy", err)
		}
	}

	if remote && output == build.OutputRegistry {
		// The builder pushed it already: the gate above ran on what the registry holds.
		res.PushedTo = imageName
		if img, cleanup, err := registry.OpenImage(ctx, nil, source, readOpts); err == nil {
			if d, err := img.Digest(); err == nil {
				res.ImageDigest = d.String()
			}
			cleanup()
		}
		return res, nil
	}
	if opts.PushToRegistry && !remote {
		ro := opts.RegistryOptions
		ro.Engine, ro.Tags = eng, nil
		if ro.Policy == nil {
			ro.Policy = opts.Policy
		}
		if ro.Progress == nil {
			ro.Progress = opts.Progress
		}
		for _, t := range opts.Tags {
			// Extra tags in the same repository go along as tags; others are pushed on their own.
			if tr, err := name.NewTag(t); err == nil && sameRepository(tr, imageName) {
				ro.Tags = append(ro.Tags, tr.TagStr())
			}
		}
		pushed, err := c.ManageContainerRegistry(ctx, RegistryPush, imageName, opts.Registry, ro)
		if err != nil {
			return fail("push", errors.Unwrap(err))
		}
		res.ImageDigest, res.PushedTo = pushed.ImageDigest, pushed.Reference
	}
	return res, nil
}

func dockerfilePath(o BuildOptions) string {
	df := o.DockerfilePath
	if df == "" {
		df = "Dockerfile"
	}
	if filepath.IsAbs(df) {
		return df
	}
	ctxDir := o.ContextPath
	if ctxDir == "" {
		ctxDir = "."
	}
	return filepath.Join(ctxDir, df)
}

// bothProgress calls a and b, either of which may be nil.
func bothProgress(a, b func(build.Event)) func(build.Event) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(e build.Event) { a(e); b(e) }
}

func sameRepository(t name.Tag, image string) bool {
	ref, err := name.ParseReference(image)
	return err == nil && strings.EqualFold(ref.Context().Name(), t.Context().Name())
}

// optimizeBuilt optimizes the image just built into a temporary name, verified, then gives the result the build's
// name and tags.
func (c *Client) optimizeBuilt(ctx context.Context, eng *engine.Client, imageName string, opts BuildOptions, res *BuildResult) error {
	oo := opts.OptimizeOptions
	oo.Engine = eng
	if oo.Progress == nil {
		oo.Progress = opts.Progress
	}
	if oo.Scan.DBDir == "" {
		oo.Scan = opts.ScanOptions
	}
	ref, err := name.ParseReference(imageName)
	if err != nil {
		return err
	}
	oo.OptimizedImage = ref.Context().Tag("myrmex-optimizing-" + randomHex()).String()
	or, err := c.OptimizeContainers(ctx, imageName, opts.Optimization, oo)
	res.Optimization = or
	if err != nil {
		return errors.Unwrap(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = eng.API().ImageRemove(cctx, oo.OptimizedImage, client.ImageRemoveOptions{})
	}()
	for _, t := range res.Tags {
		if _, err := eng.API().ImageTag(ctx, client.ImageTagOptions{Source: oo.OptimizedImage, Target: t}); err != nil {
			return fmt.Errorf("naming the optimized image %s: %w", t, err)
		}
	}
	ins, err := eng.API().ImageInspect(ctx, oo.OptimizedImage)
	if err != nil {
		return fmt.Errorf("inspecting the optimized image: %w", err)
	}
	res.ImageID, res.SizeMB, res.Layers = ins.ID, float64(ins.Size)/(1<<20), len(ins.RootFS.Layers)
	res.OptimizationApplied = true
	return nil
}
