package report_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/report"
)

// generate_security_report(scan_result, format="html"): the report of a scan result alone.
func ExampleFromScan() {
	res := &containerization.SecurityScanResult{
		ImageName: "myapp:latest", ScanTimestamp: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), ScanType: "full",
		ScanTool: "myrmex", Vulnerabilities: []containerization.Vulnerability{
			{CVEID: "CVE-2021-44906", Severity: "critical", Package: "minimist", Version: "1.2.5", FixedVersion: "1.2.6"},
		},
		CriticalCount: 1,
		PolicyPassed:  false, // a finding reached the scan's severity threshold
	}
	r := report.FromScan(res, time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC))
	doc, err := report.HTML(r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Verdict, strings.Contains(string(doc), "CVE-2021-44906"), report.ContentType(report.FormatPDF))
	// Output: failed true application/pdf
}
