package containerization

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/pipeline"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
)

// PipelineOptions tune [Client.RunPipeline]. The zero value works.
type PipelineOptions struct {
	// Policy holds the pipeline when its file names none; nil: the client's (Config.Policy).
	Policy *policy.Policy
	// Scan tunes the scans (the advisory database, the layer cache); the pipeline file's scan.db_dir wins.
	Scan ScanOptions
	// Registry are the push's options (credentials, CA) where a saved registry gives none.
	Registry RegistryOptions
	// Kubernetes are the deploy's options (kubeconfig, context).
	Kubernetes KubernetesOptions
	// KeyPassword decrypts the sign stage's key (the CLI reads it from MYRMEX_KEY_PASSWORD, else COSIGN_PASSWORD).
	KeyPassword []byte
	// Skip are stages not to run this time (a deploy left to a later run, say); build and scan are never skipped.
	Skip []string
	// Sensor is the myrmex-sensor program the test's HTTP checks and the optimizer use (see OptimizeOptions).
	Sensor string
	// Progress receives each stage's start and end (Op "pipeline", Phase the stage, Status started, passed,
	// failed or skipped, Message what it did or why it failed), and the stages' own events.
	Progress func(Event)
	Engine   *engine.Client
	Host     string
	Logger   *slog.Logger
}

// PipelineResult is a whole pipeline run: each stage's outcome in order, and where it stopped.
type PipelineResult struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	// ImageDigest is the pushed image's digest (after push); Reference where it was pushed.
	ImageDigest string `json:"image_digest,omitempty"`
	Reference   string `json:"reference,omitempty"`
	Success     bool   `json:"success"`
	// FailedStage is the stage that stopped the run, ErrorMessage why.
	FailedStage  string          `json:"failed_stage,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
	Stages       []StageResult   `json:"stages"`
	Policy       string          `json:"policy,omitempty"`
	Verdict      *policy.Verdict `json:"policy_verdict,omitempty"`
	Duration     float64         `json:"duration"` // seconds
}

// StageResult is one stage's outcome, with the result of the function it called.
type StageResult struct {
	Stage  string `json:"stage"`
	Status string `json:"status"` // passed, failed, skipped
	// Summary says in a line what the stage did, or why it was skipped.
	Summary  string  `json:"summary"`
	Error    string  `json:"error,omitempty"`
	Duration float64 `json:"duration"` // seconds
	// Result is the stage's own result: a BuildResult, a ProbeResult, a SecurityScanResult, an
	// OptimizationResult, a RegistryResult, a SignatureResult or a KubernetesDeployment.
	Result any `json:"result,omitempty"`
}

// The stage statuses.
const (
	StagePassed  = "passed"
	StageFailed  = "failed"
	StageSkipped = "skipped"
)

// RunPipeline runs a pipeline file (the specification's build → test → deploy pattern): build → test → scan and
// gate → optimize → push (the scan and SBOM attached) → sign → deploy (gated, pinned to the pushed digest),
// stopping at the first stage that fails. The policy holds the image once, at the scan stage (gate "pipeline"),
// and again at deploy (gate "apply", which reuses the scan attached at push); the build and push gates, which
// would hold the same image to the same policy again, are not run inside a pipeline.
//
// The result is never nil. Errors are *[PipelineError] naming the stage and wrapping the stage's own error
// (ErrPolicyViolation for a refusal, ErrTestFailed for a failed test, and so on).
func (c *Client) RunPipeline(ctx context.Context, p *pipeline.Pipeline, opts PipelineOptions) (*PipelineResult, error) {
	start := time.Now()
	res := &PipelineResult{Stages: []StageResult{}}
	if p == nil {
		return res, &PipelineError{Err: fmt.Errorf("%w: no pipeline", ErrInvalidArgument)}
	}
	res.Name, res.Image = p.Name, p.Image
	r := &pipelineRun{c: c, p: p, opts: opts, res: res, image: p.Image}
	err := r.run(ctx)
	res.Duration = time.Since(start).Seconds()
	if err != nil {
		res.ErrorMessage = err.Error()
		return res, err
	}
	res.Success = true
	return res, nil
}

// PipelineError reports a failed pipeline: the stage that stopped it and why.
type PipelineError struct {
	Pipeline string
	Stage    string
	Err      error
}

func (e *PipelineError) Error() string {
	if e.Stage == "" {
		return describe("pipeline", "run", "pipeline", e.Pipeline, e.Err)
	}
	return describe("pipeline", e.Stage, "pipeline", e.Pipeline, e.Err)
}
func (e *PipelineError) Unwrap() error { return e.Err }

// pipelineRun is one run's state.
type pipelineRun struct {
	c    *Client
	p    *pipeline.Pipeline
	opts PipelineOptions
	res  *PipelineResult
	eng  *engine.Client
	pol  *policy.Policy
	// image is what the next stage works on: the built image, then the optimized one.
	image string
	probe optimize.Probe
	// pushed is the image's digest reference in its registry, once pushed; ro the options that reach it.
	pushed string
	ro     RegistryOptions
	pushRO RegistryOptions
}

func (r *pipelineRun) run(ctx context.Context) error {
	p := r.p
	fail := func(stage string, err error) error {
		r.res.FailedStage = stage
		return &PipelineError{Pipeline: p.Name, Stage: stage, Err: err}
	}
	// Everything that can be refused is refused before anything runs: the policy, the engine, the probe.
	if err := p.CheckSkip(r.opts.Skip); err != nil {
		return fail("", err)
	}
	skipped := func(st string) bool { return slices.Contains(r.opts.Skip, st) }
	r.pol = r.c.policyFor(r.opts.Policy)
	if p.Policy != "" {
		pol, err := policy.Load(p.Path(p.Policy))
		if err != nil {
			return fail("", err)
		}
		r.pol = pol
	}
	if r.pol != nil {
		r.res.Policy = r.pol.File
	}
	if t := p.Test; t != nil {
		r.probe = testProbe(t)
		if err := r.probe.Validate(); err != nil {
			return fail(pipeline.StageTest, err)
		}
	}
	if (len(r.probe.HTTP) > 0 && !skipped(pipeline.StageTest)) || (p.Optimize != nil && !skipped(pipeline.StageOptimize)) {
		sensor, err := findSensor(r.opts.Sensor)
		if err != nil {
			stage := pipeline.StageOptimize
			if len(r.probe.HTTP) > 0 {
				stage = pipeline.StageTest
			}
			return fail(stage, err)
		}
		r.opts.Sensor = sensor
	}
	if s := p.Sign; s != nil && !skipped(pipeline.StageSign) {
		if err := checkSignKey(p.Path(s.Key), r.opts.KeyPassword); err != nil {
			return fail(pipeline.StageSign, err)
		}
	}
	var err error
	if r.eng, err = r.c.engineFor(ctx, r.opts.Engine); err != nil {
		return fail("", err)
	}
	// The run's own client: the policy and the scan options of the pipeline at every gate and scan inside it
	// (the scan attached at push and the one the apply gate looks for are then the same kind, of the same
	// database), over the caller's engine and stores.
	if s := p.Scan; s != nil && s.DBDir != "" {
		r.opts.Scan.DBDir = p.Path(s.DBDir)
	}
	r.opts.Scan.Engine, r.opts.Scan.Host, r.opts.Scan.Progress = nil, "", nil
	cfg := r.c.cfg
	cfg.Engine, cfg.Policy, cfg.PolicyScan = r.eng, r.pol, r.opts.Scan
	r.c = newClient(cfg)
	defer r.c.Close()
	stages := []struct {
		name string
		on   bool
		why  string // skipped because
		run  func(context.Context) (string, any, error)
	}{
		{pipeline.StageBuild, true, "", r.build},
		{pipeline.StageTest, p.Test != nil, "no test in the pipeline", r.test},
		{pipeline.StageScan, true, "", r.scan},
		{pipeline.StageOptimize, p.Optimize != nil, "no optimize in the pipeline", r.optimize},
		{pipeline.StagePush, p.Push != nil, "no push in the pipeline", r.push},
		{pipeline.StageSign, p.Sign != nil, "no sign in the pipeline", r.sign},
		{pipeline.StageDeploy, p.Deploy != nil, "no deploy in the pipeline", r.deploy},
	}
	for _, s := range stages {
		if s.on && skipped(s.name) {
			s.on, s.why = false, "skipped by the caller"
		}
		if !s.on {
			r.res.Stages = append(r.res.Stages, StageResult{Stage: s.name, Status: StageSkipped, Summary: s.why})
			r.event(s.name, StageSkipped, s.why)
			continue
		}
		if err := ctx.Err(); err != nil {
			return fail(s.name, err)
		}
		r.event(s.name, "started", "")
		t0 := time.Now()
		summary, out, err := s.run(ctx)
		sr := StageResult{Stage: s.name, Status: StagePassed, Summary: summary, Duration: time.Since(t0).Seconds(), Result: out}
		if err != nil {
			sr.Status, sr.Error = StageFailed, err.Error()
			if sr.Summary == "" {
				sr.Summary = err.Error()
			}
		}
		r.res.Stages = append(r.res.Stages, sr)
		r.event(s.name, sr.Status, sr.Summary)
		if err != nil {
			return fail(s.name, err)
		}
	}
	return nil
}

func (r *pipelineRun) event(stage, status, msg string) {
	if r.opts.Progress != nil {
		r.opts.Progress(Event{Time: time.Now(), Op: "pipeline", Phase: stage, Subject: r.p.Name, Status: status, Message: msg})
	}
}

// withoutGates is the pipeline's policy with the gates the pipeline stands for turned off.
func (r *pipelineRun) withoutGates(gates ...string) *policy.Policy {
	if r.pol == nil {
		return nil
	}
	p := *r.pol
	g := policy.Gates{}
	if p.Gates != nil {
		g = *p.Gates
	}
	for _, gate := range gates {
		switch gate {
		case policy.GateBuild:
			g.Build = policy.Off
		case policy.GatePush:
			g.Push = policy.Off
		}
	}
	p.Gates = &g
	return &p
}

func (r *pipelineRun) build(ctx context.Context) (string, any, error) {
	b := r.p.Build
	if b == nil {
		b = &pipeline.Build{}
	}
	bo := BuildOptions{
		Options: build.Options{ContextPath: r.p.Path(cmp.Or(b.Context, ".")), BuildArgs: b.BuildArgs, Target: b.Target, Labels: b.Labels},
		Scan:    "off", Engine: r.eng, Host: r.opts.Host, Policy: r.withoutGates(policy.GateBuild),
		Progress: r.opts.Progress,
	}
	bo.DockerfilePath = b.Dockerfile // relative to the context, as docker build -f reads it
	res, err := r.c.BuildContainers(ctx, r.p.Image, bo)
	if err != nil {
		return "", res, err
	}
	return fmt.Sprintf("built %s (%s, %.1f MB) in %.1fs", r.p.Image, shortDigest(res.ImageID), res.SizeMB, res.BuildTime), res, nil
}

func (r *pipelineRun) test(ctx context.Context) (string, any, error) {
	pr := &optimize.Prober{Engine: r.eng, Sensor: r.opts.Sensor}
	res, err := pr.Check(ctx, r.image, r.probe)
	if err != nil {
		return "", res, err
	}
	if !res.Passed {
		return "", res, fmt.Errorf("%w: %s", ErrTestFailed, res.Failure)
	}
	return fmt.Sprintf("%d check(s) passed in %.1fs", len(res.Checks), res.Duration), res, nil
}

func (r *pipelineRun) scan(ctx context.Context) (string, any, error) {
	so := r.opts.Scan
	so.Engine, so.Progress = r.eng, r.opts.Progress
	scanType := "full"
	if s := r.p.Scan; s != nil {
		scanType = cmp.Or(s.Type, "full")
	}
	res, err := r.c.ScanContainerSecurity(ctx, r.image, scanType, so)
	if err != nil {
		return "", res, err
	}
	summary := fmt.Sprintf("%s scan: %s", scanType, policy.Summary(res.CriticalCount, res.HighCount, res.MediumCount, res.LowCount, res.UnknownCount))
	if r.pol == nil {
		return summary + "; no policy to hold it to", res, nil
	}
	v, err := r.c.holdToPolicy(ctx, policy.GatePipeline, r.pol, r.eng, []gateImage{{ref: r.image, scan: res}}, nil)
	r.res.Verdict = v
	if err != nil {
		return summary, res, err
	}
	if v != nil && !v.Allowed {
		return summary + fmt.Sprintf("; the policy refuses it (%d violation(s)), and its pipeline gate only warns", len(v.Violations)), res, nil
	}
	return summary + "; the policy allows it", res, nil
}

func (r *pipelineRun) optimize(ctx context.Context) (string, any, error) {
	oo := OptimizeOptions{Probe: r.probe, Scan: r.opts.Scan, Sensor: r.opts.Sensor, Engine: r.eng, Host: r.opts.Host,
		Progress: r.opts.Progress}
	oo.Probe.Run = nil // a job's run check replaces the command: the optimizer profiles the image's own
	if oo.Probe.Beside != nil && len(oo.Probe.HTTP) == 0 && !oo.Probe.HealthCheck && len(oo.Probe.Exec) == 0 {
		oo.Probe = optimize.Probe{} // only a container beside: the image's HEALTHCHECK, if any
	}
	res, err := r.c.OptimizeContainers(ctx, r.image, r.p.Optimize.Type, oo)
	if err != nil {
		return "", res, err
	}
	r.image = res.OptimizedImage
	return fmt.Sprintf("%s: %.1f MB → %.1f MB, verified", res.OptimizedImage, float64(res.SizeBefore)/1e6, float64(res.SizeAfter)/1e6), res, nil
}

func (r *pipelineRun) push(ctx context.Context) (string, any, error) {
	ro := r.opts.Registry
	ro.Engine, ro.Host, ro.Progress = r.eng, r.opts.Host, r.opts.Progress
	ro.Policy = r.withoutGates(policy.GatePush)
	ro.AttachScan = !r.p.Push.NoAttach
	ro.Destination = r.p.Image
	registryURL := r.p.Push.Registry
	if url, scanOnPush, named, err := r.c.namedRegistry(registryURL, &ro); err != nil {
		return "", nil, err
	} else if named {
		registryURL = url
		// The saved registry's scan-on-push is its own rule: no_attach does not lift it.
		ro.AttachScan = ro.AttachScan || scanOnPush
	}
	if registryURL != "" {
		// The destination keeps its repository and tag; the registry is the one named.
		ro.Destination = trimRegistry(r.p.Image)
	}
	res, err := r.c.ManageContainerRegistry(ctx, RegistryPush, r.image, registryURL, ro)
	if err != nil {
		return "", res, err
	}
	r.res.ImageDigest, r.res.Reference = res.ImageDigest, res.Reference
	r.pushed = trimDigestRef(res.Reference) + "@" + res.ImageDigest
	ep, err := registry.ParseEndpoint(cmp.Or(registryURL, hostOf(res.Reference)), "")
	if err == nil && ep.PlainHTTP {
		r.pushed = "http://" + r.pushed
	}
	ro.Destination, ro.Progress, ro.Policy, ro.AttachScan = "", nil, nil, false
	r.pushRO = ro // the pushed registry's own options, its login included: the signature goes there alone
	r.ro = r.loginFor(ro, ep.Host)
	summary := fmt.Sprintf("pushed %s@%s (%.1f MB)", res.Reference, shortDigest(res.ImageDigest), res.SizeMB)
	if res.Evidence != nil {
		summary += ", scan and SBOM attached"
	}
	return summary, res, nil
}

func (r *pipelineRun) deploy(ctx context.Context) (string, any, error) {
	d := r.p.Deploy
	ko := r.opts.Kubernetes
	ko.Policy = r.pol
	ko.PinDigests = true
	ko.Registry = r.ro
	ko.CreateNamespace = ko.CreateNamespace || d.CreateNamespace
	ko.Wait, ko.Timeout = d.Wait, d.Timeout
	ko.Progress = r.opts.Progress
	image := strings.TrimPrefix(strings.TrimPrefix(r.pushed, "http://"), "https://")
	if d.Container != "" {
		ko.Images = map[string]string{d.Container: image}
	} else {
		ko.Image = image
	}
	res, err := r.c.OrchestrateKubernetes(ctx, d.Name, r.p.Path(d.Manifests), d.Namespace, ko)
	if err != nil {
		return "", res, err
	}
	return fmt.Sprintf("applied %s to namespace %s, %d/%d replicas ready", d.Name, res.Namespace, res.ReadyReplicas, res.Replicas), res, nil
}

// loginFor is ro with its login (a saved registry's, or the caller's) given to host alone: the deploy stage's apply
// gate reads every image the manifests run, in any registry, and each other registry gets the keychain's.
func (r *pipelineRun) loginFor(ro RegistryOptions, host string) RegistryOptions {
	if ro.Credentials == (RegistryCredentials{}) {
		return ro
	}
	creds := ro.Credentials
	next := ro.Keychain
	if next == nil {
		next = r.c.cfg.Keychain
	}
	k := []authn.Keychain{hostLogin{host: host, auth: &authn.AuthConfig{Username: creds.Username,
		Password: string(creds.Password), RegistryToken: string(creds.Token)}}}
	if next != nil {
		k = append(k, next)
	}
	ro.Credentials, ro.Keychain = RegistryCredentials{}, authn.NewMultiKeychain(k...)
	return ro
}

// hostLogin is a keychain of one registry's login; other registries are anonymous to it.
type hostLogin struct {
	host string
	auth *authn.AuthConfig
}

func (h hostLogin) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if h.host == "" || res.RegistryStr() != h.host {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(*h.auth), nil
}

// testProbe is the pipeline's test as a probe.
func testProbe(t *pipeline.Test) optimize.Probe {
	pr := optimize.Probe{HealthCheck: t.HealthCheck, Timeout: t.Timeout}
	for _, h := range t.HTTP {
		pr.HTTP = append(pr.HTTP, optimize.HTTPCheck{Port: h.Port, Path: h.Path, Status: h.Status, Body: h.Body})
	}
	for _, e := range t.Exec {
		pr.Exec = append(pr.Exec, optimize.CommandCheck{Cmd: e.Cmd, ExitCode: e.ExitCode, Output: e.Output})
	}
	if t.Run != nil {
		pr.Run = &optimize.CommandCheck{Cmd: t.Run.Cmd, ExitCode: t.Run.ExitCode, Output: t.Run.Output}
	}
	if b := t.Beside; b != nil {
		pr.Beside = &optimize.BesideCheck{Image: b.Image, CommandCheck: optimize.CommandCheck{Cmd: b.Command}}
	}
	return pr
}

// trimRegistry is a reference without its registry ("team/app:1" of "registry.example.com/team/app:1"), as
// Docker reads the first component: a registry when it has a dot or a port, or is localhost.
func trimRegistry(ref string) string {
	if !namesRegistry(ref) {
		return ref
	}
	_, rest, _ := strings.Cut(ref, "/")
	return rest
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// ErrTestFailed is a pipeline's test that the image did not pass: a gate that refused it.
var ErrTestFailed = fmt.Errorf("the test failed: %w", ErrPolicyViolation)
