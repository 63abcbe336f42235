package containerization

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/scan"
	"github.com/codomyrmex/containerization/scan/inventory"
	"github.com/codomyrmex/containerization/scan/match"
)

// ScanOptions are the scanning options of [ScanContainerSecurity]. The zero value runs a full scan against the
// advisory database in its default directory, with no threshold.
type ScanOptions struct {
	// SeverityThreshold (critical, high, medium, low): findings at or above it fail the scan's policy, which
	// ScanContainerSecurity reports as a SecurityScanError wrapping ErrPolicyViolation, with the full result.
	SeverityThreshold string
	// IgnoreRules are vulnerability ids (CVE, GHSA, DSA…) and compliance check ids to set aside.
	IgnoreRules []string
	// IgnoreFile is a YAML file of vulnerabilities to ignore, each with a statement and an expiry, in Trivy's
	// .trivyignore.yaml form.
	IgnoreFile string
	// DBDir is the advisory database's directory; empty means the default (see package scan/vulndb).
	DBDir string
	// MaxDBAge is the age past which the database is reported stale; zero means a week.
	MaxDBAge time.Duration
	// Cache is the per-layer inventory cache directory; empty means the default, "-" none.
	Cache string
	// Limits bound what an image may make the scan read and hold (layer and image sizes, entries, layers, the
	// cache's size); zero fields are the defaults of package scan/inventory.
	Limits inventory.Limits
	// Registry options for an image read from a registry (credentials, CA, platform).
	Registry RegistryOptions
	// Attach stores the result in the image's registry as an OCI artifact that refers to the image's digest
	// (evidence the policy's gates reuse; see docs/policy.md). The image must be read from a registry.
	Attach bool
	// marks are more annotations for the attached scan (the push gate's verdict).
	marks map[string]string
	// Progress receives the scan's phases: the image opened (Phase "open"), then the scan itself ("scan"),
	// each started and done (or failed).
	Progress func(Event)
	// Engine reuses a connected engine client; else one is opened to Host, and an image the engine does not hold
	// (or no engine at all) is read from its registry.
	Engine *engine.Client
	Host   string
	Logger *slog.Logger
}

// ScanContainerSecurity scans an image for vulnerabilities and compliance (scan_container_security). imageName is
// an image in the engine, in a registry (docker://REF to skip the engine), a docker save tarball
// (docker-archive:FILE) or an OCI layout (oci:DIR[:TAG]). scanType is full (OS and language packages, and
// compliance), quick (OS packages only) or compliance (configuration and filesystem checks only).
//
// Errors are *[SecurityScanError]: ErrInvalidArgument for bad input, ErrNotFound for a missing image or
// database, ErrPolicyViolation when findings are at or above the threshold — then the result is complete and
// returned too.
func (c *Client) ScanContainerSecurity(ctx context.Context, imageName, scanType string, opts ScanOptions) (*SecurityScanResult, error) {
	fail := func(op string, err error) (*SecurityScanResult, error) {
		return nil, &SecurityScanError{Op: op, Image: imageName, Err: err}
	}
	if strings.TrimSpace(imageName) == "" {
		return fail("scan", fmt.Errorf("%w: an image name is required", ErrInvalidArgument))
	}
	typ, err := scan.ParseType(scanType)
	if err != nil {
		return fail("scan", err)
	}
	var threshold match.Severity
	if opts.SeverityThreshold != "" {
		if threshold, err = match.ParseSeverity(opts.SeverityThreshold); err != nil {
			return fail("scan", err)
		}
	}
	rules, checks := splitIgnores(opts.IgnoreRules)
	if opts.IgnoreFile != "" {
		more, err := match.LoadIgnoreFile(opts.IgnoreFile)
		if err != nil {
			return fail("scan", err)
		}
		rules = append(rules, more...)
	}
	phase := func(name, status, msg string) {
		if opts.Progress != nil {
			opts.Progress(Event{Time: time.Now(), Op: "scan", Phase: name, Subject: imageName, Status: status, Message: msg})
		}
	}
	fromRegistry := c.fromRegistry(ctx, imageName, opts.Engine)
	if opts.Attach && !fromRegistry {
		return fail("attach", fmt.Errorf("%w: attaching a scan needs an image read from a registry (docker://REF), not %s", ErrInvalidArgument, imageName))
	}
	identity := identityOf(imageName) // before the image is read: see identityOf
	phase("open", "started", "")
	img, cleanup, err := c.openImage(ctx, imageName, opts.Engine, opts.Registry)
	if err != nil {
		phase("open", "failed", err.Error())
		return fail("scan", err)
	}
	defer cleanup()
	phase("open", "done", "")

	phase("scan", "started", string(typ))
	so := scan.Options{
		Type: typ, SeverityThreshold: threshold, Ignore: rules, IgnoreChecks: checks,
		DBDir: opts.DBDir, MaxDBAge: opts.MaxDBAge, Cache: opts.Cache, Limits: opts.Limits, Identity: identity,
	}
	if typ != scan.Compliance {
		// The client's handle: the database's indexes are read once, not per scan.
		if so.DB, err = c.advisoryDB(opts.DBDir); err != nil {
			phase("scan", "failed", err.Error())
			return fail("scan", err)
		}
	}
	rep, err := scan.Image(ctx, img, referenceOf(imageName), so)
	if err != nil {
		phase("scan", "failed", err.Error())
		return fail("scan", err)
	}
	findings := 0
	if rep.Match != nil {
		findings = len(rep.Match.Findings)
	}
	phase("scan", "done", fmt.Sprintf("%d packages, %d findings", len(rep.Packages), findings))
	res := resultOf(imageName, rep)
	res.packages = rep.Packages
	if fromRegistry {
		if d, err := img.Digest(); err == nil {
			res.ImageDigest = d.String()
		}
	}
	if opts.Attach {
		if res.Evidence, res.SBOMEvidence, err = c.attachScan(ctx, imageName, res, opts.Registry, opts.marks); err != nil {
			return res, &SecurityScanError{Op: "attach", Image: imageName, Err: err}
		}
	}
	if !rep.PolicyPassed {
		n := len(rep.Match.Violations)
		return res, &SecurityScanError{Op: "policy", Image: imageName,
			Err: fmt.Errorf("%d finding(s) at or above %s: %w", n, threshold, ErrPolicyViolation)}
	}
	return res, nil
}

// identityOf names the content of a local archive by its file (scan.FileIdentity), so that a re-scan of the
// unchanged file reads no layer. It is read before the image is opened: a file changed after it has another
// identity the next time. Other sources have none yet.
func identityOf(imageName string) string {
	if file, ok := strings.CutPrefix(imageName, registry.SourceArchive); ok {
		return scan.FileIdentity(file)
	}
	return ""
}

// referenceOf is the image reference imageName names, for the checks that read one (the latest tag): a path to
// an archive or a layout names none.
func referenceOf(imageName string) string {
	if registry.IsLocalSource(imageName) {
		return ""
	}
	s := strings.TrimPrefix(strings.TrimPrefix(imageName, registry.SourceRemote), registry.SourceDaemon)
	_, s = registry.SplitScheme(s)
	return s
}

// splitIgnores sorts ignore ids into vulnerability rules and compliance check ids.
func splitIgnores(ids []string) ([]match.IgnoreRule, []string) {
	var rules []match.IgnoreRule
	var checks []string
	for _, id := range ids {
		if strings.HasPrefix(id, "CIS-") || strings.HasPrefix(id, "DKL-") {
			checks = append(checks, id)
			continue
		}
		rules = append(rules, match.IgnoreRule{ID: id, Reason: "ignored by the caller"})
	}
	return rules, checks
}

func vulnerabilityOf(f match.Finding) Vulnerability {
	v := Vulnerability{
		CVEID: f.CVEID, Severity: string(f.Severity), Package: f.Package.Name, Version: f.InstalledVersion,
		FixedVersion: f.FixedVersion, Description: f.Description,
		ID: f.ID, Aliases: f.Aliases, Score: f.Score, Vector: f.Vector, Ecosystem: f.Package.Ecosystem, PURL: f.Package.PURL,
		Layer: f.Package.Layer.DiffID, URL: f.URL,
	}
	if f.Package.SourceName != "" && f.Package.SourceName != f.Package.Name {
		v.SourcePackage = f.Package.SourceName
	}
	if v.Description == "" {
		v.Description = f.Summary
	}
	return v
}

func resultOf(imageName string, rep *scan.Report) *SecurityScanResult {
	res := &SecurityScanResult{
		ImageName: imageName, ScanTimestamp: rep.Started.UTC(), ScanDuration: rep.Duration.Seconds(),
		Vulnerabilities: []Vulnerability{}, Recommendations: rep.Recommendations, ScanType: string(rep.Type),
		PolicyPassed: rep.PolicyPassed, PackagesScanned: len(rep.Packages), Warnings: rep.Warnings,
		ScanTool: scanTool(),
	}
	if rep.Match != nil {
		for _, f := range rep.Match.Findings {
			v := vulnerabilityOf(f)
			res.Vulnerabilities = append(res.Vulnerabilities, v)
			switch f.Severity {
			case match.SeverityCritical:
				res.CriticalCount++
			case match.SeverityHigh:
				res.HighCount++
			case match.SeverityMedium:
				res.MediumCount++
			case match.SeverityLow:
				res.LowCount++
			default:
				res.UnknownCount++
			}
		}
		for _, ig := range rep.Match.Ignored {
			v := vulnerabilityOf(ig.Finding)
			v.IgnoreReason = ig.Reason
			res.Ignored = append(res.Ignored, v)
		}
	}
	for _, p := range rep.Packages {
		if res.PackageEcosystems == nil {
			res.PackageEcosystems = map[string]int{}
		}
		res.PackageEcosystems[cmp.Or(p.Ecosystem, "unknown")]++
	}
	if rep.Compliance != nil {
		score := rep.Compliance.Score
		res.ComplianceScore = &score
		for _, c := range rep.Compliance.Checks {
			res.Compliance = append(res.Compliance, ComplianceCheck{
				ID: c.ID, Level: string(c.Level), Title: c.Title, Passed: c.Passed, Ignored: c.Ignored,
				Details: c.Details, Remediation: c.Remediation,
			})
		}
	}
	if rep.Database != nil {
		d := &DatabaseStatus{Dir: rep.Database.Dir, UpdatedAt: rep.Database.Updated, AgeHours: rep.Database.Age.Hours(),
			Records: rep.Database.Total, Ecosystems: map[string]int{}}
		for _, e := range rep.Database.Ecosystems {
			d.Ecosystems[e.Name] = e.Records
		}
		res.Database = d
	}
	return res
}

// scanTool names the scanner and the version of the library that lists the packages.
func scanTool() string {
	return "myrmex " + version() + " (osv-scalibr " + inventory.ScalibrVersion + " inventory, OSV advisories, Dockle checks)"
}

// openImage opens an image to read, as scans and analyses do: from the engine (own, else the client's) when it
// holds it, else from the registry it names; docker://REF from a registry only, docker-archive:FILE and
// oci:DIR[:TAG] from disk. Without an engine, a plain reference is read from its registry.
func (c *Client) openImage(ctx context.Context, imageName string, own *engine.Client, ro RegistryOptions) (v1.Image, func(), error) {
	ropts, err := c.registryOptions(ro, "", ro.Credentials, nil)
	if err != nil {
		return nil, nil, err
	}
	eng := own
	if eng == nil && !strings.HasPrefix(imageName, registry.SourceRemote) && !registry.IsLocalSource(imageName) {
		if e, err := c.engine(ctx); err == nil {
			eng = e
		}
	}
	var regEngine registry.Engine
	if eng != nil {
		regEngine = eng
	}
	return registry.OpenImage(ctx, regEngine, imageName, ropts)
}
