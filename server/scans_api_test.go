package server_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// The scan history: every scan the server runs (a scan job's, a build's) is listed by image or by digest, newest
// first, with its findings by severity; one of them is read in full from its job; a scan that could not run is
// not listed; the history goes with the jobs when they are pruned; bad queries are 400, a scan not there 404.
func TestScanHistoryOverHTTP(t *testing.T) { onBoth(t, testScanHistoryOverHTTP) }

func testScanHistoryOverHTTP(t *testing.T, on backend) {
	eng := testenv.Engine(t)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, containerization.Config{Engine: eng}, on)
	reg := testenv.InProcess(t)
	run := func(path string, body any) state.Job {
		t.Helper()
		st, b := e.do(state.ScopeOperate, "POST", path, body)
		return e.wait(e.submitted("POST", path, st, b).ID, 3*time.Minute)
	}
	scan := func(image string) state.Job {
		t.Helper()
		job := run("/v1/scans", map[string]any{"image_name": image, "scan_type": "compliance"})
		if job.State != state.JobSucceeded {
			t.Fatalf("scan of %s = %+v %s", image, job, job.Error)
		}
		return job
	}
	list := func(query string) []state.Scan {
		t.Helper()
		st, body := e.do(state.ScopeRead, "GET", "/v1/scans"+query, nil)
		var l server.ScanList
		if err := json.Unmarshal(body, &l); st != 200 || err != nil {
			t.Fatalf("GET /v1/scans%s = %d %s", query, st, body)
		}
		e.valid("/v1/scans", "GET", 200, body)
		return l.Scans
	}

	first, second := scan(testimages.Busybox), scan(testimages.Busybox)
	// From a registry: the scan knows the image's digest.
	// (POST /v1/registry documents its 200 alone: the job is not checked against the document.)
	_, body := e.do(state.ScopeOperate, "POST", "/v1/registry", map[string]any{"operation": "push", "image_name": testimages.Busybox,
		"registry_url": "http://" + reg.Host, "destination": "scans/busybox:1"})
	var pushed state.Job
	if err := json.Unmarshal(body, &pushed); err != nil {
		t.Fatalf("push = %s", body)
	}
	pushed = e.wait(pushed.ID, 3*time.Minute)
	var push containerization.RegistryResult
	if err := json.Unmarshal(pushed.Result, &push); pushed.State != state.JobSucceeded || err != nil || push.ImageDigest == "" {
		t.Fatalf("push = %+v %s", pushed, pushed.Error)
	}
	remote := scan(reg.Host + "/scans/busybox:1")
	// A build's scan.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+testimages.Busybox+"\nRUN echo scanned > /scanned\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	built := "myrmex.local/api-scan-history:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), built, client.ImageRemoveOptions{Force: true})
	})
	build := run("/v1/builds", map[string]any{"image_name": built, "context_path": dir, "scan": "compliance"})
	if build.State != state.JobSucceeded {
		t.Fatalf("build = %+v %s", build, build.Error)
	}
	// A scan that could not run is no scan.
	if failed := run("/v1/scans", map[string]any{"image_name": "myrmex.local/nosuch:1", "scan_type": "compliance"}); failed.State != state.JobFailed {
		t.Fatalf("scan of nothing = %+v", failed)
	}

	got := list("?image=" + url.QueryEscape(testimages.Busybox))
	if len(got) != 2 || got[0].ID != second.ID || got[1].ID != first.ID || got[0].JobKind != "scan" || got[0].ScanType != "compliance" ||
		got[0].ImageName != testimages.Busybox || got[0].Image != testimages.Busybox || got[0].ScanTimestamp.Before(got[1].ScanTimestamp) {
		t.Fatalf("the history of %s = %+v; want its two scans, newest first", testimages.Busybox, got)
	}
	if got := list("?digest=" + push.ImageDigest); len(got) != 1 || got[0].ID != remote.ID || got[0].ImageDigest != push.ImageDigest {
		t.Errorf("the history of %s = %+v; want the scan of the pushed image", push.ImageDigest, got)
	}
	if got := list("?image=" + url.QueryEscape(built)); len(got) != 1 || got[0].ID != build.ID || got[0].JobKind != "build" {
		t.Errorf("the history of the built image = %+v; want the build's scan", got)
	}
	if got := list(""); len(got) != 4 || got[0].ID != build.ID {
		t.Errorf("the whole history = %+v; want four scans, the build's first", got)
	}
	if got := list("?limit=1"); len(got) != 1 {
		t.Errorf("limit=1 = %+v", got)
	}
	// busybox is docker.io/library/busybox:latest: not ours.
	if got := list("?image=busybox"); len(got) != 0 {
		t.Errorf("the history of busybox = %+v; want none", got)
	}

	// One scan in full.
	st, body := e.do(state.ScopeRead, "GET", "/v1/scans/"+first.ID, nil)
	var d server.ScanDetail
	if err := json.Unmarshal(body, &d); st != 200 || err != nil || d.Scan.ID != first.ID || d.Result.ImageName != testimages.Busybox ||
		d.Result.ComplianceScore == nil || len(d.Result.Compliance) == 0 {
		t.Fatalf("GET /v1/scans/%s = %d %s", first.ID, st, body)
	}
	e.valid("/v1/scans/{id}", "GET", 200, body)
	st, body = e.do(state.ScopeRead, "GET", "/v1/scans/"+build.ID, nil)
	if err := json.Unmarshal(body, &d); st != 200 || err != nil || d.Result.ImageName != built {
		t.Errorf("the build's scan = %d %s", st, body)
	}

	// Bad queries, and scans not there.
	for _, q := range []string{"?digest=sha256:nope", "?limit=0", "?limit=x", "?image=" + url.QueryEscape("Not A Reference!")} {
		if st, body := e.do(state.ScopeRead, "GET", "/v1/scans"+q, nil); st != 400 {
			t.Errorf("GET /v1/scans%s = %d %s, want 400", q, st, body)
		}
	}
	if st, body := e.do(state.ScopeRead, "GET", "/v1/scans/nosuch", nil); st != 404 {
		t.Errorf("GET /v1/scans/nosuch = %d %s, want 404", st, body)
	} else {
		e.valid("/v1/scans/{id}", "GET", "default", body)
	}

	// Pruned with the jobs.
	if n, err := e.st.PruneJobs(context.Background(), 0, time.Now().Add(time.Hour)); err != nil || n < 5 {
		t.Fatalf("PruneJobs = %d, %v", n, err)
	}
	if got := list(""); len(got) != 0 {
		t.Errorf("after pruning the jobs the history holds %+v", got)
	}
	if st, _ := e.do(state.ScopeRead, "GET", "/v1/scans/"+first.ID, nil); st != 404 {
		t.Errorf("a pruned scan = %d, want 404", st)
	}
}
