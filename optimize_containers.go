package containerization

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/ctxio"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/registry"
)

// OptimizeOptions are the parameters of [Client.OptimizeContainers]: the specification's kwargs (target_size,
// layers_to_remove) and what users of the peers ask for.
type OptimizeOptions struct {
	// TargetSizeMB is the size (MB, 10^6 bytes) the result is measured against: TargetReached says whether it was
	// reached. It does not change what is removed.
	TargetSizeMB float64
	// LayersToRemove are layers (by index from 0, or by diff ID) whose changes are left out; the probe decides
	// whether the image still works without them.
	LayersToRemove []string
	// Probe proves the optimized image works; empty means the image's HEALTHCHECK, and without one only lossless
	// changes are made.
	Probe optimize.Probe
	// Keep are paths (and what is under them) the optimized image keeps whatever the profile says; Drop are
	// paths it loses.
	Keep, Drop []string
	// KeepShells and KeepPackageManagers keep the image's shells and package manager whatever the profile says;
	// User is the user a security or multi optimization makes the image run as (else its own unprivileged user,
	// else one created).
	KeepShells, KeepPackageManagers bool
	User                            string
	// NoUpgrade leaves the OS packages as they are. By default the security and multi types upgrade the Debian and
	// Ubuntu packages the scan finds vulnerable with a fix, from the image's own repositories, in one new layer
	// (as Copacetic does); when the repositories cannot be reached the result says so.
	NoUpgrade bool
	// OptimizedImage is the reference the result is written under in the engine; empty means the original's
	// repository with "-optimized" after its tag.
	OptimizedImage string
	// Scan is how the original and the result are scanned for the comparison (database, ignore rules). The scan
	// is full when the advisory database is there, compliance only when it is not (the result says so).
	Scan ScanOptions
	// NoScan skips the scans (the result says so).
	NoScan bool
	// Sensor is the static myrmex-sensor program copied into profiling containers; empty means $MYRMEX_SENSOR,
	// then myrmex-sensor beside the running program, then on PATH.
	Sensor string
	// Limits bound what the image may make the analysis and the rewrite read.
	Limits optimize.AnalyzeOptions
	// Registry options for an image read from a registry, and for the push.
	Registry RegistryOptions
	// MeasureRepository is where the performance and multi types push the images they time
	// ("registry.example.com/team/app-bench", "http://127.0.0.1:5000/bench" for plain HTTP): both images are pushed
	// there, read back and started, MeasureRounds times each (zero: 3), and the measured tags deleted after.
	MeasureRepository string
	MeasureRounds     int
	// Push pushes the optimized image once it is verified, to PushRegistry (the registry its name names when
	// empty), as ManageContainerRegistry pushes.
	Push         bool
	PushRegistry string
	// Progress receives the phases: open, analyze, profile, probe-original, rewrite, write, verify.
	Progress func(Event)
	// TempDir holds the new layer while it is written; empty means the system's.
	TempDir string
	Engine  *engine.Client
	Host    string
	Logger  *slog.Logger
}

// OptimizeContainers rewrites an image to be smaller and proves the result still works (optimize_containers):
// see package optimize. optimizationType is size (the default), performance, security or multi; size is built,
// the others return ErrNotImplemented. imageName is read as ScanContainerSecurity reads it; an image that is
// not in the engine is loaded into it for the probe runs (and removed after).
//
// Errors are *[OptimizationError]: ErrInvalidArgument for bad input (a probe that fails on the original
// included), ErrNotFound for a missing image or sensor, ErrPolicyViolation when the optimized image fails
// verification — then the result is returned too, and the optimized image has been removed.
func (c *Client) OptimizeContainers(ctx context.Context, imageName, optimizationType string, opts OptimizeOptions) (*OptimizationResult, error) {
	start := time.Now()
	if optimizationType == "" {
		optimizationType = optimize.TypeSize
	}
	fail := func(err error) (*OptimizationResult, error) {
		return nil, &OptimizationError{Op: optimizationType, Image: imageName, Err: err}
	}
	if strings.TrimSpace(imageName) == "" {
		return fail(fmt.Errorf("%w: an image name is required", ErrInvalidArgument))
	}
	switch optimizationType {
	case optimize.TypeSize, optimize.TypeSecurity:
	case optimize.TypePerformance, optimize.TypeMulti:
		if opts.MeasureRepository == "" {
			return fail(fmt.Errorf("%w: the %s type measures push, pull and start: give a repository to push to (MeasureRepository, --measure-repository)", ErrInvalidArgument, optimizationType))
		}
	default:
		return fail(fmt.Errorf("%w: optimization type %q: want size, performance, security or multi", ErrInvalidArgument, optimizationType))
	}
	if err := opts.Probe.Validate(); err != nil {
		return fail(err)
	}
	target, err := optimizedName(imageName, opts.OptimizedImage)
	if err != nil {
		return fail(err)
	}
	sensorPath, sensorErr := findSensor(opts.Sensor)
	if sensorErr != nil && (!opts.Probe.Empty() || len(opts.LayersToRemove) > 0) {
		return fail(sensorErr)
	}
	phase := func(name, status, msg string) {
		if opts.Progress != nil {
			opts.Progress(Event{Time: time.Now(), Op: "optimize", Phase: name, Subject: imageName, Status: status, Message: msg})
		}
	}
	eng := opts.Engine
	if eng == nil {
		if eng, err = c.engine(ctx); err != nil {
			return fail(err)
		}
	}
	phase("open", "started", "")
	img, cleanup, err := c.openImage(ctx, imageName, eng, opts.Registry)
	if err != nil {
		phase("open", "failed", err.Error())
		return fail(err)
	}
	defer cleanup()
	opt := &optimize.Optimizer{Engine: eng, Prober: &optimize.Prober{Engine: eng, Sensor: sensorPath}}
	source := imageName
	if local, _ := eng.ImageExists(ctx, imageName); !local || registry.IsLocalSource(imageName) || strings.HasPrefix(imageName, registry.SourceRemote) {
		// The probes run containers: the engine needs the image.
		source = "myrmex.local/optimize-source:" + randomHex()
		if err := opt.Load(ctx, source, img); err != nil {
			phase("open", "failed", err.Error())
			return fail(err)
		}
		defer opt.Remove(source)
	}
	phase("open", "done", "")
	drop, err := layerIndexes(img, opts.LayersToRemove)
	if err != nil {
		return fail(err)
	}
	req := optimize.Request{
		Source: source, Image: img, Target: target, Type: optimizationType, Probe: opts.Probe,
		Keep: opts.Keep, Drop: opts.Drop, DropLayers: drop, TargetSizeMB: opts.TargetSizeMB,
		KeepShells: opts.KeepShells, KeepPackageManagers: opts.KeepPackageManagers, User: opts.User,
		NoUpgrade: opts.NoUpgrade,
		Limits:    opts.Limits, TempDir: opts.TempDir, Logger: opts.Logger, Progress: phase,
	}
	if opts.MeasureRepository != "" {
		if req.Measure, err = c.measurer(eng, opts); err != nil {
			return fail(err)
		}
	}
	if !opts.NoScan {
		req.Scan = func(ctx context.Context, ref string) (*optimize.Security, error) {
			return c.securityOf(ctx, ref, eng, opts.Scan)
		}
	}
	res, err := opt.Optimize(ctx, req)
	if res == nil {
		return fail(err)
	}
	out := &OptimizationResult{
		OriginalImage: imageName, OptimizedImage: target, OptimizationType: optimizationType,
		SizeReductionMB:      float64(res.SizeBefore-res.SizeAfter) / 1e6,
		SecurityImprovements: []string{},
		LayersReduced:        res.LayersBefore - res.LayersAfter,
		BuildTime:            time.Since(start).Seconds(),
		Result:               res,
	}
	if p := res.Performance; p != nil {
		out.PerformanceImprovement = p.Improvement
	}
	for _, c := range res.Changes {
		out.SecurityImprovements = append(out.SecurityImprovements, c.String())
	}
	if b, a := res.SecurityBefore, res.SecurityAfter; b != nil && a != nil && a.Vulnerabilities < b.Vulnerabilities {
		out.SecurityImprovements = append(out.SecurityImprovements,
			fmt.Sprintf("%d fewer vulnerabilities (%d → %d)", b.Vulnerabilities-a.Vulnerabilities, b.Vulnerabilities, a.Vulnerabilities))
	}
	if err != nil {
		out.OptimizedImage = ""
		return out, &OptimizationError{Op: "verify", Image: imageName, Err: err}
	}
	if opts.Push {
		ro := opts.Registry
		ro.Engine = eng
		if ro.Progress == nil {
			ro.Progress = opts.Progress
		}
		pushed, err := c.ManageContainerRegistry(ctx, RegistryPush, target, opts.PushRegistry, ro)
		if err != nil {
			return out, &OptimizationError{Op: "push", Image: imageName, Err: errors.Unwrap(err)}
		}
		out.ImageDigest, out.PushedTo = pushed.ImageDigest, pushed.Reference
	}
	return out, nil
}

// securityOf scans an engine image for the comparison before and after optimizing: full when the advisory
// database is there, else compliance only.
func (c *Client) securityOf(ctx context.Context, ref string, eng *engine.Client, so ScanOptions) (*optimize.Security, error) {
	so.Engine = eng
	scanned := "full"
	res, err := c.ScanContainerSecurity(ctx, ref, "full", so)
	if res == nil && errors.Is(err, ErrNotFound) {
		scanned = "compliance"
		res, err = c.ScanContainerSecurity(ctx, ref, "compliance", so)
	}
	if res == nil {
		return nil, err
	}
	sec := &optimize.Security{Vulnerabilities: len(res.Vulnerabilities), Critical: res.CriticalCount, High: res.HighCount,
		ComplianceScore: res.ComplianceScore, Scanned: scanned}
	for _, v := range res.Vulnerabilities {
		if v.FixedVersion != "" && v.IgnoreReason == "" {
			sec.Fixable = append(sec.Fixable, optimize.Fix{Package: v.Package, Installed: v.Version, Fixed: v.FixedVersion,
				Ecosystem: v.Ecosystem, IDs: []string{cmp.Or(v.CVEID, v.ID)}})
		}
	}
	return sec, nil
}

// optimizedName is where the optimized image goes: the caller's name, or the original's repository with
// "-optimized" after its tag.
func optimizedName(image, given string) (string, error) {
	if given != "" {
		t, err := name.NewTag(given)
		if err != nil {
			return "", fmt.Errorf("%w: %q is not an image tag: %v", ErrInvalidArgument, given, err)
		}
		if same, _ := name.ParseReference(strings.TrimPrefix(image, registry.SourceRemote)); same != nil && same.Name() == t.Name() {
			return "", fmt.Errorf("%w: the optimized image cannot replace the original (%s)", ErrInvalidArgument, given)
		}
		return t.String(), nil
	}
	if registry.IsLocalSource(image) {
		return "", fmt.Errorf("%w: name the optimized image of %s (OptimizedImage, -t)", ErrInvalidArgument, image)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(image, registry.SourceRemote))
	if err != nil {
		return "", fmt.Errorf("%w: %q is not an image reference: %v", ErrInvalidArgument, image, err)
	}
	tag := "latest-optimized"
	if t, ok := ref.(name.Tag); ok {
		tag = t.TagStr() + "-optimized"
	}
	if len(tag) > 128 {
		return "", fmt.Errorf("%w: the tag %q is too long to add -optimized: name the optimized image", ErrInvalidArgument, tag)
	}
	return ref.Context().Tag(tag).String(), nil
}

// layerIndexes reads layers_to_remove: indexes from 0, or diff IDs (with or without "sha256:").
func layerIndexes(img v1.Image, specs []string) ([]int, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, s := range specs {
		if i, err := strconv.Atoi(s); err == nil {
			if i < 0 || i >= len(layers) {
				return nil, fmt.Errorf("%w: no layer %d (the image has %d, from 0)", ErrInvalidArgument, i, len(layers))
			}
			out = append(out, i)
			continue
		}
		found := false
		for i, l := range layers {
			if d, err := l.DiffID(); err == nil && (d.String() == s || d.Hex == s) {
				out, found = append(out, i), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: no layer %q in the image (give an index from 0 or a diff ID)", ErrInvalidArgument, s)
		}
	}
	return out, nil
}

// findSensor locates the sensor program.
func findSensor(given string) (string, error) {
	candidates := []string{given, os.Getenv("MYRMEX_SENSOR")}
	if self, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(self), "myrmex-sensor"))
	}
	if p, err := exec.LookPath("myrmex-sensor"); err == nil {
		candidates = append(candidates, p)
	}
	for i, p := range candidates {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		} else if i < 2 {
			return "", fmt.Errorf("%w: the sensor %s: %v", ErrNotFound, p, err)
		}
	}
	return "", fmt.Errorf("%w: %w", ErrNotFound, optimize.ErrNoSensor)
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// measurer pushes and pulls the images the performance type times, with the client's registry code.
func (c *Client) measurer(eng *engine.Client, opts OptimizeOptions) (*optimize.Measure, error) {
	scheme, bare := "", opts.MeasureRepository
	if rest, ok := strings.CutPrefix(bare, "http://"); ok {
		scheme, bare = "http://", rest
	}
	repo, err := name.NewRepository(bare)
	if err != nil {
		return nil, fmt.Errorf("%w: measure repository %q: %v", ErrInvalidArgument, opts.MeasureRepository, err)
	}
	registryURL := scheme + repo.RegistryStr()
	ro := opts.Registry
	ro.Engine = eng
	readOpts, err := c.registryOptions(ro, "", ro.Credentials, nil)
	if err != nil {
		return nil, err
	}
	return &optimize.Measure{
		Repository: repo.String(), Rounds: opts.MeasureRounds,
		Push: func(ctx context.Context, engineRef, dst string) error {
			po := ro
			po.Destination = dst
			_, err := c.ManageContainerRegistry(ctx, RegistryPush, engineRef, registryURL, po)
			return err
		},
		Pull: func(ctx context.Context, ref string) error {
			img, cleanup, err := registry.OpenImage(ctx, nil, registry.SourceRemote+scheme+ref, readOpts)
			if err != nil {
				return err
			}
			defer cleanup()
			layers, err := img.Layers()
			if err != nil {
				return err
			}
			for _, l := range layers {
				rc, err := l.Uncompressed()
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, ctxio.Reader{Ctx: ctx, R: rc})
				rc.Close()
				if err != nil {
					return err
				}
			}
			return nil
		},
		Delete: func(ctx context.Context, ref string) error {
			_, err := c.ManageContainerRegistry(ctx, RegistryDelete, ref, registryURL, ro)
			return err
		},
	}, nil
}

// OptimizationRecord is what an image records of the optimization that made it (the labels [optimize.Record]
// reads): nil, with no error, when it records none. imageName is read as ScanContainerSecurity reads it; only its
// configuration is read.
//
// Errors are *[OptimizationError] (Op "record"): ErrInvalidArgument for an empty name, ErrNotFound for a missing
// image, or the engine's or registry's failure.
func (c *Client) OptimizationRecord(ctx context.Context, imageName string, ro RegistryOptions) (*optimize.Record, error) {
	fail := func(err error) (*optimize.Record, error) {
		return nil, &OptimizationError{Op: "record", Image: imageName, Err: err}
	}
	if strings.TrimSpace(imageName) == "" {
		return fail(fmt.Errorf("%w: an image name is required", ErrInvalidArgument))
	}
	if !c.fromRegistry(ctx, imageName, nil) && !registry.IsLocalSource(imageName) {
		// The engine's inspect has the labels: opening the image would export it.
		eng, err := c.engine(ctx)
		if err != nil {
			return fail(err)
		}
		info, err := eng.InspectImage(ctx, strings.TrimPrefix(imageName, registry.SourceDaemon))
		if err != nil {
			return fail(err)
		}
		return optimize.RecordOf(info.Labels), nil
	}
	img, cleanup, err := c.openImage(ctx, imageName, nil, ro)
	if err != nil {
		return fail(err)
	}
	defer cleanup()
	cf, err := img.ConfigFile()
	if err != nil {
		return fail(fmt.Errorf("reading the configuration of %s: %w", imageName, err))
	}
	return optimize.RecordOf(cf.Config.Labels), nil
}
