package server_test

import (
	"encoding/json"
	"time"

	"github.com/codomyrmex/containerization/server/state"
)

// submitted reads the job of a 202 answer.
func (e *env) submitted(method, path string, st int, body []byte) state.Job {
	e.t.Helper()
	var job state.Job
	if err := json.Unmarshal(body, &job); st != 202 || err != nil || job.ID == "" {
		e.t.Fatalf("%s %s = %d %s, want 202 with a job", method, path, st, body)
	}
	e.valid(path, method, 202, body)
	return job
}

// wait follows a job until it ends (at most d), and returns it as it ended.
func (e *env) wait(id string, d time.Duration) state.Job {
	e.t.Helper()
	var job state.Job
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		st, body := e.do(state.ScopeRead, "GET", "/v1/jobs/"+id, nil)
		if err := json.Unmarshal(body, &job); st != 200 || err != nil {
			e.t.Fatalf("GET /v1/jobs/%s = %d %s", id, st, body)
		}
		if job.Done() {
			return job
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %s (%s) has not ended after %s: %s", id, job.Kind, d, body)
		}
	}
}

// jobCount is how many jobs the server holds.
func (e *env) jobCount() int {
	e.t.Helper()
	_, body := e.do(state.ScopeRead, "GET", "/v1/jobs?limit=1000", nil)
	var list struct {
		Jobs []state.Job `json:"jobs"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		e.t.Fatalf("GET /v1/jobs: %s", body)
	}
	return len(list.Jobs)
}
