package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// debianScanImage makes sure the real Debian test image is in the engine (built once, then cached), and gives
// the test a fresh cache directory with an advisory database imported from the fixtures by myrmex db import.
func debianScanImage(t *testing.T) string {
	t.Helper()
	eng := testEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Before MYRMEX_CACHE_DIR moves: the image's build cache lives in the user's cache directory.
	img, err := testimages.EnsureDebian(ctx, eng, testimages.DebianOptions{})
	if errors.Is(err, errdefs.ErrUnavailable) && !testenv.Required() {
		t.Skipf("cannot build the Debian test image here: %v", err)
	}
	if err != nil {
		t.Fatalf("EnsureDebian() = %v", err)
	}
	t.Setenv("MYRMEX_CACHE_DIR", t.TempDir())
	src, _ := advisoryFixtures(t)
	mustRun(t, "db", "import", src)
	return img.Ref
}

// expect runs myrmex and fails the test unless it exits with code.
func expect(t *testing.T, code int, args ...string) result {
	t.Helper()
	r := myrmex(t, args...)
	if r.code != code {
		t.Fatalf("myrmex %q = exit %d, want %d; stdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

func scanResult(t *testing.T, r result) containerization.SecurityScanResult {
	t.Helper()
	var res containerization.SecurityScanResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("scan -o json: %v\n%s", err, r.stdout)
	}
	return res
}

// finding returns the finding of id in pkg, if any.
func finding(res containerization.SecurityScanResult, id, pkg string) (containerization.Vulnerability, bool) {
	i := slices.IndexFunc(res.Vulnerabilities, func(v containerization.Vulnerability) bool { return v.CVEID == id && v.Package == pkg })
	if i < 0 {
		return containerization.Vulnerability{}, false
	}
	return res.Vulnerabilities[i], true
}

// bomVulnerability is the part of a CycloneDX vulnerability that the tests read.
type bomVulnerability struct {
	ID      string `json:"id"`
	Ratings []struct {
		Score    float64 `json:"score"`
		Severity string  `json:"severity"`
		Method   string  `json:"method"`
	} `json:"ratings"`
	Recommendation string                 `json:"recommendation"`
	Affects        []struct{ Ref string } `json:"affects"`
}

func TestScanDebianImage(t *testing.T) {
	image := debianScanImage(t)

	t.Run("json", func(t *testing.T) {
		r := expect(t, cli.ExitOK, "scan", image, "-o", "json")
		var fields map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &fields); err != nil {
			t.Fatalf("scan -o json: %v\n%s", err, r.stdout)
		}
		for _, f := range []string{"image_name", "scan_timestamp", "scan_duration", "vulnerabilities", "compliance_score",
			"critical_count", "high_count", "medium_count", "low_count", "recommendations", "scan_tool"} {
			if _, ok := fields[f]; !ok {
				t.Errorf("scan -o json has no field %q", f)
			}
		}
		res := scanResult(t, r)
		for _, want := range []containerization.Vulnerability{
			{CVEID: "CVE-2021-23337", Package: "lodash", Version: "4.17.20", FixedVersion: "4.17.21", Severity: "high"},
			{CVEID: "CVE-2021-44906", Package: "minimist", Version: "1.2.5", FixedVersion: "1.2.6", Severity: "critical"},
		} {
			got, ok := finding(res, want.CVEID, want.Package)
			if !ok || got.Version != want.Version || got.FixedVersion != want.FixedVersion || got.Severity != want.Severity {
				t.Errorf("scan -o json finding %s in %s = %+v, want %+v", want.CVEID, want.Package, got, want)
			}
		}
		if res.ImageName != image || !res.PolicyPassed || res.CriticalCount < 1 || res.ComplianceScore == nil {
			t.Errorf("scan -o json = image %q, policy %v, critical %d, compliance %v", res.ImageName, res.PolicyPassed,
				res.CriticalCount, res.ComplianceScore)
		}
	})

	t.Run("table", func(t *testing.T) {
		r := expect(t, cli.ExitOK, "scan", image)
		lines := strings.Split(r.stdout, "\n")
		header := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "SEVERITY") })
		if header < 0 || header+1 >= len(lines) {
			t.Fatalf("scan table has no findings:\n%s", r.stdout)
		}
		if cols := strings.Fields(lines[header]); !slices.Equal(cols, []string{"SEVERITY", "ID", "PACKAGE", "INSTALLED", "FIXED", "LAYER", "TITLE"}) {
			t.Errorf("scan table columns = %q", cols)
		}
		if first := strings.Fields(lines[header+1]); len(first) < 6 || first[0] != "CRITICAL" || first[1] != "CVE-2021-44906" ||
			first[2] != "minimist" || len(first[5]) != 12 {
			t.Errorf("scan table's first finding = %q, want the critical minimist one with a 12-character layer", lines[header+1])
		}
		for _, want := range []string{"Image:", "Packages scanned:", "Database:", "Compliance score:", "CIS-DI-0001", "Recommendations:"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("scan table has no %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("threshold", func(t *testing.T) {
		// A policy failure prints the result as usual and exits 7.
		r := expect(t, cli.ExitPolicy, "scan", image, "--severity-threshold", "critical")
		if !strings.Contains(r.stdout, "CVE-2021-44906") || !strings.Contains(r.stdout, "Policy:") {
			t.Errorf("scan --severity-threshold critical printed no result:\n%s", r.stdout)
		}
		// --exit-code chooses the code, as Trivy's does; the result is still printed.
		r = expect(t, 3, "scan", image, "--severity-threshold", "critical", "--exit-code", "3", "-o", "json")
		if res := scanResult(t, r); res.PolicyPassed || res.CriticalCount == 0 {
			t.Errorf("scan with a failed policy -o json = policy %v, critical %d", res.PolicyPassed, res.CriticalCount)
		}
		expect(t, cli.ExitOK, "scan", image, "--severity-threshold", "critical", "--exit-code", "0", "-o", "json")
		// --exit-code alone fails on any finding, as Trivy's does: here the OS packages' medium and low ones.
		expect(t, 4, "scan", image, "--type", "quick", "--exit-code", "4", "-o", "json")
		// Ignoring the one critical finding passes the policy, and the result says why it was set aside.
		r = expect(t, cli.ExitOK, "scan", image, "--severity-threshold", "critical", "--ignore", "CVE-2021-44906", "-o", "json")
		if res := scanResult(t, r); len(res.Ignored) != 1 || res.Ignored[0].CVEID != "CVE-2021-44906" {
			t.Errorf("scan --ignore CVE-2021-44906 ignored = %+v", res.Ignored)
		}
	})

	t.Run("sarif", func(t *testing.T) {
		r := expect(t, cli.ExitOK, "scan", image, "-o", "sarif")
		var log struct {
			Version string `json:"version"`
			Runs    []struct {
				Tool struct {
					Driver struct {
						Name  string `json:"name"`
						Rules []struct {
							ID         string `json:"id"`
							HelpURI    string `json:"helpUri"`
							Properties struct {
								SecuritySeverity string `json:"security-severity"`
							} `json:"properties"`
						} `json:"rules"`
					} `json:"driver"`
				} `json:"tool"`
				Results []struct {
					RuleID    string `json:"ruleId"`
					RuleIndex int    `json:"ruleIndex"`
					Level     string `json:"level"`
					Message   struct{ Text string }
					Locations []struct {
						PhysicalLocation struct {
							ArtifactLocation struct{ URI string }
						}
					}
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &log); err != nil {
			t.Fatalf("scan -o sarif is not JSON: %v\n%s", err, r.stdout)
		}
		if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "myrmex" {
			t.Fatalf("scan -o sarif = version %q, %d runs; want 2.1.0, one run of myrmex", log.Version, len(log.Runs))
		}
		run := log.Runs[0]
		var found, check bool
		for _, res := range run.Results {
			rule := run.Tool.Driver.Rules[res.RuleIndex]
			if rule.ID != res.RuleID {
				t.Errorf("result %s points at rule %s", res.RuleID, rule.ID)
			}
			if len(res.Locations) != 1 || res.Locations[0].PhysicalLocation.ArtifactLocation.URI != image {
				t.Errorf("result %s locations = %+v, want the image", res.RuleID, res.Locations)
			}
			switch res.RuleID {
			case "CVE-2021-44906":
				found = true
				if res.Level != "error" || rule.Properties.SecuritySeverity != "9.8" || rule.HelpURI == "" ||
					!strings.Contains(res.Message.Text, "minimist") || !strings.Contains(res.Message.Text, "1.2.6") {
					t.Errorf("CVE-2021-44906 = level %q, rule %+v, message %q", res.Level, rule, res.Message.Text)
				}
			case "CIS-DI-0001":
				check = true
			}
		}
		if !found || !check {
			t.Errorf("scan -o sarif results: CVE-2021-44906 %v, CIS-DI-0001 %v; want both", found, check)
		}
	})

	t.Run("cyclonedx", func(t *testing.T) {
		r := expect(t, cli.ExitOK, "scan", image, "-o", "cyclonedx")
		var bom struct {
			BOMFormat    string `json:"bomFormat"`
			SpecVersion  string `json:"specVersion"`
			SerialNumber string `json:"serialNumber"`
			Metadata     struct {
				Component struct{ Type, Name string }
			}
			Components []struct {
				BOMRef  string `json:"bom-ref"`
				Name    string `json:"name"`
				Version string `json:"version"`
			}
			Vulnerabilities []bomVulnerability `json:"vulnerabilities"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &bom); err != nil {
			t.Fatalf("scan -o cyclonedx is not JSON: %v\n%s", err, r.stdout)
		}
		if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.5" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") ||
			bom.Metadata.Component.Type != "container" || bom.Metadata.Component.Name != image {
			t.Errorf("scan -o cyclonedx = %s %s %s, subject %+v", bom.BOMFormat, bom.SpecVersion, bom.SerialNumber, bom.Metadata.Component)
		}
		refs := map[string]string{}
		for _, c := range bom.Components {
			refs[c.BOMRef] = c.Name + "@" + c.Version
		}
		i := slices.IndexFunc(bom.Vulnerabilities, func(v bomVulnerability) bool { return v.ID == "CVE-2021-44906" })
		if i < 0 {
			t.Fatalf("scan -o cyclonedx has no CVE-2021-44906: %s", r.stdout)
		}
		v := bom.Vulnerabilities[i]
		if len(v.Ratings) != 1 || v.Ratings[0].Score != 9.8 || v.Ratings[0].Severity != "critical" || v.Ratings[0].Method != "CVSSv31" ||
			len(v.Affects) != 1 || refs[v.Affects[0].Ref] != "minimist@1.2.5" || v.Recommendation != "upgrade minimist to 1.2.6" {
			t.Errorf("CVE-2021-44906 in the BOM = %+v (components %v)", v, refs)
		}
	})

	t.Run("compliance", func(t *testing.T) {
		r := expect(t, cli.ExitOK, "scan", image, "--type", "compliance")
		if !slices.ContainsFunc(strings.Split(r.stdout, "\n"), func(l string) bool { return strings.HasPrefix(l, "CIS-DI-0001 ") }) {
			t.Errorf("scan --type compliance does not show CIS-DI-0001 failed:\n%s", r.stdout)
		}
		if strings.Contains(r.stdout, "SEVERITY") || strings.Contains(r.stdout, "Packages scanned") {
			t.Errorf("scan --type compliance shows vulnerabilities:\n%s", r.stdout)
		}
	})

	t.Run("missing", func(t *testing.T) {
		mem := testenv.InProcess(t)
		for _, args := range [][]string{
			{"scan", "docker://" + mem.Ref("clitest/absent:1")},
			{"scan", image, "--db-dir", t.TempDir()},
		} {
			if r := expect(t, cli.ExitNotFound, args...); r.stdout != "" {
				t.Errorf("myrmex %q stdout = %q, want nothing", args, r.stdout)
			}
		}
	})
}
