package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/errdefs"
)

// Evidence is attached to an image's digest in its registry as an OCI 1.1 artifact that refers to it (its
// subject): the referrers API finds it, or, on registries without one (distribution 2.8), the tag-schema
// fallback (the tag sha256-<digest>), which go-containerregistry keeps.
const (
	// ScanArtifactType is a Myrmex scan result (the JSON of a SecurityScanResult).
	ScanArtifactType = "application/vnd.codomyrmex.myrmex.scan.v1+json"
	// SBOMArtifactType is a CycloneDX SBOM.
	SBOMArtifactType = "application/vnd.cyclonedx+json"

	// Annotations on the artifact's manifest, listed by the referrers API without reading the payload.
	AnnotationCreated   = "org.opencontainers.image.created"
	AnnotationScanner   = "dev.codomyrmex.myrmex.scanner"    // "myrmex v1.2.3"
	AnnotationScanType  = "dev.codomyrmex.myrmex.scan.type"  // full, quick, compliance
	AnnotationDBUpdated = "dev.codomyrmex.myrmex.db.updated" // when the advisory database was last imported (RFC 3339)
	AnnotationDBRecords = "dev.codomyrmex.myrmex.db.records"
	AnnotationSummary   = "dev.codomyrmex.myrmex.scan.summary" // "critical=0 high=2 medium=1 low=0 unknown=0"
	AnnotationVerdict   = "dev.codomyrmex.myrmex.policy"       // at push: "allowed", or "refused (rule, …)" when the gate only warns

	// MaxEvidence bounds an attached payload read back, and maxReferrers the evidence listed for one image.
	MaxEvidence  = 64 << 20
	maxReferrers = 1000
)

// emptyConfig is the OCI empty descriptor's content.
var emptyConfig = []byte("{}")

// Evidence is one artifact attached to an image.
type Evidence struct {
	// Digest is the artifact's manifest digest; Subject the image's it refers to.
	Digest       string            `json:"digest"`
	Subject      string            `json:"subject"`
	ArtifactType string            `json:"artifact_type"`
	Created      time.Time         `json:"created"`
	Size         int64             `json:"size"` // the payload's
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// rawManifest is a manifest written as it is.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.body, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// Attach writes payload as an artifact of artifactType that refers to subject, with annotations (and its
// creation time), in subject's repository.
func Attach(ctx context.Context, subject name.Digest, artifactType string, payload []byte, annotations map[string]string, opts ...remote.Option) (*Evidence, error) {
	if len(payload) > MaxEvidence {
		return nil, fmt.Errorf("%w: evidence of %d bytes, more than %d", errdefs.ErrInvalidArgument, len(payload), MaxEvidence)
	}
	opts = append(opts, remote.WithContext(ctx))
	desc, err := remote.Head(subject, opts...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", subject, err)
	}
	repo := subject.Context()
	// The config is empty ({}) but typed as the artifact: registries that derive an artifact's type from its
	// config (go-containerregistry's own) and those that read artifactType agree.
	layer := static.NewLayer(payload, types.MediaType(artifactType))
	config := static.NewLayer(emptyConfig, types.MediaType(artifactType))
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return nil, fmt.Errorf("writing evidence to %s: %w", repo, err)
		}
	}
	ld, err := partialDescriptor(layer, artifactType)
	if err != nil {
		return nil, err
	}
	cd, err := partialDescriptor(config, artifactType)
	if err != nil {
		return nil, err
	}
	anns := map[string]string{}
	for k, v := range annotations {
		anns[k] = v
	}
	created := time.Now().UTC()
	anns[AnnotationCreated] = created.Format(time.RFC3339)
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
		Config: cd, Layers: []v1.Descriptor{ld}, Annotations: anns,
		Subject: &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size},
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if err := remote.Put(repo.Digest(h.String()), rawManifest{body, types.OCIManifestSchema1}, opts...); err != nil {
		return nil, fmt.Errorf("writing evidence to %s: %w", repo, err)
	}
	return &Evidence{Digest: h.String(), Subject: subject.DigestStr(), ArtifactType: artifactType, Created: created, Size: ld.Size, Annotations: anns}, nil
}

func partialDescriptor(l v1.Layer, mt string) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: types.MediaType(mt), Digest: d, Size: n}, nil
}

// List lists the evidence attached to subject, of the artifact types given (all when none), newest first.
func List(ctx context.Context, subject name.Digest, artifactTypes []string, opts ...remote.Option) ([]Evidence, error) {
	opts = append(opts, remote.WithContext(ctx))
	idx, err := remote.Referrers(subject, opts...)
	if err != nil {
		return nil, fmt.Errorf("listing what refers to %s: %w", subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []Evidence
	for _, d := range im.Manifests {
		if len(out) == maxReferrers {
			break
		}
		if len(artifactTypes) > 0 && !slices.Contains(artifactTypes, d.ArtifactType) {
			continue
		}
		e := Evidence{Digest: d.Digest.String(), Subject: subject.DigestStr(), ArtifactType: d.ArtifactType, Annotations: d.Annotations}
		if t, err := time.Parse(time.RFC3339, d.Annotations[AnnotationCreated]); err == nil {
			e.Created = t
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b Evidence) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Fetch reads an attached artifact's payload (at most MaxEvidence bytes), checking its digest.
func Fetch(ctx context.Context, repo name.Repository, digest string, opts ...remote.Option) ([]byte, *Evidence, error) {
	opts = append(opts, remote.WithContext(ctx))
	ref := repo.Digest(digest)
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("reading evidence %s: %w", ref, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil || len(m.Layers) != 1 || m.Subject == nil || m.ArtifactType == "" {
		return nil, nil, fmt.Errorf("%w: %s is not evidence (an artifact with a subject and one payload)", errdefs.ErrInvalidArgument, ref)
	}
	ld := m.Layers[0]
	if ld.Size > MaxEvidence || ld.Size < 0 {
		return nil, nil, fmt.Errorf("%w: evidence %s holds %d bytes, more than %d", errdefs.ErrInvalidArgument, ref, ld.Size, MaxEvidence)
	}
	l, err := remote.Layer(repo.Digest(ld.Digest.String()), opts...)
	if err != nil {
		return nil, nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, MaxEvidence+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) != ld.Size {
		return nil, nil, fmt.Errorf("%w: evidence %s: %d bytes, the manifest says %d", errdefs.ErrInvalidArgument, ref, len(body), ld.Size)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(body)); h != ld.Digest {
		return nil, nil, fmt.Errorf("%w: evidence %s: the payload's digest is %s, the manifest says %s", errdefs.ErrInvalidArgument, ref, h, ld.Digest)
	}
	e := &Evidence{Digest: digest, ArtifactType: m.ArtifactType, Size: ld.Size, Annotations: m.Annotations}
	if m.Subject != nil {
		e.Subject = m.Subject.Digest.String()
	}
	if t, err := time.Parse(time.RFC3339, m.Annotations[AnnotationCreated]); err == nil {
		e.Created = t
	}
	return body, e, nil
}

// Summary is the scan summary annotation's text.
func Summary(critical, high, medium, low, unknown int) string {
	return "critical=" + strconv.Itoa(critical) + " high=" + strconv.Itoa(high) + " medium=" + strconv.Itoa(medium) +
		" low=" + strconv.Itoa(low) + " unknown=" + strconv.Itoa(unknown)
}
