// Package report makes the security report of an image (the specification's generate_security_report): one
// self-contained document with the image and its digest, the scan's summary and its findings by severity, the
// compliance checks that failed with their remediation, the SBOM's summary, the signatures and the evidence
// attached to the digest, the policy's verdict and, for an optimized image, the optimization's before and after.
//
// [Build] gathers those facts through a [containerization.Client]; [FromScan] makes a report of a scan result
// alone. [HTML], [PDF] and [JSON] render a report: the HTML holds its style inline, its chart as inline SVG, and
// a Content-Security-Policy that forbids scripts and every load ([ContentSecurityPolicy]); the PDF is that HTML
// printed by headless Chromium (Debian's), offline, on A4.
package report

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/signature"
)

// Verdicts of a report, in [Report].Verdict.
const (
	// VerdictPassed: the policy allowed the image (and the scan's threshold and the signatures, when asked for, passed).
	VerdictPassed = "passed"
	// VerdictFailed: the policy refused the image, a finding reached the scan's threshold, or no signature verified.
	VerdictFailed = "failed"
	// VerdictWarned: the policy refused the image at a gate that only warns.
	VerdictWarned = "warned"
	// VerdictNone: nothing judged the image (no policy, no threshold, no keys): the report only describes it.
	VerdictNone = "none"
)

// Report is the security report of one image. Its JSON uses the specification's names where it has them
// (scan_result is the SecurityScanResult generate_security_report takes).
type Report struct {
	ImageName string `json:"image_name"`
	// ImageDigest is the image's manifest digest (in its registry, or the engine's repository digest); ImageID the
	// engine's image ID, for an image in the engine.
	ImageDigest string    `json:"image_digest,omitempty"`
	ImageID     string    `json:"image_id,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	Generator   string    `json:"generator"`
	// Verdict sums up what judged the image: passed, failed, warned or none (see the Verdict constants).
	Verdict    string                               `json:"verdict"`
	ScanResult *containerization.SecurityScanResult `json:"scan_result"`
	// Signatures is what verifying the image's signatures against the keys given found; nil when none were.
	Signatures *Signatures `json:"signatures,omitempty"`
	// Evidence is what is attached to the image's digest in its registry (scans, SBOMs…), newest first.
	Evidence []policy.Evidence `json:"evidence,omitempty"`
	// PolicyVerdict is the policy's verdict at a gate, on the same scan; nil without a policy.
	PolicyVerdict *policy.Verdict `json:"policy_verdict,omitempty"`
	// Optimization is what an optimized image records of the optimization that made it.
	Optimization *optimize.Record `json:"optimization,omitempty"`
	// Notes say what the report could not show and why (an image in the engine has no attached evidence).
	Notes []string `json:"notes,omitempty"`
}

// Signatures is a report's signature check.
type Signatures struct {
	Verified bool `json:"verified"`
	// Verification lists the signatures accepted and why the others were not.
	Verification *signature.Verification `json:"verification,omitempty"`
	// Error says why none verified (unsigned, signed by other keys).
	Error string `json:"error,omitempty"`
}

// Options tune [Build]. The zero value scans the image in full with the client's defaults and holds it to the
// client's policy.
type Options struct {
	// Scan is the scan to report (myrmex scan -o json's); nil: Build scans the image.
	Scan *containerization.SecurityScanResult
	// ScanType is full (the default), quick or compliance; ScanOptions the scan's options (threshold, ignore
	// rules, database, registry). Both are unused when Scan is given.
	ScanType    string
	ScanOptions containerization.ScanOptions
	// Keys are public keys (files or PEM) whose signatures are verified; none: signatures are not checked.
	Keys []string
	// Gate is the policy's gate the image is held at: apply for an image read from a registry, create for one in
	// the engine, when empty.
	Gate string
	// Policy is held instead of the client's.
	Policy *policy.Policy
	// Progress receives the report's phases (scan, policy, signatures, evidence, optimization).
	Progress func(containerization.Event)
	// Now is the report's time; zero: time.Now.
	Now time.Time
}

// Build makes the report of image through c: it scans it (or takes opts.Scan), holds it to the policy on that
// scan, verifies its signatures when keys are given, lists the evidence attached to its digest and reads the
// optimization it records. What applies only to an image in a registry (evidence, signatures, the apply gate) is
// a note for an image read from the engine or a file.
//
// Errors are *containerization.SecurityScanError (Op "report", or the scan's own): ErrInvalidArgument for bad
// input, ErrNotFound for a missing image, the registry's or engine's failure. A scan that reaches its threshold
// is no error: the report says the image failed.
func Build(ctx context.Context, c *containerization.Client, image string, opts Options) (*Report, error) {
	fail := func(err error) (*Report, error) {
		var se *containerization.SecurityScanError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, &containerization.SecurityScanError{Op: "report", Image: image, Err: err}
	}
	if strings.TrimSpace(image) == "" {
		return fail(fmt.Errorf("%w: an image name is required", errdefs.ErrInvalidArgument))
	}
	if c == nil {
		return fail(fmt.Errorf("%w: no client", errdefs.ErrInvalidArgument))
	}
	if opts.Scan != nil {
		if err := Check(opts.Scan); err != nil {
			return fail(err)
		}
		if opts.Scan.ImageName != image {
			return fail(fmt.Errorf("%w: the scan given is of %s, not %s", errdefs.ErrInvalidArgument, opts.Scan.ImageName, image))
		}
	}
	phase := func(name, status, msg string) {
		if opts.Progress != nil {
			opts.Progress(containerization.Event{Time: time.Now(), Op: "report", Phase: name, Subject: image, Status: status, Message: msg})
		}
	}
	step := func(name string, f func() error) error {
		phase(name, "started", "")
		if err := f(); err != nil {
			phase(name, "failed", err.Error())
			return err
		}
		phase(name, "done", "")
		return nil
	}
	res := opts.Scan
	if res == nil {
		so := opts.ScanOptions
		so.Progress = nil
		if err := step("scan", func() error {
			var err error
			res, err = c.ScanContainerSecurity(ctx, image, cmp.Or(opts.ScanType, "full"), so)
			if res != nil && errors.Is(err, errdefs.ErrPolicyViolation) {
				err = nil // the threshold was reached: the report says so
			}
			return err
		}); err != nil {
			return fail(err)
		}
	}
	r := FromScan(res, opts.Now)
	r.ImageName = image
	ro := opts.ScanOptions.Registry
	inRegistry := res.ImageDigest != "" && !registry.IsLocalSource(image)
	if !inRegistry && !registry.IsLocalSource(image) && !strings.HasPrefix(image, registry.SourceRemote) {
		if eng, err := c.Engine(ctx); err == nil {
			if info, err := eng.InspectImage(ctx, strings.TrimPrefix(image, registry.SourceDaemon)); err == nil {
				r.ImageID = info.ID
				for _, rd := range info.RepoDigests {
					if _, d, ok := strings.Cut(rd, "@"); ok {
						r.ImageDigest = d
						break
					}
				}
			}
		}
	}
	if pol := cmp.Or(opts.Policy, c.Policy()); pol != nil {
		gate := opts.Gate
		if gate == "" {
			gate = policy.GateCreate
			if inRegistry {
				gate = policy.GateApply
			}
		}
		if err := step("policy", func() error {
			// The gates take a reference: docker:// says where a scan reads, not what the image is called.
			v, err := c.CheckPolicy(ctx, strings.TrimPrefix(image, registry.SourceRemote), containerization.CheckPolicyOptions{Gate: gate, Policy: pol, Registry: ro, Scan: res,
				Engine: opts.ScanOptions.Engine})
			r.PolicyVerdict = v
			return err
		}); err != nil {
			return fail(err)
		}
	}
	if len(opts.Keys) > 0 {
		if !inRegistry {
			r.Notes = append(r.Notes, "signatures were not verified: they are kept in a registry, and this image was not read from one (report on docker://REF)")
		} else if err := step("signatures", func() error {
			v, err := c.VerifyImage(ctx, image, containerization.VerifyOptions{Keys: opts.Keys, Registry: ro})
			var se *signature.Error
			switch {
			case err == nil:
				r.Signatures = &Signatures{Verified: true, Verification: v}
			case errors.As(err, &se) || (v != nil && errors.Is(err, errdefs.ErrPolicyViolation)):
				r.Signatures = &Signatures{Verification: v, Error: err.Error()}
			default:
				return err
			}
			return nil
		}); err != nil {
			return fail(err)
		}
	}
	if inRegistry {
		if err := step("evidence", func() error {
			list, err := c.AttachedEvidence(ctx, refByDigest(image, res.ImageDigest), ro)
			r.Evidence = list
			return err
		}); err != nil {
			return fail(err)
		}
	} else {
		r.Notes = append(r.Notes, "attached evidence was not listed: it refers to a digest in a registry, and this image was not read from one")
	}
	if err := step("optimization", func() error {
		rec, err := c.OptimizationRecord(ctx, image, ro)
		r.Optimization = rec
		return err
	}); err != nil {
		return fail(err)
	}
	r.Verdict = verdictOf(r)
	return r, nil
}

// refByDigest is image's repository at digest: the evidence listed is that of the image scanned, even if its tag
// has moved since.
func refByDigest(image, digest string) string {
	scheme, bare := registry.SplitScheme(strings.TrimPrefix(image, registry.SourceRemote))
	if i := strings.LastIndex(bare, "@"); i >= 0 {
		bare = bare[:i]
	}
	// A tag is what follows the last colon after the last slash (a port comes before a slash).
	if i := strings.LastIndex(bare, ":"); i > strings.LastIndex(bare, "/") {
		bare = bare[:i]
	}
	return scheme + bare + "@" + digest
}

// FromScan is the report of a scan result alone (generate_security_report(scan_result)): nothing else is
// gathered, so it has no policy verdict, signatures or evidence unless the caller adds them. now is the report's
// time (zero: now).
func FromScan(res *containerization.SecurityScanResult, now time.Time) *Report {
	if now.IsZero() {
		now = time.Now()
	}
	r := &Report{ImageName: res.ImageName, ImageDigest: res.ImageDigest, GeneratedAt: now.UTC().Truncate(time.Second),
		Generator: "myrmex " + containerization.Version(), ScanResult: res}
	if res.Evidence != nil {
		r.Evidence = append(r.Evidence, *res.Evidence)
	}
	if res.SBOMEvidence != nil {
		r.Evidence = append(r.Evidence, *res.SBOMEvidence)
	}
	r.Verdict = verdictOf(r)
	return r
}

// verdictOf sums up what judged the image.
func verdictOf(r *Report) string {
	judged, failed, warned := false, false, false
	if v := r.PolicyVerdict; v != nil && v.Mode != policy.Off {
		judged = true
		switch {
		case v.Allowed:
		case v.Mode == policy.Warn:
			warned = true
		default:
			failed = true
		}
	}
	if s := r.ScanResult; s != nil && !s.PolicyPassed {
		judged, failed = true, true
	}
	if r.Signatures != nil {
		judged = true
		failed = failed || !r.Signatures.Verified
	}
	switch {
	case failed:
		return VerdictFailed
	case warned:
		return VerdictWarned
	case judged:
		return VerdictPassed
	}
	return VerdictNone
}

// Bounds on a scan result read from outside (a file, a request).
const (
	// MaxScanSize bounds a scan result's JSON.
	MaxScanSize = 32 << 20
	// maxFindings and maxChecks bound its lists.
	maxFindings = 100000
	maxChecks   = 1000
)

// ReadScan reads a SecurityScanResult as `myrmex scan -o json` writes it, from r, at most MaxScanSize bytes, and
// checks it is one ([Check]). Errors wrap ErrInvalidArgument.
func ReadScan(r io.Reader) (*containerization.SecurityScanResult, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxScanSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the scan result: %w", err)
	}
	if len(b) > MaxScanSize {
		return nil, fmt.Errorf("%w: the scan result is larger than %d bytes", errdefs.ErrInvalidArgument, MaxScanSize)
	}
	return ParseScan(b)
}

// ParseScan reads a SecurityScanResult from JSON and checks it is one ([Check]).
func ParseScan(b []byte) (*containerization.SecurityScanResult, error) {
	if len(b) > MaxScanSize {
		return nil, fmt.Errorf("%w: the scan result is larger than %d bytes", errdefs.ErrInvalidArgument, MaxScanSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var res containerization.SecurityScanResult
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("%w: not a scan result (myrmex scan -o json): %v", errdefs.ErrInvalidArgument, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: not a scan result: more than one JSON value", errdefs.ErrInvalidArgument)
	}
	if err := Check(&res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Severities are the severities of findings, most severe first.
var Severities = []string{"critical", "high", "medium", "low", "unknown"}

// Check reports whether res reads as a scan result: an image, a time and a tool, findings of known severities
// whose number agrees with the counts, within bounds. Errors wrap ErrInvalidArgument.
func Check(res *containerization.SecurityScanResult) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: not a scan result (myrmex scan -o json): %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	switch {
	case res == nil:
		return bad("none")
	case strings.TrimSpace(res.ImageName) == "":
		return bad("no image_name")
	case res.ScanTimestamp.IsZero():
		return bad("no scan_timestamp")
	case res.ScanTool == "":
		return bad("no scan_tool")
	case res.Vulnerabilities == nil:
		return bad("no vulnerabilities list")
	case len(res.Vulnerabilities)+len(res.Ignored) > maxFindings:
		return bad("%d findings, more than %d", len(res.Vulnerabilities)+len(res.Ignored), maxFindings)
	case len(res.Compliance) > maxChecks:
		return bad("%d compliance checks, more than %d", len(res.Compliance), maxChecks)
	case res.ComplianceScore != nil && (*res.ComplianceScore < 0 || *res.ComplianceScore > 100):
		return bad("compliance_score %g is not within 0 to 100", *res.ComplianceScore)
	}
	counts := map[string]int{}
	for _, v := range res.Vulnerabilities {
		if !slices.Contains(Severities, v.Severity) {
			return bad("finding %q has severity %q", v.CVEID, v.Severity)
		}
		counts[v.Severity]++
	}
	for sev, n := range map[string]int{"critical": res.CriticalCount, "high": res.HighCount, "medium": res.MediumCount, "low": res.LowCount, "unknown": res.UnknownCount} {
		if counts[sev] != n {
			return bad("%s_count is %d, but %d findings are %s", sev, n, counts[sev], sev)
		}
	}
	return nil
}
