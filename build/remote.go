package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	bkclient "github.com/moby/buildkit/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
)

// Output values for a build on a standalone buildkitd (see [Options.Output]).
const (
	// OutputRegistry pushes the image to the registries its tags name.
	OutputRegistry = "registry"
	// OutputOCIPrefix, followed by a path, writes the image as an OCI image layout tarball.
	OutputOCIPrefix = "oci:"
	// OutputDockerPrefix, followed by a path, writes the image as a tarball that `docker load` reads.
	OutputDockerPrefix = "docker:"
)

// remote reports whether the build runs on a standalone buildkitd rather than the engine's BuildKit.
func (r *request) remote() bool { return r.opts.Builder != "" }

// checkRemote checks the options that depend on the builder: a standalone buildkitd has no image store, so its
// image must go somewhere, and the engine's BuildKit stores the image itself.
func checkRemote(opts Options) error {
	if opts.Builder == "" {
		if opts.Output != "" {
			return invalid("output %q needs a standalone builder; the engine's BuildKit stores the image in the engine", opts.Output)
		}
		return nil
	}
	if !strings.HasPrefix(opts.Builder, "unix://") && !strings.HasPrefix(opts.Builder, "tcp://") {
		return invalid("builder %q is not a unix:// or tcp:// address", opts.Builder)
	}
	switch out := opts.Output; {
	case out == OutputRegistry:
		if len(opts.Tags) == 0 {
			return invalid("output %q needs at least one tag to push to", out)
		}
	case strings.HasPrefix(out, OutputOCIPrefix), strings.HasPrefix(out, OutputDockerPrefix):
		if _, path, _ := strings.Cut(out, ":"); path == "" {
			return invalid("output %q names no file", out)
		}
	case out == "":
		return invalid("a build on builder %s needs an output (%q, %q or %q)", opts.Builder,
			OutputRegistry, OutputOCIPrefix+"PATH", OutputDockerPrefix+"PATH")
	default:
		return invalid("output %q is not %q, %q or %q", out, OutputRegistry, OutputOCIPrefix+"PATH", OutputDockerPrefix+"PATH")
	}
	return nil
}

// dial opens the BuildKit client the options name: the engine's, or the standalone buildkitd at Builder.
func (r *request) dial(ctx context.Context, eng *engine.Client) (*bkclient.Client, error) {
	if !r.remote() {
		if eng == nil {
			return nil, invalid("no engine and no builder address")
		}
		return connect(ctx, eng)
	}
	c, err := bkclient.New(ctx, r.opts.Builder)
	if err != nil {
		return nil, fmt.Errorf("%w: buildkitd at %s: %v", errdefs.ErrUnavailable, r.opts.Builder, err)
	}
	// New does not connect; ListWorkers tells an absent daemon from a build that fails later.
	if _, err := c.ListWorkers(ctx); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: buildkitd at %s: %v", errdefs.ErrUnavailable, r.opts.Builder, err)
	}
	return c, nil
}

// exports returns where the built image goes: the engine's image store, or the remote build's Output.
func (r *request) exports() []bkclient.ExportEntry {
	names := strings.Join(r.opts.Tags, ",")
	if !r.remote() {
		e := bkclient.ExportEntry{Type: "moby", Attrs: map[string]string{}}
		if names != "" {
			// Without the attribute the image is stored untagged; an empty name is refused as a reference.
			e.Attrs["name"] = names
		}
		return []bkclient.ExportEntry{e}
	}
	out := r.opts.Output
	if out == OutputRegistry {
		attrs := map[string]string{"name": names, "push": "true"}
		if r.insecure() {
			attrs["registry.insecure"] = "true"
		}
		return []bkclient.ExportEntry{{Type: "image", Attrs: attrs}}
	}
	typ, path, _ := strings.Cut(out, ":")
	e := bkclient.ExportEntry{Type: typ, Attrs: map[string]string{}, Output: func(map[string]string) (io.WriteCloser, error) {
		return os.Create(path)
	}}
	if names != "" {
		e.Attrs["name"] = names
	}
	return []bkclient.ExportEntry{e}
}

// insecure reports whether a tag names a registry that go-containerregistry would reach over plain HTTP
// (localhost, loopback and private addresses, *.local): buildkitd pushes there only when told so.
func (r *request) insecure() bool {
	for _, t := range r.opts.Tags {
		if ref, err := name.NewTag(t); err == nil && ref.Context().Registry.Scheme() == "http" {
			return true
		}
	}
	return false
}
