package optimize

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/optimize/sensor"
)

// Label marks the containers a probe makes, so that they can be found and removed.
const Label = "io.codomyrmex.myrmex.optimize"

// DefaultProbeTimeout is how long a probe waits for the image to answer (or to end, for Run).
const DefaultProbeTimeout = 60 * time.Second

// maxOutput bounds what a probe keeps of a container's output and a report.
const (
	maxOutput = 64 << 10
	maxReport = 256 << 20
)

// Probe is how the optimizer tells that an image works: checks against a container of it, each of which must
// pass on the original and answer the same on the optimized image. Without a check, an image whose
// configuration has a HEALTHCHECK is probed by it.
type Probe struct {
	// HTTP are requests to the running container, in order, from its own network namespace; the first is
	// retried until the server answers or Timeout passes.
	HTTP []HTTPCheck `json:"http,omitempty"`
	// Exec are commands run inside the running container, after the HTTP checks.
	Exec []CommandCheck `json:"exec,omitempty"`
	// Run, when set, replaces the container's command (its entrypoint stays) and waits for it to end: for images
	// that run a job rather than a server. HTTP and Exec checks are then not allowed.
	Run *CommandCheck `json:"run,omitempty"`
	// HealthCheck waits for the image's own HEALTHCHECK to report healthy.
	HealthCheck bool `json:"healthcheck,omitempty"`
	// Beside is a test container of another image, run last in the running container's network namespace
	// (127.0.0.1 is the app): it must exit with ExitCode and print Output when set. Until Timeout it is run
	// again while it fails, when no HTTP or health check has shown the app ready before it.
	Beside *BesideCheck `json:"beside,omitempty"`
	// Timeout bounds the wait for the first answer (or the end of Run); zero means DefaultProbeTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// HTTPCheck is a GET of http://127.0.0.1:Port/Path inside the container's network namespace.
type HTTPCheck struct {
	Port int    `json:"port"`
	Path string `json:"path"`
	// Status is the status expected; zero accepts any below 400.
	Status int `json:"status,omitempty"`
	// Body, when set, must be part of the answer's body.
	Body string `json:"body,omitempty"`
}

// CommandCheck is a command and what it must do: exit with ExitCode, and print Output (when set) among its
// output.
type CommandCheck struct {
	Cmd      []string `json:"cmd"`
	ExitCode int      `json:"exit_code"`
	Output   string   `json:"output,omitempty"`
}

// BesideCheck is a test container beside the app's: an image (which the engine must hold) and its command.
type BesideCheck struct {
	Image string `json:"image"`
	CommandCheck
}

// Empty reports whether the probe has no check of its own.
func (p Probe) Empty() bool {
	return len(p.HTTP) == 0 && len(p.Exec) == 0 && p.Run == nil && !p.HealthCheck && p.Beside == nil
}

// Validate refuses a probe that cannot be run.
func (p Probe) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: probe: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	if p.Timeout < 0 {
		return bad("negative timeout")
	}
	if p.Beside != nil && p.Beside.Image == "" {
		return bad("a test container beside the app needs an image")
	}
	if p.Run != nil && (len(p.HTTP) > 0 || len(p.Exec) > 0 || p.HealthCheck || p.Beside != nil) {
		return bad("a run check replaces the container's command: it cannot be combined with HTTP, exec or health checks")
	}
	if p.Run != nil && len(p.Run.Cmd) == 0 {
		return bad("a run check needs a command")
	}
	for _, h := range p.HTTP {
		if h.Port < 1 || h.Port > 65535 {
			return bad("port %d is not a TCP port", h.Port)
		}
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n#") {
			return bad("%q is not a request path (it starts with /, without spaces)", h.Path)
		}
		if h.Status != 0 && (h.Status < 100 || h.Status > 599) {
			return bad("status %d is not an HTTP status", h.Status)
		}
	}
	for _, c := range p.Exec {
		if len(c.Cmd) == 0 {
			return bad("an exec check needs a command")
		}
	}
	return nil
}

// ProbeResult is what a probe saw on one image.
type ProbeResult struct {
	Image  string        `json:"image"`
	Passed bool          `json:"passed"`
	Checks []CheckResult `json:"checks"`
	// Failure says why the probe failed, when it did.
	Failure string `json:"failure,omitempty"`
	// Logs are the end of the container's output, when the probe failed.
	Logs     string  `json:"logs,omitempty"`
	Duration float64 `json:"duration"` // seconds
}

// CheckResult is one check's answer.
type CheckResult struct {
	Check    string `json:"check"` // "GET :8000/", "exec python3 -c …", "run …", "healthcheck"
	Passed   bool   `json:"passed"`
	Status   int    `json:"status,omitempty"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output,omitempty"` // the body or the output, at most 64 KiB
	Error    string `json:"error,omitempty"`
}

// Prober runs probes against images in an engine.
type Prober struct {
	Engine *engine.Client
	// Sensor is the path of a static myrmex-sensor binary for the engine's platform (see cmd/myrmex-sensor).
	Sensor string
}

// ErrNoSensor means a probe needs the sensor binary and none was found.
var ErrNoSensor = errors.New("the myrmex-sensor program was not found: build it with CGO_ENABLED=0 go build ./cmd/myrmex-sensor and put it beside myrmex or set MYRMEX_SENSOR")

// run is one container of a probe.
type run struct {
	p      *Prober
	image  string
	app    string
	extras []string
}

// Check runs probe against image as it is. It returns an error only when the probe could not be run (the engine
// failed, the image is missing); a probe that ran and failed is a ProbeResult with Passed false.
func (p *Prober) Check(ctx context.Context, image string, probe Probe) (*ProbeResult, error) {
	res, _, err := p.probe(ctx, image, probe, false)
	return res, err
}

// Profile runs probe against image while the sensor records every file the container opens, executes or lists.
func (p *Prober) Profile(ctx context.Context, image string, probe Probe) (*ProbeResult, *sensor.Report, error) {
	return p.probe(ctx, image, probe, true)
}

func (p *Prober) probe(ctx context.Context, image string, probe Probe, record bool) (res *ProbeResult, rep *sensor.Report, err error) {
	if err := probe.Validate(); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	timeout := probe.Timeout
	if timeout == 0 {
		timeout = DefaultProbeTimeout
	}
	api := p.Engine.API()
	ins, err := api.ImageInspect(ctx, image)
	if err != nil {
		return nil, nil, fmt.Errorf("inspecting %s: %w", image, classify(err))
	}
	if ins.Config == nil {
		return nil, nil, fmt.Errorf("%w: %s has no configuration", errdefs.ErrInvalidArgument, image)
	}
	cfg := ins.Config
	hasHealth := cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 && cfg.Healthcheck.Test[0] != "NONE"
	if probe.Empty() {
		if !hasHealth {
			return nil, nil, fmt.Errorf("%w: the image has no HEALTHCHECK: give a probe (an HTTP request, a command)", errdefs.ErrInvalidArgument)
		}
		probe.HealthCheck = true
	}
	if probe.HealthCheck && !hasHealth {
		return nil, nil, fmt.Errorf("%w: the image has no HEALTHCHECK to probe with", errdefs.ErrInvalidArgument)
	}
	needSensor := record || len(probe.HTTP) > 0
	var sensorTar []byte
	if needSensor {
		if sensorTar, err = p.sensorArchive(); err != nil {
			return nil, nil, err
		}
	}
	argv := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if probe.Run != nil {
		argv = append(append([]string(nil), cfg.Entrypoint...), probe.Run.Cmd...)
	}
	if len(argv) == 0 {
		return nil, nil, fmt.Errorf("%w: the image has no entrypoint or command to run", errdefs.ErrInvalidArgument)
	}
	ccfg := &container.Config{Image: image, Labels: map[string]string{Label: "probe"}}
	host := &container.HostConfig{}
	asUser := func(argv []string) []string { // the container's user is root with CAP_SYS_ADMIN: the sensor drops both
		return append([]string{sensor.Binary, "exec", "--user", cfg.User, "--"}, argv...)
	}
	if record {
		ccfg.Entrypoint = []string{sensor.Binary, "record", "--user", cfg.User, "--"}
		ccfg.Cmd = argv
		ccfg.User = "0"
		host.CapAdd = []string{"SYS_ADMIN"}
		// The engine runs the image's HEALTHCHECK as the container's user, with its capabilities.
		ccfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		if probe.HealthCheck {
			hc := *cfg.Healthcheck
			test := hc.Test[1:]
			if hc.Test[0] == "CMD-SHELL" {
				shell := []string{"/bin/sh", "-c"}
				if len(cfg.Shell) > 0 {
					shell = cfg.Shell
				}
				test = append(append([]string(nil), shell...), strings.Join(hc.Test[1:], " "))
			}
			hc.Test = append([]string{"CMD"}, asUser(test)...)
			ccfg.Healthcheck = &hc
		}
	} else if probe.Run != nil {
		ccfg.Cmd = probe.Run.Cmd
	}
	r := &run{p: p, image: image}
	defer r.cleanup()
	if r.app, err = r.create(ctx, ccfg, host, sensorTar, record); err != nil {
		return nil, nil, err
	}
	if _, err := api.ContainerStart(ctx, r.app, client.ContainerStartOptions{}); err != nil {
		if ctx.Err() != nil || client.IsErrConnectionFailed(err) {
			return nil, nil, fmt.Errorf("starting a container of %s: %w", image, classify(err))
		}
		// The engine answered: the image cannot start (its program is missing, say). That is the probe's verdict.
		return &ProbeResult{Image: image, Failure: "the container did not start: " + clip(err.Error()), Duration: time.Since(start).Seconds(),
			Checks: []CheckResult{{Check: "start", Error: clip(err.Error())}}}, nil, nil
	}
	res = &ProbeResult{Image: image, Passed: true}
	fail := func(check CheckResult, why string) {
		res.Checks = append(res.Checks, check)
		if res.Passed {
			res.Passed, res.Failure = false, why
		}
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case probe.Run != nil:
		c := CheckResult{Check: "run " + strings.Join(probe.Run.Cmd, " ")}
		code, err := r.wait(pctx, r.app)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			c.Error = "did not end within " + timeout.String()
			fail(c, c.Check+": "+c.Error)
			break
		}
		c.ExitCode = code
		c.Output = r.logs(ctx, r.app)
		c.Passed, c.Error = judgeCommand(*probe.Run, code, c.Output)
		if !c.Passed {
			fail(c, c.Check+": "+c.Error)
		} else {
			res.Checks = append(res.Checks, c)
		}
	default:
		if len(probe.HTTP) > 0 {
			if err := r.http(ctx, probe.HTTP, timeout, sensorTar, res, fail); err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				return nil, nil, err
			}
		}
		for _, e := range probe.Exec {
			if !res.Passed {
				break
			}
			run := e
			if record {
				run.Cmd = asUser(e.Cmd)
			}
			c := r.exec(pctx, run)
			c.Check = "exec " + strings.Join(e.Cmd, " ")
			if !c.Passed {
				fail(c, c.Check+": "+c.Error)
			} else {
				res.Checks = append(res.Checks, c)
			}
		}
		if probe.HealthCheck && res.Passed {
			c := r.health(pctx)
			if !c.Passed {
				fail(c, "healthcheck: "+c.Error)
			} else {
				res.Checks = append(res.Checks, c)
			}
		}
		if probe.Beside != nil && res.Passed {
			c, err := r.beside(pctx, *probe.Beside, len(probe.HTTP) == 0 && !probe.HealthCheck)
			if err != nil && ctx.Err() == nil {
				return nil, nil, err
			}
			if !c.Passed {
				fail(c, c.Check+": "+c.Error)
			} else {
				res.Checks = append(res.Checks, c)
			}
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		// The sensor ends the program on SIGTERM (a few seconds' grace) and writes its report; a plain run is
		// killed at once: nothing of it is kept.
		stop, signal := 0, ""
		if record {
			stop, signal = 15, "SIGTERM" // the sensor's stop (not the image's STOPSIGNAL, which it may not take as one)
		}
		if _, err := api.ContainerStop(ctx, r.app, client.ContainerStopOptions{Signal: signal, Timeout: ptr(stop)}); err != nil {
			return nil, nil, fmt.Errorf("stopping the probe's container: %w", classify(err))
		}
	}
	if !res.Passed {
		res.Logs = r.logs(ctx, r.app)
	}
	if record {
		if rep, err = r.report(ctx); err != nil {
			return nil, nil, err
		}
		if rep.Error != "" && len(rep.Files) == 0 {
			return nil, nil, fmt.Errorf("the sensor failed: %s", rep.Error)
		}
	}
	res.Duration = time.Since(start).Seconds()
	return res, rep, nil
}

func ptr[T any](v T) *T { return &v }

func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case strings.Contains(err.Error(), "No such image"), strings.Contains(err.Error(), "No such container"):
		return fmt.Errorf("%w: %v", errdefs.ErrNotFound, err)
	}
	return fmt.Errorf("%w: %v", errdefs.ErrUnavailable, err)
}

// sensorArchive is a tar stream that puts the sensor at sensor.Binary.
func (p *Prober) sensorArchive() ([]byte, error) {
	if p.Sensor == "" {
		return nil, fmt.Errorf("%w: %w", errdefs.ErrNotFound, ErrNoSensor)
	}
	data, err := os.ReadFile(p.Sensor)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the sensor: %v", errdefs.ErrNotFound, err)
	}
	if len(data) < 4 || string(data[:4]) != "\x7fELF" {
		return nil, fmt.Errorf("%w: %s is not an executable for Linux", errdefs.ErrInvalidArgument, p.Sensor)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := strings.TrimPrefix(sensor.Dir, "/")
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + path.Base(sensor.Binary), Mode: 0o755, Size: int64(len(data))})
	_, _ = tw.Write(data)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (r *run) create(ctx context.Context, cfg *container.Config, host *container.HostConfig, sensorTar []byte, copySensor bool) (string, error) {
	api := r.p.Engine.API()
	c, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: host})
	if err != nil {
		return "", fmt.Errorf("creating a container of %s: %w", r.image, classify(err))
	}
	r.extras = append(r.extras, c.ID)
	if copySensor {
		if _, err := api.CopyToContainer(ctx, c.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(sensorTar)}); err != nil {
			return "", fmt.Errorf("copying the sensor into a container of %s: %w", r.image, classify(err))
		}
	}
	return c.ID, nil
}

// cleanup removes the probe's containers, with a context of its own: a cancelled probe leaves nothing behind.
func (r *run) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(r.extras) - 1; i >= 0; i-- {
		_, _ = r.p.Engine.API().ContainerRemove(ctx, r.extras[i], client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
}

func (r *run) wait(ctx context.Context, id string) (int, error) {
	w := r.p.Engine.API().ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case res := <-w.Result:
		return int(res.StatusCode), nil
	case err := <-w.Error:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// logs is the end of a container's output (both streams), at most maxOutput bytes.
func (r *run) logs(ctx context.Context, id string) string {
	rc, err := r.p.Engine.API().ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "200"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf tailBuffer
	_, _ = stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 16<<20))
	return buf.String()
}

// tailBuffer keeps the last maxOutput bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxOutput {
		t.b = append(t.b[:0], t.b[len(t.b)-maxOutput:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// http asks the checks' URLs from a second container that shares the app's network namespace: it works against
// any engine, local or remote, and publishes no port.
func (r *run) http(ctx context.Context, checks []HTTPCheck, timeout time.Duration, sensorTar []byte, res *ProbeResult, fail func(CheckResult, string)) error {
	api := r.p.Engine.API()
	cmd := []string{sensor.Binary, "http", "--timeout", timeout.String()}
	for _, h := range checks {
		cmd = append(cmd, "http://127.0.0.1:"+strconv.Itoa(h.Port)+h.Path)
	}
	id, err := r.create(ctx, &container.Config{Image: r.image, Entrypoint: cmd, Cmd: nil, User: "0", Labels: map[string]string{Label: "probe"},
		Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}, // not the image's code, as root
		&container.HostConfig{NetworkMode: container.NetworkMode("container:" + r.app)}, sensorTar, true)
	if err != nil {
		return err
	}
	ended := func() bool { // the app's container ended before it answered: every check fails, with why
		ins, err := api.ContainerInspect(ctx, r.app, client.ContainerInspectOptions{})
		if err != nil || ins.Container.State == nil || ins.Container.State.Running {
			return false
		}
		for _, h := range checks {
			c := CheckResult{Check: fmt.Sprintf("GET :%d%s", h.Port, h.Path),
				Error: fmt.Sprintf("the container ended (exit code %d) before it answered", ins.Container.State.ExitCode)}
			fail(c, c.Check+": "+c.Error)
		}
		return true
	}
	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if ended() {
			return nil
		}
		return fmt.Errorf("starting the HTTP probe: %w", classify(err))
	}
	// The sidecar gives up after timeout on its own and says so; the wait leaves it time to report. An app that
	// ends meanwhile ends the wait.
	wctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	probeDone := api.ContainerWait(wctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	appDone := api.ContainerWait(wctx, r.app, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-probeDone.Result:
	case err := <-probeDone.Error:
		return fmt.Errorf("waiting for the HTTP probe: %w", err)
	case <-appDone.Result:
		if ended() {
			return nil
		}
		if _, err := r.wait(wctx, id); err != nil {
			return fmt.Errorf("waiting for the HTTP probe: %w", err)
		}
	case <-wctx.Done():
		return fmt.Errorf("waiting for the HTTP probe: %w", wctx.Err())
	}
	rc, err := api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		return fmt.Errorf("reading the HTTP probe's answers: %w", classify(err))
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, io.Discard, io.LimitReader(rc, int64(len(checks))*(8*sensor.MaxBody)+4096)); err != nil {
		return fmt.Errorf("reading the HTTP probe's answers: %w", err)
	}
	var answers []sensor.HTTPResult
	if err := json.Unmarshal(out.Bytes(), &answers); err != nil {
		return fmt.Errorf("reading the HTTP probe's answers: %w", err)
	}
	for i, h := range checks {
		c := CheckResult{Check: fmt.Sprintf("GET :%d%s", h.Port, h.Path)}
		if i >= len(answers) {
			c.Error = "not asked: an earlier request failed"
			fail(c, c.Check+": "+c.Error)
			continue
		}
		a := answers[i]
		c.Status, c.Output = a.Status, a.Body
		switch {
		case a.Error != "":
			c.Error = a.Error
			if i == 0 {
				c.Error = "no answer within " + timeout.String() + ": " + a.Error
			}
		case h.Status != 0 && a.Status != h.Status:
			c.Error = fmt.Sprintf("status %d, want %d", a.Status, h.Status)
		case h.Status == 0 && a.Status >= 400:
			c.Error = fmt.Sprintf("status %d", a.Status)
		case h.Body != "" && !strings.Contains(a.Body, h.Body):
			c.Error = fmt.Sprintf("the body does not hold %q", h.Body)
		default:
			c.Passed = true
		}
		if c.Passed {
			res.Checks = append(res.Checks, c)
		} else {
			fail(c, c.Check+": "+c.Error)
		}
	}
	return nil
}

// beside runs the test container b in the app's network namespace, again every half second while it fails
// when retry is set, until ctx ends. The error is the engine's; a test that failed is the CheckResult.
func (r *run) beside(ctx context.Context, b BesideCheck, retry bool) (CheckResult, error) {
	api := r.p.Engine.API()
	c := CheckResult{Check: "beside " + b.Image + " " + strings.Join(b.Cmd, " ")}
	for {
		id, err := r.create(ctx, &container.Config{Image: b.Image, Cmd: b.Cmd, Labels: map[string]string{Label: "probe"}},
			&container.HostConfig{NetworkMode: container.NetworkMode("container:" + r.app)}, nil, false)
		if err != nil {
			return c, err
		}
		if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			c.Error = "the test container did not start: " + clip(err.Error())
			return c, nil
		}
		code, err := r.wait(ctx, id)
		if err != nil {
			if c.Error == "" {
				c.Error = "did not end in time"
			}
			return c, nil
		}
		c.ExitCode, c.Output = code, r.logs(ctx, id)
		if c.Passed, c.Error = judgeCommand(b.CommandCheck, code, c.Output); c.Passed || !retry {
			return c, nil
		}
		// Not ready yet, perhaps: this container goes (cleanup would remove it too), and another is tried.
		_, _ = api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
		select {
		case <-ctx.Done():
			return c, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (r *run) exec(ctx context.Context, e CommandCheck) CheckResult {
	api := r.p.Engine.API()
	c := CheckResult{Check: "exec " + strings.Join(e.Cmd, " ")}
	x, err := api.ExecCreate(ctx, r.app, client.ExecCreateOptions{Cmd: e.Cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		c.Error = classify(err).Error()
		return c
	}
	att, err := api.ExecAttach(ctx, x.ID, client.ExecAttachOptions{})
	if err != nil {
		c.Error = classify(err).Error()
		return c
	}
	var out tailBuffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&out, &out, att.Reader)
		done <- err
	}()
	select {
	case <-done:
	case <-ctx.Done():
		att.Close()
		c.Error = "did not end in time"
		return c
	}
	att.Close()
	ins, err := api.ExecInspect(ctx, x.ID, client.ExecInspectOptions{})
	for err == nil && ins.Running { // its output ended (closed, or the exit is not recorded yet): not the command
		select {
		case <-ctx.Done():
			c.Error = "did not end in time"
			return c
		case <-time.After(50 * time.Millisecond):
		}
		ins, err = api.ExecInspect(ctx, x.ID, client.ExecInspectOptions{})
	}
	if err != nil {
		c.Error = classify(err).Error()
		return c
	}
	c.ExitCode, c.Output = ins.ExitCode, out.String()
	c.Passed, c.Error = judgeCommand(e, ins.ExitCode, c.Output)
	return c
}

func judgeCommand(e CommandCheck, code int, output string) (bool, string) {
	switch {
	case code != e.ExitCode:
		return false, fmt.Sprintf("exit code %d, want %d", code, e.ExitCode)
	case e.Output != "" && !strings.Contains(output, e.Output):
		return false, fmt.Sprintf("the output does not hold %q", e.Output)
	}
	return true, ""
}

func (r *run) health(ctx context.Context) CheckResult {
	c := CheckResult{Check: "healthcheck"}
	for {
		ins, err := r.p.Engine.API().ContainerInspect(ctx, r.app, client.ContainerInspectOptions{})
		if err != nil {
			c.Error = classify(err).Error()
			return c
		}
		st := ins.Container.State
		switch {
		case st == nil:
		case !st.Running:
			c.Error = fmt.Sprintf("the container ended (exit code %d) before it was healthy", st.ExitCode)
			return c
		case st.Health != nil && st.Health.Status == container.Healthy:
			c.Passed = true
			return c
		case st.Health != nil && st.Health.Status == container.Unhealthy:
			c.Error = "unhealthy"
			if n := len(st.Health.Log); n > 0 {
				c.ExitCode, c.Output = st.Health.Log[n-1].ExitCode, st.Health.Log[n-1].Output
			}
			return c
		}
		select {
		case <-ctx.Done():
			c.Error = "not healthy in time"
			return c
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// report copies the sensor's report out of the stopped container.
func (r *run) report(ctx context.Context) (*sensor.Report, error) {
	cp, err := r.p.Engine.API().CopyFromContainer(ctx, r.app, client.CopyFromContainerOptions{SourcePath: sensor.ReportFile})
	if err != nil {
		return nil, fmt.Errorf("the sensor left no report (%v): the profiling run failed", classify(err))
	}
	defer cp.Content.Close()
	tr := tar.NewReader(io.LimitReader(cp.Content, maxReport+4096))
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("reading the sensor's report: %w", err)
	}
	rep, err := decodeReport(io.LimitReader(tr, maxReport))
	if err != nil {
		return nil, fmt.Errorf("reading the sensor's report: %w", err)
	}
	return rep, nil
}

// decodeReport reads a report token by token: it was in reach of the program profiled, so past the sensor's own
// bounds (MaxPaths paths of MaxPathSize bytes) it is not believed (Overflow), and it is never held whole.
func decodeReport(r io.Reader) (*sensor.Report, error) {
	dec := json.NewDecoder(r)
	rep := &sensor.Report{Files: map[string]string{}}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object (%v)", err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t {
		case "files":
			if t, err := dec.Token(); err != nil || t != json.Delim('{') {
				return nil, fmt.Errorf("files: not an object (%v)", err)
			}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := dec.Token()
				if err != nil {
					return nil, err
				}
				p, _ := k.(string)
				kind, _ := v.(string)
				switch {
				case len(rep.Files) >= sensor.MaxPaths:
					rep.Overflow = true
				case len(p) <= sensor.MaxPathSize && strings.HasPrefix(p, "/") && (kind == sensor.Read || kind == sensor.Exec || kind == sensor.List):
					rep.Files[p] = kind
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
		case "overflow":
			var b bool
			if err := dec.Decode(&b); err != nil {
				return nil, err
			}
			rep.Overflow = rep.Overflow || b
		case "exit_code":
			if err := dec.Decode(&rep.ExitCode); err != nil {
				return nil, err
			}
		case "error":
			var e string
			if err := dec.Decode(&e); err != nil {
				return nil, err
			}
			rep.Error = clip(e)
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
		}
	}
	return rep, nil
}
