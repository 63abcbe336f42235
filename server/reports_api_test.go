package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/report"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// get sends a GET with the token of scope and returns the answer, its headers and body read.
func (e *env) get(scope state.Scope, path string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[scope])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Reports over real HTTP: a report job on a real image, its document in each format with the right headers (the
// strict policy on HTML), the JSON valid against the OpenAPI document; a scan result and a scan of the history
// rendered with a read token; bad formats and bodies 400, another kind of job 404, a read token refused a job.
func TestReportsOverHTTP(t *testing.T) {
	testenv.Browser(t)
	eng := testenv.Engine(t)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, containerization.Config{Engine: eng})
	const path = "/v1/reports"
	body := map[string]any{"image_name": testimages.Busybox, "scan_type": "compliance"}
	if st, b := e.do(state.ScopeRead, "POST", path, body); st != 403 {
		t.Errorf("POST %s with a read token = %d %s, want 403: a report scans", path, st, b)
	}
	st, b := e.do(state.ScopeOperate, "POST", path, body)
	job := e.wait(e.submitted("POST", path, st, b).ID, 3*time.Minute)
	if job.State != state.JobSucceeded || job.Kind != "report" {
		t.Fatalf("report job = %+v %s", job, job.Error)
	}

	for _, c := range []struct{ format, ctype, disposition, start string }{
		{"html", "text/html; charset=utf-8", "inline", "<!doctype html>"},
		{"pdf", "application/pdf", "attachment", "%PDF-"},
		{"json", "application/json", "inline", "{"},
	} {
		resp, doc := e.get(state.ScopeRead, "/v1/reports/"+job.ID+"?format="+c.format)
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Type") != c.ctype || !strings.HasPrefix(string(doc), c.start) ||
			!strings.HasPrefix(h.Get("Content-Disposition"), c.disposition+`; filename="report-`) || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET report %s = %d %v %.40q", c.format, resp.StatusCode, h, doc)
		}
		// The HTML's own policy (its style sheet by hash, sandboxed); the API's on the others.
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") ||
			(c.format == "html") != strings.Contains(csp, "sandbox") || (c.format != "html") != (csp == server.ContentSecurityPolicy) {
			t.Errorf("GET report %s: Content-Security-Policy %q", c.format, csp)
		}
		if c.format == "json" {
			e.valid("/v1/reports/{id}", "GET", 200, doc)
			var r report.Report
			if err := json.Unmarshal(doc, &r); err != nil || r.ImageName != testimages.Busybox || r.ScanResult == nil || r.ScanResult.ScanType != "compliance" {
				t.Errorf("the JSON report = %+v, %v", r, err)
			}
		}
	}
	if st, b := e.do(state.ScopeRead, "GET", "/v1/reports/"+job.ID+"?format=docx", nil); st != 400 {
		t.Errorf("format=docx = %d %s, want 400", st, b)
	}

	// The report's scan is in the history: rendered by its id with a read token, and as a scan result.
	resp, doc := e.get(state.ScopeRead, "/v1/reports/"+job.ID+"?format=json")
	var r report.Report
	if err := json.Unmarshal(doc, &r); resp.StatusCode != 200 || err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]any{
		"scan_id":     map[string]any{"scan_id": job.ID, "format": "json"},
		"scan_result": map[string]any{"scan_result": r.ScanResult, "format": "json"},
	} {
		st, doc := e.do(state.ScopeRead, "POST", "/v1/reports/render", req)
		var got report.Report
		if err := json.Unmarshal(doc, &got); st != 200 || err != nil || got.ScanResult == nil || got.ScanResult.ImageName != testimages.Busybox {
			t.Errorf("render by %s = %d %s", name, st, doc)
		}
	}
	for name, req := range map[string]any{
		"nothing":       map[string]any{},
		"both":          map[string]any{"scan_id": job.ID, "scan_result": r.ScanResult},
		"not a scan":    map[string]any{"scan_result": map[string]any{"image_name": "x"}},
		"a format":      map[string]any{"scan_id": job.ID, "format": "docx"},
		"unknown field": map[string]any{"scan_id": job.ID, "script": "<script>"},
	} {
		if st, b := e.do(state.ScopeRead, "POST", "/v1/reports/render", req); st != 400 {
			t.Errorf("render of %s = %d %s, want 400", name, st, b)
		}
	}
	if st, b := e.do(state.ScopeRead, "POST", "/v1/reports/render", map[string]any{"scan_id": "nosuch"}); st != 404 {
		t.Errorf("render of a scan not there = %d %s, want 404", st, b)
	}
	// Another kind of job has no report.
	st, b = e.do(state.ScopeOperate, "POST", "/v1/scans", body)
	scan := e.wait(e.submitted("POST", "/v1/scans", st, b).ID, 3*time.Minute)
	if st, b := e.do(state.ScopeRead, "GET", "/v1/reports/"+scan.ID, nil); st != 404 {
		t.Errorf("GET the report of a scan job = %d %s, want 404", st, b)
	}
	for _, bad := range []map[string]any{{"image_name": ""}, {"image_name": "x", "keys": []string{"/etc/passwd"}}, {"image_name": "x", "gate": "door"}} {
		if st, b := e.do(state.ScopeOperate, "POST", path, bad); st != 400 {
			t.Errorf("POST %s %v = %d %s, want 400", path, bad, st, b)
		}
	}
}
