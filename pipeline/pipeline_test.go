package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/pipeline"
)

const full = `version: 1
name: web
image: registry.example.com/team/web:1.4
build: {context: app, dockerfile: Dockerfile.prod, build_args: {VERSION: "1.4"}}
test:
  http: [{port: 8080, path: /healthz, status: 200, body: ok}]
  exec: [{cmd: [test, -f, /app/built]}]
  beside: {image: busybox:1, command: [wget, -qO-, "http://127.0.0.1:8080/"]}
  timeout: 45s
scan: {type: full, db_dir: db}
optimize: {type: size}
push: {registry: prod}
sign: {key: cosign.key}
deploy: {name: web, manifests: deploy/, namespace: shop, container: web, wait: true, timeout: 3m}
policy: policy.yaml
`

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(f, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if p.Test.Timeout != 45*time.Second || p.Deploy.Timeout != 3*time.Minute || p.Build.BuildArgs["VERSION"] != "1.4" ||
		p.Test.Beside.Image != "busybox:1" || p.Push.Registry != "prod" || p.Path("policy.yaml") != filepath.Join(dir, "policy.yaml") ||
		p.Path("/abs") != "/abs" {
		t.Errorf("Load = %+v", p)
	}
	if _, err := pipeline.Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a missing file = %v, want ErrNotFound", err)
	}
}

// Bad input is refused with the line and the field, before anything runs.
func TestParseRefuses(t *testing.T) {
	head := "version: 1\nname: web\nimage: r.example/a:1\n"
	for _, c := range []struct{ doc, want string }{
		{"", "empty"},
		{"version: 2\nname: a\nimage: a:1\n", "line 1: version 2"},
		{"name: a\nimage: a:1\n", "version is missing"},
		{"version: 1\nimage: a:1\n", "name is missing"},
		{"version: 1\nname: a\n", "image is missing"},
		{"version: 1\nname: a\nimage: a@sha256:" + strings.Repeat("0", 64) + "\n", "want a reference with a tag"},
		{head + "bogus: 1\n", "line 4: unknown field bogus in the pipeline"},
		{head + "test: {htp: []}\n", "unknown field htp in test"},
		{head + "test: {}\n", "line 4: test has no check"},
		{head + "test: {run: {cmd: [x]}, http: [{port: 1, path: /}]}\n", "cannot be combined"},
		{head + "test: {http: [{port: 0, path: /}]}\n", "test.http"},
		{head + "test: {run: {cmd: []}}\n", "without cmd"},
		{head + "test: {beside: {image: \"UPPER CASE\"}}\n", "test.beside.image"},
		{head + "test: {healthcheck: true, timeout: -1s}\n", "negative"},
		{head + "scan: {type: deep}\n", "line 4: scan.type \"deep\""},
		{head + "optimize: {type: fast}\n", "optimize.type"},
		{head + "sign: {key: k}\n", "sign needs push"},
		{head + "push: {}\nsign: {key: \"\"}\n", "sign.key is missing"},
		{head + "deploy: {name: a, manifests: m}\n", "deploy needs push"},
		{head + "push: {}\ndeploy: {manifests: m}\n", "deploy.name is missing"},
		{head + "x: &a [1]\ny: *a\n", "aliases are not allowed"},
		{head + "push:\n", "push has no value"},
		{head + "---\nversion: 1\n", "more than one YAML document"},
		{head + "test: {timeout: soon}\n", "line 4"},
		{head + "test: {healthcheck: true, timeout: 30}\n", "cannot unmarshal !!int `30` into time.Duration"},
		{head + "test: {healthcheck: true, timeout: 30ns}\n", "write the unit"},
		{head + "push: {}\ndeploy: {name: a, manifests: m, timeout: -1m}\n", "deploy.timeout is negative"},
		{strings.Repeat("#", pipeline.MaxFileSize+1), "larger than"},
		{"\xff", "not UTF-8"},
	} {
		_, err := pipeline.Parse([]byte(c.doc), "p.yaml")
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.60q) = %v, want ErrInvalidArgument saying %q", c.doc, err, c.want)
		}
	}
	if _, err := pipeline.Parse([]byte(full), "p.yaml"); err != nil {
		t.Errorf("Parse(full) = %v", err)
	}
}

// The stages a run may skip: test, optimize, push, sign and deploy; never build or scan; push only with what needs
// it skipped too.
func TestCheckSkip(t *testing.T) {
	p, err := pipeline.Parse([]byte(full), "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	minimal, err := pipeline.Parse([]byte("version: 1\nname: m\nimage: registry.example.com/m:1\npush: {}\n"), "minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    *pipeline.Pipeline
		skip []string
		ok   bool
	}{
		{p, nil, true},
		{p, []string{"test", "optimize"}, true},
		{p, []string{"push", "sign", "deploy"}, true},
		{p, []string{"push"}, false},
		{p, []string{"push", "sign"}, false},
		{p, []string{"build"}, false},
		{p, []string{"scan"}, false},
		{p, []string{"lint"}, false},
		{p, []string{"test", "test", "test", "test", "test", "test", "test", "test", "test", "test", "test", "test", "test", "test", "test", "test", "test"}, false},
		{minimal, []string{"push"}, true},
	} {
		err := c.p.CheckSkip(c.skip)
		if c.ok && err != nil || !c.ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s.CheckSkip(%v) = %v, want ok %t", c.p.Name, c.skip, err, c.ok)
		}
	}
}
