package kube_test

import (
	"errors"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/kube"
)

const daemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: registry.local/agent:1}]
`

// List reads every Deployment, StatefulSet and DaemonSet of a namespace, by kind and name, each with its own pods
// and services (not the others'); an empty namespace lists nothing; a malformed namespace is refused before the
// cluster is asked.
func TestList(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 3*time.Minute)
	if list, err := c.List(ctx, ns); err != nil || len(list) != 0 {
		t.Fatalf("List of an empty namespace = %+v, %v", list, err)
	}
	for _, app := range []struct{ name, manifests string }{
		{"web", deployment("web", "registry.local/web:1", 2, "") + appExtras},
		{"api", deployment("api", "registry.local/api:1", 1, "")},
		{"agent", daemonSet},
	} {
		if _, err := c.Apply(ctx, parse(t, app.manifests), kube.ApplyOptions{Name: app.name, Namespace: ns, Wait: true, Timeout: 2 * time.Minute}); err != nil {
			t.Fatalf("apply %s: %v", app.name, err)
		}
	}
	list, err := c.List(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range list {
		got = append(got, st.Kind+"/"+st.Name)
	}
	if len(list) != 3 || got[0] != "Deployment/api" || got[1] != "Deployment/web" || got[2] != "DaemonSet/agent" {
		t.Fatalf("List = %v, want Deployment/api, Deployment/web, DaemonSet/agent", got)
	}
	web, api := list[1], list[0]
	if web.Replicas != 2 || len(web.Pods) != 2 || web.Image != "registry.local/web:1" || len(web.Services) != 1 || web.Services[0] != "web" || web.Status != "running" {
		t.Errorf("web = %+v", web)
	}
	if api.Replicas != 1 || len(api.Pods) != 1 || len(api.Services) != 0 || api.Status != "running" {
		t.Errorf("api = %+v; want its one pod and no service", api)
	}
	// Each as Status reads it alone.
	for _, st := range list[:2] {
		one, err := c.Status(ctx, ns, st.Name)
		if err != nil || one.Status != st.Status || len(one.Pods) != len(st.Pods) || one.Revision != st.Revision {
			t.Errorf("Status(%s) = %+v, %v; List says %+v", st.Name, one, err, st)
		}
	}
	if _, err := c.List(ctx, "Not_A_Namespace"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("List(Not_A_Namespace) = %v, want ErrInvalidArgument", err)
	}
}
