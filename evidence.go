package containerization

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/scan/cyclonedx"
)

// fromRegistry reports whether a scan of imageName reads it from a registry: docker://REF, or a plain reference
// the engine does not hold.
func (c *Client) fromRegistry(ctx context.Context, imageName string, eng *engine.Client) bool {
	if strings.HasPrefix(imageName, registry.SourceRemote) {
		return true
	}
	if registry.IsLocalSource(imageName) || strings.HasPrefix(imageName, registry.SourceDaemon) {
		return false
	}
	if eng == nil {
		var err error
		if eng, err = c.engine(ctx); err != nil {
			return true
		}
	}
	ok, err := eng.ImageExists(ctx, imageName)
	return err == nil && !ok
}

// registryDigest is imageName's repository in its registry with digest, and the options to reach it.
func (c *Client) registryDigest(imageName, digest string, ro RegistryOptions) (name.Digest, registry.Options, registry.Endpoint, error) {
	ref, ep, err := registry.Resolve(strings.TrimPrefix(imageName, registry.SourceRemote), "", registry.Kind(ro.Type))
	if err != nil {
		return name.Digest{}, registry.Options{}, ep, err
	}
	ropts, err := c.registryOptions(ro, ep.Kind, ro.Credentials, nil)
	if err != nil {
		return name.Digest{}, registry.Options{}, ep, err
	}
	return ref.Context().Digest(digest), ropts, ep, nil
}

// attachScan stores res, and the image's SBOM, as evidence referring to the scanned image's digest.
func (c *Client) attachScan(ctx context.Context, imageName string, res *SecurityScanResult, ro RegistryOptions, marks map[string]string) (*policy.Evidence, *policy.Evidence, error) {
	if res.ImageDigest == "" {
		return nil, nil, fmt.Errorf("%w: the scanned image's digest is not known", ErrInvalidArgument)
	}
	subject, ropts, ep, err := c.registryDigest(imageName, res.ImageDigest, ro)
	if err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, nil, err
	}
	sbom, err := json.Marshal(cyclonedx.SBOM(subject.String(), res.ScanTimestamp, "myrmex", version(), res.packages))
	if err != nil {
		return nil, nil, err
	}
	anns := map[string]string{
		policy.AnnotationScanner:  res.ScanTool,
		policy.AnnotationScanType: res.ScanType,
		policy.AnnotationSummary:  policy.Summary(res.CriticalCount, res.HighCount, res.MediumCount, res.LowCount, res.UnknownCount),
	}
	maps.Copy(anns, marks)
	if d := res.Database; d != nil {
		anns[policy.AnnotationDBUpdated] = d.UpdatedAt.UTC().Format(time.RFC3339Nano)
		anns[policy.AnnotationDBRecords] = strconv.Itoa(d.Records)
	}
	e, err := policy.Attach(ctx, subject, policy.ScanArtifactType, body, anns, ropts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return nil, nil, registry.Classify(err, ep.Host, subject.String())
	}
	s, err := policy.Attach(ctx, subject, policy.SBOMArtifactType, sbom, map[string]string{policy.AnnotationScanner: res.ScanTool,
		"dev.codomyrmex.myrmex.sbom.components": strconv.Itoa(len(res.packages))}, ropts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return e, nil, registry.Classify(err, ep.Host, subject.String())
	}
	return e, s, nil
}

// AttachedScans lists the scans attached to an image in its registry (imageName a reference with a tag or a
// digest), newest first.
func (c *Client) AttachedScans(ctx context.Context, imageName string, ro RegistryOptions) ([]policy.Evidence, error) {
	return c.attached(ctx, "scans", imageName, ro, policy.ScanArtifactType)
}

// AttachedEvidence lists every artifact attached to an image in its registry (scans, SBOMs, and what other tools
// attach through the referrers API), newest first.
func (c *Client) AttachedEvidence(ctx context.Context, imageName string, ro RegistryOptions) ([]policy.Evidence, error) {
	return c.attached(ctx, "evidence", imageName, ro)
}

// attached lists the artifacts of the types given (all when none) attached to an image in its registry.
func (c *Client) attached(ctx context.Context, op, imageName string, ro RegistryOptions, artifactTypes ...string) ([]policy.Evidence, error) {
	fail := func(err error) ([]policy.Evidence, error) {
		return nil, &RegistryError{Op: op, Image: imageName, Err: err}
	}
	digest, ropts, ep, err := c.resolveDigest(ctx, imageName, ro)
	if err != nil {
		return fail(err)
	}
	list, err := policy.List(ctx, digest, artifactTypes, ropts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return fail(registry.Classify(err, ep.Host, digest.String()))
	}
	return list, nil
}

// attachedScan is the newest scan attached to an image's digest that a gate may use instead of scanning: a full
// scan, against the advisory database as it is now, no older than the policy's max_scan_age. nil when none is.
func (c *Client) attachedScan(ctx context.Context, pol *policy.Policy, subject name.Digest, ropts registry.Options, ep registry.Endpoint) *SecurityScanResult {
	so := c.cfg.PolicyScan
	db, err := c.advisoryDB(so.DBDir)
	if err != nil {
		return nil
	}
	updated := db.Status().Updated.UTC()
	list, err := policy.List(ctx, subject, []string{policy.ScanArtifactType}, ropts.RemoteOptions(ctx, ep)...)
	if err != nil {
		return nil
	}
	fresh := func(t time.Time) bool {
		if t.After(time.Now().Add(maxClockSkew)) {
			return false // dated in the future: it would stay fresh for ever
		}
		return pol.Images == nil || pol.Images.MaxScanAge == nil || time.Since(t) <= time.Duration(*pol.Images.MaxScanAge)
	}
	tries := 0
	for _, e := range list {
		// The annotations pick the candidates; only the payload, checked below, is believed.
		at, err := time.Parse(time.RFC3339Nano, e.Annotations[policy.AnnotationDBUpdated])
		if err != nil || !at.Equal(updated) || e.Annotations[policy.AnnotationScanType] != "full" {
			continue // another database, or not a full scan: not evidence for this gate
		}
		if !fresh(e.Created) {
			continue
		}
		if tries++; tries > maxEvidenceTries {
			return nil // a registry listing many candidates does not make the gate read them all
		}
		body, fe, err := policy.Fetch(ctx, subject.Context(), e.Digest, ropts.RemoteOptions(ctx, ep)...)
		if err != nil || fe.Subject != subject.DigestStr() || fe.ArtifactType != policy.ScanArtifactType {
			continue
		}
		var res SecurityScanResult
		if json.Unmarshal(body, &res) != nil || res.ImageDigest != subject.DigestStr() {
			continue // evidence of another image: not trusted
		}
		if res.ScanType != "full" || res.Database == nil || !res.Database.UpdatedAt.Equal(updated) || !fresh(res.ScanTimestamp) {
			continue // the payload says another scan than its annotations do
		}
		res.Evidence = &e
		return &res
	}
	return nil
}

// maxEvidenceTries bounds the attached scans a gate reads for one image; maxClockSkew is how far in the future
// a scan's time may be.
const (
	maxEvidenceTries = 3
	maxClockSkew     = 5 * time.Minute
)

// trimDigestRef is a reference without its digest; hostOf its registry host.
func trimDigestRef(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i]
	}
	return ref
}

func hostOf(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}
