package kube

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadManifestsMultiDocumentYAMLAndJSON(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", `# leading comment
apiVersion: v1
kind: ConfigMap
metadata: {name: one}
---
---
# only a comment
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: two}}
- {apiVersion: v1, kind: Secret, metadata: {name: three}}
`)
	write(t, dir, "sub/deeper/b.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"four"}}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"five"}}`)
	write(t, dir, "sub/notes.txt", "not a manifest")
	write(t, dir, ".hidden/c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hidden}\n")
	objs, err := ReadManifests(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if got := strings.Join(names, ","); got != "one,two,three,four,five" {
		t.Fatalf("objects = %s, want one,two,three,four,five (directories recursively, lists expanded, hidden dirs skipped)", got)
	}
	if objs[0].Source != filepath.Join(dir, "a.yaml")+":2" {
		t.Errorf("source of the first object = %q, want the file and line 2", objs[0].Source)
	}
	if !strings.HasSuffix(objs[1].Source, "a.yaml:9") {
		t.Errorf("source of the list = %q, want line 9", objs[1].Source)
	}
}

func TestReadManifestsErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		want          error
		says          string
	}{
		{"malformed.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n", errdefs.ErrInvalidArgument, "line 5"},
		{"nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n", errdefs.ErrInvalidArgument, "no kind"},
		{"noname.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", errdefs.ErrInvalidArgument, "no metadata.name"},
		{"generate.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n", errdefs.ErrInvalidArgument, "generateName"},
		{"scalar.yaml", "just a string\n", errdefs.ErrInvalidArgument, "must be an object"},
		{"bad.json", `{"apiVersion": "v1", "kind": `, errdefs.ErrInvalidArgument, "JSON document 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, dir, c.name, c.content)
			_, err := ReadManifests(p, nil)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), c.name) {
				t.Fatalf("error = %v, want %v naming the file and saying %q", err, c.want, c.says)
			}
		})
	}
	if _, err := ReadManifests(filepath.Join(dir, "absent.yaml"), nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing file: error = %v, want ErrNotFound", err)
	}
	empty := t.TempDir()
	if _, err := ReadManifests(empty, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty directory: error = %v, want ErrInvalidArgument", err)
	}
	objs, err := ReadManifests("-", strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fromstdin}\n"))
	if err != nil || len(objs) != 1 || objs[0].GetName() != "fromstdin" || objs[0].Source != "stdin:1" {
		t.Fatalf("stdin: %v %v", objs, err)
	}
}

func TestOverrides(t *testing.T) {
	objs, err := ParseManifests(strings.NewReader(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: busybox:1}]
      containers:
      - {name: web, image: web:1, env: [{name: KEEP, value: "1"}, {name: MODE, value: dev}]}
      - {name: sidecar, image: side:1}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 0 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: sidecar, image: side:1}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	ov := Overrides{
		Replicas: &three, Images: map[string]string{"sidecar": "side:2", "init": "busybox:2"},
		Requests: map[string]string{"cpu": "100m"}, Limits: map[string]string{"memory": "64Mi"},
		Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"},
		Env: map[string]string{"MODE": "prod", "NEW": "v"},
	}
	if err := ov.validate(); err != nil {
		t.Fatal(err)
	}
	if err := ov.apply(objs, findPrimary(objs, "web")); err != nil {
		t.Fatal(err)
	}
	d := objs[0].Object
	get := func(m map[string]any, path ...any) any {
		var cur any = m
		for _, p := range path {
			switch k := p.(type) {
			case string:
				cur = cur.(map[string]any)[k]
			case int:
				cur = cur.([]any)[k]
			}
		}
		return cur
	}
	checks := []struct {
		got, want any
		what      string
	}{
		{get(d, "spec", "replicas"), int64(3), "replicas"},
		{get(d, "spec", "template", "spec", "containers", 1, "image"), "side:2", "sidecar image by name"},
		{get(d, "spec", "template", "spec", "containers", 0, "image"), "web:1", "web image untouched"},
		{get(d, "spec", "template", "spec", "initContainers", 0, "image"), "busybox:2", "init container image by name"},
		{get(d, "spec", "template", "spec", "containers", 0, "resources", "requests", "cpu"), "100m", "request"},
		{get(d, "spec", "template", "spec", "containers", 1, "resources", "limits", "memory"), "64Mi", "limit on every container of the primary"},
		{get(d, "spec", "template", "spec", "containers", 0, "env", 0, "value"), "1", "env kept"},
		{get(d, "spec", "template", "spec", "containers", 0, "env", 1, "value"), "prod", "env replaced in place"},
		{get(d, "spec", "template", "spec", "containers", 0, "env", 2, "name"), "NEW", "env added"},
		{get(d, "metadata", "labels", "team"), "a", "label on the object"},
		{get(d, "spec", "template", "metadata", "labels", "team"), "a", "label on the pod template"},
		{get(d, "spec", "selector", "matchLabels", "team"), nil, "selector untouched"},
		{get(d, "metadata", "annotations", "note"), "x", "annotation"},
		{get(objs[1].Object, "spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "image"), "side:2", "CronJob container by name"},
		{get(objs[1].Object, "spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "env"), nil, "env only on the primary"},
		{get(objs[2].Object, "metadata", "labels", "team"), "a", "label on the Service"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// Image for every container of the primary.
	if err := (Overrides{Image: "all:9"}).apply(objs, objs[0]); err != nil {
		t.Fatal(err)
	}
	if get(d, "spec", "template", "spec", "containers", 1, "image") != "all:9" || get(d, "spec", "template", "spec", "containers", 0, "image") != "all:9" {
		t.Errorf("Image did not set every container of the primary")
	}

	bad := []Overrides{
		{Images: map[string]string{"nosuch": "x:1"}},
		{Requests: map[string]string{"cpu": "lots"}},
		{Env: map[string]string{"MODE": "a\x00b"}},
		{Env: map[string]string{"MO\x00DE": "a"}},
	}
	for _, o := range bad {
		err := o.validate()
		if err == nil {
			err = o.apply(objs, objs[0])
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: error = %v, want ErrInvalidArgument", o, err)
		}
	}
	if err := (Overrides{Replicas: &three}).apply(objs[2:], nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("replicas without a workload: error = %v, want ErrInvalidArgument", err)
	}
}

func TestDescribeChange(t *testing.T) {
	live, _ := ParseManifests(strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, resourceVersion: '1'}\ndata: {k: v, gone: x}\n"), "t")
	next, _ := ParseManifests(strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, resourceVersion: '2'}\ndata: {k: w, added: z}\n"), "t")
	action, fields := describeChange(live[0].Unstructured, next[0].Unstructured)
	want := []string{"+data.added: \"z\"", "-data.gone: \"x\"", "data.k: \"v\" → \"w\""}
	if action != "configured" || strings.Join(fields, "|") != strings.Join(want, "|") {
		t.Fatalf("got %s %q, want configured %q", action, fields, want)
	}
	if a, f := describeChange(live[0].Unstructured, live[0].Unstructured); a != "unchanged" || f != nil {
		t.Errorf("same object: %s %v", a, f)
	}
	if a, _ := describeChange(nil, next[0].Unstructured); a != "created" {
		t.Errorf("no live object: %s", a)
	}
}
