package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// env is a server over real HTTP on loopback, with a token of each scope.
type env struct {
	t      *testing.T
	url    string
	tokens map[state.Scope]string
	st     *state.Store
	srv    *server.Server
	doc    *jsonschema.Compiler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	eng := testenv.Engine(t)
	ctx := context.Background()
	if err := testimages.Ensure(ctx, eng); err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, containerization.Config{Engine: eng})
}

// newEnvWith is a server over a client of cfg (an engine that is not there answers 503: enough for what checks
// authorization alone), with the admission webhook on; mods change the server's configuration.
func newEnvWith(t *testing.T, cfg containerization.Config, mods ...func(*server.Config)) *env {
	return newEnvOn(t, cfg, sqlite, mods...)
}

// backend makes a state database for one test: a SQLite file, or a PostgreSQL database of its own.
type backend func(t *testing.T) string

func sqlite(t *testing.T) string { return filepath.Join(t.TempDir(), "state.db") }

func postgres(t *testing.T) string { return testenv.Postgres(t) }

// onBoth runs f as two subtests, on SQLite and on PostgreSQL: the same tests on both.
func onBoth(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqlite) })
	t.Run("postgres", func(t *testing.T) { f(t, postgres) })
}

func newEnvOn(t *testing.T, cfg containerization.Config, b backend, mods ...func(*server.Config)) *env {
	t.Helper()
	ctx := context.Background()
	c, err := containerization.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	st, err := state.Open(ctx, b(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	scfg := server.Config{Client: c, State: st, MaxBody: 64 << 10, Admission: server.AdmissionConfig{Enabled: true}}
	for _, mod := range mods {
		mod(&scfg)
	}
	srv, err := server.New(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	e := &env{t: t, url: hs.URL, tokens: map[state.Scope]string{}, st: st, srv: srv}
	for _, sc := range []state.Scope{state.ScopeRead, state.ScopeOperate, state.ScopeAdmin} {
		v, _, err := st.CreateToken(ctx, "t-"+string(sc), sc, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[sc] = v
	}
	return e
}

// do sends a request with the token of scope (none for ""), and returns the status and the body.
func (e *env) do(scope state.Scope, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			buf, _ := json.Marshal(b)
			rd = bytes.NewReader(buf)
		}
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if scope != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[scope])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// valid checks a body against the OpenAPI document's schema for that operation's answer.
func (e *env) valid(path, method string, status any, body []byte) {
	e.t.Helper()
	if e.doc == nil {
		_, raw := e.do(state.ScopeRead, "GET", "/openapi.json", nil)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			e.t.Fatal(err)
		}
		e.doc = jsonschema.NewCompiler()
		if err := e.doc.AddResource("https://myrmex.local/openapi.json", doc); err != nil {
			e.t.Fatal(err)
		}
	}
	ptr := fmt.Sprintf("https://myrmex.local/openapi.json#/paths/%s/%s/responses/%v/content/application~1json/schema",
		strings.ReplaceAll(strings.ReplaceAll(path, "~", "~0"), "/", "~1"), strings.ToLower(method), status)
	sch, err := e.doc.Compile(ptr)
	if err != nil {
		e.t.Fatalf("compiling the schema of %s %s %v: %v", method, path, status, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("%s %s: the answer is not JSON: %s", method, path, body)
	}
	if err := sch.Validate(v); err != nil {
		e.t.Errorf("%s %s: the answer does not match the OpenAPI document: %v\n%s", method, path, err, body)
	}
}

// Every route with no token, a wrong one, and each scope: 401 without a valid token, 403 below the route's
// scope, and neither at or above it. Public are the health check and the admission webhook only: kube-apiserver
// calls webhooks without a token, as Gatekeeper, Kyverno and cert-manager's webhook take them (docs/server.md).
func TestAuthorizationMatrix(t *testing.T) { onBoth(t, testAuthorizationMatrix) }

func testAuthorizationMatrix(t *testing.T, b backend) {
	e := newEnvOn(t, containerization.Config{Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")}, b)
	_, raw := e.do(state.ScopeAdmin, "GET", "/openapi.json", nil)
	var doc struct {
		Paths map[string]map[string]struct {
			Description string `json:"description"`
			Security    []any  `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Paths) < 10 {
		t.Fatalf("the document lists %d paths", len(doc.Paths))
	}
	rank := map[state.Scope]int{state.ScopeRead: 1, state.ScopeOperate: 2, state.ScopeAdmin: 3}
	checked := 0
	for path, ops := range doc.Paths {
		concrete := strings.NewReplacer("{name}", "nosuch-container", "{id}", "0000", "{namespace}", "default").Replace(path)
		for method, op := range ops {
			method = strings.ToUpper(method)
			if method == "GET" && strings.HasSuffix(path, "/events") {
				continue // a stream of a job that is not there: 404 after auth, checked below with the others' rule
			}
			need := state.Scope("")
			for _, sc := range []state.Scope{state.ScopeRead, state.ScopeOperate, state.ScopeAdmin} {
				if strings.Contains(op.Description, "scope "+string(sc)+" ") {
					need = sc
				}
			}
			if public := method+" "+path == "GET /v1/health" || method+" "+path == "POST /v1/admission" || method+" "+path == "POST /v1/session"; public != (need == "") {
				t.Errorf("%s %s: public = %v, want %v", method, path, need == "", public)
			}
			if need == "" {
				if len(op.Security) != 0 {
					t.Errorf("%s %s needs a token but names no scope", method, path)
				}
				if st, _ := e.do("", method, concrete, nil); st == 401 || st == 403 {
					t.Errorf("%s %s without a token = %d, want it public", method, path, st)
				}
				continue
			}
			if st, _ := e.do("", method, concrete, nil); st != 401 {
				t.Errorf("%s %s without a token = %d, want 401", method, path, st)
			}
			for sc, r := range rank {
				st, body := e.do(sc, method, concrete, "{}")
				switch {
				case r < rank[need] && st != 403:
					t.Errorf("%s %s with scope %s = %d, want 403", method, path, sc, st)
				case r >= rank[need] && (st == 401 || st == 403):
					t.Errorf("%s %s with scope %s = %d (%s), want it allowed", method, path, sc, st, body)
				}
			}
			checked++
		}
	}
	if checked < 12 {
		t.Errorf("checked %d routes", checked)
	}
	// A wrong or expired token is 401, and the address is refused for a minute after 20 failures.
	req, _ := http.NewRequest("GET", e.url+"/v1/jobs", nil)
	req.Header.Set("Authorization", "Bearer myx_wrong")
	var last int
	for range 25 {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp.StatusCode
	}
	if last != 429 {
		t.Errorf("after 25 failed authentications: %d, want 429", last)
	}
}

// The containers' lifecycle over the API, each answer valid against the OpenAPI document; bad input is 400
// before anything is made; every change is in the audit log, with the token's name and never its value.
func TestContainersOverHTTP(t *testing.T) {
	e := newEnv(t)
	name := "myrmex-api-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { e.do(state.ScopeOperate, "DELETE", "/v1/containers/"+name+"?force=true", nil) })

	st, body := e.do(state.ScopeOperate, "POST", "/v1/containers", map[string]any{"name": name,
		"config": map[string]any{"image": testimages.Busybox, "command": []string{"sh", "-c", "echo hello; sleep 600"},
			"labels": map[string]string{"test": "api"}}})
	if st != 201 {
		t.Fatalf("create = %d %s", st, body)
	}
	e.valid("/v1/containers", "POST", 201, body)
	for _, op := range []string{"start"} {
		if st, body := e.do(state.ScopeOperate, "POST", "/v1/containers/"+name+"/"+op, nil); st != 200 {
			t.Fatalf("%s = %d %s", op, st, body)
		}
	}
	st, body = e.do(state.ScopeRead, "GET", "/v1/containers/"+name, nil)
	var res containerization.ContainerResult
	if err := json.Unmarshal(body, &res); st != 200 || err != nil || res.Status != "running" || res.Details == nil {
		t.Fatalf("inspect = %d %s", st, body)
	}
	e.valid("/v1/containers/{name}", "GET", 200, body)
	st, body = e.do(state.ScopeRead, "GET", "/v1/containers/"+name+"/metrics", nil)
	if st != 200 || !strings.Contains(string(body), `"container_name"`) {
		t.Errorf("metrics = %d %s", st, body)
	}
	e.valid("/v1/containers/{name}/metrics", "GET", 200, body)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body = e.do(state.ScopeRead, "GET", "/v1/containers/"+name+"/logs?tail=5", nil)
		if strings.Contains(string(body), "hello") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st != 200 || !strings.Contains(string(body), "hello") {
		t.Errorf("logs = %d %s", st, body)
	}
	st, body = e.do(state.ScopeRead, "GET", "/v1/containers", nil)
	if st != 200 || !strings.Contains(string(body), name) {
		t.Errorf("list = %d %s", st, body)
	}
	e.valid("/v1/containers", "GET", 200, body)
	if st, body := e.do(state.ScopeOperate, "POST", "/v1/containers/"+name+"/stop?timeout=1s", nil); st != 200 {
		t.Errorf("stop = %d %s", st, body)
	}
	if st, body := e.do(state.ScopeOperate, "DELETE", "/v1/containers/"+name, nil); st != 200 {
		t.Errorf("remove = %d %s", st, body)
	}
	st, body = e.do(state.ScopeRead, "GET", "/v1/containers/"+name, nil)
	var eb server.ErrorBody
	if err := json.Unmarshal(body, &eb); st != 404 || err != nil || eb.Error.Code != "not_found" || eb.Error.Class != "ContainerManagementError" {
		t.Errorf("inspect of a removed container = %d %s", st, body)
	}
	e.valid("/v1/containers/{name}", "GET", "default", body)

	// Bad input: 400 before anything is made.
	for _, bad := range []string{``, `{"name": "x", "config": {"image": ""}}`, `{"name": "x", "bogus": 1}`, `{"name":"x"} {"name":"y"}`,
		`{"name": "x", "config": {"image": "` + strings.Repeat("a", 70<<10) + `"}}`} {
		if st, body := e.do(state.ScopeOperate, "POST", "/v1/containers", bad); st != 400 {
			t.Errorf("create with %.40q = %d %s, want 400", bad, st, body)
		}
	}
	if st, _ := e.do(state.ScopeOperate, "POST", "/v1/containers/"+name+"/stop?timeout=forever", nil); st != 400 {
		t.Errorf("a bad timeout = %d, want 400", st)
	}

	// The audit log.
	st, body = e.do(state.ScopeAdmin, "GET", "/v1/audit?limit=50", nil)
	var log server.AuditLog
	if err := json.Unmarshal(body, &log); st != 200 || err != nil {
		t.Fatalf("audit = %d %s", st, body)
	}
	seen := map[string]bool{}
	for _, a := range log.Entries {
		seen[a.Method+" "+a.Path+" "+fmt.Sprint(a.Status)] = true
		if a.Token != "t-operate" {
			t.Errorf("audit entry by %q", a.Token)
		}
	}
	for _, want := range []string{"POST /v1/containers 201", "POST /v1/containers/" + name + "/start 200", "DELETE /v1/containers/" + name + " 200", "POST /v1/containers 400"} {
		if !seen[want] {
			t.Errorf("the audit log lacks %q: %v", want, seen)
		}
	}
	for _, tok := range e.tokens {
		if strings.Contains(string(body), tok) {
			t.Error("the audit log shows a token's value")
		}
	}
}

// A scan as a job: 202 with the job, its progress streamed over SSE as it happens (and resumed), then the end
// with the result; a failed job keeps its error object; a job outlives the client that followed it; a
// cancelled job ends canceled.
func TestJobsOverHTTP(t *testing.T) { onBoth(t, testJobsOverHTTP) }

func testJobsOverHTTP(t *testing.T, on backend) {
	e := newEnvOn(t, containerization.Config{Engine: testenv.Engine(t)}, on)
	st, body := e.do(state.ScopeOperate, "POST", "/v1/scans", map[string]any{"image_name": testimages.Web, "scan_type": "compliance"})
	var job state.Job
	if err := json.Unmarshal(body, &job); st != 202 || err != nil || job.ID == "" || job.Kind != "scan" || job.Owner != "t-operate" {
		t.Fatalf("scan = %d %s", st, body)
	}
	e.valid("/v1/scans", "POST", 202, body)
	req, _ := http.NewRequest("GET", e.url+"/v1/jobs/"+job.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[state.ScopeRead])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events = %d %s", resp.StatusCode, ct)
	}
	var kinds []string
	var end state.Job
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "progress":
			var ev containerization.Event
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
				t.Fatalf("a progress event: %v: %s", err, line)
			}
			kinds = append(kinds, ev.Op+"/"+ev.Phase+"/"+ev.Status)
		case strings.HasPrefix(line, "data: ") && event == "end":
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &end); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(kinds) < 2 || end.State != state.JobSucceeded || !strings.Contains(string(end.Result), `"compliance_score"`) {
		t.Fatalf("the stream: events %v, end %+v", kinds, end)
	}
	st, body = e.do(state.ScopeRead, "GET", "/v1/jobs/"+job.ID, nil)
	if st != 200 || !strings.Contains(string(body), `"succeeded"`) {
		t.Errorf("the job = %d %s", st, body)
	}
	e.valid("/v1/jobs/{id}", "GET", 200, body)
	// Resuming after the second event replays the rest.
	req.Header.Set("Last-Event-ID", "1")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if got := strings.Count(string(b), "event: progress"); got != len(kinds)-2 {
		t.Errorf("resumed after event 1: %d events, want %d", got, len(kinds)-2)
	}

	// A job that ended cannot be cancelled (409); one not there is 404.
	if st, _ := e.do(state.ScopeOperate, "DELETE", "/v1/jobs/"+job.ID, nil); st != 409 {
		t.Errorf("cancel of an ended job = %d, want 409", st)
	}
	if st, _ := e.do(state.ScopeRead, "GET", "/v1/jobs/nosuch/events", nil); st != 404 {
		t.Errorf("events of no job = %d, want 404", st)
	}
	// A failing job: its error is the JSON error object.
	_, body = e.do(state.ScopeOperate, "POST", "/v1/scans", map[string]any{"image_name": "myrmex.local/nosuch:1", "scan_type": "compliance"})
	if err := json.Unmarshal(body, &job); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, body = e.do(state.ScopeRead, "GET", "/v1/jobs/"+job.ID, nil); strings.Contains(string(body), `"failed"`) {
			break
		}
	}
	if !strings.Contains(string(body), `"class":"SecurityScanError"`) || strings.Contains(string(body), `"result"`) {
		t.Errorf("a failed job = %s", body)
	}
	if st, body := e.do(state.ScopeOperate, "POST", "/v1/scans", map[string]any{"image_name": "x", "scan_type": "deep"}); st != 400 {
		t.Errorf("a bad scan type = %d %s", st, body)
	}

	// A pull from a registry that accepts connections and never answers (a fault no real registry makes on
	// demand) runs until it is cancelled: the client that followed it leaving changes nothing; cancelling ends it
	// canceled.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, body = e.do(state.ScopeOperate, "POST", "/v1/registry", map[string]any{"operation": "pull", "image_name": ln.Addr().String() + "/hang:1"})
	if err := json.Unmarshal(body, &job); err != nil || job.ID == "" {
		t.Fatalf("pull = %s", body)
	}
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	sreq, _ := http.NewRequestWithContext(sctx, "GET", e.url+"/v1/jobs/"+job.ID+"/events", nil)
	sreq.Header.Set("Authorization", "Bearer "+e.tokens[state.ScopeRead])
	if resp, err := http.DefaultClient.Do(sreq); err == nil {
		scancel() // the follower leaves
		resp.Body.Close()
	}
	time.Sleep(500 * time.Millisecond)
	if _, body = e.do(state.ScopeRead, "GET", "/v1/jobs/"+job.ID, nil); !strings.Contains(string(body), `"running"`) {
		t.Fatalf("after its follower left, the job = %s; want it running", body)
	}
	if st, body := e.do(state.ScopeOperate, "DELETE", "/v1/jobs/"+job.ID, nil); st != 202 {
		t.Fatalf("cancel = %d %s", st, body)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, body = e.do(state.ScopeRead, "GET", "/v1/jobs/"+job.ID, nil); !strings.Contains(string(body), `"running"`) {
			break
		}
	}
	if !strings.Contains(string(body), `"canceled"`) {
		t.Errorf("the cancelled job = %s", body)
	}
}
