// Package signature signs image digests with a local key and verifies their signatures, in cosign's format and
// offline (no transparency log, no certificate): what `cosign sign --key` writes, `cosign verify --key` reads, and
// the other way round.
//
// A signature is a simple-signing payload (sigstore's payload.Cosign: the image's manifest digest and its
// repository) signed with the key, stored as cosign stores it: in the image's repository, under the tag
// sha256-<hex>.sig, an OCI manifest with one layer per signature, of media type [PayloadMediaType], the
// signature in base64 in its [AnnotationSignature] annotation. Signing again with another key appends a layer.
//
// Keys are cosign's: [GenerateKeyPair] writes an ECDSA P-256 key pair (the private key encrypted as cosign's
// "ENCRYPTED SIGSTORE PRIVATE KEY", the public key PKIX PEM), and [ParsePrivateKey] reads cosign's keys.
package signature

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry"
)

// cosign's names for what it stores.
const (
	// PayloadMediaType is the media type of a signature's layer: the simple-signing payload.
	PayloadMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// AnnotationSignature is the layer annotation holding the signature, in base64.
	AnnotationSignature = "dev.cosignproject.cosign/signature"
	// TagSuffix ends the tag of an image's signatures: sha256-<hex>.sig.
	TagSuffix = ".sig"
)

// Bounds on what a registry hands back (docs/reliability.md).
const (
	// MaxManifest bounds a signature manifest, and any answer of the registry while signing or verifying.
	MaxManifest = 4 << 20
	// MaxLayers bounds the signatures of one image: cosign's own limit.
	MaxLayers = 1000
	// MaxPayload bounds one signed payload (cosign's are a few hundred bytes).
	MaxPayload = 256 << 10
	// maxPayloads and maxPayloadBytes bound the payloads one verification reads; maxSignature a signature's
	// base64 (an RSA-4096 signature is 684 characters); maxReasons the refusals a result lists.
	maxPayloads     = 100
	maxPayloadBytes = 16 << 20
	maxSignature    = 16 << 10
	maxReasons      = 20
	// attempts is how many times a signature is appended when a concurrent writer replaced the manifest.
	attempts = 4
)

// Options say how an image's registry is reached. The zero value of Registry talks HTTPS with the system's roots
// and the Docker config's credentials.
type Options struct {
	Registry registry.Options
	Endpoint registry.Endpoint
	// Annotations (Sign) go into the payload's optional section, as `cosign sign -a key=value` puts them.
	Annotations map[string]string
}

// Signed is a signature made and stored.
type Signed struct {
	// Image is the image signed, by digest (repo@sha256:…).
	Image string `json:"image"`
	// Tag is where the image's signatures are stored (repo:sha256-<hex>.sig), Manifest that manifest's digest
	// once written, and Signatures the signatures it holds.
	Tag        string `json:"signature_tag"`
	Manifest   string `json:"signature_manifest"`
	Signatures int    `json:"signatures"`
	// Key is the signing key's public fingerprint.
	Key string `json:"key"`
	// Existing is true when the key had signed the same payload already: nothing was written, as cosign does.
	Existing bool `json:"existing"`
}

// Verification is what verifying an image's signatures found.
type Verification struct {
	// Image is the image, by digest (repo@sha256:…).
	Image string `json:"image"`
	// Signatures is how many signatures are stored for it.
	Signatures int `json:"signatures"`
	// Verified are the signatures one of the keys made over a payload naming the image's digest.
	Verified []Verified `json:"verified"`
	// Rejected says why each other signature was not accepted (at most 20, then a count).
	Rejected []string `json:"rejected,omitempty"`
}

// Verified is one signature accepted.
type Verified struct {
	// Key is the key's fingerprint, KeySource where it was read from.
	Key       string `json:"key"`
	KeySource string `json:"key_source"`
	// DockerReference is the identity the signer claimed for the image (its repository, or what was given to
	// cosign's --sign-container-identity): signed, but not compared with where the image is now, as cosign does
	// not (an image copied with its signatures keeps them).
	DockerReference string         `json:"docker_reference"`
	Annotations     map[string]any `json:"annotations,omitempty"`
}

// Error is a verification that failed: no signature of the image's digest by one of the keys. It wraps
// errdefs.ErrPolicyViolation: the image is not what the caller requires.
type Error struct {
	Image      string
	Signatures int
	Reasons    []string
}

func (e *Error) Error() string {
	if e.Signatures == 0 {
		return fmt.Sprintf("%s is not signed: no signature is stored for it", e.Image)
	}
	msg := fmt.Sprintf("%s has no signature by the keys given (%d stored)", e.Image, e.Signatures)
	shown := e.Reasons
	if len(shown) > 3 {
		shown = append(shown[:2:2], shown[len(shown)-1]) // the last says when signatures were left unread
	}
	if len(shown) > 0 {
		msg += ": " + strings.Join(shown, "; ")
	}
	if len(e.Reasons) > len(shown) {
		msg += fmt.Sprintf("; and %d more", len(e.Reasons)-len(shown))
	}
	return msg
}

// Unwrap makes the failure an errdefs.ErrPolicyViolation.
func (e *Error) Unwrap() error { return errdefs.ErrPolicyViolation }

// Tag is where the signatures of image are stored: its repository, tag sha256-<hex>.sig.
func Tag(image name.Digest) name.Tag {
	return image.Context().Tag(strings.Replace(image.DigestStr(), ":", "-", 1) + TagSuffix)
}

// tagLocks serialize the signers of one image in this process: a registry has no compare-and-swap on tags, so
// two appends racing would keep one signature. A tag takes the lock its hash picks: a fixed set, however many
// images a long-running process signs (two images sharing a lock only wait for each other).
var tagLocks [64]sync.Mutex

func tagLock(tag name.Tag) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(tag.String()))
	return &tagLocks[h.Sum32()%uint32(len(tagLocks))]
}

// Sign signs image (a manifest digest in its registry, which must exist) with s and appends the signature to the
// image's signature manifest, as cosign sign --key --tlog-upload=false does. Registry failures wrap the
// registry's errdefs sentinel (ErrNotFound for an image the registry does not have).
func Sign(ctx context.Context, image name.Digest, s *Signer, opts Options) (*Signed, error) {
	ropts := opts.remote(ctx)
	host := opts.Endpoint.Host
	if _, err := remote.Head(image, ropts...); err != nil {
		return nil, registry.Classify(err, host, "manifest "+image.String())
	}
	ann := map[string]any{}
	for k, v := range opts.Annotations {
		ann[k] = v
	}
	if len(ann) == 0 {
		ann = nil
	}
	body, err := json.Marshal(payload.Cosign{Image: image, Annotations: ann})
	if err != nil {
		return nil, err
	}
	sig, err := s.sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	b64 := base64.StdEncoding.EncodeToString(sig)
	layer := static.NewLayer(body, PayloadMediaType)
	ld, err := layer.Digest()
	if err != nil {
		return nil, err
	}
	tag := Tag(image)
	ours := addendum{layer: layer, digest: ld, annotations: map[string]string{AnnotationSignature: b64}, mediaType: PayloadMediaType}
	digest, n, wrote, err := appendSignatures(ctx, tag, ropts, host, func(m *v1.Manifest) []addendum {
		if m != nil && s.signedAlready(m, ld, body) {
			return nil
		}
		return []addendum{ours}
	})
	if err != nil {
		return nil, err
	}
	return &Signed{Image: image.String(), Tag: tag.String(), Key: s.pub.Fingerprint, Manifest: digest, Signatures: n, Existing: !wrote}, nil
}

// addendum is a signature layer to append: the payload, its digest and annotations.
type addendum struct {
	layer       v1.Layer
	digest      v1.Hash
	annotations map[string]string
	mediaType   types.MediaType
}

// appendSignatures appends to the signature manifest at tag what missing says it lacks (m is nil when there is
// none yet), and reads it again after writing: another signer (another process) may have written the tag between
// the read and the write, and what is still missing is appended again. It returns the manifest's digest, how
// many signatures it holds, and whether anything was written. Appends to one tag are serialized in the process.
func appendSignatures(ctx context.Context, tag name.Tag, ropts []remote.Option, host string, missing func(m *v1.Manifest) []addendum) (string, int, bool, error) {
	mu := tagLock(tag)
	mu.Lock()
	defer mu.Unlock()
	wrote := false
	for range attempts {
		m, digest, err := readManifest(ctx, tag, ropts, host)
		if err != nil {
			return "", 0, false, err
		}
		adds := missing(m)
		if len(adds) == 0 {
			n := 0
			if m != nil {
				n = len(m.Layers)
			}
			return digest, n, wrote, nil
		}
		if m != nil && len(m.Layers)+len(adds) > MaxLayers {
			return "", 0, false, fmt.Errorf("%w: %s would hold more than %d signatures, cosign's limit", errdefs.ErrConflict, tag, MaxLayers)
		}
		base := empty.Image
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
		if m != nil {
			// The manifest just read and checked, by its digest: a tag moved since is seen when it is read again.
			if base, err = remote.Image(tag.Context().Digest(digest), ropts...); err != nil {
				return "", 0, false, registry.Classify(err, host, "signatures "+tag.String())
			}
		}
		var list []mutate.Addendum
		for _, a := range adds {
			list = append(list, mutate.Addendum{Layer: a.layer, Annotations: a.annotations, MediaType: a.mediaType})
		}
		img, err := mutate.Append(base, list...)
		if err != nil {
			return "", 0, false, err
		}
		if err := remote.Write(tag, img, ropts...); err != nil {
			return "", 0, false, fmt.Errorf("writing signatures: %w", registry.Classify(err, host, "signatures "+tag.String()))
		}
		wrote = true
	}
	return "", 0, false, fmt.Errorf("%w: %s kept changing while signatures were appended (other signers at work): try again", errdefs.ErrConflict, tag)
}

// Copy copies the signatures of src (an image by digest) to dst (the same digest in another repository or
// registry), appending those dst lacks to its own, as cosign copy does; from and to reach the two registries. It
// returns how many signatures it copied: none for an image without signatures. Layers over MaxPayload are
// refused (ErrInvalidArgument) rather than copied.
func Copy(ctx context.Context, src name.Digest, from Options, dst name.Digest, to Options) (int, error) {
	if src.DigestStr() != dst.DigestStr() {
		return 0, fmt.Errorf("%w: signatures of %s cannot be copied to another image (%s)", errdefs.ErrInvalidArgument, src, dst)
	}
	sropts := from.remote(ctx)
	srcTag := Tag(src)
	m, _, err := readManifest(ctx, srcTag, sropts, from.Endpoint.Host)
	if err != nil || m == nil {
		return 0, err
	}
	var all []addendum
	for _, l := range m.Layers {
		if l.Size < 0 || l.Size > MaxPayload {
			return 0, fmt.Errorf("%w: %s holds a layer of %d bytes, more than a signature's %d", errdefs.ErrInvalidArgument, srcTag, l.Size, MaxPayload)
		}
		layer, err := remote.Layer(srcTag.Context().Digest(l.Digest.String()), sropts...)
		if err != nil {
			return 0, err
		}
		all = append(all, addendum{layer: layer, digest: l.Digest, annotations: l.Annotations, mediaType: l.MediaType})
	}
	copied := 0
	_, _, _, err = appendSignatures(ctx, Tag(dst), to.remote(ctx), to.Endpoint.Host, func(dm *v1.Manifest) []addendum {
		var adds []addendum
		for _, a := range all {
			if dm == nil || !hasLayer(dm, a.digest, a.annotations[AnnotationSignature]) {
				adds = append(adds, a)
			}
		}
		copied = max(copied, len(adds))
		return adds
	})
	if err != nil {
		return 0, err
	}
	return copied, nil
}

// signedAlready reports whether m holds a signature by s of body, the payload whose layer digest is ld.
func (s *Signer) signedAlready(m *v1.Manifest, ld v1.Hash, body []byte) bool {
	for _, l := range m.Layers {
		if l.Digest != ld || l.MediaType != PayloadMediaType {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(l.Annotations[AnnotationSignature]); err == nil && s.pub.verifies(sig, body) {
			return true
		}
	}
	return false
}

func hasLayer(m *v1.Manifest, ld v1.Hash, b64 string) bool {
	for _, l := range m.Layers {
		if l.Digest == ld && l.Annotations[AnnotationSignature] == b64 {
			return true
		}
	}
	return false
}

// Verify verifies the signatures stored for image against keys: it succeeds when at least one signature was made
// by one of the keys over a payload naming the image's digest, and says why the others were refused. Without such
// a signature the error is an *[Error] (ErrPolicyViolation) with the result; registry failures wrap the
// registry's sentinel.
func Verify(ctx context.Context, image name.Digest, keys []*Key, opts Options) (*Verification, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: verifying needs at least one public key", errdefs.ErrInvalidArgument)
	}
	ropts := opts.remote(ctx)
	host := opts.Endpoint.Host
	tag := Tag(image)
	v := &Verification{Image: image.String(), Verified: []Verified{}}
	m, _, err := readManifest(ctx, tag, ropts, host)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return v, &Error{Image: v.Image}
	}
	v.Signatures = len(m.Layers)
	refuse := func(format string, args ...any) {
		if len(v.Rejected) < maxReasons {
			v.Rejected = append(v.Rejected, fmt.Sprintf(format, args...))
		} else if len(v.Rejected) == maxReasons {
			v.Rejected = append(v.Rejected, "and more")
		}
	}
	payloads := map[v1.Hash][]byte{}
	read := 0
	for i, l := range m.Layers {
		n := i + 1
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if l.MediaType != PayloadMediaType {
			refuse("signature %d: a layer of type %q, not a simple-signing payload", n, l.MediaType)
			continue
		}
		b64 := l.Annotations[AnnotationSignature]
		sig, err := base64.StdEncoding.DecodeString(b64)
		if b64 == "" || len(b64) > maxSignature || err != nil {
			refuse("signature %d: no signature in its %s annotation, or not base64", n, AnnotationSignature)
			continue
		}
		body, ok := payloads[l.Digest]
		if !ok {
			if l.Size < 0 || l.Size > MaxPayload {
				refuse("signature %d: a payload of %d bytes, more than %d", n, l.Size, MaxPayload)
				continue
			}
			if len(payloads) == maxPayloads || read+int(l.Size) > maxPayloadBytes {
				// Said whatever came before: a reader should know that the rest was not looked at.
				v.Rejected = append(v.Rejected, fmt.Sprintf("signatures %d to %d: not read (at most %d payloads, %d bytes, are read for one image)",
					n, len(m.Layers), maxPayloads, maxPayloadBytes))
				break
			}
			if body, err = readPayload(tag.Context(), l, ropts); err != nil {
				if errors.Is(err, errdefs.ErrInvalidArgument) {
					refuse("signature %d: %v", n, err)
					continue
				}
				return nil, registry.Classify(err, host, "signature payload "+l.Digest.String())
			}
			payloads[l.Digest], read = body, read+len(body)
		}
		var key *Key
		for _, k := range keys {
			if k.verifies(sig, body) {
				key = k
				break
			}
		}
		if key == nil {
			refuse("signature %d: made by none of the keys", n)
			continue
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(body, &p); err != nil || p.Critical.Type != payload.CosignSignatureType {
			refuse("signature %d by %s: its payload is not a cosign container image signature", n, key.Fingerprint)
			continue
		}
		if got := p.Critical.Image.DockerManifestDigest; got != image.DigestStr() {
			refuse("signature %d by %s: its payload names %s, another image", n, key.Fingerprint, got)
			continue
		}
		v.Verified = append(v.Verified, Verified{Key: key.Fingerprint, KeySource: key.Source,
			DockerReference: p.Critical.Identity.DockerReference, Annotations: p.Optional})
	}
	if len(v.Verified) == 0 {
		return v, &Error{Image: v.Image, Signatures: v.Signatures, Reasons: v.Rejected}
	}
	return v, nil
}

// readManifest reads the signature manifest at tag, checked and bounded; nil (and no error) when there is none.
func readManifest(ctx context.Context, tag name.Tag, ropts []remote.Option, host string) (*v1.Manifest, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	desc, err := remote.Get(tag, ropts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, "", nil
	}
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, "", fmt.Errorf("%w: the signature manifest %s: %v", errdefs.ErrInvalidArgument, tag, err)
		}
		return nil, "", registry.Classify(err, host, "signatures "+tag.String())
	}
	bad := func(format string, args ...any) (*v1.Manifest, string, error) {
		return nil, "", fmt.Errorf("%w: the signature manifest %s: %s", errdefs.ErrInvalidArgument, tag, fmt.Sprintf(format, args...))
	}
	if len(desc.Manifest) > MaxManifest {
		return bad("%d bytes, more than %d", len(desc.Manifest), MaxManifest)
	}
	if desc.MediaType != types.OCIManifestSchema1 && desc.MediaType != types.DockerManifestSchema2 {
		return bad("media type %q: want an image manifest", desc.MediaType)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return bad("%v", err)
	}
	if len(m.Layers) > MaxLayers {
		return bad("%d signatures, more than %d", len(m.Layers), MaxLayers)
	}
	return &m, desc.Digest.String(), nil
}

// readPayload reads a signature's payload, checking its size and digest.
func readPayload(repo name.Repository, l v1.Descriptor, ropts []remote.Option) ([]byte, error) {
	bl, err := remote.Layer(repo.Digest(l.Digest.String()), ropts...)
	if err != nil {
		return nil, err
	}
	rc, err := bl.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, MaxPayload+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) != l.Size {
		return nil, fmt.Errorf("%w: the payload is %d bytes, the manifest says %d", errdefs.ErrInvalidArgument, len(body), l.Size)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(body)); h != l.Digest {
		return nil, fmt.Errorf("%w: the payload's digest is %s, the manifest says %s", errdefs.ErrInvalidArgument, h, l.Digest)
	}
	return body, nil
}

// remote is go-containerregistry's options for the image's registry, every answer bounded to MaxManifest.
func (o Options) remote(ctx context.Context) []remote.Option {
	ro := o.Registry
	base := ro.Transport
	if base == nil {
		base = registry.NewTransport(ro.RootCAs)
	}
	ro.Transport = bounded{base: base, max: MaxManifest}
	return ro.RemoteOptions(ctx, o.Endpoint)
}

var errTooLarge = errors.New("the registry's answer is too large")

// bounded ends every response body after max bytes with errTooLarge: a signature manifest or payload is small,
// and a registry answering with more is not read on.
type bounded struct {
	base http.RoundTripper
	max  int64
}

func (b bounded) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	resp.Body = &boundedBody{rc: resp.Body, left: b.max, max: b.max}
	return resp, nil
}

type boundedBody struct {
	rc        io.ReadCloser
	left, max int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", errTooLarge, b.max)
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }
