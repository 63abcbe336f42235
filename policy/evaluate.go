package policy

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/errdefs"
)

// Image is what a gate knows of one image.
type Image struct {
	// Reference is the image as it was named ("registry.example.com/team/app:1.4").
	Reference string
	// Digest is its manifest digest, or the engine's image ID when it has no digest yet (a local build).
	Digest string
	// Scan is its scan; nil when it was not scanned (the rules that need one then refuse it). ScanSource says
	// where the scan came from: "scanned" at the gate, or "attached <artifact digest>" (evidence reused).
	Scan       *Scan
	ScanSource string
	// Signatures is what verifying the image's signatures against the policy's keys found; nil where they were
	// not verified (at the create, apply and pipeline gates the rule then refuses the image, saying so).
	Signatures *SignatureCheck
}

// SignatureCheck is what a gate found of an image's signatures in its registry.
type SignatureCheck struct {
	// Signed are the fingerprints of the policy's keys that signed the image's digest (each once).
	Signed []string
	// Refused says why the image's other signatures were not accepted (signature.Verification.Rejected).
	Refused []string
	// Unverifiable, when set, says why the signatures could not be verified: the image has no digest in a
	// registry (only in the engine), say.
	Unverifiable string
}

// ImageVerdict is what a verdict judged of one image.
type ImageVerdict struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest,omitempty"`
	// Scan is where the scan it was judged on came from: "scanned", "attached sha256:…", or "" (none needed).
	Scan string `json:"scan,omitempty"`
}

// Scan is what a scan said about an image.
type Scan struct {
	Time time.Time
	// Vulnerabilities is true when the packages were matched against advisories (a compliance-only scan, with
	// no advisory database, leaves it false).
	Vulnerabilities bool
	Findings        []Finding
	ComplianceScore *float64
}

// Finding is one vulnerability of a scan.
type Finding struct {
	ID            string
	Aliases       []string
	Severity      string
	Package       string
	SourcePackage string
	Version       string
	FixedVersion  string
}

// Container is what the create gate knows of a container.
type Container struct {
	Name  string
	Image string
	// User is the user it runs as: the container's, else the image's ("" is root).
	User       string
	Privileged bool
	// CPU, Memory and Pids say which limits are set.
	CPU, Memory, Pids bool
	HostNetwork       bool
	// HostPaths are the host paths it mounts.
	HostPaths []string
}

// Verdict is a gate's decision under a policy, with every violation.
type Verdict struct {
	Gate       string      `json:"gate"`
	Policy     string      `json:"policy"`
	Mode       Mode        `json:"mode"`
	Allowed    bool        `json:"allowed"`
	Violations []Violation `json:"violations"`
	// Images are the images judged, by digest, with where their scans came from.
	Images   []ImageVerdict `json:"images,omitempty"`
	Ignored  []Ignored      `json:"ignored,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	Time     time.Time      `json:"time"`
}

// Violation is one rule an image or a container breaks.
type Violation struct {
	// Rule is the rule's path in the policy file ("images.vulnerabilities").
	Rule string `json:"rule"`
	// Image is the image as it was named, Digest what it resolved to; Container the container, at the create gate.
	Image     string `json:"image,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Container string `json:"container,omitempty"`
	// Finding says what breaks the rule.
	Finding string `json:"finding"`
}

// Ignored is a finding an ignore of the policy accepted.
type Ignored struct {
	ID        string `json:"id"`
	Package   string `json:"package"`
	Image     string `json:"image"`
	Statement string `json:"statement"`
	Expires   Date   `json:"expires"`
}

// maxPerRule bounds the violations listed for one rule and one image; the rest are counted.
const maxPerRule = 100

// Evaluate holds images and containers to p at gate. A nil policy allows everything.
func (p *Policy) Evaluate(gate string, images []Image, containers []Container, now time.Time) *Verdict {
	v := &Verdict{Gate: gate, Mode: p.Mode(gate), Allowed: true, Violations: []Violation{}, Time: now.UTC()}
	if p == nil || v.Mode == Off {
		return v
	}
	v.Policy = p.File
	for _, im := range images {
		v.Images = append(v.Images, ImageVerdict{Reference: im.Reference, Digest: im.Digest, Scan: im.ScanSource})
		p.image(v, gate, im, now)
	}
	for _, c := range containers {
		p.container(v, c)
	}
	v.Allowed = len(v.Violations) == 0
	return v
}

// Err is the refusal a verdict makes: an *Error when it is not allowed and its gate enforces, else nil.
func (v *Verdict) Err() error {
	if v == nil || v.Allowed || v.Mode != Enforce {
		return nil
	}
	return &Error{Verdict: v}
}

// Error is a refusal: it wraps errdefs.ErrPolicyViolation and names the first violations.
type Error struct{ Verdict *Verdict }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refused by the policy at the %s gate", e.Verdict.Gate)
	for i, v := range e.Verdict.Violations {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Verdict.Violations)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(v.String())
	}
	return b.String()
}

// Unwrap makes the refusal an errdefs.ErrPolicyViolation.
func (e *Error) Unwrap() error { return errdefs.ErrPolicyViolation }

// String says the violation in a line: the rule, the image by digest or the container, and the finding.
func (v Violation) String() string {
	subject := v.Image
	if v.Digest != "" {
		subject = strings.TrimSuffix(trimDigest(v.Image), "@") + "@" + v.Digest
	}
	if v.Container != "" {
		subject = "container " + v.Container
	}
	return v.Rule + ": " + subject + ": " + v.Finding
}

func trimDigest(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i]
	}
	return ref
}

func (p *Policy) image(v *Verdict, gate string, im Image, now time.Time) {
	rules := p.Images
	if rules == nil {
		return
	}
	add := func(rule, finding string) {
		v.Violations = append(v.Violations, Violation{Rule: rule, Image: im.Reference, Digest: im.Digest, Finding: finding})
	}
	ref, refErr := name.ParseReference(trimDigest(im.Reference))
	if strings.Contains(im.Reference, "@") {
		ref, refErr = name.ParseReference(im.Reference)
	}
	if isImageID(im.Reference) {
		// "sha256:<hex>" parses as docker.io/library/sha256 with a tag: the engine reads it as an ID.
		ref, refErr = nil, fmt.Errorf("%s is an image ID", im.Reference)
	}
	if r := rules.Registries; r != nil {
		switch {
		case refErr != nil:
			add("images.registries", "the image is not named by a reference (an ID?): where it comes from is not known")
		case !allowedRegistry(ref, *r):
			add("images.registries", fmt.Sprintf("%s is not one of the registries allowed (%s)", ref.Context().Name(), strings.Join(*r, ", ")))
		}
	}
	// How an image is named matters where it is run: the create, apply and pipeline gates.
	if t := rules.Tags; t != nil && (gate == GateCreate || gate == GateApply || gate == GatePipeline) {
		_, digested := ref.(name.Digest)
		if refErr == nil && t.ForbidLatest && !digested {
			if tag, ok := ref.(name.Tag); ok && tag.TagStr() == "latest" {
				add("images.tags.forbid_latest", "the tag latest (written or implied) names no particular image")
			}
		}
		if t.RequireDigest && (refErr != nil || !digested) {
			add("images.tags.require_digest", "not pinned to a digest (name@sha256:…): the tag may move after the check")
		}
	}
	if sg := rules.Signatures; sg != nil {
		runs := gate == GateCreate || gate == GateApply
		switch sc := im.Signatures; {
		case sc == nil && runs:
			add("images.signatures", "the image's signatures were not verified")
		case sc == nil:
			// build, push and pipeline: the image is not in a registry yet, nor signed (a copy's source is, and
			// is verified; a pipeline signs after its push, and its deploy is held at the apply gate).
		case sc.Unverifiable != "":
			add("images.signatures", sc.Unverifiable)
		case len(sc.Signed) < sg.Need():
			add("images.signatures", describeSignatures(sc, sg.Need()))
		}
	}
	needScan := rules.Vulnerabilities != nil || rules.MaxScanAge != nil || rules.MinComplianceScore != nil
	if !needScan {
		return
	}
	sc := im.Scan
	if sc == nil {
		for _, r := range []struct {
			set  bool
			rule string
		}{{rules.Vulnerabilities != nil, "images.vulnerabilities"}, {rules.MaxScanAge != nil, "images.max_scan_age"},
			{rules.MinComplianceScore != nil, "images.min_compliance_score"}} {
			if r.set {
				add(r.rule, "the image was not scanned")
			}
		}
		return
	}
	if a := rules.MaxScanAge; a != nil && now.Sub(sc.Time) > time.Duration(*a) {
		add("images.max_scan_age", fmt.Sprintf("scanned %s ago (at %s), older than %s", now.Sub(sc.Time).Round(time.Second), sc.Time.UTC().Format(time.RFC3339), time.Duration(*a)))
	}
	if m := rules.MinComplianceScore; m != nil {
		switch {
		case sc.ComplianceScore == nil:
			add("images.min_compliance_score", "the scan has no compliance score")
		case *sc.ComplianceScore < *m:
			add("images.min_compliance_score", fmt.Sprintf("compliance score %.1f, below %.1f", *sc.ComplianceScore, *m))
		}
	}
	vr := rules.Vulnerabilities
	if vr == nil {
		return
	}
	if !sc.Vulnerabilities {
		add("images.vulnerabilities", "the scan did not match vulnerabilities (no advisory database): import one with `myrmex db import`")
		return
	}
	limit, _ := severityRank(vr.MaxSeverity)
	n := 0
	for _, f := range sc.Findings {
		if findingRank(f.Severity) <= limit {
			continue
		}
		if ig, ok := p.ignored(v, f, now); ok {
			v.Ignored = append(v.Ignored, Ignored{ID: f.ID, Package: f.Package, Image: im.Reference, Statement: ig.Statement, Expires: ig.Expires})
			continue
		}
		n++
		if n <= maxPerRule {
			add("images.vulnerabilities", describe(f, vr.MaxSeverity))
		}
	}
	if n > maxPerRule {
		add("images.vulnerabilities", fmt.Sprintf("and %d more findings above %s", n-maxPerRule, vr.MaxSeverity))
	}
}

// describeSignatures says why an image's signatures do not satisfy the rule.
func describeSignatures(sc *SignatureCheck, need int) string {
	var s string
	switch {
	case len(sc.Signed) == 0 && len(sc.Refused) == 0:
		s = "not signed: no signature is stored for its digest"
	case len(sc.Signed) == 0:
		s = "not signed by any of the policy's keys"
	default:
		s = fmt.Sprintf("signed by %d of the policy's keys (%s), %d needed", len(sc.Signed), strings.Join(sc.Signed, ", "), need)
	}
	if n := len(sc.Refused); n > 0 {
		shown := sc.Refused
		if n > 3 {
			shown = append(shown[:2:2], shown[n-1]) // the last says when signatures were left unread
		}
		s += ": " + strings.Join(shown, "; ")
		if n > len(shown) {
			s += fmt.Sprintf("; and %d more", n-len(shown))
		}
	}
	return s
}

func describe(f Finding, max string) string {
	s := fmt.Sprintf("%s (%s, above %s) in %s %s", f.ID, strings.ToLower(f.Severity), max, f.Package, f.Version)
	if f.FixedVersion != "" {
		s += ", fixed in " + f.FixedVersion
	} else {
		s += ", no fix yet"
	}
	return s
}

// ignored finds the ignore that accepts f; an expired one is a warning, once.
func (p *Policy) ignored(v *Verdict, f Finding, now time.Time) (Ignore, bool) {
	for _, ig := range p.Images.Vulnerabilities.Ignore {
		if ig.ID != f.ID && !slices.Contains(f.Aliases, ig.ID) {
			continue
		}
		if ig.Package != "" && ig.Package != f.Package && ig.Package != f.SourcePackage {
			continue
		}
		if !now.Before(time.Time(ig.Expires)) {
			w := fmt.Sprintf("the ignore of %s expired on %s: the finding counts again", ig.ID, time.Time(ig.Expires).Format(time.DateOnly))
			if !slices.Contains(v.Warnings, w) {
				v.Warnings = append(v.Warnings, w)
			}
			continue
		}
		return ig, true
	}
	return Ignore{}, false
}

// isImageID reports whether ref is an image ID rather than a name: "sha256:<64 hex>" or the 64 hex digits.
func isImageID(ref string) bool {
	h := strings.TrimPrefix(ref, "sha256:")
	return len(h) == 64 && strings.Trim(h, "0123456789abcdef") == ""
}

// allowedRegistry reports whether ref's repository is under one of the entries: the same registry host (hosts
// compare without regard to case) and the entry's repository path, if any, as a prefix of whole components.
func allowedRegistry(ref name.Reference, entries []string) bool {
	repo := ref.Context()
	host, path := repo.RegistryStr(), repo.RepositoryStr()
	for _, e := range entries {
		eh, ep, _ := strings.Cut(e, "/")
		if strings.EqualFold(eh, "docker.io") {
			eh = name.DefaultRegistry
		}
		if strings.EqualFold(eh, host) && (ep == "" || path == ep || strings.HasPrefix(path, ep+"/")) {
			return true
		}
	}
	return false
}

func (p *Policy) container(v *Verdict, c Container) {
	rt := p.Runtime
	if rt == nil {
		return
	}
	add := func(rule, finding string) {
		v.Violations = append(v.Violations, Violation{Rule: rule, Container: c.Name, Image: c.Image, Finding: finding})
	}
	if rt.NoPrivileged && c.Privileged {
		add("runtime.no_privileged", "the container is privileged: it has every capability and the host's devices")
	}
	for _, l := range rt.RequireLimits {
		set := map[string]bool{"cpu": c.CPU, "memory": c.Memory, "pids": c.Pids}[l]
		if !set {
			add("runtime.require_limits", "no "+l+" limit")
		}
	}
	if rt.NonRoot && isRoot(c.User) {
		who := "the image's user, root"
		if c.User != "" {
			who = "user " + c.User
		}
		add("runtime.non_root", "it would run as "+who)
	}
	if rt.NoHostNetwork && c.HostNetwork {
		add("runtime.no_host_network", "it would share the host's network")
	}
	if hp := rt.HostPaths; hp != nil {
		for _, h := range c.HostPaths {
			if !underAny(path.Clean(h), hp.Allow) {
				add("runtime.host_paths", fmt.Sprintf("it mounts %s from the host, which is not under an allowed path (%s)", h, strings.Join(hp.Allow, ", ")))
			}
		}
	}
}

// isRoot reports whether a user (NAME or UID, with :GROUP) is root; empty is root. A UID is read as the
// runtimes read it: with a sign ("+0"), and truncated to 32 bits (containerd's uint32(v): 4294967296 is 0);
// surrounding blanks are read as not there.
func isRoot(user string) bool {
	u, _, _ := strings.Cut(user, ":")
	u = strings.TrimSpace(u)
	if u == "" || u == "root" {
		return true
	}
	n, err := strconv.ParseInt(u, 10, 64)
	return err == nil && uint32(n) == 0
}

func underAny(p string, allow []string) bool {
	for _, a := range allow {
		if p == a || a == "/" || strings.HasPrefix(p, a+"/") {
			return true
		}
	}
	return false
}

// NeedsSignatures reports whether the policy requires signatures.
func (p *Policy) NeedsSignatures() bool {
	return p != nil && p.Images != nil && p.Images.Signatures != nil
}

// NeedsScan reports whether the policy reads scans (vulnerabilities, scan age, compliance score).
func (p *Policy) NeedsScan() bool {
	return p != nil && p.Images != nil && (p.Images.Vulnerabilities != nil || p.Images.MaxScanAge != nil || p.Images.MinComplianceScore != nil)
}
