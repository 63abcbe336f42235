package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
)

// formatResult is a scan result with the cases the real image does not hold: one vulnerability in two packages
// with different fixes, a CVSS v4 and a v2 vector, a finding rated without a score, and failed, passed and
// ignored checks.
func formatResult() *containerization.SecurityScanResult {
	return &containerization.SecurityScanResult{
		ImageName: "example.com/app:1", ScanTimestamp: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), ScanType: "full",
		Vulnerabilities: []containerization.Vulnerability{
			{CVEID: "CVE-2025-0001", ID: "DEBIAN-CVE-2025-0001", Severity: "low", Package: "libfoo1", Version: "1.0-1",
				FixedVersion: "1.0-2", Ecosystem: "Debian:12", Description: "Foo overflows.\nMore detail.", Layer: "sha256:0123456789abcdef0123"},
			{CVEID: "CVE-2025-0001", ID: "DEBIAN-CVE-2025-0001", Severity: "low", Package: "foo-bin", Version: "1.0-1",
				FixedVersion: "1.0-3", Ecosystem: "Debian:12", Description: "Foo overflows.\nMore detail."},
			{CVEID: "CVE-2025-0002", ID: "GHSA-aaaa-bbbb-cccc", Aliases: []string{"CVE-2025-0002"}, Severity: "medium", Score: 5.3,
				Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", Package: "bar", Version: "2.0.0",
				Ecosystem: "npm", URL: "https://github.com/advisories/GHSA-aaaa-bbbb-cccc"},
			{CVEID: "CVE-2009-0003", Severity: "high", Score: 7.5, Vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P", Package: "baz",
				Version: "0.1", FixedVersion: "0.2", Ecosystem: "PyPI"},
		},
		Compliance: []containerization.ComplianceCheck{
			{ID: "CIS-DI-0006", Level: "WARN", Title: "Add HEALTHCHECK", Remediation: "Add one."},
			{ID: "CIS-DI-0001", Level: "WARN", Title: "Create a user", Passed: true},
			{ID: "DKL-DI-0005", Level: "FATAL", Title: "Clear apt-get caches", Ignored: true},
			{ID: "DKL-LI-0003", Level: "INFO", Title: "Only put necessary files", Details: []string{"a", "b", "c", "d", "e"}},
		},
	}
}

func TestSARIF(t *testing.T) {
	t.Parallel()
	log := sarifOf(formatResult())
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("sarifOf() = version %q, %d runs", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	var ruleIDs []string
	for _, r := range run.Tool.Driver.Rules {
		ruleIDs = append(ruleIDs, r.ID)
	}
	// A rule per vulnerability, most severe first, then per failed check: the passed and ignored ones have none.
	if want := []string{"CVE-2009-0003", "CVE-2025-0002", "CVE-2025-0001", "CIS-DI-0006", "DKL-LI-0003"}; !slices.Equal(ruleIDs, want) {
		t.Errorf("sarifOf() rules = %q, want %q", ruleIDs, want)
	}
	type got struct{ rule, level, severity string }
	var results []got
	for _, res := range run.Results {
		rule := run.Tool.Driver.Rules[res.RuleIndex]
		if rule.ID != res.RuleID {
			t.Errorf("result %s has ruleIndex %d, which is %s", res.RuleID, res.RuleIndex, rule.ID)
		}
		results = append(results, got{res.RuleID, res.Level, rule.Properties.SecuritySeverity})
	}
	want := []got{
		{"CVE-2009-0003", "error", "7.5"},
		{"CVE-2025-0002", "warning", "5.3"},
		{"CVE-2025-0001", "note", ""}, // rated by the distribution, no score
		{"CVE-2025-0001", "note", ""}, // the same vulnerability in a second package: a result, not a rule
		{"CIS-DI-0006", "warning", ""},
		{"DKL-LI-0003", "note", ""},
	}
	if !slices.Equal(results, want) {
		t.Errorf("sarifOf() results = %v, want %v", results, want)
	}
	if msg := run.Results[5].Message.Text; msg != "Only put necessary files: a; b; c; and 2 more" {
		t.Errorf("check message = %q", msg)
	}
	if msg := run.Results[2].Message.Text; !strings.Contains(msg, "foo-bin 1.0-1") || !strings.Contains(msg, "fixed in 1.0-3") {
		t.Errorf("vulnerability message = %q, want the package, its version and the fix", msg)
	}
	if d := run.Tool.Driver.Rules[2].ShortDescription.Text; d != "Foo overflows." {
		t.Errorf("rule shortDescription = %q, want the description's first line", d)
	}
}

func TestCycloneDX(t *testing.T) {
	t.Parallel()
	bom := cycloneDXOf(formatResult())
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(bom.SerialNumber) {
		t.Errorf("serialNumber = %q, want an RFC 4122 v4 urn:uuid", bom.SerialNumber)
	}
	if bom.SpecVersion != "1.5" || bom.Metadata.Timestamp != "2025-06-01T12:00:00Z" || bom.Metadata.Component.Name != "example.com/app:1" {
		t.Errorf("bom = %s, %s, %+v", bom.SpecVersion, bom.Metadata.Timestamp, bom.Metadata.Component)
	}
	if len(bom.Components) != 4 {
		t.Errorf("components = %+v, want the four affected packages", bom.Components)
	}
	type got struct {
		id, method, severity string
		affects              int
		recommendation       string
	}
	var vulns []got
	for _, v := range bom.Vulnerabilities {
		vulns = append(vulns, got{v.ID, v.Ratings[0].Method, v.Ratings[0].Severity, len(v.Affects), v.Recommendation})
	}
	want := []got{
		{"CVE-2009-0003", "CVSSv2", "high", 1, "upgrade baz to 0.2"},
		{"CVE-2025-0002", "CVSSv4", "medium", 1, ""},
		{"CVE-2025-0001", "", "low", 2, "upgrade foo-bin to 1.0-3, libfoo1 to 1.0-2"},
	}
	if !slices.Equal(vulns, want) {
		t.Errorf("vulnerabilities = %v, want %v", vulns, want)
	}
	if refs := bom.Vulnerabilities[1].References; len(refs) != 1 || refs[0].ID != "GHSA-aaaa-bbbb-cccc" {
		t.Errorf("CVE-2025-0002 references = %+v, want its GHSA id", refs)
	}
}

func TestPrintScanTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := printScanTable(&b, formatResult(), ""); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	for _, want := range []string{
		"SEVERITY ID PACKAGE INSTALLED FIXED LAYER TITLE",
		"HIGH CVE-2009-0003 baz 0.1 0.2 -",
		"MEDIUM CVE-2025-0002 bar 2.0.0 - -",
		"LOW CVE-2025-0001 libfoo1 1.0-1 1.0-2 0123456789ab Foo overflows.",
		"CHECK LEVEL TITLE",
		"CIS-DI-0006 WARN Add HEALTHCHECK",
	} {
		if !slices.Contains(rows, want) {
			t.Errorf("printScanTable() has no row %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DKL-DI-0005") || strings.Contains(out, "CIS-DI-0001 ") {
		t.Errorf("printScanTable() lists an ignored or passed check:\n%s", out)
	}
}
