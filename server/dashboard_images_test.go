package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/scan/vulndb"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// dashAdvisories makes the default advisory database (MYRMEX_CACHE_DIR, for this test alone) hold five findings
// of the upgradable test image, one of each severity, with and without a fix; one's summary is markup.
func dashAdvisories(t *testing.T) {
	src, cache := t.TempDir(), t.TempDir()
	for i, a := range []struct {
		pkg, severity, fixed, summary string
	}{
		{testimages.UpgradablePackage, `"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]`, "9.0", "a critical flaw of the demo"},
		{testimages.UpgradableStuck, `"ecosystem_specific":{"urgency":"high"}`, "", "a high flaw nobody fixed"},
		{"dpkg", `"ecosystem_specific":{"urgency":"medium"}`, "99.0", `<img src=x onerror="window.__xss=1">`},
		{"tar", `"ecosystem_specific":{"urgency":"low"}`, "", "a low flaw of tar"},
		{"gzip", `"ecosystem_specific":{}`, "99.0", "a flaw nobody rated"},
	} {
		fixed := ""
		if a.fixed != "" {
			fixed = fmt.Sprintf(`,{"fixed":%q}`, a.fixed)
		}
		sev, spec := "", a.severity
		if strings.HasPrefix(spec, `"severity"`) {
			sev, spec = spec+",", `"ecosystem_specific":{}`
		}
		summary, _ := json.Marshal(a.summary)
		rec := fmt.Sprintf(`{"schema_version":"1.6.0","id":"DEBIAN-CVE-2099-030%[1]d","aliases":["CVE-2099-030%[1]d"],"modified":"2026-11-01T00:00:00Z",
"summary":%[2]s,%[3]s"affected":[{"package":{"ecosystem":"Debian:12","name":%[4]q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}%[5]s]}],%[6]s}]}`,
			i+1, summary, sev, a.pkg, fixed, spec)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("a%d.json", i)), []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("MYRMEX_CACHE_DIR", cache)
	dir, err := vulndb.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vulndb.Import(context.Background(), src, vulndb.Options{Dir: dir}); err != nil {
		t.Fatalf("vulndb.Import() = %v", err)
	}
}

// The images and scans in a real Chromium: a real image scanned through the API (twice) against an advisory
// database of five findings; the list shows it with its latest scan's counts; its page shows the findings as the
// scan's result has them, and filtering them (only critical, only with a fix, a search for an advisory id) shows
// exactly the rows of the result that match; compliance with remediation, the evidence, the history per digest
// as a trend; the policy's verdict on demand; a scan started from the page is followed to its end and joins the
// history. Markup in an advisory's summary is shown as text.
func TestDashboardImages(t *testing.T) {
	eng := testenv.Engine(t)
	if err := testimages.EnsureUpgradable(t.Context(), eng, testimages.DebianOptions{}); err != nil {
		t.Fatalf("EnsureUpgradable = %v", err)
	}
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	dashAdvisories(t)
	e := newEnvWith(t, containerization.Config{Engine: eng, Policy: mustPolicy(t, "version: 1\nimages: {registries: [myrmex.local]}\n")})
	image := testimages.Upgradable
	var last state.Job
	for range 2 {
		st, body := e.do(state.ScopeOperate, "POST", "/v1/scans", map[string]any{"image_name": image, "scan_type": "full"})
		last = e.wait(e.submitted("POST", "/v1/scans", st, body).ID, 5*time.Minute)
		if last.State != state.JobSucceeded {
			t.Fatalf("scan of %s = %+v %s", image, last, last.Error)
		}
	}
	// And a second image, with no findings, to list.
	st, body := e.do(state.ScopeOperate, "POST", "/v1/scans", map[string]any{"image_name": testimages.Busybox, "scan_type": "compliance"})
	if j := e.wait(e.submitted("POST", "/v1/scans", st, body).ID, 3*time.Minute); j.State != state.JobSucceeded {
		t.Fatalf("scan of %s = %+v %s", testimages.Busybox, j, j.Error)
	}
	st, body = e.do(state.ScopeRead, "GET", "/v1/scans/"+last.ID, nil)
	var scan server.ScanDetail
	if err := json.Unmarshal(body, &scan); st != 200 || err != nil {
		t.Fatalf("GET /v1/scans/%s = %d %s", last.ID, st, body)
	}
	res := scan.Result
	if res.CriticalCount < 1 || res.HighCount < 1 || res.MediumCount < 1 || res.LowCount < 1 || res.UnknownCount < 1 || len(res.Compliance) == 0 {
		t.Fatalf("the scan found %d/%d/%d/%d/%d with %d compliance checks; want every severity and checks: %s",
			res.CriticalCount, res.HighCount, res.MediumCount, res.LowCount, res.UnknownCount, len(res.Compliance), body)
	}
	st, body = e.do(state.ScopeRead, "GET", "/v1/scans/images", nil)
	var images server.ScannedImageList
	if err := json.Unmarshal(body, &images); st != 200 || err != nil || len(images.Images) != 2 || images.Images[0].Image != testimages.Busybox ||
		images.Images[1].Image != image || images.Images[1].Scans != 2 || images.Images[1].Latest.ID != last.ID {
		t.Fatalf("GET /v1/scans/images = %d %s", st, body)
	}
	e.valid("/v1/scans/images", "GET", 200, body)
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x"} {
		if st, body := e.do(state.ScopeRead, "GET", "/v1/scans/images"+q, nil); st != 400 {
			t.Errorf("GET /v1/scans/images%s = %d %s, want 400", q, st, body)
		}
	}

	p := e.tab(t, 1280, 900)
	p.signIn(e.tokens[state.ScopeOperate])
	p.open("#/images", `#images tr[data-image="`+image+`"]`)
	row := `#images tr[data-image="` + image + `"]`
	got := js[[]string](p, `[...document.querySelectorAll('`+row+` td.num')].map((td) => td.innerText)`)
	want := []string{fmt.Sprint(res.CriticalCount), fmt.Sprint(res.HighCount), fmt.Sprint(res.MediumCount), fmt.Sprint(res.LowCount), fmt.Sprint(res.UnknownCount), "2"}
	if !slices.Equal(got, want) {
		t.Errorf("the list's counts of %s = %q, want %q", image, got, want)
	}
	if label := js[string](p, `document.querySelector('`+row+` svg').getAttribute('aria-label')`); !strings.Contains(label, fmt.Sprintf("critical %d", res.CriticalCount)) {
		t.Errorf("the findings bar of %s says %q", image, label)
	}
	if label := js[string](p, `document.querySelector('#severity-summary svg').getAttribute('aria-label')`); !strings.Contains(label, fmt.Sprintf("high %d", res.HighCount)) {
		t.Errorf("the summary chart says %q", label)
	}
	p.check("images")
	p.axe("images")
	p.shot("dashboard-images")

	// The image's page: every finding of the result, then each filter.
	p.do(chromedp.Click(chromedp.CSS(row + " a")))
	p.until(60*time.Second, `document.querySelector('#findings tbody tr[data-id]')`, "document.querySelector('main').innerText")
	rows := func() []string {
		return js[[]string](p, `[...document.querySelectorAll('#findings tbody tr[data-id]')].map((tr) => tr.dataset.id).sort()`)
	}
	expect := func(keep func(containerization.Vulnerability) bool) []string {
		out := []string{}
		for _, v := range res.Vulnerabilities {
			if keep(v) {
				out = append(out, v.CVEID)
			}
		}
		slices.Sort(out)
		return out
	}
	if got, want := rows(), expect(func(containerization.Vulnerability) bool { return true }); !slices.Equal(got, want) || len(got) != len(res.Vulnerabilities) {
		t.Errorf("the findings shown = %q, want %q", got, want)
	}
	cells := js[[]string](p, `[...document.querySelectorAll('#findings tbody tr[data-id="CVE-2099-0301"] td')].slice(1, 5).map((td) => td.innerText)`)
	if !slices.Equal(cells, []string{testimages.UpgradablePackage, "1.0-1", "9.0", "critical"}) {
		t.Errorf("the critical finding's row = %q", cells)
	}
	if got := js[string](p, `document.querySelector('#findings tbody tr[data-id="CVE-2099-0302"] td:nth-child(4)').innerText`); got != "no fix" {
		t.Errorf("a finding without a fix shows %q", got)
	}
	setFilter := func(sel, value string) {
		t.Helper()
		js[any](p, `(() => { const el = document.querySelector('`+sel+`'); el.value = `+jsString(value)+`; el.dispatchEvent(new Event('change')); return null; })()`)
	}
	setFilter("#f-severity", "critical")
	if got, want := rows(), expect(func(v containerization.Vulnerability) bool { return v.Severity == "critical" }); !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("only critical: %q, want %q", got, want)
	}
	setFilter("#f-severity", "")
	p.do(chromedp.Click(chromedp.CSS("#f-fixed")))
	if got, want := rows(), expect(func(v containerization.Vulnerability) bool { return v.FixedVersion != "" }); !slices.Equal(got, want) || len(want) == 0 || len(want) == len(res.Vulnerabilities) {
		t.Errorf("only with a fix: %q, want %q", got, want)
	}
	if txt := js[string](p, `document.getElementById('f-count').innerText`); !strings.Contains(txt, fmt.Sprintf("of %d", len(res.Vulnerabilities))) {
		t.Errorf("the count says %q", txt)
	}
	p.do(chromedp.Click(chromedp.CSS("#f-fixed")))
	p.do(chromedp.SendKeys(chromedp.CSS("#f-search"), "cve-2099-0303"))
	if got := rows(); !slices.Equal(got, []string{"CVE-2099-0303"}) {
		t.Errorf("a search for CVE-2099-0303 shows %q", got)
	}
	// Its summary, markup, is text.
	if got := js[string](p, `document.querySelector('#findings tbody tr[data-id="CVE-2099-0303"] td:last-child').innerText`); got != `<img src=x onerror="window.__xss=1">` {
		t.Errorf("the markup summary shows as %q", got)
	}
	if n := js[int](p, `document.querySelectorAll('main img').length`); n != 0 {
		t.Errorf("markup from an advisory became %d elements", n)
	}

	// Compliance: the failed checks with their remediation, as the result has them.
	for _, c := range res.Compliance {
		if c.Passed || c.Ignored {
			continue
		}
		got := js[string](p, `(() => { const tr = document.querySelector('#compliance tr[data-check="`+c.ID+`"]'); return tr ? tr.innerText : ''; })()`)
		if !strings.Contains(got, "failed") || !strings.Contains(got, c.Remediation) {
			t.Errorf("compliance check %s shows %q; want it failed with %q", c.ID, got, c.Remediation)
		}
	}
	if got := js[string](p, `document.getElementById('evidence').innerText`); !strings.Contains(got, "not attached") {
		t.Errorf("the evidence of a scan from the engine = %q", got)
	}
	// The history: one digest (the engine's image has none), two scans, a trend of two points.
	if n := js[int](p, `document.querySelectorAll('#history table.history tbody tr').length`); n != 2 {
		t.Errorf("the history shows %d scans, want 2", n)
	}
	if label := js[string](p, `document.querySelector('#history figure svg').getAttribute('aria-label')`); !strings.Contains(label, "2 points") ||
		!strings.Contains(label, fmt.Sprintf("critical %d", res.CriticalCount)) {
		t.Errorf("the trend says %q", label)
	}
	if n := js[int](p, `document.querySelectorAll('#history figure polyline').length`); n != 5 {
		t.Errorf("the trend has %d lines, want one per severity", n)
	}
	// The policy, asked now: allowed (myrmex.local is allowed); it requires no signature.
	p.do(chromedp.Click(chromedp.CSS("#evaluate")))
	p.until(2*time.Minute, `document.querySelector('#verdict').innerText.includes('allowed')`, "document.querySelector('#verdict').innerText")
	if got := js[string](p, `document.getElementById('signature').innerText`); !strings.Contains(got, "requires none") {
		t.Errorf("the signature status = %q", got)
	}
	p.check("image")
	p.axe("image")
	js[any](p, `(() => { window.scrollTo(0, 0); return null; })()`)
	p.shot("dashboard-image")

	// Scan again from the page: followed to its end, then the page holds three scans.
	p.do(chromedp.Click(chromedp.CSS("#scan-submit")))
	p.until(5*time.Minute, `document.querySelectorAll('#history table.history tbody tr').length === 3`, "document.getElementById('scan-progress').innerText")
	st, body = e.do(state.ScopeRead, "GET", "/v1/scans?image="+image, nil)
	var hist server.ScanList
	if err := json.Unmarshal(body, &hist); st != 200 || err != nil || len(hist.Scans) != 3 {
		t.Errorf("after a scan from the page the history of %s = %d %s", image, st, body)
	} else if id := js[string](p, `document.querySelector('#history table.history tbody tr').dataset.scan`); id != hist.Scans[0].ID {
		t.Errorf("the newest scan shown is %s, the history's %s", id, hist.Scans[0].ID)
	}
	if x := js[any](p, `window.__xss === undefined ? null : window.__xss`); x != nil {
		t.Errorf("markup ran: window.__xss = %v", x)
	}
	p.check("image after a scan")

	// A read session cannot scan; a phone shows the page within its width.
	ph := e.tab(t, 390, 844)
	ph.signIn(e.tokens[state.ScopeRead])
	ph.open("#/images/"+strings.ReplaceAll(image, "/", "%2F"), "#findings tbody tr[data-id]")
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the image's page is %d px wider than the screen", w)
	}
	if !js[bool](ph, `document.getElementById('scan-submit').disabled && document.getElementById('evaluate').disabled`) {
		t.Error("a read session may scan or evaluate")
	}
	ph.check("image on a phone")
	ph.axe("image on a phone")
	ph.shot("dashboard-images-phone")
}
