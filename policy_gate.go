package containerization

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/scan"
	"github.com/codomyrmex/containerization/signature"
)

// gateImage is an image at a gate: how it was named, where it is read from to scan it, and its scan when the
// caller has one already.
type gateImage struct {
	ref    string // as it was named
	source string // what a scan reads; empty means ref
	digest string
	scan   *SecurityScanResult
	// registry are the options to read it from a registry with (credentials, CA), when it is read from one.
	registry *RegistryOptions
	// subject, when set, is the image's digest in its registry, where a scan attached to it is looked for first.
	subject *name.Digest
	ropts   registry.Options
	ep      registry.Endpoint
	// signed is where its signatures are verified when the policy requires them (the create and apply gates, and a
	// copy's source); nil at the gates where the image is not in a registry yet.
	signed *signedTarget
}

// policyFor is the policy a call is held to: its options', else the client's.
func (c *Client) policyFor(p *policy.Policy) *policy.Policy { return cmp.Or(p, c.cfg.Policy) }

// holdToPolicy evaluates pol at gate, scanning the images the policy needs a scan of and that have none. Without
// a policy, or with the gate off, the verdict is nil. The error is the refusal (a *policy.Error) when the gate
// enforces, or why the facts could not be gathered.
func (c *Client) holdToPolicy(ctx context.Context, gate string, pol *policy.Policy, eng *engine.Client, images []gateImage, containers []policy.Container) (*policy.Verdict, error) {
	if pol == nil || pol.Mode(gate) == policy.Off {
		return nil, nil
	}
	var pims []policy.Image
	for _, im := range images {
		if im.digest == "" && eng != nil {
			im.digest = engineDigest(ctx, eng, cmp.Or(im.source, im.ref))
		}
		source := ""
		if im.scan == nil && pol.NeedsScan() && im.subject == nil && eng != nil {
			// An engine image that is also in a registry (its repository digest, or the same configuration where
			// its name points): the scans attached to it there may do. A registry that does not answer in time
			// leaves the gate to scan.
			t := im.signed
			if t == nil {
				tctx, cancel := context.WithTimeout(ctx, twinTimeout)
				t, _ = c.engineSignedTarget(tctx, eng, im.ref, cmp.Or(im.source, im.ref))
				cancel()
			}
			if t != nil && t.unverifiable == "" {
				s := t.subject
				im.subject, im.ropts, im.ep = &s, t.opts.Registry, t.opts.Endpoint
			}
		}
		if im.scan == nil && pol.NeedsScan() && im.subject != nil {
			if im.scan = c.attachedScan(ctx, pol, *im.subject, im.ropts, im.ep); im.scan != nil {
				source = "attached " + im.scan.Evidence.Digest
			}
		}
		if im.scan == nil && pol.NeedsScan() {
			res, err := c.scanForPolicy(ctx, cmp.Or(im.source, im.ref), eng, im.registry)
			if err != nil {
				return nil, fmt.Errorf("scanning %s for the policy: %w", im.ref, err)
			}
			im.scan, source = res, "scanned"
		}
		var sigs *policy.SignatureCheck
		if pol.NeedsSignatures() && im.signed != nil {
			var err error
			if sigs, err = checkSignatures(ctx, pol, im.signed); err != nil {
				return nil, err
			}
			if im.signed.unverifiable == "" {
				im.digest = im.signed.subject.DigestStr() // the verdict names the image by the digest verified
			}
		}
		pims = append(pims, policy.Image{Reference: im.ref, Digest: im.digest, Scan: policyScan(im.scan), ScanSource: source, Signatures: sigs})
	}
	v := pol.Evaluate(gate, pims, containers, time.Now())
	return v, v.Err()
}

// scanForPolicy scans an image as the gates do: full when the advisory database is there, compliance only when
// it is not (the policy then refuses what needs vulnerabilities, saying why).
func (c *Client) scanForPolicy(ctx context.Context, ref string, eng *engine.Client, ro *RegistryOptions) (*SecurityScanResult, error) {
	so := c.cfg.PolicyScan
	if eng != nil {
		so.Engine = eng
	}
	if ro != nil {
		so.Registry = *ro
		so.Registry.Progress, so.Registry.Policy = nil, nil
	}
	res, err := c.ScanContainerSecurity(ctx, ref, "full", so)
	if res == nil && errors.Is(err, scan.ErrNoDatabase) {
		res, err = c.ScanContainerSecurity(ctx, ref, "compliance", so)
	}
	if res == nil {
		return nil, err
	}
	return res, nil
}

// policyScan is what the policy reads of a scan: every finding, those the scan's own ignore rules matched too
// (the policy's ignores are the ones that count at a gate).
func policyScan(res *SecurityScanResult) *policy.Scan {
	if res == nil {
		return nil
	}
	s := &policy.Scan{Time: res.ScanTimestamp, ComplianceScore: res.ComplianceScore,
		Vulnerabilities: res.Database != nil && res.ScanType != "compliance"}
	for _, list := range [][]Vulnerability{res.Vulnerabilities, res.Ignored} {
		for _, v := range list {
			s.Findings = append(s.Findings, policy.Finding{ID: cmp.Or(v.ID, v.CVEID), Aliases: append([]string{v.CVEID}, v.Aliases...),
				Severity: v.Severity, Package: v.Package, SourcePackage: v.SourcePackage, Version: v.Version, FixedVersion: v.FixedVersion})
		}
	}
	return s
}

// engineDigest is the digest the engine knows an image by: its repository digest when it was pushed or pulled,
// else its ID; empty when the engine does not have it.
func engineDigest(ctx context.Context, eng *engine.Client, ref string) string {
	ins, err := eng.API().ImageInspect(ctx, ref)
	if err != nil {
		return ""
	}
	for _, rd := range ins.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok {
			return d
		}
	}
	return ins.ID
}

// PolicyVerdict returns the verdict of a policy refusal in err's chain, or nil.
func PolicyVerdict(err error) *policy.Verdict {
	var pe *policy.Error
	if errors.As(err, &pe) {
		return pe.Verdict
	}
	return nil
}

// containerGate holds a container about to be created (from config) or started (as the engine has it) and its
// image to the policy at the create gate.
func (c *Client) containerGate(ctx context.Context, pol *policy.Policy, eng *engine.Client, operation, name string, config *ContainerConfig) (*policy.Verdict, error) {
	var facts policy.Container
	var img gateImage
	if operation == OpCreate {
		hostPaths, err := config.HostPaths()
		if err != nil {
			return nil, err
		}
		facts = policy.Container{Name: cmp.Or(name, config.Name), Image: config.Image, CPU: config.Resources.CPULimit != "",
			Memory: config.Resources.MemoryLimit != "", Pids: config.PidsLimit > 0 || config.Hardened, Privileged: config.Privileged,
			HostNetwork: slices.Contains(config.Networks, "host"), HostPaths: hostPaths, User: config.User}
		if ok, err := eng.ImageExists(ctx, config.Image); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%w: image %s is not in the engine: the policy checks it before a container of it is created", ErrNotFound, config.Image)
		}
		ins, err := eng.API().ImageInspect(ctx, config.Image)
		if err != nil {
			return nil, fmt.Errorf("%w: inspecting %s: %v", ErrUnavailable, config.Image, err)
		}
		if ins.Config != nil && facts.User == "" {
			facts.User = ins.Config.User
		}
		img = gateImage{ref: config.Image}
		if pol.NeedsSignatures() {
			if img.signed, err = c.engineSignedTarget(ctx, eng, config.Image, config.Image); err != nil {
				return nil, err
			}
		}
	} else {
		d, err := eng.Details(ctx, name)
		if err != nil {
			return nil, err
		}
		facts = policy.Container{Name: strings.TrimPrefix(d.Name, "/"), Image: d.Image, User: d.User, Privileged: d.Privileged,
			CPU: d.NanoCPUs > 0, Memory: d.MemoryLimitBytes > 0, Pids: d.PidsLimit > 0, HostNetwork: d.NetworkMode == "host"}
		for _, m := range d.Mounts {
			if m.Type == "bind" {
				facts.HostPaths = append(facts.HostPaths, m.Source)
			}
		}
		// The image it was created from, by ID: its tag may have moved since.
		img = gateImage{ref: d.Image, source: d.ImageID, digest: engineDigest(ctx, eng, d.ImageID)}
		if pol.NeedsSignatures() {
			if img.signed, err = c.engineSignedTarget(ctx, eng, d.Image, d.ImageID); err != nil {
				return nil, err
			}
		}
	}
	return c.holdToPolicy(ctx, policy.GateCreate, pol, eng, []gateImage{img}, []policy.Container{facts})
}

// maxApplyImages bounds the images one apply may make the gate resolve and scan; maxImageConfig the image
// configuration read to learn its USER (a registry's declared size is not a bound).
const (
	maxApplyImages = 200
	maxImageConfig = 16 << 20
)

// applyGate is the apply gate: every image the manifests run is resolved to its digest in its registry, held
// to the policy with the pod specs, and pinned to that digest when asked. The verdict goes to *verdict.
func (c *Client) applyGate(pol *policy.Policy, opts KubernetesOptions, verdict **policy.Verdict) kube.Gate {
	return func(ctx context.Context, containers []kube.PodContainer) (map[string]string, error) {
		if pol.Mode(policy.GateApply) == policy.Off && !opts.PinDigests {
			return nil, nil
		}
		refs := map[string]*resolvedImage{}
		var order []string
		for _, pc := range containers {
			img := strings.TrimSpace(pc.Image)
			if img == "" || refs[img] != nil {
				continue
			}
			if len(refs) == maxApplyImages {
				return nil, fmt.Errorf("%w: the manifests run more than %d images: the gate resolves at most that many", ErrInvalidArgument, maxApplyImages)
			}
			r, err := c.resolveImage(ctx, img, opts.Registry)
			if err != nil {
				return nil, fmt.Errorf("the policy needs %s's digest: %w", img, err)
			}
			refs[img], order = r, append(order, img)
		}
		var images []gateImage
		for _, img := range order {
			r := refs[img]
			images = append(images, gateImage{ref: img, source: r.source, digest: r.digest, registry: &opts.Registry,
				subject: &r.subject, ropts: r.ropts, ep: r.ep,
				signed: &signedTarget{subject: r.subject, opts: signature.Options{Registry: r.ropts, Endpoint: r.ep}}})
		}
		var facts []policy.Container
		for _, pc := range containers {
			r := refs[strings.TrimSpace(pc.Image)]
			f := policy.Container{Name: pc.Object + "/" + pc.Container, Image: pc.Image, Privileged: pc.Privileged,
				CPU: pc.CPULimit, Memory: pc.MemoryLimit, HostNetwork: pc.HostNetwork, HostPaths: pc.HostPaths,
				Pids: true} // a pod spec has no process limit of its own: the node's applies
			switch {
			case pc.RunAsNonRoot != nil && *pc.RunAsNonRoot:
				f.User = "nonroot" // the kubelet refuses to start it as root
			case pc.RunAsUser != nil:
				f.User = fmt.Sprint(*pc.RunAsUser)
			case r != nil:
				f.User = r.user // the image's own USER
			}
			facts = append(facts, f)
		}
		var v *policy.Verdict
		var err error
		if pol != nil {
			v, err = c.holdToPolicy(ctx, policy.GateApply, pol, nil, images, facts)
			*verdict = v
			if err != nil {
				return nil, err
			}
		}
		if !opts.PinDigests {
			return nil, nil
		}
		pins := map[string]string{}
		for img, r := range refs {
			pins[img] = r.pinned
		}
		return pins, nil
	}
}

// resolvedImage is an image of the manifests as its registry has it: the reference pinned to its digest, the
// digest, where a scan reads it, and the user its configuration runs as.
type resolvedImage struct {
	pinned, digest, source, user string
	subject                      name.Digest
	ropts                        registry.Options
	ep                           registry.Endpoint
}

// resolveImage reads an image's digest in its registry, and the user its configuration runs as: ref is pinned
// as it was written (its registry and repository), with the digest instead of the tag.
func (c *Client) resolveImage(ctx context.Context, img string, ro RegistryOptions) (*resolvedImage, error) {
	ref, ep, err := registry.Resolve(img, "", "")
	if err != nil {
		return nil, err
	}
	ropts, err := c.registryOptions(ro, ep.Kind, ro.Credentials, nil)
	if err != nil {
		return nil, err
	}
	// The digest the tag names (an index's, for a multi-platform image: every node then gets its own platform's).
	desc, err := remote.Get(ref, ropts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return nil, registry.Classify(err, ep.Host, ref.String())
	}
	out := &resolvedImage{digest: desc.Digest.String(), subject: ref.Context().Digest(desc.Digest.String()), ropts: ropts, ep: ep}
	if rimg, err := desc.Image(); err == nil {
		// A configuration larger than any real one is not read (its declared size is the registry's word):
		// the user is then not known, and read as root.
		if m, err := rimg.Manifest(); err == nil && m.Config.Size <= maxImageConfig {
			if cf, err := rimg.ConfigFile(); err == nil {
				out.user = cf.Config.User
			}
		}
	}
	written := img
	if i := strings.Index(written, "@"); i >= 0 {
		written = written[:i]
	} else if i := strings.LastIndex(written, ":"); i > strings.LastIndex(written, "/") {
		written = written[:i]
	}
	out.pinned = written + "@" + out.digest
	out.source = registry.SourceRemote + ep.String() + "/" + strings.TrimPrefix(ref.Context().Name(), ref.Context().RegistryStr()+"/") + "@" + out.digest
	return out, nil
}
