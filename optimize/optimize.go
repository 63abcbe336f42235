package optimize

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/compliance"
)

// Optimization types.
const (
	TypeSize        = "size"
	TypePerformance = "performance"
	TypeSecurity    = "security"
	TypeMulti       = "multi"
)

// ErrVerification is why an optimized image was refused: the probe failed on it or answered differently, or a
// scan found it worse. It wraps ErrPolicyViolation.
var ErrVerification = fmt.Errorf("the optimized image failed verification: %w", errdefs.ErrPolicyViolation)

// Security is what a scan says about an image, for the comparison before and after.
type Security struct {
	Vulnerabilities int      `json:"vulnerabilities"`
	Critical        int      `json:"critical"`
	High            int      `json:"high"`
	ComplianceScore *float64 `json:"compliance_score"`
	// Scanned says what the scan covered ("full": packages and compliance; "compliance": no advisory database).
	Scanned string `json:"scanned"`
	// Fixable are the vulnerable packages with a fixed version, for the security type's package upgrades.
	Fixable []Fix `json:"-"`
}

// Request is one optimization.
type Request struct {
	// Source names the image in the engine; Image is it, opened.
	Source string
	Image  v1.Image
	// Target is the reference the optimized image is written under in the engine.
	Target string
	Type   string
	// Probe proves the optimized image works. Empty: the image's HEALTHCHECK when it has one; else only
	// lossless changes are made, and the result says so.
	Probe Probe
	// Keep, Drop and DropLayers are RewriteOptions'.
	Keep, Drop []string
	// KeepShells and KeepPackageManagers keep those tools in the result whatever the profile says; User is the
	// user a hardened image runs as (security and multi types; see Hardening).
	KeepShells, KeepPackageManagers bool
	User                            string
	// NoUpgrade leaves the OS packages as they are in the security and multi types (by default the packages a
	// scan finds vulnerable with a fix are upgraded from the image's own repositories, as Copacetic does).
	NoUpgrade  bool
	DropLayers []int
	// TargetSizeMB is a size the result is measured against (TargetReached); it changes nothing.
	TargetSizeMB float64
	// Measure, for the performance and multi types, says how to push and pull the images it times.
	Measure *Measure
	// Scan re-scans an engine image for the comparison before and after; nil skips it (the result says so).
	Scan   func(ctx context.Context, image string) (*Security, error)
	Limits AnalyzeOptions
	// Progress receives each phase's name as it starts and its end ("profile", "done").
	Progress func(phase, status, message string)
	TempDir  string
	Logger   *slog.Logger
}

// Result is what an optimization did, measured.
type Result struct {
	Type          string    `json:"optimization_type"`
	SizeBefore    int64     `json:"size_before"` // bytes, as the engine counts an image (its layers unpacked)
	SizeAfter     int64     `json:"size_after"`
	LayersBefore  int       `json:"layers_before"`
	LayersAfter   int       `json:"layers_after"`
	TargetReached *bool     `json:"target_reached,omitempty"`
	Removed       []Removal `json:"removed"`
	// Minified is true when a profile chose the files; Lossless names why not when it did not.
	Minified bool   `json:"minified"`
	Lossless string `json:"lossless_reason,omitempty"`
	// Profile is the profiling run; ProbeOriginal and ProbeOptimized the verification runs.
	Profile        *ProbeResult `json:"profile,omitempty"`
	ProbeOriginal  *ProbeResult `json:"probe_original,omitempty"`
	ProbeOptimized *ProbeResult `json:"probe_optimized,omitempty"`
	// FilesProfiled counts the paths the profile saw used; FilesAdded those kept because they were needed.
	FilesProfiled    int       `json:"files_profiled,omitempty"`
	FilesAdded       int       `json:"files_added_by_dependencies,omitempty"`
	FilesBefore      int       `json:"files_before"`
	FilesAfter       int       `json:"files_after"`
	SecurityBefore   *Security `json:"security_before,omitempty"`
	SecurityAfter    *Security `json:"security_after,omitempty"`
	EfficiencyBefore float64   `json:"efficiency_before"` // dive's score
	EfficiencyAfter  float64   `json:"efficiency_after"`
	// Performance is the measured push, pull and start of both images (performance and multi types).
	Performance *Performance `json:"performance,omitempty"`
	// Changes are the security changes made (security type), each with its reason; User the user the image
	// now runs as, when it changed.
	Changes []Change `json:"changes,omitempty"`
	User    string   `json:"user,omitempty"`
	// Upgrades is what upgrading the OS packages did (security and multi types with a scan).
	Upgrades           *Upgrades `json:"package_upgrades,omitempty"`
	Verified           bool      `json:"verified"`
	VerificationIssues []string  `json:"verification_issues,omitempty"`
	Notes              []string  `json:"notes,omitempty"`
}

// Optimizer rewrites images in an engine and proves the results.
type Optimizer struct {
	Engine *engine.Client
	Prober *Prober
}

// Optimize rewrites req.Image and writes it under req.Target, then verifies it (the probe on both images, the
// scan on both): a result that fails verification is removed and ErrVerification returned with the result.
// The original image is never modified.
func (o *Optimizer) Optimize(ctx context.Context, req Request) (*Result, error) {
	typ := cmp.Or(req.Type, TypeSize)
	switch typ {
	case TypeSize, TypeSecurity:
	case TypePerformance, TypeMulti:
		// performance_improvement is measured to ready: the probe says when that is, a registry carries the bytes.
		if req.Measure == nil || req.Measure.Push == nil || req.Measure.Pull == nil {
			return nil, fmt.Errorf("%w: the %s type measures push, pull and start: it needs a registry to push to", errdefs.ErrInvalidArgument, typ)
		}
		if req.Probe.Empty() {
			return nil, fmt.Errorf("%w: the %s type measures the time to ready: it needs a probe", errdefs.ErrInvalidArgument, typ)
		}
	default:
		return nil, fmt.Errorf("%w: optimization type %q: want size, performance, security or multi", errdefs.ErrInvalidArgument, typ)
	}
	if err := req.Probe.Validate(); err != nil {
		return nil, err
	}
	for _, p := range append(slices.Clone(req.Keep), req.Drop...) {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("%w: %q is not an absolute path", errdefs.ErrInvalidArgument, p)
		}
	}
	if req.User != "" && typ != TypeSecurity && typ != TypeMulti {
		return nil, fmt.Errorf("%w: a user to run as is for the security and multi types", errdefs.ErrInvalidArgument)
	}
	if req.User != "" { // what can be told without the image's accounts is told before anything runs
		name, _, _ := strings.Cut(req.User, ":")
		if root, ok := rootUser(req.User, nil, false); (ok && root) || name == "root" || strings.TrimSpace(req.User) != req.User || strings.Count(req.User, ":") > 1 {
			return nil, fmt.Errorf("%w: user %q: want a non-root user, NAME or UID[:GID]", errdefs.ErrInvalidArgument, req.User)
		}
	}
	if req.TargetSizeMB < 0 {
		return nil, fmt.Errorf("%w: a negative target size", errdefs.ErrInvalidArgument)
	}
	if _, err := name.ParseReference(req.Target); err != nil {
		return nil, fmt.Errorf("%w: %q is not an image reference: %v", errdefs.ErrInvalidArgument, req.Target, err)
	}
	progress := func(phase, status, msg string) {
		if req.Progress != nil {
			req.Progress(phase, status, msg)
		}
	}
	step := func(phase string, fn func() error) error {
		progress(phase, "started", "")
		if err := fn(); err != nil {
			progress(phase, "failed", err.Error())
			return err
		}
		progress(phase, "done", "")
		return nil
	}
	res := &Result{Type: typ}
	api := o.Engine.API()
	var before *Analysis
	if err := step("analyze", func() (err error) {
		before, err = Analyze(ctx, req.Image, req.Limits)
		return err
	}); err != nil {
		return nil, err
	}
	res.EfficiencyBefore, res.LayersBefore = before.Efficiency, len(before.Layers)
	record := &Record{Source: req.Source, Type: typ}
	if ins, err := api.ImageInspect(ctx, req.Source); err == nil {
		res.SizeBefore = ins.Size
		record.SourceID = ins.ID
		if len(ins.RepoDigests) > 0 {
			if _, d, ok := strings.Cut(ins.RepoDigests[0], "@"); ok {
				record.SourceDigest = d
			}
		}
	} else {
		return nil, fmt.Errorf("inspecting %s: %w", req.Source, classify(err))
	}

	probe := req.Probe
	haveProbe := !probe.Empty()
	if !haveProbe {
		if ins, err := api.ImageInspect(ctx, req.Source); err == nil && ins.Config != nil && ins.Config.Healthcheck != nil &&
			len(ins.Config.Healthcheck.Test) > 0 && ins.Config.Healthcheck.Test[0] != "NONE" {
			probe.HealthCheck, haveProbe = true, true
		}
	}
	// The security and multi types first upgrade the OS packages the scan finds vulnerable with a fix: the
	// profile, the hardening and the rewrite then work on the upgraded image (source, image).
	image, source := req.Image, req.Source
	var cleanups []func()
	defer func() {
		for _, f := range slices.Backward(cleanups) {
			f()
		}
	}()
	if haveProbe && (typ == TypeSecurity || typ == TypeMulti) && req.Scan != nil {
		if err := step("scan-original", func() (err error) {
			if res.SecurityBefore, err = req.Scan(ctx, req.Source); err != nil {
				return fmt.Errorf("scanning the original: %w", err)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		switch {
		case req.NoUpgrade:
		case res.SecurityBefore.Scanned != "full":
			res.Upgrades = &Upgrades{Skipped: "no advisory database: which packages are vulnerable is not known, none was upgraded"}
		default:
			if err := step("upgrade", func() error {
				patched, up, cleanup, err := o.upgrade(ctx, req.Source, req.Image, res.SecurityBefore.Fixable, req.TempDir)
				if err != nil {
					return err
				}
				res.Upgrades = up
				if patched == nil {
					return nil
				}
				cleanups = append(cleanups, cleanup)
				ref := "myrmex.local/optimize-upgraded:" + strconv.FormatUint(rand.Uint64(), 36)
				cleanups = append(cleanups, func() { o.Remove(ref) })
				if err := o.Load(ctx, ref, patched); err != nil {
					return err
				}
				image, source = patched, ref
				return nil
			}); err != nil {
				return nil, err
			}
		}
	}
	upgraded := source != req.Source

	var profile *Profile
	if haveProbe {
		if err := step("profile", func() error {
			pr, rep, err := o.Prober.Profile(ctx, source, probe)
			if err != nil {
				return err
			}
			res.Profile = pr
			if !pr.Passed && upgraded {
				res.VerificationIssues = append(res.VerificationIssues, "probe failed on the image with its packages upgraded: "+pr.Failure)
				return fmt.Errorf("%w: the probe fails once the packages are upgraded (%s): optimize with NoUpgrade (--no-upgrade) to harden without upgrading",
					ErrVerification, pr.Failure)
			}
			if !pr.Passed {
				return fmt.Errorf("%w: the probe fails on the original image under the sensor (%s); fix the probe first", errdefs.ErrInvalidArgument, pr.Failure)
			}
			res.FilesProfiled = len(rep.Files)
			switch {
			case rep.Overflow:
				res.Lossless = "the profile is incomplete (the sensor lost events or saw more than its bound): nothing was minified"
			case rep.Error != "":
				res.Lossless = "the sensor reported an error (" + rep.Error + "): nothing was minified"
			default:
				profile = &Profile{Files: rep.Files}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if err := step("probe-original", func() error {
			pr, err := o.Prober.Check(ctx, req.Source, probe)
			if err != nil {
				return err
			}
			res.ProbeOriginal = pr
			if !pr.Passed {
				return fmt.Errorf("%w: the probe fails on the original image (%s)", errdefs.ErrInvalidArgument, pr.Failure)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	} else {
		res.Lossless = "no probe (and no HEALTHCHECK): only lossless changes were made; give a probe to minify or harden"
		if len(req.DropLayers) > 0 || len(req.Drop) > 0 {
			return nil, fmt.Errorf("%w: dropping layers or paths needs a probe to prove the result still works", errdefs.ErrInvalidArgument)
		}
	}

	ropts := RewriteOptions{
		Limits: req.Limits, Profile: profile, Keep: append(slices.Clone(req.Keep), ToolPaths(req.KeepShells, req.KeepPackageManagers)...),
		Drop: req.Drop, DropLayers: req.DropLayers, CreatedBy: "myrmex optimize --type " + typ, TempDir: req.TempDir,
		Record: record,
	}
	if typ == TypeSecurity || typ == TypeMulti {
		// Hardening is not lossless: it needs the probe to prove the image still works. Multi minifies too.
		if typ == TypeSecurity {
			ropts.Profile = nil
		}
		if haveProbe {
			h, err := o.hardening(ctx, image, req, profile)
			if err != nil {
				return nil, err
			}
			ropts.Harden = h
		}
	}
	var rw *RewriteResult
	if err := step("rewrite", func() (err error) {
		rw, err = Rewrite(ctx, image, ropts)
		return err
	}); err != nil {
		return nil, err
	}
	if upgraded {
		for _, u := range res.Upgrades.Upgraded {
			res.Changes = append(res.Changes, u.change())
		}
	}
	res.Changes, res.User = append(res.Changes, rw.Changes...), rw.User
	defer rw.Close()
	res.Removed, res.Minified, res.LayersAfter = rw.Removed, rw.Minified, rw.LayersAfter
	res.FilesBefore, res.FilesAfter, res.FilesAdded = rw.FilesBefore, rw.FilesAfter, rw.Added

	// Target may name an image already: the source itself by another spelling (its ID, a digest, another tag) is
	// refused; another image gets its name back when the result is removed.
	var previous string
	if ins, err := api.ImageInspect(ctx, req.Target); err == nil {
		if src, err := api.ImageInspect(ctx, req.Source); err == nil && src.ID == ins.ID {
			return nil, fmt.Errorf("%w: %s is the original image: the optimized image cannot replace it", errdefs.ErrInvalidArgument, req.Target)
		}
		previous = ins.ID
	}
	written := false
	remove := func() { // the result, only when Target names it; and Target's image back under its name
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		ins, err := api.ImageInspect(ctx, req.Target)
		if previous != "" && (err != nil || ins.ID == previous) {
			return
		}
		o.Remove(req.Target)
		if previous != "" {
			_, _ = api.ImageTag(ctx, client.ImageTagOptions{Source: previous, Target: req.Target})
		}
	}
	if err := step("write", func() error {
		err := o.Load(ctx, req.Target, rw.Image)
		written = true // a load that failed may have tagged it all the same
		if err != nil {
			return err
		}
		ins, err := api.ImageInspect(ctx, req.Target)
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", req.Target, classify(err))
		}
		res.SizeAfter = ins.Size
		return nil
	}); err != nil {
		if written {
			remove()
		}
		return nil, err
	}
	if after, err := Analyze(ctx, rw.Image, req.Limits); err == nil {
		res.EfficiencyAfter = after.Efficiency
	}
	if req.TargetSizeMB > 0 {
		reached := float64(res.SizeAfter) <= req.TargetSizeMB*1e6
		res.TargetReached = &reached
	}

	// Verification: the probe on the optimized image answers as on the original; the scan finds it no worse.
	err := step("verify", func() error {
		if haveProbe {
			pr, err := o.Prober.Check(ctx, req.Target, probe)
			if err != nil {
				return err
			}
			res.ProbeOptimized = pr
			res.VerificationIssues = append(res.VerificationIssues, compareProbes(res.ProbeOriginal, pr)...)
		}
		if req.Scan != nil {
			var err error
			if res.SecurityBefore == nil {
				if res.SecurityBefore, err = req.Scan(ctx, req.Source); err != nil {
					return fmt.Errorf("scanning the original: %w", err)
				}
			}
			if res.SecurityAfter, err = req.Scan(ctx, req.Target); err != nil {
				return fmt.Errorf("scanning the optimized image: %w", err)
			}
			res.VerificationIssues = append(res.VerificationIssues, compareSecurity(res.SecurityBefore, res.SecurityAfter)...)
		} else {
			res.Notes = append(res.Notes, "no scan: vulnerabilities and compliance were not compared")
		}
		return nil
	})
	if err != nil {
		remove()
		return nil, err
	}
	if len(res.VerificationIssues) > 0 {
		remove()
		return res, fmt.Errorf("%w: %s (the optimized image was removed)", ErrVerification, strings.Join(res.VerificationIssues, "; "))
	}
	res.Verified = true
	if req.Measure != nil && (typ == TypePerformance || typ == TypeMulti) {
		if err := step("measure", func() (err error) {
			res.Performance, err = o.measure(ctx, req, probe)
			return err
		}); err != nil {
			remove() // a performance claim that could not be measured is not applied
			return nil, err
		}
	}
	return res, nil
}

// compareProbes lists how the optimized image's probe differs from the original's.
func compareProbes(orig, opt *ProbeResult) []string {
	var out []string
	if !opt.Passed {
		out = append(out, "probe failed on the optimized image: "+opt.Failure)
		return out
	}
	for i, c := range opt.Checks {
		if orig == nil || i >= len(orig.Checks) {
			break
		}
		o := orig.Checks[i]
		switch {
		case c.Status != o.Status:
			out = append(out, fmt.Sprintf("%s: status %d on the optimized image, %d on the original", c.Check, c.Status, o.Status))
		case c.ExitCode != o.ExitCode:
			out = append(out, fmt.Sprintf("%s: exit code %d on the optimized image, %d on the original", c.Check, c.ExitCode, o.ExitCode))
		case c.Output != o.Output:
			out = append(out, fmt.Sprintf("%s: the optimized image answers differently (%q, the original %q)", c.Check, clip(c.Output), clip(o.Output)))
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// compareSecurity lists how the optimized image scans worse than the original.
func compareSecurity(before, after *Security) []string {
	var out []string
	if after.Vulnerabilities > before.Vulnerabilities {
		out = append(out, fmt.Sprintf("%d vulnerabilities on the optimized image, %d on the original", after.Vulnerabilities, before.Vulnerabilities))
	}
	if before.ComplianceScore != nil && after.ComplianceScore != nil && *after.ComplianceScore < *before.ComplianceScore {
		out = append(out, fmt.Sprintf("compliance score %.1f on the optimized image, %.1f on the original", *after.ComplianceScore, *before.ComplianceScore))
	}
	return out
}

// Load writes img into the engine under ref.
func (o *Optimizer) Load(ctx context.Context, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("%w: %q is not a tag: %v", errdefs.ErrInvalidArgument, ref, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
	err = o.Engine.LoadImage(ctx, pr)
	_ = pr.CloseWithError(errors.New("load ended"))
	if err != nil {
		return fmt.Errorf("writing %s into the engine: %w", ref, err)
	}
	return nil
}

// Remove removes an image the optimizer wrote (its tag; the layers go when nothing else uses them).
func (o *Optimizer) Remove(ref string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = o.Engine.API().ImageRemove(ctx, ref, client.ImageRemoveOptions{})
}

// hardening is what the security type changes: a non-root user, no setuid/setgid bits, no shells, package
// managers or attack tools the profile did not see used, no files the compliance checks flag as secrets or
// unnecessary.
func (o *Optimizer) hardening(ctx context.Context, image v1.Image, req Request, profile *Profile) (*Hardening, error) {
	h := &Hardening{NonRoot: true, StripSetID: true, Remove: map[string]string{}, KeepShells: req.KeepShells,
		KeepPackageManagers: req.KeepPackageManagers, User: req.User}
	if profile != nil {
		h.RemoveTools, h.Used = true, profile.Files
	}
	rep, err := compliance.Check(ctx, image, "", compliance.Options{})
	if err != nil {
		return nil, fmt.Errorf("checking compliance: %w", err)
	}
	for _, c := range rep.Checks {
		if c.Passed || (c.ID != "CIS-DI-0010" && c.ID != "DKL-LI-0003") {
			continue
		}
		for _, p := range c.Details { // DKL-LI-0003: the path; CIS-DI-0010: "PATH (why)" (a path may hold spaces)
			if i := strings.LastIndex(p, " ("); c.ID == "CIS-DI-0010" && i > 0 && strings.HasSuffix(p, ")") {
				p = p[:i]
			}
			if strings.HasPrefix(p, "/") {
				h.Remove[path.Clean(p)] = c.Title + " (" + c.ID + ")"
			}
		}
	}
	return h, nil
}
