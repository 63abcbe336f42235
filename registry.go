package containerization

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/signature"
)

// The operations of [ManageContainerRegistry]: the specification's five, and copy, which users expect.
const (
	RegistryPush   = "push"
	RegistryPull   = "pull"
	RegistryTag    = "tag"
	RegistryList   = "list"
	RegistryDelete = "delete"
	RegistryCopy   = "copy"
)

// RegistryOperations lists the operations [ManageContainerRegistry] accepts.
var RegistryOperations = []string{RegistryPush, RegistryPull, RegistryTag, RegistryList, RegistryDelete, RegistryCopy}

// RegistryOptions are the operation-specific parameters of [ManageContainerRegistry]. The zero value works.
type RegistryOptions struct {
	// Type is the registry's kind (dockerhub, ecr, acr, gcr, harbor, generic); empty detects it from the URL.
	Type string
	// Credentials for the registry: a username and password, or a token (sent as a bearer registry token).
	// When empty, credentials come from Keychain.
	Credentials RegistryCredentials
	// Keychain resolves credentials per registry when Credentials is empty; nil means the Docker config and its
	// helpers, then the cloud's credential helper (the CLI puts Myrmex's encrypted store first).
	Keychain authn.Keychain
	// PushOptions: Tags (push, tag) are more tags for the image; GzipLevel (push) is the gzip level of layers
	// Myrmex compresses itself (an image from the engine or a docker save archive): 1 (fastest; the default
	// when 0) to 9; docker push uses 6.
	registry.PushOptions
	// Destination (copy) is where the image goes: a full reference, in any registry. For push it replaces the
	// destination repository and tag (default: the image's own, in registryURL).
	Destination string
	// DestinationType and DestinationCredentials (copy) are for the destination registry.
	DestinationType        string
	DestinationCredentials RegistryCredentials
	// CAFile is a PEM bundle of certificate authorities to trust besides the system's.
	CAFile string
	// Platform (pull) selects the image of a multi-platform index: "linux/arm64". Default linux/amd64.
	Platform string
	// PullVia (pull) says how the image reaches the engine: "engine" (the engine pulls it, by the digest Myrmex
	// read), "load" (Myrmex fetches it and loads it), or empty: the engine when it can, else load. See
	// [registry.PullVia].
	PullVia string
	// TagDetails (list of a repository's tags) reads what each tag names: its digest, media type and size, in
	// RegistryResult.TagDetails (for the first registry.MaxTagDetails tags).
	TagDetails bool
	// Jobs, Retries and PageSize tune transfers; see [registry.Options].
	Jobs, Retries, PageSize int
	// Progress receives the byte counts of a push, pull or copy as they move (Phase "transfer"), and a last event
	// when the transfer is done; it is called on one goroutine, and never after the operation returns.
	Progress func(Event)
	// Transport is the base HTTP transport (tests put a proxy here).
	Transport http.RoundTripper
	// Engine (push from, pull into) reuses a connected client; else one is opened to Host when needed.
	Engine *engine.Client
	Host   string
	Logger *slog.Logger
	// Policy (push, copy) is held to the image before it is written instead of the client's (Config.Policy).
	Policy *policy.Policy
	// AttachScan (push) scans the image as the registry holds it once it is written, and attaches the scan
	// to its digest there (the client's PolicyScan options say how it is scanned), for the gates to reuse.
	AttachScan bool
	// CopySignatures (copy) copies the image's signatures (cosign's sha256-<hex>.sig) with it, appending them to
	// those the destination has, as cosign copy does; see docs/signatures.md.
	CopySignatures bool
}

// ManageContainerRegistry runs one registry operation (manage_container_registry):
//
//   - push: imageName is an image in the engine's store (or oci:DIR[:TAG], docker-archive:FILE); it is written to
//     registryURL under its own repository and tag, or under Destination.
//   - pull: imageName is read from registryURL and loaded into the engine.
//   - tag: the image gets opts.Tags in its repository, without moving blobs.
//   - list: the tags of imageName's repository, or, with an empty imageName, the registry's repositories.
//   - delete: imageName by digest (repo@sha256:…) deletes the manifest and its tags; by tag, that tag alone.
//   - copy: imageName in registryURL is copied to Destination, registry to registry, indexes whole.
//
// An empty registryURL means the registry named in imageName, else Docker Hub. "http://host:port" is a plain-HTTP
// registry, in registryURL as in a reference ("http://127.0.0.1:5000/app:1"). The result is never nil; errors are *[RegistryError] wrapping ErrInvalidArgument (refused before any
// request), ErrUnauthorized, ErrNotFound, ErrUnavailable, ErrTLS or ErrNotImplemented (the registry refuses the
// operation, such as a delete where deletes are disabled).
func (c *Client) ManageContainerRegistry(ctx context.Context, operation, imageName, registryURL string, opts RegistryOptions) (*RegistryResult, error) {
	res := &RegistryResult{Operation: operation, ImageName: imageName, RegistryURL: registryURL, Tags: []string{}}
	fail := func(err error) (*RegistryResult, error) {
		res.Success, res.ErrorMessage = false, err.Error()
		return res, &RegistryError{Op: operation, Image: imageName, Registry: res.RegistryURL, Err: err}
	}
	if !slices.Contains(RegistryOperations, operation) {
		return fail(fmt.Errorf("%w: unknown operation %q: want one of %s", ErrInvalidArgument, operation, strings.Join(RegistryOperations, ", ")))
	}
	if imageName == "" && operation != RegistryList {
		return fail(fmt.Errorf("%w: %s needs an image name", ErrInvalidArgument, operation))
	}
	if err := opts.PushOptions.Validate(); err != nil {
		return fail(err)
	}
	// A saved registry's name stands for its URL, type, login and scan-on-push (myrmex registry add).
	url, scanOnPush, named, err := c.namedRegistry(registryURL, &opts)
	if err != nil {
		return fail(err)
	}
	if named {
		registryURL, res.RegistryURL = url, url
		if scanOnPush && operation == RegistryPush {
			opts.AttachScan = true
		}
	}
	kind, err := registry.ParseKind(opts.Type)
	if err != nil {
		return fail(err)
	}
	var (
		ref name.Reference
		ep  registry.Endpoint
	)
	switch {
	case operation == RegistryPush:
		ref, ep, err = registry.ResolvePush(imageName, registryURL, opts.Destination, kind)
	case imageName == "": // the registry's catalog
		ep, err = registry.ParseEndpoint(registryURL, kind)
	default:
		ref, ep, err = registry.Resolve(imageName, registryURL, kind)
	}
	if ep.Host != "" {
		res.RegistryType = string(ep.Kind)
		if res.RegistryURL == "" {
			res.RegistryURL = ep.String()
		}
	}
	if err != nil {
		return fail(err)
	}
	ropts, err := c.registryOptions(opts, ep.Kind, opts.Credentials, transferProgress(operation, imageName, opts.Progress))
	if err != nil {
		return fail(err)
	}

	// The push gate: what goes into a registry is held to the policy first (a copy is a push too).
	if pol := c.policyFor(opts.Policy); pol != nil && (operation == RegistryPush || operation == RegistryCopy) {
		img := gateImage{ref: ref.String(), source: imageName}
		var eng *engine.Client
		if operation == RegistryCopy {
			img.source = registry.SourceRemote + ep.String() + "/" + strings.TrimPrefix(ref.String(), ref.Context().RegistryStr()+"/")
			if opts.Destination != "" {
				img.ref = opts.Destination
			}
			img.registry = &opts
			if pol.NeedsSignatures() {
				// The image copied is verified where it is, by the digest its tag names there.
				desc, herr := remote.Head(ref, ropts.RemoteOptions(ctx, ep)...)
				if herr != nil {
					return fail(registry.Classify(herr, ep.Host, ref.String()))
				}
				img.signed = &signedTarget{subject: ref.Context().Digest(desc.Digest.String()), opts: signature.Options{Registry: ropts, Endpoint: ep}}
			}
		} else if !registry.IsLocalSource(imageName) {
			if eng, err = c.engineFor(ctx, opts.Engine); err != nil {
				return fail(err)
			}
		}
		if res.PolicyVerdict, err = c.holdToPolicy(ctx, policy.GatePush, pol, eng, []gateImage{img}, nil); err != nil {
			return fail(err)
		}
	}

	var out registry.Result
	switch operation {
	case RegistryPush:
		var eng registry.Engine
		if !registry.IsLocalSource(imageName) {
			if eng, err = c.engineFor(ctx, opts.Engine); err != nil {
				return fail(err)
			}
		}
		out, err = registry.Push(ctx, eng, imageName, ref, ep, opts.PushOptions, ropts)
	case RegistryPull:
		var eng *engine.Client
		if eng, err = c.engineFor(ctx, opts.Engine); err != nil {
			return fail(err)
		}
		out, err = registry.Pull(ctx, eng, ref, ep, ropts)
	case RegistryTag:
		out, err = registry.Tag(ctx, ref, opts.Tags, ep, ropts)
	case RegistryList:
		if imageName == "" {
			out, err = registry.Catalog(ctx, ep, ropts)
		} else {
			out, err = registry.ListTags(ctx, ref.Context(), ep, ropts)
		}
	case RegistryDelete:
		out, err = registry.Delete(ctx, ref, ep, ropts)
	case RegistryCopy:
		out, res.SignaturesCopied, err = c.copyImage(ctx, ref, ep, ropts, opts)
	}
	if err != nil {
		return fail(err)
	}
	res.Success = true
	res.ImageDigest, res.Reference, res.MediaType = out.Digest, out.Reference, out.MediaType
	res.Tags, res.Repositories, res.TagDetails, res.Via = out.Tags, out.Repositories, out.Details, out.Via
	res.SizeMB = float64(out.Size) / (1 << 20)
	if opts.AttachScan && operation == RegistryPush {
		so := c.cfg.PolicyScan
		so.Registry, so.Attach = opts, true
		so.marks = verdictMarks(res.PolicyVerdict)
		so.Registry.Progress, so.Registry.Policy = nil, nil
		pushed := registry.SourceRemote + ep.String() + "/" + strings.TrimPrefix(trimDigestRef(out.Reference), hostOf(out.Reference)+"/") + "@" + out.Digest
		sr, err := c.ScanContainerSecurity(ctx, pushed, "full", so)
		if sr == nil || sr.Evidence == nil {
			res.Success = false
			return fail(fmt.Errorf("pushed as %s@%s, but attaching its scan failed: %w", out.Reference, out.Digest, errors.Unwrap(err)))
		}
		res.Evidence = sr.Evidence
	}
	return res, nil
}

// copyImage copies ref to opts.Destination, a reference in any registry ("http://host:port/repo:tag" for a
// plain-HTTP one), with the destination's kind and credentials, and its signatures when asked (how many were
// copied is the second result).
func (c *Client) copyImage(ctx context.Context, ref name.Reference, ep registry.Endpoint, ropts registry.Options, opts RegistryOptions) (registry.Result, int, error) {
	if opts.Destination == "" {
		return registry.Result{}, 0, fmt.Errorf("%w: copy needs a destination reference", ErrInvalidArgument)
	}
	dkind, err := registry.ParseKind(opts.DestinationType)
	if err != nil {
		return registry.Result{}, 0, err
	}
	dref, dep, err := registry.Resolve(opts.Destination, "", dkind)
	if err != nil {
		return registry.Result{}, 0, fmt.Errorf("destination: %w", err)
	}
	dopts, err := c.registryOptions(opts, dep.Kind, opts.DestinationCredentials, ropts.Progress)
	if err != nil {
		return registry.Result{}, 0, err
	}
	ropts.Progress = nil // the bytes are counted where they are written
	out, err := registry.Copy(ctx, ref, ep, ropts, dref, dep, dopts)
	if err != nil || !opts.CopySignatures {
		return out, 0, err
	}
	dopts.Progress = nil
	n, err := signature.Copy(ctx, ref.Context().Digest(out.Digest), signature.Options{Registry: ropts, Endpoint: ep},
		dref.Context().Digest(out.Digest), signature.Options{Registry: dopts, Endpoint: dep})
	if err != nil {
		return out, 0, fmt.Errorf("copied as %s@%s, but copying its signatures failed: %w", out.Reference, out.Digest, err)
	}
	return out, n, nil
}

// registryOptions turns a call's registry options into the registry package's, over the client's transport for
// the CA file and its keychain where the options name none.
func (c *Client) registryOptions(o RegistryOptions, kind registry.Kind, creds RegistryCredentials, progress func(registry.Transfer)) (registry.Options, error) {
	ro := registry.Options{
		Kind: kind, Keychain: o.Keychain, Transport: o.Transport, Jobs: o.Jobs, Retries: o.Retries,
		PageSize: o.PageSize, Progress: progress, Logger: o.Logger, TagDetails: o.TagDetails,
	}
	if ro.Keychain == nil {
		ro.Keychain = c.cfg.Keychain
	}
	if creds.Username != "" || creds.Password != "" || creds.Token != "" {
		ro.Auth = &authn.AuthConfig{Username: creds.Username, Password: string(creds.Password), RegistryToken: string(creds.Token)}
	}
	var err error
	if ro.Transport == nil {
		if ro.Transport, err = c.transport(o.CAFile); err != nil {
			return ro, err
		}
	} else if o.CAFile != "" {
		// A transport of the caller's own: the CA file still has to be readable.
		if _, err = registry.LoadCAFile(o.CAFile); err != nil {
			return ro, err
		}
	}
	if o.Platform != "" {
		if ro.Platform, err = registry.ParsePlatform(o.Platform); err != nil {
			return ro, err
		}
	}
	ro.PullVia = registry.PullVia(o.PullVia)
	if err := ro.PullVia.Validate(); err != nil {
		return ro, err
	}
	return ro, nil
}

// verdictMarks are the annotations that say, on a scan attached at push, what the push gate decided: a policy
// that only warns lets a refused image through, marked.
func verdictMarks(v *policy.Verdict) map[string]string {
	if v == nil {
		return nil
	}
	if v.Allowed {
		return map[string]string{policy.AnnotationVerdict: "allowed"}
	}
	var rules []string
	for _, x := range v.Violations {
		if !slices.Contains(rules, x.Rule) {
			rules = append(rules, x.Rule)
		}
	}
	return map[string]string{policy.AnnotationVerdict: "refused (" + strings.Join(rules, ", ") + ")"}
}
