package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/scan/vulndb"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// exposition is one scrape of /metrics, parsed.
type exposition map[string]*dto.MetricFamily

// scrape GETs /metrics with a read token, as Prometheus does, and parses the Prometheus text format.
func (e *env) scrape() exposition {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[state.ScopeRead])
	c := &http.Client{Timeout: time.Minute} // a scrape that waited for the engine would hang: this fails it
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") {
		e.t.Fatalf("GET /metrics = %d %s", resp.StatusCode, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// get is the value of the sample of family name whose labels include want (a counter's or gauge's value, a
// histogram's count), and whether there is one.
func (x exposition) get(name string, want map[string]string) (float64, bool) {
	f := x[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// must is get, failing the test when there is no such sample.
func (x exposition) must(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := x.get(name, want)
	if !ok {
		t.Fatalf("the exposition has no %s%v", name, want)
	}
	return v
}

// waitJob follows a job until it ends.
func (e *env) waitJob(id string) state.Job {
	e.t.Helper()
	var j state.Job
	ok := testenv.Eventually(5*time.Minute, func() bool {
		_, body := e.do(state.ScopeRead, "GET", "/v1/jobs/"+id, nil)
		return json.Unmarshal(body, &j) == nil && j.Done()
	})
	if !ok {
		e.t.Fatalf("job %s did not end: %+v", id, j)
	}
	return j
}

// startJob posts a job and returns its id.
func (e *env) startJob(path string, body any) string {
	e.t.Helper()
	st, b := e.do(state.ScopeOperate, "POST", path, body)
	var j state.Job
	if err := json.Unmarshal(b, &j); st != 202 || err != nil || j.ID == "" {
		e.t.Fatalf("POST %s = %d %s", path, st, b)
	}
	return j.ID
}

// advisories makes the default advisory database (MYRMEX_CACHE_DIR, for this test alone) hold two high findings
// of the upgradable test image.
func advisories(t *testing.T) {
	src, cache := t.TempDir(), t.TempDir()
	for i, pkg := range []string{testimages.UpgradablePackage, testimages.UpgradableStuck} {
		rec := fmt.Sprintf(`{"schema_version":"1.6.0","id":"DEBIAN-CVE-2099-010%[1]d","modified":"2026-11-01T00:00:00Z",
"affected":[{"package":{"ecosystem":"Debian:12","name":"%[2]s"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"9.0"}]}],
"ecosystem_specific":{"urgency":"high"}}]}`, i+1, pkg)
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

// /metrics over real HTTP with the real engine: a running container's ContainerMetrics as gauges labelled by
// name, short id and image; a scan job and a build job counted by kind and outcome with their durations, and the
// findings of their scans by image and severity; a failed job counted as failed.
func TestMetrics(t *testing.T) {
	eng := testenv.Engine(t)
	ctx := t.Context()
	if err := testimages.EnsureUpgradable(ctx, eng, testimages.DebianOptions{}); err != nil {
		t.Fatalf("EnsureUpgradable = %v", err)
	}
	if err := testimages.Ensure(ctx, eng); err != nil {
		t.Fatal(err)
	}
	advisories(t)
	begun := time.Now()
	e := newEnvWith(t, containerization.Config{Engine: eng}, func(c *server.Config) { c.MetricsInterval = 500 * time.Millisecond })
	run := testenv.NewRun(t, eng)

	if st, _ := e.do("", "GET", "/metrics", nil); st != 401 {
		t.Errorf("GET /metrics without a token = %d, want 401", st)
	}

	name := run.Name("metrics")
	st, body := e.do(state.ScopeOperate, "POST", "/v1/containers", map[string]any{"name": name,
		"config": map[string]any{"image": testimages.Busybox, "command": []string{"sleep", "600"}, "labels": run.Labels()}})
	var created containerization.ContainerResult
	if err := json.Unmarshal(body, &created); st != 201 || err != nil {
		t.Fatalf("create = %d %s", st, body)
	}
	if st, body := e.do(state.ScopeOperate, "POST", "/v1/containers/"+name+"/start", nil); st != 200 {
		t.Fatalf("start = %d %s", st, body)
	}
	ours := map[string]string{"name": name}
	var x exposition
	if !testenv.Eventually(time.Minute, func() bool {
		x = e.scrape()
		_, ok := x.get("myrmex_container_memory_usage_bytes", ours)
		return ok
	}) {
		t.Fatalf("no sample of %s within a minute", name)
	}
	labels := map[string]string{"name": name, "id": created.ContainerID[:12], "image": testimages.Busybox}
	mem := x.must(t, "myrmex_container_memory_usage_bytes", labels)
	limit := x.must(t, "myrmex_container_memory_limit_bytes", labels)
	if mem <= 0 || limit < mem {
		t.Errorf("memory %v of limit %v bytes, want 0 < usage <= limit", mem, limit)
	}
	if cpu := x.must(t, "myrmex_container_cpu_usage_percent", labels); cpu < 0 || cpu > 100 {
		t.Errorf("cpu %v%%, want 0 to 100", cpu)
	}
	for _, n := range []string{"myrmex_container_network_receive_bytes_total", "myrmex_container_network_transmit_bytes_total",
		"myrmex_container_disk_read_bytes_total", "myrmex_container_disk_write_bytes_total", "myrmex_container_restarts_total"} {
		if v := x.must(t, n, labels); v < 0 {
			t.Errorf("%s = %v", n, v)
		}
		if typ := x[n].GetType(); typ != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v, want a counter", n, typ)
		}
	}
	started := x.must(t, "myrmex_container_start_time_seconds", labels)
	if now := float64(time.Now().Unix()); started < now-600 || started > now+5 {
		t.Errorf("started at %v, now %v", started, now)
	}
	if v := x.must(t, "myrmex_container_health_status", map[string]string{"name": name, "status": "unknown"}); v != 1 {
		t.Errorf("health_status{status=unknown} = %v for a container without a HEALTHCHECK, want 1", v)
	}
	if v := x.must(t, "myrmex_container_health_status", map[string]string{"name": name, "status": "healthy"}); v != 0 {
		t.Errorf("health_status{status=healthy} = %v, want 0", v)
	}
	if v := x.must(t, "myrmex_container_performance_score", labels); v <= 0 || v > 100 {
		t.Errorf("performance_score = %v", v)
	}
	if taken := x.must(t, "myrmex_container_sample_timestamp_seconds", nil); taken < float64(begun.Unix()) || taken > float64(time.Now().Unix()+1) {
		t.Errorf("the sample was taken at %v, not during the test (from %v)", taken, begun.Unix())
	}
	x.must(t, "myrmex_container_sample_age_seconds", nil)

	// A stopped container leaves the sample.
	if st, body := e.do(state.ScopeOperate, "POST", "/v1/containers/"+name+"/stop?timeout=0s", nil); st != 200 {
		t.Fatalf("stop = %d %s", st, body)
	}
	if !testenv.Eventually(time.Minute, func() bool {
		_, ok := e.scrape().get("myrmex_container_memory_usage_bytes", ours)
		return !ok
	}) {
		t.Errorf("%s is still sampled a minute after it stopped", name)
	}
	if st, body := e.do(state.ScopeOperate, "DELETE", "/v1/containers/"+name, nil); st != 200 {
		t.Errorf("remove = %d %s", st, body)
	}

	// Jobs: a scan that finds two high vulnerabilities, a build that scans what it built, a scan that fails.
	scanID := e.startJob("/v1/scans", map[string]any{"image_name": testimages.Upgradable, "scan_type": "full"})
	buildCtx := t.TempDir()
	if err := os.WriteFile(filepath.Join(buildCtx, "Dockerfile"), []byte("FROM "+testimages.Busybox+"\nLABEL metrics=test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	built := "myrmex.local/metrics-build:" + run.ID[strings.LastIndex(run.ID, "-")+1:]
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), built, client.ImageRemoveOptions{Force: true})
	})
	buildID := e.startJob("/v1/builds", map[string]any{"image_name": built, "context_path": buildCtx, "scan": "quick"})
	failID := e.startJob("/v1/scans", map[string]any{"image_name": "myrmex.local/nosuch:1", "scan_type": "compliance"})
	for id, want := range map[string]string{scanID: state.JobSucceeded, buildID: state.JobSucceeded, failID: state.JobFailed} {
		if j := e.waitJob(id); j.State != want {
			t.Fatalf("job %s %s = %s (%s), want %s", j.Kind, j.Subject, j.State, j.Error, want)
		}
	}
	x = e.scrape()
	for _, c := range []struct {
		kind, outcome string
	}{{"scan", "succeeded"}, {"build", "succeeded"}, {"scan", "failed"}} {
		l := map[string]string{"kind": c.kind, "outcome": c.outcome}
		if n := x.must(t, "myrmex_jobs_total", l); n != 1 {
			t.Errorf("myrmex_jobs_total%v = %v, want 1", l, n)
		}
		if n := x.must(t, "myrmex_job_duration_seconds", l); n != 1 {
			t.Errorf("myrmex_job_duration_seconds%v counts %v, want 1", l, n)
		}
	}
	if _, ok := x.get("myrmex_jobs_total", map[string]string{"kind": "build", "outcome": "failed"}); ok {
		t.Error("a build counted as failed")
	}
	for sev, want := range map[string]float64{"critical": 0, "high": 2, "medium": 0, "low": 0, "unknown": 0} {
		l := map[string]string{"image": testimages.Upgradable, "severity": sev}
		if v := x.must(t, "myrmex_scan_findings", l); v != want {
			t.Errorf("myrmex_scan_findings%v = %v, want %v", l, v, want)
		}
	}
	if v := x.must(t, "myrmex_scan_findings", map[string]string{"image": built, "severity": "high"}); v != 0 {
		t.Errorf("the build's scan: %v high findings, want 0", v)
	}
}

// Refusals of the policy are counted by gate and rule: a create refused at once (the answer's error carries the
// verdict) and a push job refused (its error does); other errors are no refusal.
func TestMetricsPolicyRefusals(t *testing.T) {
	eng := testenv.Engine(t)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte("version: 1\nimages:\n  registries: [registry.invalid]\n"), "metrics-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, containerization.Config{Engine: eng, Policy: pol}, func(c *server.Config) { c.MetricsInterval = -1 })
	run := testenv.NewRun(t, eng)

	if _, ok := e.scrape().get("myrmex_policy_refusals_total", nil); ok {
		t.Fatal("refusals counted before any")
	}
	st, body := e.do(state.ScopeOperate, "POST", "/v1/containers", map[string]any{"name": run.Name("refused"),
		"config": map[string]any{"image": testimages.Busybox, "labels": run.Labels()}})
	if st != 422 || !strings.Contains(string(body), `"images.registries"`) {
		t.Fatalf("create outside the allowed registries = %d %s, want 422 naming the rule", st, body)
	}
	if st, _ := e.do(state.ScopeRead, "GET", "/v1/containers/"+run.Name("nosuch"), nil); st != 404 {
		t.Errorf("inspect of no container = %d", st)
	}
	id := e.startJob("/v1/registry", map[string]any{"operation": "push", "image_name": testimages.Busybox,
		"registry_url": "http://127.0.0.1:1", "destination": "metrics/busybox:1"})
	if j := e.waitJob(id); j.State != state.JobFailed || !strings.Contains(string(j.Error), `"policy_violation"`) {
		t.Fatalf("the push = %s %s, want a refusal", j.State, j.Error)
	}
	x := e.scrape()
	for _, gate := range []string{"create", "push"} {
		l := map[string]string{"gate": gate, "rule": "images.registries"}
		if v := x.must(t, "myrmex_policy_refusals_total", l); v != 1 {
			t.Errorf("myrmex_policy_refusals_total%v = %v, want 1", l, v)
		}
	}
	if n := len(x["myrmex_policy_refusals_total"].GetMetric()); n != 2 {
		t.Errorf("%d refusal series, want 2", n)
	}
	if n := x.must(t, "myrmex_jobs_total", map[string]string{"kind": "push", "outcome": "failed"}); n != 1 {
		t.Errorf("failed pushes = %v, want 1", n)
	}
	// No sampling was asked for: none ran.
	if _, ok := x.get("myrmex_container_sample_timestamp_seconds", nil); ok || x.must(t, "myrmex_container_samples_total", nil) != 0 {
		t.Error("containers sampled with a negative MetricsInterval")
	}
}

// hungEngine is an engine that accepts connections and never answers: slowness the real engine cannot be made
// to show on demand. It counts the connections it accepted.
func hungEngine(t *testing.T) (host string, conns *atomic.Int64) {
	sock := filepath.Join(t.TempDir(), "hung.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int64{}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			conns.Add(1)
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "unix://" + sock, conns
}

// While the engine does not answer, a scrape answers at once from what was sampled before (here nothing) and
// starts no engine call of its own; the sampling in the background ends at its timeout and is counted as an
// error.
func TestMetricsEngineHung(t *testing.T) {
	host, conns := hungEngine(t)
	e := newEnvWith(t, containerization.Config{Host: host}, func(c *server.Config) {
		c.MetricsInterval, c.MetricsTimeout = time.Hour, 500*time.Millisecond
	})
	x := e.scrape() // the first sampling may still be waiting on the engine: the scrape does not wait for it
	if _, ok := x.get("myrmex_container_sample_timestamp_seconds", nil); ok {
		t.Error("a sample timestamp with no sample ever taken")
	}
	if !testenv.Eventually(time.Minute, func() bool {
		v, _ := e.scrape().get("myrmex_container_sample_errors_total", nil)
		return v >= 1
	}) {
		t.Fatal("the sampling of a hung engine did not end at its timeout")
	}
	if conns.Load() == 0 {
		t.Fatal("the sampling never reached the engine")
	}
	before := conns.Load()
	for range 5 {
		x = e.scrape()
	}
	for _, n := range []string{"myrmex_container_samples_total", "myrmex_container_sample_errors_total"} {
		if v := x.must(t, n, nil); v != 1 {
			t.Errorf("%s = %v after the scrapes, want 1: a scrape started a sampling", n, v)
		}
	}
	if after := conns.Load(); after != before {
		t.Errorf("the scrapes opened %d connections to the engine, want none", after-before)
	}
	if _, ok := x.get("myrmex_container_memory_usage_bytes", nil); ok {
		t.Error("container series without a sample")
	}
}
