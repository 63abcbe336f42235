package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// pipeline check and run through the CLI: bad files and flags refused with exit 2 before anything runs; a run
// whose test fails exits 7 with the whole result, naming the stage, as JSON on stdout.
func TestPipelineCommand(t *testing.T) {
	eng := testEngine(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("app/Dockerfile", "FROM "+testimages.Busybox+"\nRUN echo built > /built\n")
	file := write("pipeline.yaml", `version: 1
name: cli
image: myrmex.local/cli-pipeline:test
build: {context: app}
test: {run: {cmd: [cat, /missing]}}
scan: {type: compliance}
`)
	removeImage(t, eng, "myrmex.local/cli-pipeline:test")

	if r := myrmex(t, "pipeline", "check", file); r.code != 0 || !strings.Contains(r.stdout, "pipeline cli") {
		t.Errorf("check = %d %s %s", r.code, r.stdout, r.stderr)
	}
	bad := write("bad.yaml", "version: 1\nname: x\nimage: a:1\nstages: []\n")
	if r := myrmex(t, "pipeline", "check", bad); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "line 4: unknown field stages") {
		t.Errorf("check of a bad file = %d %s", r.code, r.stderr)
	}
	if r := myrmex(t, "pipeline", "run", file, "--skip", "build"); r.code != cli.ExitUsage {
		t.Errorf("--skip build = %d %s", r.code, r.stderr)
	}
	if r := myrmex(t, "pipeline", "run", filepath.Join(dir, "nosuch.yaml")); r.code != cli.ExitNotFound {
		t.Errorf("a missing file = %d %s", r.code, r.stderr)
	}

	r := myrmex(t, "pipeline", "run", file, "-o", "json")
	var res containerization.PipelineResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("run -o json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if r.code != cli.ExitPolicy || res.Success || res.FailedStage != "test" || len(res.Stages) != 2 || res.Stages[0].Status != "passed" ||
		!strings.Contains(r.stderr, `"class":"PipelineError"`) || !strings.Contains(res.ErrorMessage, "exit code 1, want 0") {
		t.Errorf("a failing test: exit %d, %+v\nstderr: %s", r.code, res, r.stderr)
	}
	// Skipping the test lets the run through (the scan is compliance only: no database needed).
	r = myrmex(t, "pipeline", "run", file, "--skip", "test")
	if r.code != 0 || !strings.Contains(r.stdout, "pipeline cli passed") || !strings.Contains(r.stderr, "test skipped (skipped by the caller)") {
		t.Errorf("run --skip test = %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
