package containerization_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/scan/inventory"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// advisoryDB imports the real advisories of the fixtures into a fresh database; only keeps the files whose name
// a filter accepts.
func advisoryDB(t *testing.T, keep func(string) bool) string {
	t.Helper()
	src := t.TempDir()
	for _, dir := range []string{"scan/match/testdata", "testdata/osv"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range files {
			if keep != nil && !keep(filepath.Base(f)) {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	if _, err := vulndb.Import(context.Background(), src, vulndb.Options{Dir: dir}); err != nil {
		t.Fatalf("vulndb.Import() = %v", err)
	}
	return dir
}

func debianImage(t *testing.T) (testimages.DebianImage, containerization.ScanOptions) {
	t.Helper()
	eng := testenv.Engine(t)
	img, err := testimages.EnsureDebian(context.Background(), eng, testimages.DebianOptions{})
	if errors.Is(err, errdefs.ErrUnavailable) && !testenv.Required() {
		t.Skipf("cannot build the Debian test image here: %v", err)
	}
	if err != nil {
		t.Fatalf("EnsureDebian() = %v", err)
	}
	return img, containerization.ScanOptions{Engine: eng, Cache: t.TempDir()}
}

type finding struct{ cve, pkg, fixed string }

func findingsOf(vs []containerization.Vulnerability) []finding {
	var out []finding
	for _, v := range vs {
		out = append(out, finding{v.CVEID, v.Package, v.FixedVersion})
	}
	slices.SortFunc(out, func(a, b finding) int { return strings.Compare(a.cve+a.pkg, b.cve+b.pkg) })
	return out
}

// TestScanFindsExactlyWhatTheAdvisoriesSay scans the real Debian test image against real advisories and checks
// the exact findings: each positive, and none of the negative controls (a fix older than the shipped version,
// an advisory for another Debian release, a withdrawn record, packages the image does not have).
func TestScanFindsExactlyWhatTheAdvisoriesSay(t *testing.T) {
	ctx := context.Background()
	img, opts := debianImage(t)
	opts.DBDir = advisoryDB(t, nil)

	var osWant []finding
	for _, p := range img.Dpkg {
		switch p.SourceName {
		case "glibc":
			osWant = append(osWant, finding{"CVE-2010-4756", p.Name, ""})
		case "ncurses":
			osWant = append(osWant, finding{"CVE-2025-6141", p.Name, ""})
		}
	}
	if len(osWant) < 3 {
		t.Fatalf("the image has %d glibc and ncurses packages, want libc6, libc-bin and ncurses ones", len(osWant))
	}
	langWant := []finding{
		{"CVE-2021-23337", "lodash", "4.17.21"},
		{"CVE-2021-38561", "golang.org/x/text", "0.3.7"},
		{"CVE-2021-44906", "minimist", "1.2.6"},
		{"CVE-2023-32681", "requests", "2.31.0"},
	}
	sorted := func(fs ...[]finding) []finding {
		out := slices.Concat(fs...)
		slices.SortFunc(out, func(a, b finding) int { return strings.Compare(a.cve+a.pkg, b.cve+b.pkg) })
		return out
	}

	full, err := containerization.ScanContainerSecurity(ctx, img.Ref, "full", opts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(full) = %v", err)
	}
	if got, want := findingsOf(full.Vulnerabilities), sorted(osWant, langWant); !slices.Equal(got, want) {
		t.Errorf("full scan findings =\n%v\nwant\n%v", got, want)
	}
	bySev := map[string]string{}
	for _, v := range full.Vulnerabilities {
		bySev[v.Package+" "+v.CVEID] = v.Severity
	}
	if bySev["minimist CVE-2021-44906"] != "critical" || bySev["lodash CVE-2021-23337"] != "high" {
		t.Errorf("severities = %v, want minimist critical (CVSS 9.8) and lodash high (7.2)", bySev)
	}
	if full.CriticalCount < 1 || full.HighCount < 1 || full.PackagesScanned < 80 || full.ComplianceScore == nil ||
		full.ScanDuration <= 0 || full.ScanTool == "" || full.Database == nil || !full.PolicyPassed {
		t.Errorf("full scan = counts %d/%d/%d/%d, %d packages, compliance %v, duration %v, tool %q, db %v, policy %v",
			full.CriticalCount, full.HighCount, full.MediumCount, full.LowCount, full.PackagesScanned, full.ComplianceScore,
			full.ScanDuration, full.ScanTool, full.Database, full.PolicyPassed)
	}
	// The inventory library's version as go.mod requires it, never a version written by hand.
	if gomod, err := os.ReadFile("go.mod"); err != nil {
		t.Error(err)
	} else if m := regexp.MustCompile(`github.com/google/osv-scalibr (v\S+)`).FindSubmatch(gomod); m == nil || !strings.Contains(full.ScanTool, "osv-scalibr "+string(m[1])+" ") {
		t.Errorf("scan_tool = %q, want osv-scalibr's version from go.mod (%s)", full.ScanTool, m)
	}
	if !hasLine(full.Recommendations, "upgrade npm minimist from 1.2.5 to 1.2.6") || !hasLine(full.Recommendations, "[CIS-DI-0006]") {
		t.Errorf("recommendations = %q, want the minimist upgrade and the HEALTHCHECK remediation", full.Recommendations)
	}

	quick, err := containerization.ScanContainerSecurity(ctx, img.Ref, "quick", opts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(quick) = %v", err)
	}
	if got, want := findingsOf(quick.Vulnerabilities), sorted(osWant); !slices.Equal(got, want) {
		t.Errorf("quick scan findings = %v, want the OS packages' only: %v", got, want)
	}
	if quick.ComplianceScore != nil || len(quick.Compliance) != 0 {
		t.Errorf("quick scan ran compliance checks: score %v", quick.ComplianceScore)
	}

	comp, err := containerization.ScanContainerSecurity(ctx, img.Ref, "compliance", opts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(compliance) = %v", err)
	}
	failed := map[string]bool{}
	for _, c := range comp.Compliance {
		if !c.Passed {
			failed[c.ID] = true
		}
	}
	if len(comp.Vulnerabilities) != 0 || comp.ComplianceScore == nil || *comp.ComplianceScore >= 100 ||
		!failed["CIS-DI-0001"] || !failed["CIS-DI-0006"] {
		t.Errorf("compliance scan = %d findings, score %v, failed %v; want no findings, a score below 100, CIS-DI-0001 and 0006 failed",
			len(comp.Vulnerabilities), comp.ComplianceScore, failed)
	}
}

func hasLine(lines []string, prefix string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

func TestScanPolicyIgnoresAndMissingEcosystems(t *testing.T) {
	ctx := context.Background()
	img, opts := debianImage(t)
	opts.DBDir = advisoryDB(t, nil)

	// A threshold the image fails: a typed policy outcome, with the whole result.
	opts.SeverityThreshold = "critical"
	res, err := containerization.ScanContainerSecurity(ctx, img.Ref, "full", opts)
	var sse *containerization.SecurityScanError
	if !errors.Is(err, containerization.ErrPolicyViolation) || !errors.As(err, &sse) || sse.Op != "policy" {
		t.Fatalf("ScanContainerSecurity(threshold critical) error = %v, want a policy SecurityScanError", err)
	}
	if res == nil || res.PolicyPassed || res.CriticalCount == 0 {
		t.Errorf("result with a failed policy = %+v, want it returned with policy_passed false", res)
	}

	// Ignoring the critical finding (by rule, and a check by id) passes the policy, and says why.
	opts.IgnoreRules = []string{"CVE-2021-44906", "CIS-DI-0006"}
	res, err = containerization.ScanContainerSecurity(ctx, img.Ref, "full", opts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(ignoring the critical finding) = %v", err)
	}
	if len(res.Ignored) != 1 || res.Ignored[0].CVEID != "CVE-2021-44906" || res.Ignored[0].IgnoreReason == "" {
		t.Errorf("ignored = %+v, want CVE-2021-44906 with a reason", res.Ignored)
	}
	if i := slices.IndexFunc(res.Compliance, func(c containerization.ComplianceCheck) bool { return c.ID == "CIS-DI-0006" }); i < 0 || !res.Compliance[i].Ignored {
		t.Errorf("compliance = %+v, want CIS-DI-0006 there and ignored", res.Compliance)
	}

	// The same from a .trivyignore.yaml: a statement is the reason; an entry past its expiry ignores nothing.
	ignoreFile := filepath.Join(t.TempDir(), ".trivyignore.yaml")
	write := func(expiry string) {
		t.Helper()
		data := "vulnerabilities:\n  - id: CVE-2021-44906\n    statement: minimist is not reachable from input\n    expired_at: " + expiry + "\n"
		if err := os.WriteFile(ignoreFile, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("2999-01-01")
	fileOpts := opts
	fileOpts.IgnoreRules, fileOpts.IgnoreFile = nil, ignoreFile
	res, err = containerization.ScanContainerSecurity(ctx, img.Ref, "full", fileOpts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(ignore file) = %v", err)
	}
	if len(res.Ignored) != 1 || res.Ignored[0].CVEID != "CVE-2021-44906" || !strings.Contains(res.Ignored[0].IgnoreReason, "not reachable") {
		t.Errorf("ignore file: ignored = %+v, want CVE-2021-44906 with its statement", res.Ignored)
	}
	write("2001-01-01")
	if res, err = containerization.ScanContainerSecurity(ctx, img.Ref, "full", fileOpts); !errors.Is(err, containerization.ErrPolicyViolation) || len(res.Ignored) != 0 {
		t.Errorf("expired ignore entry: %v, ignored %+v; want the critical finding to fail the policy again", err, res.Ignored)
	}

	// A database without the language ecosystems: their packages are not checked, and the result says so.
	opts = containerization.ScanOptions{Engine: opts.Engine, Cache: opts.Cache,
		DBDir: advisoryDB(t, func(name string) bool { return strings.HasPrefix(name, "DEBIAN-") || strings.HasPrefix(name, "DSA-") })}
	res, err = containerization.ScanContainerSecurity(ctx, img.Ref, "full", opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, eco := range []string{"npm", "Go", "PyPI"} {
		if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, eco) }) {
			t.Errorf("warnings = %q, want one about the missing %s ecosystem", res.Warnings, eco)
		}
	}
}

func TestScanRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name, image, typ string
		opts             containerization.ScanOptions
	}{
		{"no image", "", "full", containerization.ScanOptions{}},
		{"bad type", "x:1", "thorough", containerization.ScanOptions{}},
		{"bad threshold", "x:1", "full", containerization.ScanOptions{SeverityThreshold: "extreme"}},
		{"missing ignore file", "x:1", "full", containerization.ScanOptions{IgnoreFile: "/nonexistent/.trivyignore.yaml"}},
	} {
		_, err := containerization.ScanContainerSecurity(ctx, tt.image, tt.typ, tt.opts)
		var sse *containerization.SecurityScanError
		if !errors.As(err, &sse) || (tt.name != "missing ignore file" && !errors.Is(err, containerization.ErrInvalidArgument)) {
			t.Errorf("%s: error = %v, want a SecurityScanError (invalid argument)", tt.name, err)
		}
	}
}

// TestScanOfAnArchiveHasNoTag: a docker-archive path is not an image reference, so the latest-tag check has none
// to judge (a path ending in .tar once read as a tag, and an absolute one as "no tag, so latest").
func TestScanOfAnArchiveHasNoTag(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	// A lowercase path, as most are: it parses as a reference without a tag.
	dir, err := os.MkdirTemp("", "myrmex-archive-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "busybox.tar")
	if err := eng.SaveImageFile(ctx, testimages.Busybox, file); err != nil {
		t.Fatal(err)
	}
	res, err := containerization.ScanContainerSecurity(ctx, "docker-archive:"+file, "compliance", containerization.ScanOptions{Engine: eng})
	if err != nil {
		t.Fatalf("ScanContainerSecurity(docker-archive:%s) = %v", file, err)
	}
	for _, c := range res.Compliance {
		if c.ID == "DKL-DI-0006" && !c.Passed {
			t.Errorf("DKL-DI-0006 on an archive = %+v, want passed: a path is no tag", c)
		}
	}
}

// TestScanLimitsReachTheInventory: the limits given to ScanContainerSecurity are the inventory's: the Debian test
// image (about 22,000 weighted entries) passes the defaults and is refused under a bound of 1000, with the bound
// named; a negative limit is bad input.
func TestScanLimitsReachTheInventory(t *testing.T) {
	img, opts := debianImage(t)
	opts.DBDir = advisoryDB(t, nil)
	ctx := context.Background()
	if _, err := containerization.ScanContainerSecurity(ctx, img.Ref, "quick", opts); err != nil {
		t.Fatalf("ScanContainerSecurity(default limits) = %v", err)
	}
	opts.Limits.MaxImageEntries = 1000
	_, err := containerization.ScanContainerSecurity(ctx, img.Ref, "quick", opts)
	var sse *containerization.SecurityScanError
	if !errors.As(err, &sse) || !errors.Is(err, inventory.ErrLimitExceeded) || !strings.Contains(err.Error(), "MaxImageEntries") {
		t.Fatalf("ScanContainerSecurity(MaxImageEntries 1000) = %v, want a SecurityScanError wrapping inventory.ErrLimitExceeded", err)
	}
	opts.Limits.MaxImageEntries = -1
	if _, err := containerization.ScanContainerSecurity(ctx, img.Ref, "quick", opts); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Fatalf("ScanContainerSecurity(MaxImageEntries -1) = %v, want ErrInvalidArgument", err)
	}
}
