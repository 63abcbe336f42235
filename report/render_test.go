package report_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/report"
)

// hostile is markup an image's author controls: an advisory's text, a package name, a label.
const hostile = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`

// sample is a scan result as a scan of a hostile image could return it.
func sample() *containerization.SecurityScanResult {
	score := 72.5
	return &containerization.SecurityScanResult{
		ImageName: "registry.example.com/team/app:1.4", ImageDigest: "sha256:" + strings.Repeat("ab", 32),
		ScanTimestamp: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), ScanDuration: 1.5, ScanType: "full",
		Vulnerabilities: []containerization.Vulnerability{
			{CVEID: "CVE-2021-44906", Severity: "critical", Package: "minimist", Version: "1.2.5", FixedVersion: "1.2.6",
				Description: "Prototype pollution " + hostile, Score: 9.8, Ecosystem: "npm", URL: "javascript:alert(1)"},
			{CVEID: "CVE-2021-23337", Severity: "high", Package: "lodash" + hostile, Version: "4.17.20", FixedVersion: "4.17.21", Score: 7.2},
		},
		CriticalCount: 1, HighCount: 1, ComplianceScore: &score, PackagesScanned: 3,
		PackageEcosystems: map[string]int{"npm": 2, "Debian:12": 1},
		Compliance: []containerization.ComplianceCheck{
			{ID: "CIS-DI-0001", Level: "WARN", Title: "Create a user for the container", Remediation: "Add a USER instruction " + hostile},
			{ID: "CIS-DI-0006", Level: "INFO", Title: "Add HEALTHCHECK", Passed: true},
		},
		Recommendations: []string{"upgrade minimist from 1.2.5 to 1.2.6"},
		ScanTool:        "myrmex test", PolicyPassed: true, Warnings: []string{},
	}
}

func sampleReport() *report.Report {
	r := report.FromScan(sample(), time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC))
	r.Optimization = &optimize.Record{Source: "app:1" + hostile, Type: "size", LayersBefore: 5, LayersAfter: 1, FilesBefore: 900,
		FilesAfter: 40, ContentBefore: 80e6, ContentAfter: 9e6}
	r.PolicyVerdict = &policy.Verdict{Gate: "apply", Mode: policy.Enforce, Violations: []policy.Violation{
		{Rule: "images.vulnerabilities", Finding: "CVE-2021-44906 in minimist 1.2.5 is critical"}}}
	r.Verdict = report.VerdictFailed
	return r
}

// The HTML shows markup put into a finding, a check or a label as text, and holds no script, link or load.
func TestHTMLEscapes(t *testing.T) {
	doc, err := report.HTML(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	for _, bad := range []string{"<script", "<img", "javascript:", "<link", "@import", "url("} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML holds %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;window.pwned=1&lt;/script&gt;", `<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;`,
		"CVE-2021-44906", "Add a USER instruction", "images.vulnerabilities", "80.0 MB"} {
		if !strings.Contains(s, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if !strings.Contains(report.ContentSecurityPolicy, "default-src 'none'") || strings.Contains(report.ContentSecurityPolicy, "unsafe") {
		t.Errorf("ContentSecurityPolicy = %q", report.ContentSecurityPolicy)
	}

	// In a browser: the markup is text, no script ran, nothing was added to the page, and the style sheet the
	// policy allows by its hash applies (the verdict's colour).
	tab := testenv.BrowserTab(t, 1000, 800)
	ctx, cancel := context.WithTimeout(tab, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html;base64,"+b64(doc)), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
		t.Fatal(err)
	}
	type state struct {
		Pwned   any    `json:"pwned"`
		Scripts int    `json:"scripts"`
		Images  int    `json:"images"`
		Text    string `json:"text"`
		Verdict string `json:"verdict"`
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[state](`({pwned: window.pwned ?? null, scripts: document.scripts.length,
		images: document.images.length, text: document.body.innerText,
		verdict: getComputedStyle(document.querySelector('.verdict')).backgroundColor})`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Pwned != nil || got.Scripts != 0 || got.Images != 0 {
		t.Errorf("in a browser: pwned %v, %d scripts, %d images; want none", got.Pwned, got.Scripts, got.Images)
	}
	if !strings.Contains(got.Text, "<script>window.pwned=1</script>") {
		t.Errorf("the page does not show the markup as text:\n%s", got.Text)
	}
	if got.Verdict != "rgb(139, 0, 0)" { // .verdict-failed
		t.Errorf("the verdict's background is %q: the style sheet did not apply (its hash in the policy?)", got.Verdict)
	}
}

// The JSON report reads back as the same report, with the specification's names.
func TestJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	b, err := report.JSON(r)
	if err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("JSON round trip:\n got %+v\nwant %+v", back, *r)
	}
	var fields map[string]any
	_ = json.Unmarshal(b, &fields)
	scan, _ := fields["scan_result"].(map[string]any)
	for _, f := range []string{"image_name", "scan_timestamp", "vulnerabilities", "compliance_score", "critical_count", "scan_tool"} {
		if _, ok := scan[f]; !ok {
			t.Errorf("scan_result lacks %q", f)
		}
	}
	for _, f := range []string{"image_name", "image_digest", "verdict", "generated_at", "policy_verdict", "optimization"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("the report lacks %q", f)
		}
	}
	// A scan result round-trips through ParseScan too.
	sb, _ := json.Marshal(sample())
	res, err := report.ParseScan(sb)
	if err != nil || !reflect.DeepEqual(res, sample()) {
		t.Errorf("ParseScan(json of sample) = %+v, %v", res, err)
	}
}

// A file that is not a scan result is refused as invalid input, before anything is rendered.
func TestParseScanRefuses(t *testing.T) {
	good, _ := json.Marshal(sample())
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	for name, in := range map[string]string{
		"empty":            "",
		"not json":         "<html>",
		"an array":         "[]",
		"two values":       string(good) + string(good),
		"a policy":         `{"version": 1, "images": {}}`,
		"no image":         edit(func(m map[string]any) { delete(m, "image_name") }),
		"no time":          edit(func(m map[string]any) { delete(m, "scan_timestamp") }),
		"no findings list": edit(func(m map[string]any) { delete(m, "vulnerabilities") }),
		"counts disagree":  edit(func(m map[string]any) { m["critical_count"] = 5 }),
		"bad severity": edit(func(m map[string]any) {
			m["vulnerabilities"].([]any)[0].(map[string]any)["severity"] = "<b>"
		}),
		"score above 100": edit(func(m map[string]any) { m["compliance_score"] = 101 }),
		"too large":       `{"image_name": "` + strings.Repeat("a", report.MaxScanSize) + `"}`,
	} {
		_, err := report.ReadScan(bytes.NewReader([]byte(in)))
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ReadScan(%s) = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := report.Render(context.Background(), sampleReport(), "docx"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Render(docx) = %v, want ErrInvalidArgument", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
