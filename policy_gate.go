package containerization

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/scan"
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
		if im.scan == nil && pol.NeedsScan() {
			res, err := c.scanForPolicy(ctx, cmp.Or(im.source, im.ref), eng, im.registry)
			if err != nil {
				return nil, fmt.Errorf("scanning %s for the policy: %w", im.ref, err)
			}
			im.scan = res
		}
		pims = append(pims, policy.Image{Reference: im.ref, Digest: im.digest, Scan: policyScan(im.scan)})
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
			Memory: config.Resources.MemoryLimit != "", HostNetwork: slices.Contains(config.Networks, "host"), HostPaths: hostPaths}
		if ok, err := eng.ImageExists(ctx, config.Image); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%w: image %s is not in the engine: the policy checks it before a container of it is created", ErrNotFound, config.Image)
		}
		ins, err := eng.API().ImageInspect(ctx, config.Image)
		if err != nil {
			return nil, fmt.Errorf("%w: inspecting %s: %v", ErrUnavailable, config.Image, err)
		}
		if ins.Config != nil {
			facts.User = ins.Config.User
		}
		img = gateImage{ref: config.Image}
	} else {
		d, err := eng.Details(ctx, name)
		if err != nil {
			return nil, err
		}
		facts = policy.Container{Name: strings.TrimPrefix(d.Name, "/"), Image: d.Image, User: d.User, Privileged: d.Privileged,
			CPU: d.NanoCPUs > 0, Memory: d.MemoryLimitBytes > 0, HostNetwork: d.NetworkMode == "host"}
		for _, m := range d.Mounts {
			if m.Type == "bind" {
				facts.HostPaths = append(facts.HostPaths, m.Source)
			}
		}
		// The image it was created from, by ID: its tag may have moved since.
		img = gateImage{ref: d.Image, source: d.ImageID, digest: engineDigest(ctx, eng, d.ImageID)}
	}
	return c.holdToPolicy(ctx, policy.GateCreate, pol, eng, []gateImage{img}, []policy.Container{facts})
}
