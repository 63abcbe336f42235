// Package pipeline reads a pipeline file: the specification's build → test → deploy integration pattern as one
// YAML document that `myrmex pipeline run` (containerization.Client.RunPipeline) runs stage by stage.
//
//	version: 1
//	name: web
//	image: registry.example.com/team/web:1.4     # what is built, tested, scanned and shipped
//	build: {context: ., dockerfile: Dockerfile, build_args: {VERSION: "1.4"}}
//	test:                                         # a probe of the running image, a command, or a container beside it
//	  http: [{port: 8080, path: /healthz, status: 200}]
//	scan: {type: full}                            # held to the policy (gate "pipeline")
//	optimize: {type: size}                        # verified with the test's probe
//	push: {registry: prod}                        # a saved registry's name, or a URL; the scan and SBOM attached
//	sign: {key: cosign.key}                       # the pushed digest, in cosign's format
//	deploy: {name: web, manifests: deploy/, namespace: shop, container: web}
//	policy: policy.yaml                           # else the one given with --policy
//
// Stages that are left out are skipped, except build and scan, which every pipeline runs. Relative paths are
// read from the pipeline file's directory.
package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/strictyaml"
)

// Version is the pipeline file format this package reads.
const Version = 1

// MaxFileSize bounds a pipeline file.
const MaxFileSize = 256 << 10

// The stages, in the order they run.
const (
	StageBuild    = "build"
	StageTest     = "test"
	StageScan     = "scan"
	StageOptimize = "optimize"
	StagePush     = "push"
	StageSign     = "sign"
	StageDeploy   = "deploy"
)

// Stages lists the stages in the order they run.
var Stages = []string{StageBuild, StageTest, StageScan, StageOptimize, StagePush, StageSign, StageDeploy}

// Pipeline is a pipeline file.
type Pipeline struct {
	Version int    `yaml:"version" json:"version"`
	Name    string `yaml:"name" json:"name"`
	// Image is the reference the pipeline builds and ships ("registry.example.com/team/web:1.4").
	Image    string    `yaml:"image" json:"image"`
	Build    *Build    `yaml:"build,omitempty" json:"build,omitempty"`
	Test     *Test     `yaml:"test,omitempty" json:"test,omitempty"`
	Scan     *Scan     `yaml:"scan,omitempty" json:"scan,omitempty"`
	Optimize *Optimize `yaml:"optimize,omitempty" json:"optimize,omitempty"`
	Push     *Push     `yaml:"push,omitempty" json:"push,omitempty"`
	Sign     *Sign     `yaml:"sign,omitempty" json:"sign,omitempty"`
	Deploy   *Deploy   `yaml:"deploy,omitempty" json:"deploy,omitempty"`
	// Policy is a policy file the pipeline is held to, instead of the one the caller gives.
	Policy string `yaml:"policy,omitempty" json:"policy,omitempty"`

	// File is where the pipeline was read from; Dir the directory relative paths are read from.
	File string `yaml:"-" json:"-"`
	Dir  string `yaml:"-" json:"-"`
}

// Build is how the image is built (on BuildKit, as myrmex build builds).
type Build struct {
	Context    string            `yaml:"context,omitempty" json:"context,omitempty"`
	Dockerfile string            `yaml:"dockerfile,omitempty" json:"dockerfile,omitempty"`
	BuildArgs  map[string]string `yaml:"build_args,omitempty" json:"build_args,omitempty"`
	Target     string            `yaml:"target,omitempty" json:"target,omitempty"`
	Labels     map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// Test is how the built image is shown to work: checks against a container of it (HTTP requests and commands
// inside it, or its own HEALTHCHECK), a command it runs instead of its own (Run), or a test container beside it
// that shares its network (Beside). At least one.
type Test struct {
	HTTP        []HTTPCheck   `yaml:"http,omitempty" json:"http,omitempty"`
	Exec        []Command     `yaml:"exec,omitempty" json:"exec,omitempty"`
	Run         *Command      `yaml:"run,omitempty" json:"run,omitempty"`
	HealthCheck bool          `yaml:"healthcheck,omitempty" json:"healthcheck,omitempty"`
	Beside      *Beside       `yaml:"beside,omitempty" json:"beside,omitempty"`
	Timeout     time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// HTTPCheck is a GET of http://127.0.0.1:PORT/PATH from inside the container's network.
type HTTPCheck struct {
	Port   int    `yaml:"port" json:"port"`
	Path   string `yaml:"path" json:"path"`
	Status int    `yaml:"status,omitempty" json:"status,omitempty"`
	Body   string `yaml:"body,omitempty" json:"body,omitempty"`
}

// Command is a command and what it must do: exit with ExitCode (0 by default), and print Output when set.
type Command struct {
	Cmd      []string `yaml:"cmd" json:"cmd"`
	ExitCode int      `yaml:"exit_code,omitempty" json:"exit_code,omitempty"`
	Output   string   `yaml:"output,omitempty" json:"output,omitempty"`
}

// Beside is a test container run beside the image's, in its network namespace, once the image's container is
// up (its first HTTP check answers, or its HEALTHCHECK is healthy, when the test has either): it passes when it
// exits 0.
type Beside struct {
	Image   string   `yaml:"image" json:"image"`
	Command []string `yaml:"command,omitempty" json:"command,omitempty"`
}

// Scan is the scan the policy holds the image to.
type Scan struct {
	// Type is full (the default), quick or compliance.
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
	// DBDir is the advisory database's directory (default: Myrmex's).
	DBDir string `yaml:"db_dir,omitempty" json:"db_dir,omitempty"`
}

// Optimize optimizes the image that passed its scan, verified with the test's HTTP and exec checks (or its
// HEALTHCHECK); what ships after is the optimized image.
type Optimize struct {
	// Type is size or security.
	Type string `yaml:"type" json:"type"`
}

// Push writes the image to a registry, with its scan and SBOM attached to its digest.
type Push struct {
	// Registry is a saved registry's name (myrmex registry add) or a URL; empty: the one Image names.
	Registry string `yaml:"registry,omitempty" json:"registry,omitempty"`
	// NoAttach leaves the scan and the SBOM out.
	NoAttach bool `yaml:"no_attach,omitempty" json:"no_attach,omitempty"`
}

// Sign signs the pushed digest with a key, in cosign's format.
type Sign struct {
	Key string `yaml:"key" json:"key"`
}

// Deploy applies manifests with the pushed image, pinned to its digest, held to the policy's apply gate.
type Deploy struct {
	Name      string `yaml:"name" json:"name"`
	Manifests string `yaml:"manifests" json:"manifests"`
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Container is the container the image is set on (its name in the manifests); empty: every container.
	Container       string        `yaml:"container,omitempty" json:"container,omitempty"`
	CreateNamespace bool          `yaml:"create_namespace,omitempty" json:"create_namespace,omitempty"`
	Wait            bool          `yaml:"wait,omitempty" json:"wait,omitempty"`
	Timeout         time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Load reads and checks a pipeline file.
func Load(file string) (*Pipeline, error) {
	st, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: pipeline file %s does not exist", errdefs.ErrNotFound, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: pipeline file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	if !st.Mode().IsRegular() {
		// A FIFO or a device would block the open, or the read, for ever.
		return nil, fmt.Errorf("%w: pipeline file %s is not a regular file", errdefs.ErrInvalidArgument, file)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: pipeline file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading pipeline file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	p, err := Parse(data, file)
	if err != nil {
		return nil, err
	}
	if p.Dir, err = filepath.Abs(filepath.Dir(file)); err != nil {
		return nil, fmt.Errorf("%w: pipeline file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	return p, nil
}

// Parse reads and checks a pipeline; file says where it came from, for messages (relative paths are then read
// from the working directory).
func Parse(data []byte, file string) (*Pipeline, error) {
	if file == "" {
		file = "pipeline"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", errdefs.ErrInvalidArgument, file, fmt.Sprintf(format, args...))
	}
	var p Pipeline
	root, err := strictyaml.Decode(data, &p, strictyaml.Options{MaxSize: MaxFileSize, MaxDepth: 12, What: "a pipeline", Friendly: friendly})
	if err != nil {
		return nil, bad("%v", err)
	}
	p.File = file
	line := func(keys ...string) int { return strictyaml.Line(root, keys...) }
	if p.Version != Version {
		if p.Version == 0 {
			return nil, bad("line %d: version is missing: a pipeline starts with `version: %d`", line("version"), Version)
		}
		return nil, bad("line %d: version %d: this Myrmex reads version %d", line("version"), p.Version, Version)
	}
	if err := p.validate(line); err != nil {
		return nil, bad("%v", err)
	}
	return &p, nil
}

// validate checks what the types cannot.
func (p *Pipeline) validate(line func(...string) int) error {
	if p.Name == "" {
		return fmt.Errorf("line %d: name is missing", line())
	}
	if p.Image == "" {
		return fmt.Errorf("line %d: image is missing: the reference the pipeline builds and ships", line())
	}
	if _, err := name.ParseReference(p.Image); err != nil || strings.Contains(p.Image, "@") {
		return fmt.Errorf("line %d: image %q: want a reference with a tag (registry/repository:tag)", line("image"), p.Image)
	}
	if t := p.Test; t != nil {
		if len(t.HTTP) == 0 && len(t.Exec) == 0 && t.Run == nil && !t.HealthCheck && t.Beside == nil {
			return fmt.Errorf("line %d: test has no check: give http, exec, run, healthcheck or beside", line("test"))
		}
		if t.Run != nil && (len(t.HTTP) > 0 || len(t.Exec) > 0 || t.HealthCheck || t.Beside != nil) {
			return fmt.Errorf("line %d: test.run replaces the container's command: it cannot be combined with other checks", line("test", "run"))
		}
		if err := checkTimeout(t.Timeout, "test.timeout", line("test", "timeout")); err != nil {
			return err
		}
		for _, h := range t.HTTP {
			if h.Port < 1 || h.Port > 65535 || !strings.HasPrefix(h.Path, "/") {
				return fmt.Errorf("line %d: test.http: want a port (1-65535) and a path starting with /", line("test", "http"))
			}
		}
		for _, c := range append(append([]Command{}, t.Exec...), deref(t.Run)...) {
			if len(c.Cmd) == 0 {
				return fmt.Errorf("line %d: a test command without cmd", line("test"))
			}
		}
		if b := t.Beside; b != nil {
			if _, err := name.ParseReference(b.Image); err != nil || b.Image == "" {
				return fmt.Errorf("line %d: test.beside.image %q is not an image reference", line("test", "beside", "image"), b.Image)
			}
		}
	}
	if s := p.Scan; s != nil {
		switch s.Type {
		case "", "full", "quick", "compliance":
		default:
			return fmt.Errorf("line %d: scan.type %q: want full, quick or compliance", line("scan", "type"), s.Type)
		}
	}
	if o := p.Optimize; o != nil {
		if o.Type != "size" && o.Type != "security" {
			return fmt.Errorf("line %d: optimize.type %q: want size or security", line("optimize", "type"), o.Type)
		}
	}
	if s := p.Sign; s != nil && s.Key == "" {
		return fmt.Errorf("line %d: sign.key is missing", line("sign"))
	}
	if s := p.Sign; s != nil && p.Push == nil {
		return fmt.Errorf("line %d: sign needs push: a signature refers to the digest a registry holds", line("sign"))
	}
	if d := p.Deploy; d != nil {
		switch {
		case d.Name == "":
			return fmt.Errorf("line %d: deploy.name is missing", line("deploy"))
		case d.Manifests == "":
			return fmt.Errorf("line %d: deploy.manifests is missing", line("deploy"))
		case p.Push == nil:
			return fmt.Errorf("line %d: deploy needs push: the cluster pulls the image from a registry", line("deploy"))
		}
		if err := checkTimeout(d.Timeout, "deploy.timeout", line("deploy", "timeout")); err != nil {
			return err
		}
	}
	return nil
}

// checkTimeout refuses a negative timeout, and one under a millisecond: a bare number (`timeout: 30`) reads as
// nanoseconds, which is never what was meant.
func checkTimeout(d time.Duration, field string, line int) error {
	switch {
	case d < 0:
		return fmt.Errorf("line %d: %s is negative", line, field)
	case d > 0 && d < time.Millisecond:
		return fmt.Errorf("line %d: %s %s: write the unit (30s, 3m)", line, field, d)
	}
	return nil
}

// MaxSkip bounds the stages a run is asked to skip (each named once is all there can be).
const MaxSkip = 16

// CheckSkip checks the stages a run of p is asked to skip: test, optimize, push, sign or deploy (build and scan
// always run); push only with the stages that need it (sign, deploy) skipped too.
func (p *Pipeline) CheckSkip(skip []string) error {
	if len(skip) > MaxSkip {
		return fmt.Errorf("%w: %d stages to skip: at most %d", errdefs.ErrInvalidArgument, len(skip), MaxSkip)
	}
	for _, st := range skip {
		if !slices.Contains(Stages, st) || st == StageBuild || st == StageScan {
			return fmt.Errorf("%w: skip %q: want test, optimize, push, sign or deploy", errdefs.ErrInvalidArgument, st)
		}
		if st == StagePush && (p.Deploy != nil && !slices.Contains(skip, StageDeploy) || p.Sign != nil && !slices.Contains(skip, StageSign)) {
			return fmt.Errorf("%w: skip push: sign and deploy need it: skip them too", errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func deref(c *Command) []Command {
	if c == nil {
		return nil
	}
	return []Command{*c}
}

// Path resolves a path of the pipeline file against its directory.
func (p *Pipeline) Path(path string) string {
	if path == "" || filepath.IsAbs(path) || p.Dir == "" {
		return path
	}
	return filepath.Join(p.Dir, path)
}

// friendly rewrites yaml.v3's "field x not found in type pipeline.Test" as "unknown field x in test".
func friendly(msg string) string {
	const marker = " not found in type pipeline."
	i := strings.Index(msg, marker)
	if i < 0 {
		return msg
	}
	typ := msg[i+len(marker):]
	where := map[string]string{"Pipeline": "the pipeline", "Build": "build", "Test": "test", "HTTPCheck": "test.http",
		"Command": "a test command", "Beside": "test.beside", "Scan": "scan", "Optimize": "optimize", "Push": "push",
		"Sign": "sign", "Deploy": "deploy"}[typ]
	if where == "" {
		where = typ
	}
	return strings.Replace(msg[:i], "field ", "unknown field ", 1) + " in " + where
}
