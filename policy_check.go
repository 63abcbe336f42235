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
	"github.com/codomyrmex/containerization/signature"
)

// CheckPolicyOptions tune [Client.CheckPolicy]. The zero value holds the image to the client's policy at the
// apply gate.
type CheckPolicyOptions struct {
	// Gate is the gate the image is held at: build, push, create, apply (the default) or pipeline. At apply the
	// image is read from its registry, by the digest its tag names there, as the apply gate reads it; at the
	// others it is the engine's, as those gates see it.
	Gate string
	// Policy is held instead of the client's (Config.Policy).
	Policy *policy.Policy
	// Registry has the credentials and CA that read the image from its registry (and scan it there).
	Registry RegistryOptions
	Engine   *engine.Client
	// Scan is the image's scan to judge it on, instead of one attached to its digest or a new one (a report
	// gives the scan it shows, so that the verdict is about the same findings).
	Scan *SecurityScanResult
}

// PolicyGates are the gates a policy holds images at, in the order an image meets them.
var PolicyGates = []string{policy.GateBuild, policy.GatePush, policy.GateCreate, policy.GateApply, policy.GatePipeline}

// Policy returns the policy the client holds at its gates (Config.Policy); nil when there is none.
func (c *Client) Policy() *policy.Policy { return c.cfg.Policy }

// CheckPolicy holds the image imageName to the policy (opts.Policy, else the client's) at a gate as that gate
// would, and changes nothing: it returns the gate's verdict (allowed or not, the violations by rule, the findings
// an ignore accepted, the warnings), also when the image is refused. The image rules are held (its registry, tag,
// signatures and scan); the runtime rules need a container and are not. When the policy needs a scan, the scan
// attached to the image's digest is used, else the image is scanned, and nothing is attached. Without a policy,
// or at a gate the policy turns off, the verdict allows the image, in mode off.
//
// Errors are *[SecurityScanError]s (Op "policy check") saying why the facts could not be gathered: an unknown
// gate or an empty name (ErrInvalidArgument), an image the engine or its registry does not have (ErrNotFound), a
// registry or engine that does not answer.
func (c *Client) CheckPolicy(ctx context.Context, imageName string, opts CheckPolicyOptions) (*policy.Verdict, error) {
	fail := func(err error) (*policy.Verdict, error) {
		return nil, &SecurityScanError{Op: "policy check", Image: imageName, Err: err}
	}
	gate := cmp.Or(opts.Gate, policy.GateApply)
	if !slices.Contains(PolicyGates, gate) {
		return fail(fmt.Errorf("%w: gate %q: want one of %s", ErrInvalidArgument, gate, strings.Join(PolicyGates, ", ")))
	}
	if strings.TrimSpace(imageName) == "" {
		return fail(fmt.Errorf("%w: no image to check", ErrInvalidArgument))
	}
	pol := c.policyFor(opts.Policy)
	if pol.Mode(gate) == policy.Off {
		return pol.Evaluate(gate, nil, nil, time.Now()), nil
	}
	var img gateImage
	var eng *engine.Client
	if gate == policy.GateApply {
		r, err := c.resolveImage(ctx, imageName, opts.Registry)
		if err != nil {
			return fail(err)
		}
		img = gateImage{ref: imageName, source: r.source, digest: r.digest, registry: &opts.Registry, subject: &r.subject,
			ropts: r.ropts, ep: r.ep, signed: &signedTarget{subject: r.subject, opts: signature.Options{Registry: r.ropts, Endpoint: r.ep}}}
	} else {
		var err error
		if eng, err = c.engineFor(ctx, opts.Engine); err != nil {
			return fail(err)
		}
		if ok, err := eng.ImageExists(ctx, imageName); err != nil {
			return fail(err)
		} else if !ok {
			return fail(fmt.Errorf("%w: image %s is not in the engine (the %s gate holds the engine's image; the apply gate reads its registry)", ErrNotFound, imageName, gate))
		}
		img = gateImage{ref: imageName}
		if gate == policy.GateCreate && pol.NeedsSignatures() {
			if img.signed, err = c.engineSignedTarget(ctx, eng, imageName, imageName); err != nil {
				return fail(err)
			}
		}
	}
	img.scan = opts.Scan
	v, err := c.holdToPolicy(ctx, gate, pol, eng, []gateImage{img}, nil)
	var refused *policy.Error
	if errors.As(err, &refused) {
		return v, nil // the refusal is the verdict, which is the answer
	}
	if err != nil {
		return fail(err)
	}
	return v, nil
}
