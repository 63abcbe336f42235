package containerization

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/signature"
)

// SignOptions are the parameters of [Client.SignImage]. A key is required.
type SignOptions struct {
	// Key is the private key's PEM file: cosign's encrypted key (cosign.key, or what `myrmex key generate` wrote),
	// or an unencrypted PKCS #8, EC or RSA private key.
	Key string
	// Password decrypts an encrypted key (the CLI reads it from MYRMEX_KEY_PASSWORD, else COSIGN_PASSWORD).
	Password []byte
	// Annotations go into the signed payload, as `cosign sign -a key=value` puts them.
	Annotations map[string]string
	// Registry reaches the image's registry: type, credentials, CA file, transport.
	Registry RegistryOptions
}

// VerifyOptions are the parameters of [Client.VerifyImage]. At least one key is required.
type VerifyOptions struct {
	// Keys are the public keys accepted, each a PKIX PEM file (cosign.pub) or the PEM text itself: a signature by
	// any one of them, over a payload naming the image's digest, verifies the image.
	Keys []string
	// Registry reaches the image's registry.
	Registry RegistryOptions
}

// SignImage signs an image in its registry with a local key, in cosign's format, offline (no transparency log):
// imageName (repo:tag, repo@sha256:…, http://host:port/repo:tag for a plain-HTTP registry) is resolved to the
// manifest digest its tag names there (an index's, for a multi-platform image, as cosign does), and the signature
// is appended to the image's signatures (the tag sha256-<hex>.sig). `cosign verify --key` accepts it.
//
// Errors are *[RegistryError] (Op "sign") wrapping ErrInvalidArgument (a bad key, password or reference, before
// anything is sent), ErrNotFound (no such image), ErrConflict (other signers kept replacing the signatures), or
// the registry's failure.
func (c *Client) SignImage(ctx context.Context, imageName string, opts SignOptions) (*signature.Signed, error) {
	fail := func(err error) (*signature.Signed, error) {
		return nil, &RegistryError{Op: "sign", Image: imageName, Err: err}
	}
	if opts.Key == "" {
		return fail(fmt.Errorf("%w: signing needs a private key", ErrInvalidArgument))
	}
	data, err := signature.ReadKeyFile(opts.Key)
	if err != nil {
		return fail(err)
	}
	signer, err := signature.ParsePrivateKey(data, opts.Password)
	if err != nil {
		return fail(err)
	}
	digest, sopts, err := c.signatureTarget(ctx, imageName, opts.Registry)
	if err != nil {
		return fail(err)
	}
	sopts.Annotations = opts.Annotations
	res, err := signature.Sign(ctx, digest, signer, sopts)
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// VerifyImage verifies an image's signatures in its registry against public keys, as `cosign verify --key
// --insecure-ignore-tlog` does: imageName is resolved to its digest there, and at least one signature must be by
// one of the keys over a payload naming that digest. The result lists the signatures accepted and why the others
// were not.
//
// Errors are *[RegistryError] (Op "verify") wrapping ErrInvalidArgument (a bad key or reference, before anything
// is sent), ErrPolicyViolation (unsigned, signed by other keys only, or a payload for another image: a
// *signature.Error, and the result says which signatures were refused), ErrNotFound (no such image), or the
// registry's failure.
func (c *Client) VerifyImage(ctx context.Context, imageName string, opts VerifyOptions) (*signature.Verification, error) {
	fail := func(res *signature.Verification, err error) (*signature.Verification, error) {
		return res, &RegistryError{Op: "verify", Image: imageName, Err: err}
	}
	keys, err := readKeys(opts.Keys, "")
	if err != nil {
		return fail(nil, err)
	}
	digest, sopts, err := c.signatureTarget(ctx, imageName, opts.Registry)
	if err != nil {
		return fail(nil, err)
	}
	res, err := signature.Verify(ctx, digest, keys, sopts)
	if err != nil {
		return fail(res, err)
	}
	return res, nil
}

// readKeys reads public keys given as files (relative to dir, when set) or PEM text.
func readKeys(list []string, dir string) ([]*signature.Key, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: verifying needs at least one public key", ErrInvalidArgument)
	}
	var keys []*signature.Key
	for _, k := range list {
		key, err := signature.ReadPublicKey(k, dir)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// signatureTarget resolves imageName to the manifest digest its tag names in its registry, with the options to
// reach that registry.
func (c *Client) signatureTarget(ctx context.Context, imageName string, ro RegistryOptions) (name.Digest, signature.Options, error) {
	digest, ropts, ep, err := c.resolveDigest(ctx, imageName, ro)
	return digest, signature.Options{Registry: ropts, Endpoint: ep}, err
}

// resolveDigest is imageName in its registry by digest: as written when it names one, else the digest its tag
// names (by a HEAD request), with the options to reach that registry.
func (c *Client) resolveDigest(ctx context.Context, imageName string, ro RegistryOptions) (name.Digest, registry.Options, registry.Endpoint, error) {
	ref, ep, err := registry.Resolve(strings.TrimPrefix(imageName, registry.SourceRemote), "", registry.Kind(ro.Type))
	if err != nil {
		return name.Digest{}, registry.Options{}, ep, err
	}
	ropts, err := c.registryOptions(ro, ep.Kind, ro.Credentials, nil)
	if err != nil {
		return name.Digest{}, ropts, ep, err
	}
	if d, ok := ref.(name.Digest); ok {
		return d, ropts, ep, nil
	}
	desc, err := remote.Head(ref, ropts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return name.Digest{}, ropts, ep, registry.Classify(err, ep.Host, ref.String())
	}
	return ref.Context().Digest(desc.Digest.String()), ropts, ep, nil
}
