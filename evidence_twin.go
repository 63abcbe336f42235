package containerization

import (
	"context"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/registry"
)

// twinTimeout bounds the registry requests a gate makes to find an engine image's twin: past it, the gate scans.
const twinTimeout = 10 * time.Second

// registryTwin finds, for an image the engine holds (local, its ID), the same image in a registry, where scans
// attached to it may stand for a new one: the manifest that ref names (or one of the image's repository
// digests) in its registry, when that manifest's configuration is the engine image's own (the same ID: the same
// layers, the same configuration). An index is not taken: which of its images is this one is the platform's
// word. ok is false when there is none, or the registry cannot be asked within twinTimeout.
func (c *Client) registryTwin(ctx context.Context, eng *engine.Client, ref, local string, ro *RegistryOptions) (subject name.Digest, ropts registry.Options, ep registry.Endpoint, ok bool) {
	if ref == "" || strings.HasPrefix(ref, "sha256:") || registry.IsLocalSource(ref) || strings.HasPrefix(ref, registry.SourceRemote) {
		return subject, ropts, ep, false
	}
	ins, err := eng.API().ImageInspect(ctx, local)
	if err != nil || !strings.HasPrefix(ins.ID, "sha256:") {
		return subject, ropts, ep, false
	}
	ctx, cancel := context.WithTimeout(ctx, twinTimeout)
	defer cancel()
	candidates := append([]string{ref}, ins.RepoDigests...)
	for _, cand := range candidates[:min(len(candidates), 3)] {
		r, e, err := registry.Resolve(cand, "", "")
		if err != nil {
			continue
		}
		opts := RegistryOptions{}
		if ro != nil {
			opts = *ro
		}
		o, err := c.registryOptions(opts, e.Kind, opts.Credentials, nil)
		if err != nil {
			continue
		}
		desc, err := remote.Get(r, o.RemoteOptions(ctx, e)...)
		if err != nil || desc.MediaType.IsIndex() {
			continue
		}
		img, err := desc.Image()
		if err != nil {
			continue
		}
		if cfg, err := img.ConfigName(); err == nil && cfg.String() == ins.ID {
			return r.Context().Digest(desc.Digest.String()), o, e, true
		}
	}
	return subject, ropts, ep, false
}
