package server_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// Pipelines over the API: checked at once (what each stage would do), run as jobs from a file on the server's
// machine and inline (its paths read from the directory the request names), their scan in the history; a bad
// pipeline, a bad skip or a path that is not absolute is 400 before a job is queued, a file not there 404.
func TestPipelinesOverHTTP(t *testing.T) { onBoth(t, testPipelinesOverHTTP) }

func testPipelinesOverHTTP(t *testing.T, on backend) {
	eng := testenv.Engine(t)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, containerization.Config{Engine: eng}, on)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+testimages.Busybox+"\nRUN echo piped > /piped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "myrmex.local/api-pipeline:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), image, client.ImageRemoveOptions{Force: true})
	})
	doc := fmt.Sprintf("version: 1\nname: api\nimage: %s\nbuild: {context: .}\ntest:\n  run: {cmd: [cat, /piped], output: piped}\nscan: {type: compliance}\n", image)
	file := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}

	// The check.
	st, body := e.do(state.ScopeOperate, "POST", "/v1/pipelines/check", map[string]any{"file": file, "skip": []string{"test"}})
	var check server.PipelineCheck
	if err := json.Unmarshal(body, &check); st != 200 || err != nil || !check.Valid || check.Name != "api" || check.Image != image || len(check.Stages) != 7 {
		t.Fatalf("check = %d %s", st, body)
	}
	e.valid("/v1/pipelines/check", "POST", 200, body)
	plan := map[string]string{}
	for _, s := range check.Stages {
		plan[s.Stage] = fmt.Sprint(s.Run, " ", s.Why)
	}
	if plan["build"] != "true " || plan["scan"] != "true " || plan["test"] != "false skipped by the caller" || plan["push"] != "false no push in the pipeline" {
		t.Errorf("the check's stages = %v", plan)
	}

	// Bad requests: 400 (404 for a file not there), no job queued.
	jobs := e.jobCount()
	for _, c := range []struct {
		body any
		want int
	}{
		{`{}`, 400},
		{map[string]any{"file": "pipeline.yaml"}, 400},
		{map[string]any{"file": file, "pipeline": doc}, 400},
		{map[string]any{"file": file, "dir": dir}, 400},
		{map[string]any{"file": file, "skip": []string{"build"}}, 400},
		{map[string]any{"file": file, "skip": []string{"deploy", "nonsense"}}, 400},
		{map[string]any{"pipeline": doc}, 400},
		{map[string]any{"pipeline": doc, "dir": "relative"}, 400},
		{map[string]any{"pipeline": "version: 1\nname: api\n", "dir": dir}, 400},
		{map[string]any{"pipeline": doc + "bogus: 1\n", "dir": dir}, 400},
		{map[string]any{"pipeline": strings.Repeat("#", 300<<10), "dir": dir}, 400},
		{map[string]any{"file": filepath.Join(dir, "nosuch.yaml")}, 404},
		{map[string]any{"pipeline": doc, "dir": filepath.Join(dir, "nosuch")}, 404},
	} {
		for _, path := range []string{"/v1/pipelines", "/v1/pipelines/check"} {
			st, body := e.do(state.ScopeOperate, "POST", path, c.body)
			if st != c.want {
				t.Errorf("POST %s %.80v = %d %.200s, want %d", path, c.body, st, body, c.want)
				continue
			}
			e.valid(path, "POST", "default", body)
		}
	}
	if n := e.jobCount(); n != jobs {
		t.Errorf("the refused pipelines queued %d jobs", n-jobs)
	}

	// Runs: from the file, then inline with the test skipped.
	result := func(job state.Job) containerization.PipelineResult {
		t.Helper()
		var res containerization.PipelineResult
		if err := json.Unmarshal(job.Result, &res); job.State != state.JobSucceeded || job.Kind != "pipeline" || job.Subject != "api" || err != nil || !res.Success {
			t.Fatalf("the pipeline job = %+v %s %s", job, job.Result, job.Error)
		}
		return res
	}
	st, body = e.do(state.ScopeOperate, "POST", "/v1/pipelines", map[string]any{"file": file})
	fromFile := e.wait(e.submitted("POST", "/v1/pipelines", st, body).ID, 4*time.Minute)
	res := result(fromFile)
	var got []string
	for _, s := range res.Stages {
		got = append(got, s.Stage+":"+s.Status)
	}
	if strings.Join(got, " ") != "build:passed test:passed scan:passed optimize:skipped push:skipped sign:skipped deploy:skipped" {
		t.Errorf("the stages = %v", got)
	}
	st, body = e.do(state.ScopeOperate, "POST", "/v1/pipelines", map[string]any{"pipeline": doc, "dir": dir, "skip": []string{"test"}})
	inline := e.wait(e.submitted("POST", "/v1/pipelines", st, body).ID, 4*time.Minute)
	if res := result(inline); res.Stages[1].Status != containerization.StageSkipped {
		t.Errorf("the inline run's test = %+v, want it skipped", res.Stages[1])
	}
	// Its events went to the job's stream: each stage's start and end.
	_, events := e.do(state.ScopeRead, "GET", "/v1/jobs/"+inline.ID+"/events", nil)
	if !strings.Contains(string(events), `"op":"pipeline"`) || !strings.Contains(string(events), `"phase":"scan"`) {
		t.Errorf("the pipeline's events = %.500s", events)
	}

	// Both scans are in the history, as the pipeline's.
	st, body = e.do(state.ScopeRead, "GET", "/v1/scans?image="+image, nil)
	var l server.ScanList
	if err := json.Unmarshal(body, &l); st != 200 || err != nil || len(l.Scans) != 2 || l.Scans[0].ID != inline.ID || l.Scans[1].ID != fromFile.ID || l.Scans[0].JobKind != "pipeline" {
		t.Errorf("the history of %s = %d %s", image, st, body)
	}
}
