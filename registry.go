package containerization

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/registry"
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
	// Tags (push, tag) are more tags for the image.
	Tags []string
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
	// GzipLevel (push) is the gzip level of layers Myrmex compresses itself (an image from the engine or a docker
	// save archive): 1 (fastest; the default when 0) to 9; docker push uses 6.
	GzipLevel int
	// Jobs, Retries and PageSize tune transfers; see [registry.Options].
	Jobs, Retries, PageSize int
	// Progress receives the byte counts of a push, pull or copy as they move (Phase "transfer"), and a last event
	// when the transfer is done; it is called on one goroutine, and not after the operation returns.
	Progress func(Event)
	// Transport is the base HTTP transport (tests put a proxy here).
	Transport http.RoundTripper
	// Engine (push from, pull into) reuses a connected client; else one is opened to Host when needed.
	Engine *engine.Client
	Host   string
	Logger *slog.Logger
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
	// The registry package reports bytes on a channel and closes it once it is called; an operation that fails
	// before that closes it here. The deferred wait returns once the last event was delivered.
	updates, delivered := transferProgress(operation, imageName, opts.Progress)
	defer delivered()
	called := false
	defer func() {
		if !called && updates != nil {
			close(updates)
		}
	}()
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
	if err := (registry.PushOptions{GzipLevel: opts.GzipLevel}).Validate(); err != nil {
		return fail(err)
	}
	kind, err := registry.ParseKind(opts.Type)
	if err != nil {
		return fail(err)
	}
	// Without a registry URL, the registry is the one the reference names: for a push, the destination's if it
	// has one, else the image's; for the rest, the image's (Docker Hub when it names none).
	// An image name may carry the scheme of its registry: "http://127.0.0.1:5000/app:1" is plain HTTP.
	scheme, bare := splitScheme(imageName)
	if registryURL == "" {
		named := imageName
		if operation == RegistryPush && opts.Destination != "" {
			named = opts.Destination
		} else if isLocalSource(imageName) {
			named = ""
		}
		if scheme, rest := splitScheme(named); rest != "" {
			if ref, err := name.ParseReference(rest); err == nil {
				registryURL = scheme + ref.Context().RegistryStr()
			}
		}
	}
	ep, err := registry.ParseEndpoint(registryURL, kind)
	if err != nil {
		return fail(err)
	}
	res.RegistryType = string(ep.Kind)
	if res.RegistryURL == "" {
		res.RegistryURL = ep.Host
		if ep.PlainHTTP {
			res.RegistryURL = "http://" + ep.Host
		}
	}
	ropts, err := opts.registryOptions(ep.Kind, opts.Credentials, updates)
	if err != nil {
		return fail(err)
	}

	var (
		out registry.Result
		ref name.Reference
	)
	if scheme != "" && registryURL != "" && !strings.HasPrefix(registryURL, scheme) && operation != RegistryPush {
		return fail(fmt.Errorf("%w: %s names %s, but the registry URL is %s", ErrInvalidArgument, imageName, scheme, registryURL))
	}
	if bare != "" && operation != RegistryPush {
		if ref, err = registry.Normalize(bare, ep); err != nil {
			return fail(err)
		}
	}
	switch operation {
	case RegistryPush:
		dstName := opts.Destination
		if dstName == "" {
			if isLocalSource(imageName) {
				return fail(fmt.Errorf("%w: pushing %s needs a destination repository and tag", ErrInvalidArgument, imageName))
			}
			dstName = strings.TrimPrefix(imageName, registry.SourceDaemon)
		}
		_, dstName = splitScheme(dstName)
		dst, err := registry.Normalize(dstName, ep)
		if err != nil {
			return fail(err)
		}
		po := registry.PushOptions{Tags: opts.Tags, GzipLevel: opts.GzipLevel}
		if err := po.Validate(); err != nil { // the tags too, before the engine is opened
			return fail(err)
		}
		eng, closeEng, err := c.registryEngine(ctx, opts, imageName)
		if err != nil {
			return fail(err)
		}
		defer closeEng()
		called = true
		out, err = registry.Push(ctx, eng, imageName, dst, ep, po, ropts)
		if err != nil {
			return fail(err)
		}
	case RegistryPull:
		eng, closeEng, err := c.registryEngine(ctx, opts, "")
		if err != nil {
			return fail(err)
		}
		defer closeEng()
		called = true
		if out, err = registry.Pull(ctx, eng, ref, ep, ropts); err != nil {
			return fail(err)
		}
	case RegistryTag:
		called = true
		if out, err = registry.Tag(ctx, ref, opts.Tags, ep, ropts); err != nil {
			return fail(err)
		}
	case RegistryList:
		called = true
		if imageName == "" {
			out, err = registry.Catalog(ctx, ep, ropts)
		} else {
			out, err = registry.ListTags(ctx, ref.Context(), ep, ropts)
		}
		if err != nil {
			return fail(err)
		}
	case RegistryDelete:
		called = true
		if out, err = registry.Delete(ctx, ref, ep, ropts); err != nil {
			return fail(err)
		}
	case RegistryCopy:
		if opts.Destination == "" {
			return fail(fmt.Errorf("%w: copy needs a destination reference", ErrInvalidArgument))
		}
		dkind, err := registry.ParseKind(opts.DestinationType)
		if err != nil {
			return fail(err)
		}
		// "http://host:port/repo:tag" names a plain-HTTP registry: the scheme goes to the endpoint.
		scheme, raw := splitScheme(opts.Destination)
		dref, err := name.ParseReference(raw)
		if err != nil {
			return fail(fmt.Errorf("%w: destination %q: %v", ErrInvalidArgument, opts.Destination, err))
		}
		dep, err := registry.ParseEndpoint(scheme+dref.Context().RegistryStr(), dkind)
		if err != nil {
			return fail(err)
		}
		if dref, err = registry.Normalize(raw, dep); err != nil {
			return fail(err)
		}
		dopts, err := opts.registryOptions(dep.Kind, opts.DestinationCredentials, updates)
		if err != nil {
			return fail(err)
		}
		called = true
		if out, err = registry.Copy(ctx, ref, ep, ropts, dref, dep, dopts); err != nil {
			return fail(err)
		}
	}
	res.Success = true
	res.ImageDigest, res.Reference, res.MediaType = out.Digest, out.Reference, out.MediaType
	res.Tags, res.Repositories = out.Tags, out.Repositories
	res.SizeMB = float64(out.Size) / (1 << 20)
	return res, nil
}

// splitScheme splits "http://host/repo:tag" into its scheme ("http://") and the reference.
func splitScheme(s string) (scheme, rest string) {
	for _, p := range []string{"http://", "https://"} {
		if strings.HasPrefix(s, p) {
			return p, strings.TrimPrefix(s, p)
		}
	}
	return "", s
}

func isLocalSource(s string) bool {
	return strings.HasPrefix(s, registry.SourceOCI) || strings.HasPrefix(s, registry.SourceArchive)
}

func (o RegistryOptions) registryOptions(kind registry.Kind, creds RegistryCredentials, progress chan v1.Update) (registry.Options, error) {
	ro := registry.Options{
		Kind: kind, Keychain: o.Keychain, Transport: o.Transport, Jobs: o.Jobs, Retries: o.Retries,
		PageSize: o.PageSize, Progress: progress, Logger: o.Logger,
	}
	if creds.Username != "" || creds.Password != "" || creds.Token != "" {
		ro.Auth = &authn.AuthConfig{Username: creds.Username, Password: string(creds.Password), RegistryToken: string(creds.Token)}
	}
	if o.CAFile != "" {
		pool, err := registry.LoadCAFile(o.CAFile)
		if err != nil {
			return ro, err
		}
		ro.RootCAs = pool
	}
	if o.Platform != "" {
		p, err := v1.ParsePlatform(o.Platform)
		if err == nil && (p.OS == "" || p.Architecture == "") {
			err = fmt.Errorf("want OS/ARCH[/VARIANT]")
		}
		if err != nil {
			return ro, fmt.Errorf("%w: platform %q: %v", ErrInvalidArgument, o.Platform, err)
		}
		ro.Platform = p
	}
	return ro, nil
}

// registryEngine returns the engine push and pull need (none for a push from a layout or archive).
func (c *Client) registryEngine(ctx context.Context, o RegistryOptions, source string) (registry.Engine, func(), error) {
	if isLocalSource(source) {
		return nil, func() {}, nil
	}
	eng, err := c.engineFor(ctx, o.Engine)
	if err != nil {
		return nil, nil, err
	}
	return eng, func() {}, nil
}
