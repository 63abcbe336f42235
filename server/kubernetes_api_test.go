package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.local/web:1, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`

// A deployment managed over the API on the test control plane: listed, scaled, its history read after a second
// apply, rolled back to the previous revision; bad input is 400 with nothing changed, a deployment or revision
// that is not there 404; every answer matches the OpenAPI document.
func TestKubernetesDeploymentsOverHTTP(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	e := newEnvWith(t, containerization.Config{Kubeconfig: kubeconfig})
	dir := t.TempDir()
	manifest := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(manifest, []byte(webManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := func(image string) {
		t.Helper()
		st, body := e.do(state.ScopeOperate, "POST", "/v1/kubernetes/deployments", map[string]any{"deployment_name": "web",
			"manifest_path": manifest, "namespace": ns, "image": image, "wait": true, "timeout": "2m"})
		job := e.submitted("POST", "/v1/kubernetes/deployments", st, body)
		if job = e.wait(job.ID, 3*time.Minute); job.State != state.JobSucceeded {
			t.Fatalf("apply of %s = %+v %s", image, job, job.Error)
		}
	}
	deployment := func(st int, body []byte) containerization.KubernetesDeployment {
		t.Helper()
		var d containerization.KubernetesDeployment
		if err := json.Unmarshal(body, &d); st != 200 || err != nil {
			t.Fatalf("answer %d %s, want a deployment", st, body)
		}
		return d
	}
	apply("registry.local/web:1")
	base := "/v1/kubernetes/deployments/" + ns + "/web"

	// The list.
	st, body := e.do(state.ScopeRead, "GET", "/v1/kubernetes/deployments?namespace="+ns, nil)
	var list server.DeploymentList
	if err := json.Unmarshal(body, &list); st != 200 || err != nil || len(list.Deployments) != 1 {
		t.Fatalf("list = %d %s", st, body)
	}
	if d := list.Deployments[0]; d.Name != "web" || d.Namespace != ns || d.Kind != "Deployment" || d.Replicas != 1 || len(d.Pods) != 1 ||
		len(d.Services) != 1 || d.Image != "registry.local/web:1" {
		t.Errorf("listed = %+v", d)
	}
	e.valid("/v1/kubernetes/deployments", "GET", 200, body)

	// The namespaces: the test's among them, and the one the server's kubeconfig names.
	st, body = e.do(state.ScopeRead, "GET", "/v1/kubernetes/namespaces", nil)
	var nss containerization.KubernetesNamespaceList
	if err := json.Unmarshal(body, &nss); st != 200 || err != nil || !slices.Contains(nss.Namespaces, ns) || !slices.IsSorted(nss.Namespaces) || nss.Current == "" {
		t.Errorf("namespaces = %d %s, want them sorted, %s among them, and the current one", st, body, ns)
	}
	e.valid("/v1/kubernetes/namespaces", "GET", 200, body)

	// Scale.
	st, body = e.do(state.ScopeOperate, "POST", base+"/scale", map[string]any{"replicas": 3})
	if d := deployment(st, body); d.Replicas != 3 || d.Name != "web" {
		t.Errorf("scale = %+v", d)
	}
	e.valid("/v1/kubernetes/deployments/{namespace}/{name}/scale", "POST", 200, body)

	// History after a second apply, then a rollback to the previous revision.
	apply("registry.local/web:2")
	st, body = e.do(state.ScopeRead, "GET", base+"/history", nil)
	var h server.DeploymentHistory
	if err := json.Unmarshal(body, &h); st != 200 || err != nil || len(h.Revisions) != 2 || h.Revisions[0].Images["web"] != "registry.local/web:1" ||
		h.Revisions[1].Images["web"] != "registry.local/web:2" || !h.Revisions[1].Current || h.Revisions[0].Current {
		t.Fatalf("history = %d %s", st, body)
	}
	e.valid("/v1/kubernetes/deployments/{namespace}/{name}/history", "GET", 200, body)
	st, body = e.do(state.ScopeOperate, "POST", base+"/rollback", nil)
	if d := deployment(st, body); d.Image != "registry.local/web:1" {
		t.Errorf("rollback = %+v, want the image of revision 1", d)
	}
	e.valid("/v1/kubernetes/deployments/{namespace}/{name}/rollback", "POST", 200, body)
	st, body = e.do(state.ScopeOperate, "POST", base+"/rollback", map[string]any{"to_revision": 2})
	if d := deployment(st, body); d.Image != "registry.local/web:2" {
		t.Errorf("rollback to revision 2 = %+v", d)
	}

	// Bad input: 400, and the deployment is as it was — once the controller has taken in the last rollback (its
	// revision is set when it observes the new generation).
	var before containerization.KubernetesDeployment
	if !testenv.Eventually(time.Minute, func() bool {
		st, body = e.do(state.ScopeRead, "GET", base, nil)
		before = deployment(st, body)
		return !strings.Contains(before.Message, "observed generation")
	}) {
		t.Fatalf("the controller has not observed the rollback in a minute: %+v", before)
	}
	for _, c := range []struct {
		path string
		body any
	}{
		{base + "/scale", `{}`},
		{base + "/scale", `{"replicas": -1}`},
		{base + "/scale", `{"replicas": "3"}`},
		{base + "/scale", `{"replicas": 2, "force": true}`},
		{base + "/rollback", `{"to_revision": -1}`},
		{"/v1/kubernetes/deployments/Not_A_Namespace/web/scale", `{"replicas": 1}`},
		{"/v1/kubernetes/deployments/" + ns + "/Not_A_Name/scale", `{"replicas": 1}`},
	} {
		st, body := e.do(state.ScopeOperate, "POST", c.path, c.body)
		if st != 400 {
			t.Errorf("POST %s %v = %d %s, want 400", c.path, c.body, st, body)
			continue
		}
		e.valid("/v1/kubernetes/deployments/{namespace}/{name}/scale", "POST", "default", body)
	}
	for _, path := range []string{"/v1/kubernetes/deployments?namespace=Not_A_Namespace", "/v1/kubernetes/deployments/Not_A_Namespace/web/history"} {
		if st, body := e.do(state.ScopeRead, "GET", path, nil); st != 400 {
			t.Errorf("GET %s = %d %s, want 400", path, st, body)
		}
	}
	st, body = e.do(state.ScopeRead, "GET", base, nil)
	if d := deployment(st, body); d.Replicas != before.Replicas || d.Image != "registry.local/web:2" || d.Revision != before.Revision {
		t.Errorf("after the refused requests = %+v, want it as before: %+v", d, before)
	}

	// Not there: 404.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/kubernetes/deployments/" + ns + "/nosuch/scale", `{"replicas": 1}`},
		{"POST", "/v1/kubernetes/deployments/" + ns + "/nosuch/rollback", `{}`},
		{"POST", base + "/rollback", `{"to_revision": 99}`},
		{"GET", "/v1/kubernetes/deployments/" + ns + "/nosuch/history", ""},
	} {
		var b any
		if c.body != "" {
			b = c.body
		}
		if st, body := e.do(state.ScopeOperate, c.method, c.path, b); st != 404 {
			t.Errorf("%s %s %s = %d %s, want 404", c.method, c.path, c.body, st, body)
		}
	}
	// A namespace with nothing in it lists nothing.
	empty := testenv.KubeNamespace(t, kc)
	st, body = e.do(state.ScopeRead, "GET", "/v1/kubernetes/deployments?namespace="+empty, nil)
	if err := json.Unmarshal(body, &list); st != 200 || err != nil || len(list.Deployments) != 0 || string(body) != "{\"deployments\":[]}\n" {
		t.Errorf("list of an empty namespace = %d %s", st, body)
	}
}
