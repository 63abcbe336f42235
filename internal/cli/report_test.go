package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/report"
)

// scanFile writes a scan result as myrmex scan -o json writes it.
func scanFile(t *testing.T) string {
	t.Helper()
	score := 90.0
	res := containerization.SecurityScanResult{ImageName: "myrmex.local/app:1", ScanTimestamp: time.Now().UTC(), ScanType: "full",
		Vulnerabilities: []containerization.Vulnerability{{CVEID: "CVE-2021-44906", Severity: "critical", Package: "minimist", Version: "1.2.5", FixedVersion: "1.2.6"}},
		CriticalCount:   1, ComplianceScore: &score, ScanTool: "myrmex test", PolicyPassed: true}
	b, _ := json.Marshal(res)
	p := filepath.Join(t.TempDir(), "scan.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Wrong input to myrmex report: the typed error and its exit code, before anything is scanned.
func TestReportRefusesWrongInput(t *testing.T) {
	dir := t.TempDir()
	notScan := filepath.Join(dir, "policy.json")
	_ = os.WriteFile(notScan, []byte(`{"version": 1, "images": {}}`), 0o644)
	big := filepath.Join(dir, "big.json")
	f, _ := os.Create(big)
	_ = f.Truncate(report.MaxScanSize + 1)
	f.Close()
	for _, c := range []struct {
		name string
		code int
		args []string
		env  string
	}{
		{"no image", cli.ExitUsage, []string{"report"}, ""},
		{"two images", cli.ExitUsage, []string{"report", "a", "b"}, ""},
		{"unknown format", cli.ExitUsage, []string{"report", "app:1", "-o", "docx"}, ""},
		{"not a scan result", cli.ExitUsage, []string{"report", "--from-scan", notScan}, ""},
		{"a scan too large", cli.ExitUsage, []string{"report", "--from-scan", big}, ""},
		{"no scan file", cli.ExitNotFound, []string{"report", "--from-scan", filepath.Join(dir, "nosuch.json")}, ""},
		{"output a directory", cli.ExitUsage, []string{"report", "--from-scan", scanFile(t), "--output", dir}, ""},
		{"no browser", cli.ExitUnavailable, []string{"report", "--from-scan", scanFile(t), "-o", "pdf", "--output", filepath.Join(dir, "r.pdf")}, "/nonexistent/chromium"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("MYRMEX_CHROMIUM", c.env)
			}
			r := myrmex(t, c.args...)
			if r.code != c.code || r.stdout != "" {
				t.Errorf("myrmex %q = exit %d, stdout %q, stderr %q; want %d and nothing on stdout", c.args, r.code, r.stdout, r.stderr, c.code)
			}
			if slices.Contains(c.args, "-o") {
				return
			}
			// With -o json the failure is the JSON error object.
			r = myrmex(t, append(c.args, "-o", "json")...)
			var obj struct {
				Error containerization.ErrorObject `json:"error"`
			}
			if json.Unmarshal([]byte(r.stderr), &obj) != nil || obj.Error.Code == "" {
				t.Errorf("myrmex %q -o json: stderr %q, want the JSON error object", c.args, r.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "r.pdf")); !os.IsNotExist(err) {
		t.Errorf("a failed PDF left a file: %v", err)
	}
}

// generate_security_report(scan_result): a scan file rendered without scanning, in each format.
func TestReportFromScan(t *testing.T) {
	testenv.Browser(t)
	scan := scanFile(t)
	r := expect(t, cli.ExitOK, "report", "--from-scan", scan)
	if !strings.HasPrefix(r.stdout, "<!doctype html>") || !strings.Contains(r.stdout, "CVE-2021-44906") || !strings.Contains(r.stdout, "Content-Security-Policy") {
		t.Errorf("report --from-scan (html) = %.200q", r.stdout)
	}
	r = expect(t, cli.ExitOK, "report", "--from-scan", scan, "-o", "json")
	var rep report.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.ScanResult.CriticalCount != 1 || rep.ImageName != "myrmex.local/app:1" {
		t.Errorf("report -o json = %+v, %v", rep, err)
	}
	out := filepath.Join(t.TempDir(), "r.pdf")
	expect(t, cli.ExitOK, "report", "--from-scan", scan, "-o", "pdf", "--output", out)
	b, err := os.ReadFile(out)
	if err != nil || !strings.HasPrefix(string(b), "%PDF-") {
		t.Fatalf("report -o pdf --output: %v, %.10q", err, b)
	}
	if text := testenv.PDFText(t, b); !strings.Contains(text, "CVE-2021-44906") || !strings.Contains(text, "myrmex.local/app:1") {
		t.Errorf("the PDF's text:\n%s", text)
	}
}

// The report of an image in the engine: scanned, written to a file.
func TestReportOfAnEngineImage(t *testing.T) {
	testEngine(t)
	out := filepath.Join(t.TempDir(), "busybox.html")
	expect(t, cli.ExitOK, "report", testimages.Busybox, "--type", "compliance", "--output", out)
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), testimages.Busybox) || !strings.Contains(string(b), "CIS-DI-0001") {
		t.Errorf("report of %s: %v\n%.300s", testimages.Busybox, err, b)
	}
	// A scan of another image is not this one's.
	expect(t, cli.ExitUsage, "report", testimages.Busybox, "--from-scan", scanFile(t))
}
