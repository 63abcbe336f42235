package kube_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/kube"
)

func parse(t *testing.T, yaml string) []*kube.Object {
	t.Helper()
	objs, err := kube.ParseManifests(strings.NewReader(yaml), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func deployment(name, image string, replicas int, extraLabels string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s%[4]s}}
    spec:
      containers:
      - name: web
        image: %[2]s
        ports: [{containerPort: 8080}]
        env: [{name: MODE, value: dev}]
        resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {memory: 64Mi}}
`, name, image, replicas, extraLabels)
}

const appExtras = `---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {greeting: hello}
`

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestApplyWaitStatusAndReapply(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 3*time.Minute)
	// The workload first in the file: ordering is the library's job.
	objs := parse(t, deployment("web", "registry.local/web:1", 2, "")+appExtras)
	var events []kube.Event
	res, err := c.Apply(ctx, objs, kube.ApplyOptions{Name: "web", Namespace: ns, Wait: true, Timeout: 2 * time.Minute,
		Progress: func(e kube.Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, ch := range res.Changes {
		if ch.Action != "created" {
			t.Errorf("%s: action %s, want created", ch.Object, ch.Action)
		}
		order = append(order, ch.Kind)
	}
	if got := strings.Join(order, ","); got != "ConfigMap,Service,Deployment" {
		t.Errorf("apply order = %s, want ConfigMap,Service,Deployment", got)
	}
	st := res.Status
	if st == nil || st.Status != "running" || st.Replicas != 2 || st.ReadyReplicas != 2 || len(st.Pods) != 2 {
		t.Fatalf("status = %+v, want running with 2 ready pods", st)
	}
	for _, p := range st.Pods {
		if !p.Ready || p.Phase != "Running" || !strings.HasPrefix(p.Name, "web-") {
			t.Errorf("pod %+v: want a ready running web pod", p)
		}
	}
	if st.Image != "registry.local/web:1" || len(st.Ports) != 1 || st.Ports[0] != 8080 || st.Environment["MODE"] != "dev" ||
		st.Requests["cpu"] != "50m" || st.Requests["memory"] != "32Mi" || st.Limits["memory"] != "64Mi" {
		t.Errorf("status spec fields = %+v", st)
	}
	if len(st.Services) != 1 || st.Services[0] != "web" {
		t.Errorf("services = %v, want [web]", st.Services)
	}
	if st.CreatedAt.IsZero() || st.LastUpdated.Before(st.CreatedAt) || st.Revision != 1 {
		t.Errorf("created %v, updated %v, revision %d", st.CreatedAt, st.LastUpdated, st.Revision)
	}
	var sawWaitCurrent bool
	for _, e := range events {
		if e.Phase == "wait" && e.Object == "deployment.apps/"+ns+"/web" && e.Status == "Current" {
			sawWaitCurrent = true
		}
	}
	if !sawWaitCurrent {
		t.Errorf("no wait event saying the deployment became Current: %+v", events)
	}
	// Every object is marked as the application's.
	cm, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "web-config", metav1.GetOptions{})
	if err != nil || cm.Annotations[kube.AppAnnotation] != ns+"/web" {
		t.Fatalf("configmap: %v, annotations %v", err, cm.Annotations)
	}
	if cm.ManagedFields[0].Manager != kube.DefaultFieldManager || cm.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields = %+v, want a server-side apply by %s", cm.ManagedFields, kube.DefaultFieldManager)
	}

	// The same manifests again: nothing changes.
	res, err = c.Apply(ctx, objs, kube.ApplyOptions{Name: "web", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Changes {
		if ch.Action != "unchanged" {
			t.Errorf("re-apply: %s %s %v, want unchanged", ch.Object, ch.Action, ch.Fields)
		}
	}
	// An override: only the deployment changes, and the change is named.
	three := int32(3)
	res, err = c.Apply(ctx, objs, kube.ApplyOptions{Name: "web", Namespace: ns, Overrides: kube.Overrides{Replicas: &three}, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Changes {
		switch ch.Kind {
		case "Deployment":
			if ch.Action != "configured" || strings.Join(ch.Fields, ";") != "spec.replicas: 2 → 3" {
				t.Errorf("deployment change = %s %q, want configured spec.replicas: 2 → 3", ch.Action, ch.Fields)
			}
		default:
			if ch.Action != "unchanged" {
				t.Errorf("%s: %s, want unchanged", ch.Object, ch.Action)
			}
		}
	}
	if res.Status.ReadyReplicas != 3 || len(res.Status.Pods) != 3 {
		t.Errorf("after scaling by override: %d ready, %d pods", res.Status.ReadyReplicas, len(res.Status.Pods))
	}
	// The user's objects were not changed by the override.
	if objs[0].Object["spec"].(map[string]any)["replicas"] != int64(2) {
		t.Errorf("the caller's object was modified: %v", objs[0].Object["spec"])
	}
}

func TestNamespacesAndCRDsFirst(t *testing.T) {
	_, c := testenv.Kube(t)
	ctx := ctxT(t, 2*time.Minute)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	ns := "crd-" + suffix
	group := "t" + suffix + ".myrmex.test"
	// Reverse order on purpose: the custom resource, then its CRD, then the namespace.
	manifests := fmt.Sprintf(`apiVersion: %[1]s/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
---
apiVersion: v1
kind: Namespace
metadata: {name: %[2]s}
`, group, ns)
	t.Cleanup(func() {
		testenv.DeleteNamespace(t, c, ns)
		_ = c.Dynamic().Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
			Delete(context.Background(), "widgets."+group, metav1.DeleteOptions{})
	})
	res, err := c.Apply(ctx, parse(t, manifests), kube.ApplyOptions{Name: "widgets", Namespace: ns, Wait: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, ch := range res.Changes {
		order = append(order, ch.Kind)
	}
	if got := strings.Join(order, ","); got != "Namespace,CustomResourceDefinition,Widget" {
		t.Errorf("order = %s", got)
	}
	w, err := c.Dynamic().Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(ns).Get(ctx, "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the custom resource was not created: %v", err)
	}
	if size, _, _ := unstructuredInt(w.Object, "spec", "size"); size != 3 {
		t.Errorf("widget size = %d", size)
	}
	// Again, without the custom resource and with prune: the namespace exists now, so its objects are checked
	// in the preflight and the inventory is read; the widget goes, the CRD and namespace stay.
	withoutWidget := manifests[strings.Index(manifests, "---\n")+4:]
	res, err = c.Apply(ctx, parse(t, withoutWidget), kube.ApplyOptions{Name: "widgets", Namespace: ns, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 1 || res.Pruned[0].Kind != "Widget" || res.Pruned[0].Name != "w1" {
		t.Fatalf("pruned = %+v, want the widget", res.Pruned)
	}
	for _, ch := range res.Changes {
		if ch.Action != "unchanged" {
			t.Errorf("%s %s %v, want unchanged", ch.Object, ch.Action, ch.Fields)
		}
	}
	if !testenv.Eventually(30*time.Second, func() bool {
		_, err := c.Dynamic().Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(ns).Get(ctx, "w1", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}) {
		t.Error("the widget is still there after prune")
	}
}

func unstructuredInt(m map[string]any, path ...string) (int64, bool, error) {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return 0, false, nil
		}
		cur = mm[p]
	}
	n, ok := cur.(int64)
	return n, ok, nil
}

func TestScaleRollbackHistory(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 3*time.Minute)
	opts := kube.ApplyOptions{Name: "web", Namespace: ns, Wait: true, Timeout: time.Minute}
	if _, err := c.Apply(ctx, parse(t, deployment("web", "registry.local/web:1", 1, "")), opts); err != nil {
		t.Fatal(err)
	}
	st, err := c.Scale(ctx, ns, "web", 3)
	if err != nil || st.Replicas != 3 {
		t.Fatalf("scale up: %v %+v", err, st)
	}
	if st, err = c.Wait(ctx, ns, "web", time.Minute, nil); err != nil || st.ReadyReplicas != 3 || len(st.Pods) != 3 {
		t.Fatalf("after scale up: %v %+v", err, st)
	}
	if st, err = c.Scale(ctx, ns, "web", 1); err != nil || st.Replicas != 1 {
		t.Fatalf("scale down: %v %+v", err, st)
	}
	if !testenv.Eventually(time.Minute, func() bool {
		st, err := c.Status(ctx, ns, "web")
		return err == nil && len(st.Pods) == 1 && st.ReadyReplicas == 1
	}) {
		t.Fatal("scale down: not one pod after a minute")
	}

	// A new image, then back.
	if _, err := c.Apply(ctx, parse(t, deployment("web", "registry.local/web:2", 1, "")), opts); err != nil {
		t.Fatal(err)
	}
	revs, err := c.History(ctx, ns, "web")
	if err != nil || len(revs) != 2 || revs[0].Images["web"] != "registry.local/web:1" || revs[1].Images["web"] != "registry.local/web:2" || !revs[1].Current {
		t.Fatalf("history = %+v, %v", revs, err)
	}
	st, err = c.Rollback(ctx, ns, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Image != "registry.local/web:1" {
		t.Errorf("after rollback the image is %s, want registry.local/web:1", st.Image)
	}
	if st, err = c.Wait(ctx, ns, "web", time.Minute, nil); err != nil || st.Status != "running" || st.Revision != 3 {
		t.Fatalf("after rollback: %v %+v (want running at revision 3)", err, st)
	}
	// Roll back to a named revision, and to one that does not exist.
	if st, err = c.Rollback(ctx, ns, "web", 2); err != nil || st.Image != "registry.local/web:2" {
		t.Fatalf("rollback to revision 2: %v %+v", err, st)
	}
	if _, err := c.Rollback(ctx, ns, "web", 99); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "revisions:") {
		t.Errorf("rollback to 99: %v, want ErrNotFound listing the revisions", err)
	}
	// The manifests apply again without conflicts after scale and rollback (one field manager throughout).
	res, err := c.Apply(ctx, parse(t, deployment("web", "registry.local/web:1", 2, "")), opts)
	if err != nil {
		t.Fatalf("apply after scale and rollback: %v", err)
	}
	if res.Status.Image != "registry.local/web:1" || res.Status.Replicas != 2 {
		t.Errorf("status = %+v", res.Status)
	}
}

func TestFailFast(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	for _, reason := range []string{"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError"} {
		t.Run(reason, func(t *testing.T) {
			ctx := ctxT(t, 3*time.Minute)
			name := strings.ToLower(reason)
			objs := parse(t, deployment(name, "registry.local/missing:1", 2, ", myrmex.codomyrmex.dev/simulate-waiting: "+reason))
			res, err := c.Apply(ctx, objs, kube.ApplyOptions{Name: name, Namespace: ns, Wait: true, Timeout: 2 * time.Minute})
			var re *kube.RolloutError
			if !errors.As(err, &re) || !errors.Is(err, errdefs.ErrRolloutFailed) {
				t.Fatalf("error = %v, want a RolloutError", err)
			}
			if re.TimedOut || re.Reason != reason || re.Container != "web" || !strings.HasPrefix(re.Pod, name+"-") ||
				re.Object != "deployment.apps/"+ns+"/"+name {
				t.Fatalf("rollout error = %+v, want %s on container web of a %s pod, not a timeout", re, reason, name)
			}
			for _, want := range []string{re.Pod, "container web", reason, "registry.local/missing:1"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not say %q", err, want)
				}
			}
			if res == nil || res.Status == nil || res.Status.Status != "failed" {
				t.Fatalf("result status = %+v, want failed", res)
			}
			found := false
			for _, p := range res.Status.Pods {
				found = found || (p.Name == re.Pod && p.Reason == reason && !p.Ready)
			}
			if !found {
				t.Errorf("pods %+v do not show %s", res.Status.Pods, reason)
			}
		})
	}
	// The deployment controller itself sets ProgressDeadlineExceeded: a one-second deadline and a pod held in
	// ContainerCreating (KWOK's simulate-waiting stage), a reason that is not fail-fast, so only the deadline ends it.
	t.Run("ProgressDeadlineExceeded", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Minute)
		m := strings.Replace(deployment("stuck", "registry.local/web:1", 1, ", myrmex.codomyrmex.dev/simulate-waiting: ContainerCreating"),
			"spec:\n  replicas:", "spec:\n  progressDeadlineSeconds: 1\n  replicas:", 1)
		res, err := c.Apply(ctx, parse(t, m), kube.ApplyOptions{Name: "stuck", Namespace: ns, Wait: true, Timeout: 2 * time.Minute})
		var re *kube.RolloutError
		if !errors.As(err, &re) || !errors.Is(err, errdefs.ErrRolloutFailed) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want a RolloutError that is not a timeout", err)
		}
		if re.TimedOut || re.Reason != "ProgressDeadlineExceeded" || re.Object != "deployment.apps/"+ns+"/stuck" ||
			!strings.Contains(re.Message, "has timed out progressing") {
			t.Fatalf("rollout error = %+v, want ProgressDeadlineExceeded on the deployment with the controller's message", re)
		}
		if res == nil || res.Status == nil || res.Status.Status != "failed" || len(res.Status.Pods) != 1 || res.Status.Pods[0].Ready {
			t.Fatalf("result status = %+v, want failed with its one pod not ready", res.Status)
		}
		d, err := c.Typed().AppsV1().Deployments(ns).Get(ctx, "stuck", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		set := false
		for _, cond := range d.Status.Conditions {
			set = set || cond.Type == "Progressing" && cond.Status == "False" && cond.Reason == "ProgressDeadlineExceeded"
		}
		if !set {
			t.Errorf("the deployment's conditions %+v do not say ProgressDeadlineExceeded", d.Status.Conditions)
		}
	})
	t.Run("Unschedulable", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Minute)
		m := strings.Replace(deployment("nowhere", "registry.local/web:1", 1, ""), "    spec:\n      containers:", "    spec:\n      nodeSelector: {disk: none-has-this}\n      containers:", 1)
		_, err := c.Apply(ctx, parse(t, m), kube.ApplyOptions{Name: "nowhere", Namespace: ns, Wait: true, Timeout: 2 * time.Minute})
		var re *kube.RolloutError
		if !errors.As(err, &re) || re.TimedOut || re.Reason != "Unschedulable" || !strings.Contains(re.Message, "node affinity/selector") {
			t.Fatalf("error = %v (%+v), want Unschedulable naming the node selector", err, re)
		}
	})
	t.Run("UnschedulableForAMoment", func(t *testing.T) {
		// A pod the scheduler places a moment later (here a node gets the label it selects; in life a claim is bound
		// or a node added) is not a failure: the wait sees it become ready.
		ctx := ctxT(t, 3*time.Minute)
		key := "myrmex-test/" + ns
		m := strings.Replace(deployment("soon", "registry.local/web:1", 1, ""), "    spec:\n      containers:", "    spec:\n      nodeSelector: {"+key+": \"yes\"}\n      containers:", 1)
		label := func(value any) {
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: value}}})
			if _, err := c.Typed().CoreV1().Nodes().Patch(context.Background(), "kwok-node-0", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Error(err)
			}
		}
		t.Cleanup(func() { label(nil) })
		time.AfterFunc(3*time.Second, func() { label("yes") })
		res, err := c.Apply(ctx, parse(t, m), kube.ApplyOptions{Name: "soon", Namespace: ns, Wait: true, Timeout: 2 * time.Minute})
		if err != nil || res.Status.Status != "running" {
			t.Fatalf("apply = %+v, %v; want running once the node has the label", res, err)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		ctx := ctxT(t, time.Minute)
		// A load balancer that no controller provides (this cluster has none): nothing fails, nothing becomes
		// ready; the wait ends at its deadline and says what it was waiting for.
		m := "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, selector: {app: x}, ports: [{port: 80}]}\n"
		_, err := c.Apply(ctx, parse(t, m), kube.ApplyOptions{Name: "lb", Namespace: ns, Wait: true, Timeout: 3 * time.Second})
		var re *kube.RolloutError
		if !errors.As(err, &re) || !re.TimedOut || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errdefs.ErrRolloutFailed) ||
			!strings.Contains(err.Error(), "service/"+ns+"/lb") {
			t.Fatalf("error = %v, want a timed-out RolloutError naming the service", err)
		}
	})
}

func TestPrune(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 2*time.Minute)
	cms := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {k: v}\n", n)
		}
		return b.String()
	}
	opts := kube.ApplyOptions{Name: "app", Namespace: ns, Prune: true}
	if _, err := c.Apply(ctx, parse(t, cms("keep", "drop", "drop2")), opts); err != nil {
		t.Fatal(err)
	}
	// Another application's object of the same kind, and an object taken over by someone else since.
	if _, err := c.Apply(ctx, parse(t, cms("other")), kube.ApplyOptions{Name: "other-app", Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"someone/else"}}}`, kube.AppAnnotation)
	if _, err := c.Typed().CoreV1().ConfigMaps(ns).Patch(ctx, "drop2", types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
		t.Fatal(err)
	}
	// Dry run: says what would go, deletes nothing.
	dry := opts
	dry.DryRun = true
	res, err := c.Apply(ctx, parse(t, cms("keep")), dry)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 1 || res.Pruned[0].Name != "drop" {
		t.Fatalf("dry-run prune = %+v, want drop only", res.Pruned)
	}
	if _, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "drop", metav1.GetOptions{}); err != nil {
		t.Fatalf("dry run deleted drop: %v", err)
	}
	res, err = c.Apply(ctx, parse(t, cms("keep")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 1 || res.Pruned[0].Object != "configmap/"+ns+"/drop" {
		t.Fatalf("pruned = %+v, want configmap drop", res.Pruned)
	}
	list, err := c.Typed().CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cm := range list.Items {
		if cm.Name != "kube-root-ca.crt" { // published by the controller manager, some time after the namespace
			names = append(names, cm.Name)
		}
	}
	got := strings.Join(names, ",")
	want := "drop2,keep," + kube.InventoryName("app") + "," + kube.InventoryName("other-app") + ",other"
	if got != want {
		t.Fatalf("configmaps after prune = %s, want %s", got, want)
	}

	// Delete removes the application's objects and its inventory, nothing else.
	deleted, err := c.Delete(ctx, ns, "app", kube.DeleteOptions{Wait: true})
	if err != nil || len(deleted) != 1 || deleted[0].Name != "keep" {
		t.Fatalf("delete = %+v, %v", deleted, err)
	}
	for _, n := range []string{"keep", kube.InventoryName("app")} {
		if _, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s still there after delete: %v", n, err)
		}
	}
	for _, n := range []string{"other", "drop2"} {
		if _, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, n, metav1.GetOptions{}); err != nil {
			t.Errorf("%s was deleted: %v", n, err)
		}
	}
	if _, err := c.Delete(ctx, ns, "app", kube.DeleteOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
}

func TestConflictingFieldManager(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, time.Minute)
	other := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shared"},"data":{"k":"theirs"}}`)
	if _, err := c.Typed().CoreV1().ConfigMaps(ns).Patch(ctx, "shared", types.ApplyPatchType, other, metav1.PatchOptions{FieldManager: "helm"}); err != nil {
		t.Fatal(err)
	}
	objs := parse(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\ndata: {k: v}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {k: ours}\n")
	_, err := c.Apply(ctx, objs, kube.ApplyOptions{Name: "app", Namespace: ns})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `"helm"`) || !strings.Contains(err.Error(), ".data.k") ||
		!strings.Contains(err.Error(), "--force-conflicts") {
		t.Fatalf("error = %v, want ErrConflict naming the manager helm, the field and --force-conflicts", err)
	}
	// Nothing was applied: not even the object without a conflict.
	if _, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "mine", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("configmap mine exists after a failed preflight: %v", err)
	}
	if _, err := c.Apply(ctx, objs, kube.ApplyOptions{Name: "app", Namespace: ns, ForceConflicts: true}); err != nil {
		t.Fatal(err)
	}
	cm, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "shared", metav1.GetOptions{})
	if err != nil || cm.Data["k"] != "ours" {
		t.Fatalf("after --force-conflicts: %v %v", err, cm.Data)
	}
}

func TestBadInputTouchesNothing(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, time.Minute)
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\ndata: {k: v}\n---\n"
	cases := []struct {
		name, yaml string
		opts       kube.ApplyOptions
		want       error
		says       string
	}{
		{"unknown kind", good + "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g}\n", kube.ApplyOptions{}, errdefs.ErrInvalidArgument, `unknown kind "Gizmo"`},
		{"missing namespace", good, kube.ApplyOptions{Namespace: "no-such-namespace-here"}, errdefs.ErrNotFound, `namespace "no-such-namespace-here" does not exist`},
		{"unknown field", good + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndatta: {k: v}\n", kube.ApplyOptions{}, errdefs.ErrInvalidArgument, `.datta: field not declared in schema`},
		{"invalid object", good + "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\nspec: {ports: [{port: 99999}]}\n", kube.ApplyOptions{}, errdefs.ErrInvalidArgument, "spec.ports[0].port"},
		{"other namespace", good + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: kube-system}\n", kube.ApplyOptions{}, errdefs.ErrInvalidArgument, `names namespace "kube-system"`},
		{"twice", good + good, kube.ApplyOptions{}, errdefs.ErrInvalidArgument, "defined twice"},
		{"bad name", good, kube.ApplyOptions{Name: "Not_A_Name"}, errdefs.ErrInvalidArgument, "Not_A_Name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			if o.Name == "" {
				o.Name = "app"
			}
			if o.Namespace == "" {
				o.Namespace = ns
			}
			_, err := c.Apply(ctx, parse(t, tc.yaml), o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error = %v, want %v saying %q", err, tc.want, tc.says)
			}
			if _, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "good", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("configmap good was applied before the error: %v", err)
			}
		})
	}
	// A namespace asked for is created.
	newNS := ns + "-made"
	t.Cleanup(func() { testenv.DeleteNamespace(t, c, newNS) })
	if _, err := c.Apply(ctx, parse(t, good), kube.ApplyOptions{Name: "app", Namespace: newNS, CreateNamespace: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Typed().CoreV1().ConfigMaps(newNS).Get(ctx, "good", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestDryRunShowsChangesAppliesNothing(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, time.Minute)
	if _, err := c.Apply(ctx, parse(t, deployment("web", "registry.local/web:1", 1, "")), kube.ApplyOptions{Name: "web", Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply(ctx, parse(t, deployment("web", "registry.local/web:2", 1, "")+appExtras), kube.ApplyOptions{Name: "web", Namespace: ns, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ch := range res.Changes {
		got[ch.Kind] = ch.Action + " " + strings.Join(ch.Fields, ";")
	}
	if got["Deployment"] != `configured spec.template.spec.containers[web].image: "registry.local/web:1" → "registry.local/web:2"` ||
		got["Service"] != "created " || got["ConfigMap"] != "created " {
		t.Fatalf("dry run changes = %q", got)
	}
	if res.Status == nil || res.Status.Image != "registry.local/web:2" || res.Status.Status != "pending" {
		t.Errorf("dry-run status = %+v, want the planned image, pending", res.Status)
	}
	d, err := c.Typed().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || d.Spec.Template.Spec.Containers[0].Image != "registry.local/web:1" {
		t.Fatalf("the dry run changed the deployment: %v", err)
	}
	if _, err := c.Typed().CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the dry run created the service: %v", err)
	}
}

func TestKubeconfigResolution(t *testing.T) {
	path, _ := testenv.Kube(t)
	ctx := ctxT(t, 30*time.Second)
	t.Setenv("KUBECONFIG", path)
	c, err := kube.New(kube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("KUBECONFIG: %v", err)
	}
	if c.DefaultNamespace() != "default" {
		t.Errorf("namespace = %s", c.DefaultNamespace())
	}
	if _, err := kube.New(kube.Config{Context: "no-such-context"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown context: %v, want ErrNotFound", err)
	}
	// Nothing configured, not in a pod: no KUBECONFIG, and a HOME of the test's own without ~/.kube/config, so
	// that the user's own configuration is never read.
	home := t.TempDir()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := kube.New(kube.Config{}); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "no Kubernetes cluster is configured") {
		t.Errorf("no configuration: %v, want ErrUnavailable saying so", err)
	}
	// ~/.kube/config is the one of HOME at the call, not at the start of the process.
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := kube.New(kube.Config{}); err != nil || c.Ping(ctx) != nil {
		t.Errorf("with $HOME/.kube/config: %v, want a client of the test cluster", err)
	}
	// A server that does not answer.
	dead := strings.Replace(string(b), "server: https://127.0.0.1:", "server: https://127.0.0.1:1", 1)
	deadPath := filepath.Join(home, "dead")
	if err := os.WriteFile(deadPath, []byte(dead), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = kube.New(kube.Config{Kubeconfig: deadPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("dead server: %v, want ErrUnavailable", err)
	}
}

// Kinds beyond Deployments, through discovery and the dynamic client, each waited for as kstatus says.
func TestAnyKindWaitsForEach(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 3*time.Minute)
	manifests := `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: registry.local/migrate:1}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: registry.local/db:1}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: registry.local/agent:1}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: db, port: {number: 80}}}}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 80}]}
`
	var events []kube.Event
	res, err := c.Apply(ctx, parse(t, manifests), kube.ApplyOptions{Name: "db", Namespace: ns, Wait: true, Timeout: 2 * time.Minute,
		Progress: func(e kube.Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, ch := range res.Changes {
		order = append(order, ch.Kind)
	}
	if got := strings.Join(order, ","); got != "Secret,Service,DaemonSet,StatefulSet,Job,Ingress" {
		t.Errorf("order = %s", got)
	}
	current := map[string]bool{}
	for _, e := range events {
		if e.Phase == "wait" && e.Status == "Current" {
			current[e.Object] = true
		}
	}
	for _, want := range []string{"job.batch/" + ns + "/migrate", "statefulset.apps/" + ns + "/db", "daemonset.apps/" + ns + "/agent",
		"ingress.networking.k8s.io/" + ns + "/web", "secret/" + ns + "/creds", "service/" + ns + "/db"} {
		if !current[want] {
			t.Errorf("no wait event with %s Current", want)
		}
	}
	job, err := c.Typed().BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{})
	if err != nil || job.Status.Succeeded != 1 {
		t.Fatalf("job: %v %+v", err, job.Status)
	}
	if st := res.Status; st == nil || st.Kind != "StatefulSet" || st.Status != "running" || st.ReadyReplicas != 2 || len(st.Pods) != 2 {
		t.Fatalf("primary (the StatefulSet named db) = %+v", st)
	}
	ds, err := c.Status(ctx, ns, "agent")
	if err != nil || ds.Kind != "DaemonSet" || ds.Replicas != 2 || ds.Status != "running" {
		t.Fatalf("daemonset status = %+v, %v (one pod per KWOK node)", ds, err)
	}
}

// One application's apply does not take over another's objects: a conflict, unless forced.
func TestApplicationsDoNotAdoptEachOther(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, time.Minute)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared-config}\ndata: {k: web}\n"
	if _, err := c.Apply(ctx, parse(t, cm), kube.ApplyOptions{Name: "web", Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(cm, "k: web", "k: api", 1) + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-only}\n"
	_, err := c.Apply(ctx, parse(t, other), kube.ApplyOptions{Name: "api", Namespace: ns})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `belongs to application "`+ns+`/web"`) {
		t.Fatalf("error = %v, want ErrConflict naming the owning application", err)
	}
	if _, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "api-only", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("api-only was applied despite the conflict: %v", err)
	}
	// Deleting the other application leaves web's object alone.
	if _, err := c.Delete(ctx, ns, "api", kube.DeleteOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("delete of an application never applied: %v, want ErrNotFound", err)
	}
	res, err := c.Apply(ctx, parse(t, other), kube.ApplyOptions{Name: "api", Namespace: ns, ForceConflicts: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "shared-config", metav1.GetOptions{})
	if err != nil || got.Annotations[kube.AppAnnotation] != ns+"/api" || got.Data["k"] != "api" || len(res.Changes) != 2 {
		t.Fatalf("forced: %v %v %v", err, got.Annotations, got.Data)
	}
}

// StatefulSets and DaemonSets keep their revisions in ControllerRevisions: history and rollback read them.
func TestRollbackStatefulSetAndDaemonSet(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 3*time.Minute)
	for _, kind := range []string{"StatefulSet", "DaemonSet"} {
		t.Run(kind, func(t *testing.T) {
			name := strings.ToLower(kind)
			m := func(image string) string {
				extra := ""
				if kind == "StatefulSet" {
					extra = "  serviceName: " + name + "\n  replicas: 1\n"
				}
				return fmt.Sprintf("apiVersion: apps/v1\nkind: %s\nmetadata: {name: %s}\nspec:\n%s  selector: {matchLabels: {app: %s}}\n  template:\n    metadata: {labels: {app: %s}}\n    spec: {containers: [{name: main, image: %s}]}\n",
					kind, name, extra, name, name, image)
			}
			opts := kube.ApplyOptions{Name: name, Namespace: ns, Wait: true, Timeout: time.Minute}
			for _, img := range []string{"registry.local/a:1", "registry.local/a:2"} {
				if _, err := c.Apply(ctx, parse(t, m(img)), opts); err != nil {
					t.Fatal(err)
				}
			}
			revs, err := c.History(ctx, ns, name)
			if err != nil || len(revs) != 2 || revs[0].Images["main"] != "registry.local/a:1" || !revs[1].Current || revs[1].Controller == "" {
				t.Fatalf("history = %+v, %v", revs, err)
			}
			st, err := c.Rollback(ctx, ns, name, 0)
			if err != nil || st.Image != "registry.local/a:1" || st.Kind != kind {
				t.Fatalf("rollback: %v %+v", err, st)
			}
			if st, err = c.Wait(ctx, ns, name, time.Minute, nil); err != nil || st.Status != "running" {
				t.Fatalf("after rollback: %v %+v", err, st)
			}
			revs, err = c.History(ctx, ns, name)
			if err != nil || len(revs) != 2 || !revs[1].Current || revs[1].Images["main"] != "registry.local/a:1" || revs[1].Revision != 3 {
				t.Fatalf("history after rollback = %+v, %v (want the old template renumbered 3 and current)", revs, err)
			}
		})
	}
}

// An application without a workload (a ConfigMap and a Service) is waited for as its objects: Wait answers its
// readiness, not the ErrNotFound of a workload it never had.
func TestWaitWithoutAWorkload(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, time.Minute)
	m := strings.TrimPrefix(appExtras, "---\n")
	if _, err := c.Apply(ctx, parse(t, m), kube.ApplyOptions{Name: "config", Namespace: ns, Wait: true, Timeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx, ns, "config", 30*time.Second, nil)
	if err != nil || st.Status != "running" || st.Name != "config" || st.Namespace != ns {
		t.Fatalf("Wait = %+v, %v; want the application running", st, err)
	}
	if _, err := c.Wait(ctx, ns, "no-such-app", 5*time.Second, nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Wait(an application that is not there) = %v, want ErrNotFound", err)
	}
}

// A rollback judges by templates, not by the revision number the controller has set so far: with the test
// control plane's controller manager stopped (SIGSTOP) after an undo to revision 1, the Deployment's revision
// still says 2, and a rollback to revision 2 must still put its template back. Judged by the number, it did
// nothing: CI saw it so once, when the controller had not yet observed the undo.
func TestRollbackJudgesByTemplate(t *testing.T) {
	kubeconfig, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 2*time.Minute)
	opts := kube.ApplyOptions{Name: "flip", Namespace: ns, Wait: true, Timeout: time.Minute}
	for _, img := range []string{"registry.local/web:1", "registry.local/web:2"} {
		if _, err := c.Apply(ctx, parse(t, deployment("flip", img, 1, "")), opts); err != nil {
			t.Fatal(err)
		}
	}
	pidFile := filepath.Join(filepath.Dir(kubeconfig), "kube-controller-manager.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the test control plane's controller manager: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.Contains(string(cmd), "kube-controller-manager") {
		t.Fatalf("%s holds %q, not a running kube-controller-manager", pidFile, b)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(resume)
	live := func() (string, string) {
		d, err := c.Typed().AppsV1().Deployments(ns).Get(ctx, "flip", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image, d.Annotations["deployment.kubernetes.io/revision"]
	}
	if _, err := c.Rollback(ctx, ns, "flip", 0); err != nil {
		t.Fatalf("undo: %v", err)
	}
	if img, rev := live(); img != "registry.local/web:1" || rev != "2" {
		t.Fatalf("after the undo: template image %s, revision %s; want registry.local/web:1, still revision 2", img, rev)
	}
	if _, err := c.Rollback(ctx, ns, "flip", 2); err != nil {
		t.Fatalf("rollback to revision 2: %v", err)
	}
	if img, _ := live(); img != "registry.local/web:2" {
		t.Fatalf("after the rollback to revision 2: template image %s, want registry.local/web:2", img)
	}
	resume()
	if st, err := c.Wait(ctx, ns, "flip", time.Minute, nil); err != nil || st.Image != "registry.local/web:2" {
		t.Fatalf("once the controller runs again: %+v, %v; want running registry.local/web:2", st, err)
	}
}

// An application may be named otherwise than its workload ("shop" applying the Deployment "shop-web"): status,
// wait, scale, history, rollback and delete find the workload through the application's inventory, as apply
// picked it.
func TestApplicationNamedOtherwiseThanItsWorkload(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 2*time.Minute)
	opts := kube.ApplyOptions{Name: "shop", Namespace: ns, Wait: true, Timeout: time.Minute}
	for _, img := range []string{"registry.local/web:1", "registry.local/web:2"} {
		if _, err := c.Apply(ctx, parse(t, deployment("shop-web", img, 1, "")+appExtras), opts); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.Status(ctx, ns, "shop")
	if err != nil || st.Name != "shop-web" || st.Image != "registry.local/web:2" {
		t.Fatalf("status of the application: %v %+v", err, st)
	}
	if st, err = c.Scale(ctx, ns, "shop", 2); err != nil || st.Name != "shop-web" || st.Replicas != 2 {
		t.Fatalf("scale: %v %+v", err, st)
	}
	if st, err = c.Wait(ctx, ns, "shop", time.Minute, nil); err != nil || st.ReadyReplicas != 2 {
		t.Fatalf("wait: %v %+v", err, st)
	}
	if revs, err := c.History(ctx, ns, "shop"); err != nil || len(revs) != 2 {
		t.Fatalf("history: %v %+v", err, revs)
	}
	if st, err = c.Rollback(ctx, ns, "shop", 0); err != nil || st.Image != "registry.local/web:1" {
		t.Fatalf("rollback: %v %+v", err, st)
	}
	deleted, err := c.Delete(ctx, ns, "shop", kube.DeleteOptions{Wait: true})
	if err != nil || len(deleted) != 3 {
		t.Fatalf("delete: %v %+v, want the deployment, service and configmap", err, deleted)
	}
	if _, err := c.Status(ctx, ns, "shop"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("status after delete: %v, want ErrNotFound", err)
	}
}

// A wait that ends while its client is held back by its own rate limit still ends as a timeout, saying what was
// not ready (client-go's limiter refuses, before the deadline, a request that would pass it).
func TestWaitTimesOutUnderTheRateLimit(t *testing.T) {
	path, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, time.Minute)
	lb := "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, selector: {app: x}, ports: [{port: 80}]}\n"
	if _, err := c.Apply(ctx, parse(t, lb), kube.ApplyOptions{Name: "lb", Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	// One shared limiter: a burst for the inventory, discovery and the first polls, then a token every 100 s, so
	// that a later poll is refused at once, well before the wait's deadline.
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	rc.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(0.01, 6)
	slow, err := kube.NewForConfig(rc, ns, kube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = slow.Wait(ctx, ns, "lb", 20*time.Second, nil)
	var re *kube.RolloutError
	if !errors.As(err, &re) || !re.TimedOut || !strings.Contains(err.Error(), "service/"+ns+"/lb") {
		t.Fatalf("error = %v, want a timed-out RolloutError naming the service", err)
	}
}

// A Deployment scaled to zero is done: its status says succeeded (the specification's word for a workload that
// finished), and a wait for it ends.
func TestScaledToZeroSucceeds(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 2*time.Minute)
	if _, err := c.Apply(ctx, parse(t, deployment("idle", "registry.local/web:1", 1, "")), kube.ApplyOptions{Name: "idle", Namespace: ns, Wait: true, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx, ns, "idle"); err != nil || st.Status != "running" {
		t.Fatalf("one replica: %v %+v, want running", err, st)
	}
	if _, err := c.Scale(ctx, ns, "idle", 0); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx, ns, "idle", time.Minute, nil)
	if err != nil || st.Status != "succeeded" || len(st.Pods) != 0 || st.Replicas != 0 {
		t.Fatalf("scaled to zero: %v %+v, want succeeded with no pods", err, st)
	}
}

// A Job is an application's workload too: running while its pods run, succeeded (the specification's word) once
// it completed; it has no replicas to scale and no revisions to roll back to, and says so.
func TestJobSucceeds(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, 2*time.Minute)
	job := parse(t, `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  completions: 2
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: registry.local/migrate:1}]
`)
	two := int32(2)
	if _, err := c.Apply(ctx, job, kube.ApplyOptions{Name: "migrate", Namespace: ns, Overrides: kube.Overrides{Replicas: &two}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("replicas override on a Job: %v, want ErrInvalidArgument", err)
	}
	if _, err := c.Typed().BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{}); err == nil {
		t.Fatal("the refused apply created the Job")
	}
	res, err := c.Apply(ctx, job, kube.ApplyOptions{Name: "migrate", Namespace: ns, Wait: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Status
	if st == nil || st.Kind != "Job" || st.Status != "succeeded" || st.Replicas != 2 || st.ReadyReplicas != 2 || len(st.Pods) != 2 {
		t.Fatalf("applied Job's status = %+v, want a Job, succeeded, 2 of 2 with their pods", st)
	}
	if st, err := c.Status(ctx, ns, "migrate"); err != nil || st.Status != "succeeded" || st.Image != "registry.local/migrate:1" {
		t.Fatalf("Status(migrate) = %+v, %v, want succeeded", st, err)
	}
	if _, err := c.Scale(ctx, ns, "migrate", 3); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "Job") {
		t.Errorf("Scale(Job) = %v, want ErrInvalidArgument naming the Job", err)
	}
	if _, err := c.History(ctx, ns, "migrate"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("History(Job) = %v, want ErrInvalidArgument", err)
	}
	if _, err := c.Rollback(ctx, ns, "migrate", 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Rollback(Job) = %v, want ErrInvalidArgument", err)
	}
}

// A namespace that existed before the application, listed in its manifests (as charts often do), and an object
// made by hand that the manifests also list, are applied but never adopted: neither Delete nor prune of the
// application removes them, or what the user keeps in the namespace.
func TestPreexistingObjectsAreNeverAdopted(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c) // made by hand, without Myrmex's annotation
	ctx := ctxT(t, 2*time.Minute)
	cms := c.Typed().CoreV1().ConfigMaps(ns)
	for _, n := range []string{"users-data", "shared-settings"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}, Data: map[string]string{"k": "user"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	namespace := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {team: a}}\n---\n", ns)
	shared := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared-settings}\ndata: {k: user, extra: app}\n---\n"
	own := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {k: app}\n"
	opts := kube.ApplyOptions{Name: "app", Namespace: ns, Prune: true}
	var events []kube.Event
	res, err := c.Apply(ctx, parse(t, namespace+shared+own), kube.ApplyOptions{Name: "app", Namespace: ns, Prune: true,
		Progress: func(e kube.Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	unowned := map[string]bool{}
	for _, ch := range res.Changes {
		unowned[ch.Name] = ch.Unowned
	}
	if !unowned[ns] || !unowned["shared-settings"] || unowned["app-config"] || len(unowned) != 3 {
		t.Errorf("changes' Unowned = %v, want the namespace and shared-settings only", unowned)
	}
	for _, e := range events {
		if e.Object == "namespace/"+ns && !strings.Contains(e.Message, "not owned") {
			t.Errorf("apply event of the namespace %+v does not say it is not owned", e)
		}
	}
	live, err := c.Typed().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || live.Labels["team"] != "a" || live.Annotations[kube.AppAnnotation] != "" {
		t.Fatalf("namespace after apply: %v, labels %v, annotations %v; want the manifests' label applied, not the application's annotation",
			err, live.Labels, live.Annotations)
	}
	if got, err := cms.Get(ctx, "shared-settings", metav1.GetOptions{}); err != nil || got.Data["extra"] != "app" {
		t.Fatalf("shared-settings after apply: %v %v, want the manifests' data applied", err, got.Data)
	}

	deleted, err := c.Delete(ctx, ns, "app", kube.DeleteOptions{Wait: true})
	if err != nil || len(deleted) != 1 || deleted[0].Object != "configmap/"+ns+"/app-config" {
		t.Fatalf("Delete = %+v, %v; want the application's own configmap only", deleted, err)
	}
	checkPreexisting := func(when string) {
		t.Helper()
		live, err := c.Typed().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || live.DeletionTimestamp != nil || live.Status.Phase != corev1.NamespaceActive {
			t.Fatalf("%s: namespace %s: %v, deletion %v, phase %s; want it active", when, ns, err, live.DeletionTimestamp, live.Status.Phase)
		}
		for _, n := range []string{"users-data", "shared-settings"} {
			cm, err := cms.Get(ctx, n, metav1.GetOptions{})
			if err != nil || cm.DeletionTimestamp != nil {
				t.Errorf("%s: configmap %s: %v, want it kept", when, n, err)
			}
		}
	}
	checkPreexisting("after Delete")
	if _, err := cms.Get(ctx, "app-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete, app-config: %v, want it deleted", err)
	}

	// Prune: manifests that no longer list them leave them too.
	if _, err := c.Apply(ctx, parse(t, namespace+shared+own), opts); err != nil {
		t.Fatal(err)
	}
	res, err = c.Apply(ctx, parse(t, own), opts)
	if err != nil || len(res.Pruned) != 0 {
		t.Fatalf("apply without them, with prune: pruned %+v, %v; want nothing pruned", res.Pruned, err)
	}
	checkPreexisting("after prune")
}

// deleteHook runs a function before each Delete the client sends, with the name being deleted.
type deleteHook struct {
	dynamic.Interface
	before func(name string)
}

func (h deleteHook) Resource(r schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return deleteHookNR{h.Interface.Resource(r), h.before}
}

type deleteHookNR struct {
	dynamic.NamespaceableResourceInterface
	before func(string)
}

func (h deleteHookNR) Namespace(ns string) dynamic.ResourceInterface {
	return deleteHookR{h.NamespaceableResourceInterface.Namespace(ns), h.before}
}

func (h deleteHookNR) Delete(ctx context.Context, name string, o metav1.DeleteOptions, sub ...string) error {
	h.before(name)
	return h.NamespaceableResourceInterface.Delete(ctx, name, o, sub...)
}

type deleteHookR struct {
	dynamic.ResourceInterface
	before func(string)
}

func (h deleteHookR) Delete(ctx context.Context, name string, o metav1.DeleteOptions, sub ...string) error {
	h.before(name)
	return h.ResourceInterface.Delete(ctx, name, o, sub...)
}

// Prune deletes the object it checked, not another one: an object replaced by someone else's of the same name, or
// taken over by someone else, between prune's read and its delete, is left alone (the delete carries the UID and
// resourceVersion that were read as preconditions).
func TestPruneDeletesOnlyWhatItChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, ctx context.Context, cms typedcorev1.ConfigMapInterface)
	}{
		{"replaced", func(t *testing.T, ctx context.Context, cms typedcorev1.ConfigMapInterface) {
			if err := cms.Delete(ctx, "drop", metav1.DeleteOptions{}); err != nil {
				t.Error(err)
			}
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "drop"}, Data: map[string]string{"k": "someone"}}, metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
		}},
		{"taken over", func(t *testing.T, ctx context.Context, cms typedcorev1.ConfigMapInterface) {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"data":{"k":"someone"}}`, kube.AppAnnotation)
			if _, err := cms.Patch(ctx, "drop", types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := testenv.Kube(t)
			ns := testenv.KubeNamespace(t, c)
			ctx := ctxT(t, time.Minute)
			cm := func(n string) string {
				return "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + n + "}\ndata: {k: app}\n"
			}
			opts := kube.ApplyOptions{Name: "app", Namespace: ns, Prune: true}
			if _, err := c.Apply(ctx, parse(t, cm("keep")+cm("drop")), opts); err != nil {
				t.Fatal(err)
			}
			cms := c.Typed().CoreV1().ConfigMaps(ns)
			changed := false
			c.WrapDynamic(func(d dynamic.Interface) dynamic.Interface {
				return deleteHook{d, func(name string) {
					if name == "drop" && !changed {
						changed = true
						tc.change(t, ctx, cms)
					}
				}}
			})
			res, err := c.Apply(ctx, parse(t, cm("keep")), opts)
			if err != nil || !changed {
				t.Fatalf("apply with prune: %v (delete sent: %v)", err, changed)
			}
			if len(res.Pruned) != 0 {
				t.Errorf("pruned %+v, want nothing: drop is no longer the application's", res.Pruned)
			}
			got, err := cms.Get(ctx, "drop", metav1.GetOptions{})
			if err != nil || got.Data["k"] != "someone" {
				t.Fatalf("someone's drop after prune: %v, %v; want it kept", err, got.Data)
			}
		})
	}
}

// An application that Myrmex did not apply (no inventory) is deleted through its workload of that name, a Job as
// well as a Deployment.
func TestDeleteWithoutInventory(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx := ctxT(t, time.Minute)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "migrate", Image: "registry.local/migrate:1"}}}}}}
	if _, err := c.Typed().BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted, err := c.Delete(ctx, ns, "migrate", kube.DeleteOptions{Wait: true})
	if err != nil || len(deleted) != 1 || deleted[0].Object != "job.batch/"+ns+"/migrate" {
		t.Fatalf("Delete = %+v, %v; want the job", deleted, err)
	}
	if j, err := c.Typed().BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{}); !apierrors.IsNotFound(err) && (err != nil || j.DeletionTimestamp == nil) {
		t.Errorf("the job after Delete: %v, deletion %v; want it gone or going", err, j.DeletionTimestamp)
	}
}
