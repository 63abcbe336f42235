// Package build builds container images from Dockerfiles with BuildKit.
//
// [Build] talks to the BuildKit that a Docker engine embeds, over the engine's own API socket: the BuildKit
// control API is a gRPC connection hijacked from the engine's /grpc endpoint, and the build session (the
// context files, secrets and registry credentials that BuildKit pulls from the client) runs over /session. This
// is what buildx's docker driver does, and it works with Docker 20.10 and later without any buildx plugin. The
// result is exported with the engine's "moby" exporter, so the image lands in the engine's image store and its
// local images resolve as FROM bases without a pull.
//
// With [Options.Builder] set, [Build] talks to a standalone buildkitd instead ("unix://…", "tcp://…"), which
// has no image store: [Options.Output] pushes the image to a registry or writes it as an OCI or Docker tarball.
// [Options.CacheFrom] and [Options.CacheTo] import and export the build cache in buildx's syntax; Docker
// 20.10's BuildKit exports only "type=inline" but imports from a registry.
//
// The package is silent: build progress is data, delivered to [Options.Progress] as [Event] values, and a failing
// step comes back as a [*StepError] naming the instruction, its Dockerfile line and the tail of its output.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/name"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/tonistiigi/fsutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry"
)

// Options configures one build. The zero value builds ./Dockerfile with the current directory as the context
// and leaves the image untagged.
type Options struct {
	// DockerfilePath is the Dockerfile, relative to ContextPath unless absolute. Empty means "Dockerfile".
	DockerfilePath string
	// ContextPath is the build context directory. Empty means ".". Files matched by its .dockerignore are not
	// sent to the builder.
	ContextPath string
	// BuildArgs set the Dockerfile's ARGs.
	BuildArgs map[string]string
	// Target is the stage to build in a multi-stage Dockerfile. Empty means the last stage.
	Target string
	// Labels are added to the image's configuration.
	Labels map[string]string
	// NoCache rebuilds every step instead of reusing the build cache.
	NoCache bool
	// Pull resolves FROM images in the registry even when the engine holds them.
	Pull bool
	// Tags name the built image in the engine's store ("registry/repo:tag"). Without tags the image is known
	// only by its ID.
	Tags []string
	// Secrets maps a secret id to the file holding its value, for RUN --mount=type=secret,id=ID. Secrets are
	// readable during the step only and never stored in the image.
	Secrets map[string]string
	// Platform is the target platform ("linux/amd64"). Empty means the builder's own.
	Platform string
	// Progress, when set, receives the build's events in order, on the goroutine that called Build.
	Progress func(Event)
	// Logger receives debug records. Nil discards them.
	Logger *slog.Logger

	// Builder is the address of a standalone buildkitd ("unix:///run/buildkit/buildkitd.sock",
	// "tcp://builder:1234"). Empty means the engine's BuildKit, and the image goes to the engine's store.
	Builder string
	// Output is where a build on Builder puts the image, which has no engine to land in: [OutputRegistry]
	// pushes it to its Tags; "oci:PATH" and "docker:PATH" write an OCI layout or a `docker load` tarball.
	// It must be empty for the engine's BuildKit.
	Output string
	// CacheFrom and CacheTo import and export the build cache, in buildx's syntax: "type=registry,ref=IMAGE",
	// "type=local,src=DIR" (from) and "type=local,dest=DIR" (to), with the exporter's other keys ("mode=max").
	CacheFrom, CacheTo []string
}

// Result describes a finished build.
type Result struct {
	// ImageID is the image's ID in the engine ("sha256:…", the digest of its configuration).
	ImageID string
	// Tags are the names the image was stored under.
	Tags []string
	// Duration is the wall time of the build.
	Duration time.Duration
	// Steps counts the build's vertices that completed; CacheHits counts those served from the build cache.
	Steps, CacheHits int
	// Source is where the built image can be read from, in the registry package's source forms: its first tag
	// (or ID) in the engine's store, "docker://TAG" when a remote build pushed it, "oci:PATH" or
	// "docker-archive:PATH" when it wrote a file.
	Source string
}

// source is where the image of a build with opts, stored as id, can be read from (see [Result.Source]).
func source(opts Options, id string) string {
	switch out := opts.Output; {
	case opts.Builder == "":
		if len(opts.Tags) > 0 {
			return opts.Tags[0]
		}
		return id
	case out == OutputRegistry:
		return registry.SourceRemote + opts.Tags[0]
	case strings.HasPrefix(out, OutputOCIPrefix):
		return out
	case strings.HasPrefix(out, OutputDockerPrefix):
		return registry.SourceArchive + strings.TrimPrefix(out, OutputDockerPrefix)
	}
	return id
}

// request is Options resolved and checked.
type request struct {
	contextDir    string
	dockerfileDir string
	dockerfile    string // base name in dockerfileDir
	opts          Options
	log           *slog.Logger
	cacheFrom     []bkclient.CacheOptionsEntry
	cacheTo       []bkclient.CacheOptionsEntry
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// resolve checks the options before anything is sent to the engine.
func resolve(opts Options) (*request, error) {
	ctxPath := opts.ContextPath
	if ctxPath == "" {
		ctxPath = "."
	}
	ctxDir, err := filepath.Abs(ctxPath)
	if err != nil {
		return nil, invalid("build context %q: %v", ctxPath, err)
	}
	if st, err := os.Stat(ctxDir); err != nil {
		return nil, invalid("build context %q: %v", ctxPath, err)
	} else if !st.IsDir() {
		return nil, invalid("build context %q is not a directory", ctxPath)
	}
	df := opts.DockerfilePath
	if df == "" {
		df = "Dockerfile"
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(ctxDir, df)
	}
	if st, err := os.Stat(df); err != nil {
		return nil, invalid("dockerfile %q: %v", opts.DockerfilePath, err)
	} else if !st.Mode().IsRegular() {
		return nil, invalid("dockerfile %q is not a regular file", df)
	}
	for _, t := range opts.Tags {
		// The exporter takes the tags comma-joined, so a comma is refused with the other malformed names.
		if _, err := name.NewTag(t); err != nil || strings.Contains(t, ",") {
			return nil, invalid("tag %q is not an image name", t)
		}
	}
	for id, path := range opts.Secrets {
		if id == "" {
			return nil, invalid("secret with an empty id")
		}
		if _, err := os.Stat(path); err != nil {
			return nil, invalid("secret %q: %v", id, err)
		}
	}
	if err := checkRemote(opts); err != nil {
		return nil, err
	}
	cacheFrom, err := parseCache("cache-from", opts.CacheFrom, "src")
	if err != nil {
		return nil, err
	}
	cacheTo, err := parseCache("cache-to", opts.CacheTo, "dest")
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &request{contextDir: ctxDir, dockerfileDir: filepath.Dir(df), dockerfile: filepath.Base(df), opts: opts, log: log,
		cacheFrom: cacheFrom, cacheTo: cacheTo}, nil
}

// frontendAttrs are the dockerfile.v0 frontend's options for the build.
func (r *request) frontendAttrs() map[string]string {
	attrs := map[string]string{"filename": r.dockerfile}
	if r.opts.Target != "" {
		attrs["target"] = r.opts.Target
	}
	for k, v := range r.opts.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	for k, v := range r.opts.Labels {
		attrs["label:"+k] = v
	}
	if r.opts.NoCache {
		attrs["no-cache"] = ""
	}
	if r.opts.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	if r.opts.Platform != "" {
		attrs["platform"] = r.opts.Platform
	}
	return attrs
}

// attachables are the session services the builder may call back: registry credentials from the Docker
// configuration (for FROM of private images) and the build's secrets.
func (r *request) attachables() ([]session.Attachable, error) {
	cfg := config.LoadDefaultConfigFile(io.Discard)
	atts := []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(cfg),
	})}
	if len(r.opts.Secrets) > 0 {
		var srcs []secretsprovider.Source
		for _, id := range slices.Sorted(maps.Keys(r.opts.Secrets)) {
			srcs = append(srcs, secretsprovider.Source{ID: id, FilePath: r.opts.Secrets[id]})
		}
		store, err := secretsprovider.NewStore(srcs)
		if err != nil {
			return nil, invalid("secrets: %v", err)
		}
		atts = append(atts, secretsprovider.NewSecretProvider(store))
	}
	return atts, nil
}

// connect opens a BuildKit client over the engine's hijacked /grpc and /session endpoints and checks that
// BuildKit answers. The check is ListWorkers: old engines answer Info with Unimplemented, so a call every
// version serves tells a missing BuildKit from a build that fails later.
func connect(ctx context.Context, eng *engine.Client) (*bkclient.Client, error) {
	api := eng.API()
	c, err := bkclient.New(ctx, "",
		bkclient.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return api.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		bkclient.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return api.DialHijack(ctx, "/session", proto, meta)
		}),
	)
	if err != nil {
		return nil, unavailable(eng, err)
	}
	if _, err := c.ListWorkers(ctx); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unavailable(eng, err)
	}
	return c, nil
}

func unavailable(eng *engine.Client, err error) error {
	return fmt.Errorf("%w: the engine at %s offers no BuildKit builder; it answered: %v",
		errdefs.ErrUnavailable, eng.Host(), err)
}

// Build builds the image that opts describe with the engine's BuildKit and stores it in the engine's images, or,
// when [Options.Builder] is set, with that buildkitd and puts the image where [Options.Output] says (eng may
// then be nil).
// Bad options fail with [errdefs.ErrInvalidArgument] before the engine is called; an engine without BuildKit
// builds on the engine's classic builder instead (secrets, cache import and export and RUN --mount need
// BuildKit), and one with neither fails with [errdefs.ErrUnavailable]; a failing Dockerfile step returns an error
// that wraps a [*StepError].
func Build(ctx context.Context, eng *engine.Client, opts Options) (*Result, error) {
	start := time.Now()
	req, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	atts, err := req.attachables()
	if err != nil {
		return nil, err
	}
	contextFS, err := fsutil.NewFS(req.contextDir)
	if err != nil {
		return nil, invalid("build context: %v", err)
	}
	dockerfileFS, err := fsutil.NewFS(req.dockerfileDir)
	if err != nil {
		return nil, invalid("dockerfile directory: %v", err)
	}

	c, err := req.dial(ctx, eng)
	if err != nil && opts.Builder == "" && errors.Is(err, errdefs.ErrUnavailable) && ctx.Err() == nil {
		// The engine answers but offers no BuildKit: its classic builder is the fallback, chosen by that answer.
		res, cerr := req.classicBuild(ctx, eng, start)
		var se *StepError
		if cerr == nil || errors.As(cerr, &se) || errors.Is(cerr, errdefs.ErrUnavailable) {
			return res, cerr
		}
		return nil, fmt.Errorf("%w; and its classic builder failed too: %v", err, cerr)
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()

	solveOpt := bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: req.frontendAttrs(),
		LocalMounts:   map[string]fsutil.FS{"context": contextFS, "dockerfile": dockerfileFS},
		Session:       atts,
		Exports:       req.exports(),
		CacheImports:  req.cacheFrom,
		CacheExports:  req.cacheTo,
	}
	req.log.Debug("building", "context", req.contextDir, "dockerfile", filepath.Join(req.dockerfileDir, req.dockerfile),
		"tags", opts.Tags, "builder", opts.Builder, "output", opts.Output)

	tr := newTracker(opts.Progress)
	ch := make(chan *bkclient.SolveStatus)
	var resp *bkclient.SolveResponse
	var solveErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, solveErr = c.Solve(ctx, nil, solveOpt, ch) // closes ch when it returns
	}()
	for st := range ch {
		tr.update(st)
	}
	<-done
	tr.flush()
	if solveErr != nil {
		return nil, req.failure(ctx, tr, solveErr)
	}

	res := &Result{
		ImageID:   imageID(resp.ExporterResponse),
		Tags:      slices.Clone(opts.Tags),
		Duration:  time.Since(start),
		Steps:     tr.completed,
		CacheHits: tr.cached,
	}
	res.Source = source(opts, res.ImageID)
	req.log.Debug("built", "image", res.ImageID, "steps", res.Steps, "cached", res.CacheHits, "exporter", resp.ExporterResponse)
	return res, nil
}

// imageID reads the image ID from the moby exporter's response. Docker 20.10 puts the image ID (the config
// digest) in containerimage.digest; later engines also send containerimage.config.digest, which is preferred.
func imageID(resp map[string]string) string {
	if id := resp["containerimage.config.digest"]; id != "" {
		return id
	}
	return resp["containerimage.digest"]
}

// failure turns a Solve error into the package's errors.
func (r *request) failure(ctx context.Context, tr *tracker, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("building: %w", errors.Join(ctx.Err(), err))
	}
	if status.Code(err) == codes.Unavailable {
		// The connection to the builder broke mid-build: buildkitd (or the engine) went away.
		where := r.opts.Builder
		if where == "" {
			where = "the engine's BuildKit"
		}
		return fmt.Errorf("building %s: %w: the builder (%s) went away mid-build: %v", r.dockerfile, errdefs.ErrUnavailable, where, err)
	}
	if se := r.stepError(tr, err); se != nil {
		return fmt.Errorf("building %s: %w", r.dockerfile, se)
	}
	return fmt.Errorf("building %s: %w", r.dockerfile, err)
}
