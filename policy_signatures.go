package containerization

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/signature"
)

// signedTarget is where a gate verifies an image's signatures: its digest in its registry, or why it has none.
type signedTarget struct {
	subject      name.Digest
	opts         signature.Options
	unverifiable string // when set, the image has no digest in a registry to verify, and this says so
}

// checkSignatures verifies the image's signatures against the policy's keys. A registry that cannot be asked is
// an error (the gate cannot decide); a missing or refused signature is a fact for the policy.
func checkSignatures(ctx context.Context, pol *policy.Policy, t *signedTarget) (*policy.SignatureCheck, error) {
	if t.unverifiable != "" {
		return &policy.SignatureCheck{Unverifiable: t.unverifiable}, nil
	}
	v, err := signature.Verify(ctx, t.subject, pol.Images.Signatures.PublicKeys(), t.opts)
	var se *signature.Error
	if err != nil && !errors.As(err, &se) {
		return nil, fmt.Errorf("verifying the signatures of %s for the policy: %w", t.subject, err)
	}
	check := &policy.SignatureCheck{Refused: v.Rejected}
	for _, s := range v.Verified {
		if !slices.Contains(check.Signed, s.Key) {
			check.Signed = append(check.Signed, s.Key)
		}
	}
	return check, nil
}

// engineSignedTarget finds the digest in its registry of an image the engine holds (ref as the container names
// it, id the engine's image ID), for the create gate: the engine's repository digest of ref's repository (an
// image docker pulled), else, when ref names a registry, the digest its tag names there if that is the engine's
// image (the same configuration digest: an image myrmex pulled, which the engine loaded without a digest).
// Otherwise the target says why no digest is known.
func (c *Client) engineSignedTarget(ctx context.Context, eng *engine.Client, ref, id string) (*signedTarget, error) {
	ins, err := eng.API().ImageInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: inspecting %s: %v", ErrUnavailable, ref, err)
	}
	named, ep, err := registry.Resolve(ref, "", "")
	if err != nil || isIDOf(ref, ins.ID) {
		return &signedTarget{unverifiable: "the image is named by its ID, not by a reference to a registry: its signatures cannot be verified"}, nil
	}
	ropts, err := c.registryOptions(RegistryOptions{}, ep.Kind, RegistryCredentials{}, nil)
	if err != nil {
		return nil, err
	}
	t := &signedTarget{opts: signature.Options{Registry: ropts, Endpoint: ep}}
	for _, rd := range ins.RepoDigests {
		if d, err := name.NewDigest(rd); err == nil && d.Context().Name() == named.Context().Name() {
			t.subject = d
			return t, nil
		}
	}
	if !namesRegistry(ref) {
		t.unverifiable = "the image is only in the engine (built or loaded here; no digest in a registry): its signatures cannot be verified; push it, sign it and run it from its registry"
		return t, nil
	}
	desc, err := remote.Get(named, ropts.RemoteOptions(ctx, ep)...)
	if err != nil {
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			// A name for local images (myrmex.local/app) rather than a registry.
			t.unverifiable = fmt.Sprintf("the image is only in the engine (no digest in a registry; %s is no registry host anyone knows): its signatures cannot be verified; push it, sign it and run it from its registry", ep.Host)
			return t, nil
		case errors.Is(registry.Classify(err, ep.Host, named.String()), ErrNotFound):
			t.unverifiable = fmt.Sprintf("%s is not in its registry: the engine's image has no digest there whose signatures could be verified", named)
			return t, nil
		}
		return nil, fmt.Errorf("the policy needs %s's digest in its registry: %w", named, registry.Classify(err, ep.Host, named.String()))
	}
	config := ""
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, child := range m.Manifests {
			if child.Platform == nil || child.Platform.OS != ins.Os || child.Platform.Architecture != ins.Architecture {
				continue
			}
			img, err := idx.Image(child.Digest)
			if err == nil {
				if cn, err := img.ConfigName(); err == nil {
					config = cn.String()
				}
			}
			break
		}
	} else if img, err := desc.Image(); err == nil {
		if cn, err := img.ConfigName(); err == nil {
			config = cn.String()
		}
	}
	if config != ins.ID {
		t.unverifiable = fmt.Sprintf("%s names another image in its registry than the engine's (%s): the engine's image has no digest there whose signatures could be verified", named, ins.ID)
		return t, nil
	}
	t.subject = named.Context().Digest(desc.Digest.String())
	return t, nil
}

// isIDOf reports whether ref is id, or a prefix of it of 12 hex digits or more, as the engine reads it.
func isIDOf(ref, id string) bool {
	r := strings.TrimPrefix(ref, "sha256:")
	return len(r) >= 12 && strings.Trim(r, "0123456789abcdef") == "" && strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), r)
}

// namesRegistry reports whether a reference names its registry (its first part has a dot or a port, or is
// localhost), rather than implying Docker Hub.
func namesRegistry(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(first, ".:") || first == "localhost")
}
