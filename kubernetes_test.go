package containerization_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
)

// The demo's own manifests (examples/k8s), deployed through the facade with every override, then managed
// through the methods of the result.
func TestOrchestrateKubernetes(t *testing.T) {
	kubeconfig, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	three := 3
	var events []containerization.Event
	opts := containerization.KubernetesOptions{
		Replicas:    &three,
		Images:      map[string]string{"app": "registry.local/demo/app:2"},
		Resources:   &containerization.ResourceRequirements{Requests: containerization.ResourceAmounts{CPU: "100m", Memory: "48Mi"}, Limits: containerization.ResourceAmounts{Memory: "96Mi"}},
		Labels:      map[string]string{"team": "platform"},
		Annotations: map[string]string{"owner": "myrmex-tests"},
		Environment: map[string]string{"MODE": "test", "EXTRA": "1"},
		Wait:        true,
		Timeout:     2 * time.Minute,
		Kubeconfig:  kubeconfig,
		Progress:    func(e containerization.Event) { events = append(events, e) },
	}
	d, err := containerization.OrchestrateKubernetes(ctx, "myrmex-demo-web", "examples/k8s", ns, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "myrmex-demo-web" || d.Namespace != ns || d.Replicas != 3 || d.ReadyReplicas != 3 || d.Status != "running" ||
		d.Image != "registry.local/demo/app:2" || len(d.Ports) != 1 || d.Ports[0] != 8080 ||
		d.Environment["MODE"] != "test" || d.Environment["EXTRA"] != "1" ||
		d.Resources.Requests.CPU != "100m" || d.Resources.Requests.Memory != "48Mi" || d.Resources.Limits.Memory != "96Mi" || d.Resources.Limits.CPU != "500m" ||
		len(d.Services) != 1 || d.Services[0] != "myrmex-demo-web" || len(d.Pods) != 3 || d.CreatedAt.IsZero() || d.LastUpdated.IsZero() {
		t.Fatalf("deployment = %+v", d)
	}
	for _, p := range d.Pods {
		if !p.Ready || p.Phase != "Running" || p.Restarts != 0 {
			t.Errorf("pod %+v", p)
		}
	}
	applied, current := false, false
	for _, e := range events {
		applied = applied || e.Op == "apply" && e.Subject == "deployment.apps/"+ns+"/myrmex-demo-web" && e.Status == "created"
		current = current || e.Op == "wait" && strings.HasSuffix(e.Subject, "/myrmex-demo-web") && e.Status == "Current"
	}
	if len(d.Changes) != 3 || !applied || !current {
		t.Errorf("changes %+v, events %+v; want the Deployment's apply (created) and wait (Current) events", d.Changes, events)
	}
	dep, err := c.Typed().AppsV1().Deployments(ns).Get(ctx, "myrmex-demo-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Labels["team"] != "platform" || dep.Spec.Template.Labels["team"] != "platform" || dep.Annotations["owner"] != "myrmex-tests" {
		t.Errorf("labels/annotations not applied: %v %v %v", dep.Labels, dep.Spec.Template.Labels, dep.Annotations)
	}
	svc, err := c.Typed().CoreV1().Services(ns).Get(ctx, "myrmex-demo-web", metav1.GetOptions{})
	if err != nil || svc.Labels["team"] != "platform" {
		t.Errorf("service labels: %v %v", err, svc.Labels)
	}
	// The file was not edited.
	if b, _ := os.ReadFile("examples/k8s/app.yaml"); !strings.Contains(string(b), "image: myrmex.local/demo/app:1") || strings.Contains(string(b), "team") {
		t.Error("examples/k8s/app.yaml was modified")
	}

	// JSON: the specification's field names.
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "namespace", "replicas", "image", "ports", "environment", "resources", "status", "pods", "services", "created_at", "last_updated"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	pod := m["pods"].([]any)[0].(map[string]any)
	var podKeys []string
	for k := range pod {
		podKeys = append(podKeys, k)
	}
	sort.Strings(podKeys)
	for _, k := range []string{"name", "phase", "ready", "restarts", "reason"} {
		if _, ok := pod[k]; !ok {
			t.Errorf("pod JSON has no %q (has %v)", k, podKeys)
		}
	}

	// Management through a Client, by the name and namespace of the result: also of a result that went through
	// JSON, as a caller outside Go holds it.
	var decoded containerization.KubernetesDeployment
	if err := json.Unmarshal(b, &decoded); err != nil || decoded.Application != "myrmex-demo-web" || decoded.Namespace != ns {
		t.Fatalf("decoded %+v, %v", decoded, err)
	}
	c2, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	kopts := containerization.KubernetesOptions{}
	if d, err = c2.ScaleKubernetesDeployment(ctx, decoded.Application, decoded.Namespace, 1, kopts); err != nil || d.Replicas != 1 {
		t.Fatalf("scale: %v %+v", err, d)
	}
	if _, err := c2.WaitKubernetesDeployment(ctx, decoded.Application, decoded.Namespace, time.Minute, kopts); err != nil {
		t.Fatal(err)
	}
	if !testenv.Eventually(time.Minute, func() bool {
		d, err = c2.GetKubernetesDeployment(ctx, decoded.Application, decoded.Namespace, kopts)
		return err == nil && len(d.Pods) == 1
	}) {
		t.Fatalf("after scaling to 1: %+v", d)
	}
	opts.Images = map[string]string{"app": "registry.local/demo/app:3"}
	opts.Replicas = nil
	if d, err = containerization.OrchestrateKubernetes(ctx, "myrmex-demo-web", "examples/k8s", ns, opts); err != nil {
		t.Fatal(err)
	}
	if d.Image != "registry.local/demo/app:3" || d.Replicas != 2 {
		t.Fatalf("after the new image (replicas back to the manifests' 2): %s %d", d.Image, d.Replicas)
	}
	revs, err := c2.KubernetesDeploymentHistory(ctx, d.Application, d.Namespace, kopts)
	if err != nil || len(revs) != 2 {
		t.Fatalf("history: %v %+v", err, revs)
	}
	if d, err = c2.RollbackKubernetesDeployment(ctx, d.Application, d.Namespace, 0, kopts); err != nil || d.Image != "registry.local/demo/app:2" {
		t.Fatalf("rollback: %v %+v", err, d)
	}
	var waitEvents []containerization.Event
	if d, err = c2.WaitKubernetesDeployment(ctx, d.Application, d.Namespace, time.Minute, containerization.KubernetesOptions{
		Progress: func(e containerization.Event) { waitEvents = append(waitEvents, e) },
	}); err != nil || d.Status != "running" || len(waitEvents) == 0 {
		t.Fatalf("after rollback: %v %+v, %d wait events", err, d, len(waitEvents))
	}
	got, err := containerization.GetKubernetesDeployment(ctx, "myrmex-demo-web", ns, containerization.KubernetesOptions{Kubeconfig: kubeconfig})
	if err != nil || got.Image != "registry.local/demo/app:2" || got.Status != "running" {
		t.Fatalf("get: %v %+v", err, got)
	}
	deleted, err := c2.DeleteKubernetesDeployment(ctx, d.Application, d.Namespace, containerization.KubernetesOptions{Wait: true})
	if err != nil || len(deleted) != 3 {
		t.Fatalf("delete: %v %+v", err, deleted)
	}
	_, err = containerization.GetKubernetesDeployment(ctx, "myrmex-demo-web", ns, containerization.KubernetesOptions{Kubeconfig: kubeconfig})
	var ke *containerization.KubernetesError
	if !errors.As(err, &ke) || !errors.Is(err, containerization.ErrNotFound) || ke.Op != "status" {
		t.Fatalf("get after delete: %v, want a KubernetesError wrapping ErrNotFound", err)
	}
}

func TestOrchestrateKubernetesErrors(t *testing.T) {
	kubeconfig, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failing := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\nspec:\n  selector: {matchLabels: {app: broken}}\n  template:\n    metadata: {labels: {app: broken, myrmex.codomyrmex.dev/simulate-waiting: CrashLoopBackOff}}\n    spec: {containers: [{name: main, image: registry.local/broken:1}]}\n"
	minus := -1
	cases := []struct {
		name, path string
		opts       containerization.KubernetesOptions
		want       error
		op, says   string
	}{
		{"malformed", bad, containerization.KubernetesOptions{}, containerization.ErrInvalidArgument, "apply", "line 1"},
		{"no such file", filepath.Join(dir, "absent"), containerization.KubernetesOptions{}, containerization.ErrNotFound, "apply", "absent"},
		{"negative replicas", "examples/k8s", containerization.KubernetesOptions{Replicas: &minus}, containerization.ErrInvalidArgument, "apply", "replicas -1"},
		{"crash loop", "-", containerization.KubernetesOptions{Wait: true, Timeout: 2 * time.Minute, Stdin: strings.NewReader(failing)}, containerization.ErrRolloutFailed, "apply", "CrashLoopBackOff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Kubeconfig = kubeconfig
			d, err := containerization.OrchestrateKubernetes(ctx, "broken", tc.path, ns, tc.opts)
			var ke *containerization.KubernetesError
			if !errors.As(err, &ke) || !errors.Is(err, tc.want) || ke.Op != tc.op || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error = %v, want a KubernetesError (%s) wrapping %v saying %q", err, tc.op, tc.want, tc.says)
			}
			if tc.want == containerization.ErrRolloutFailed {
				if d == nil || d.Status != "failed" || ke.Object != "deployment.apps/"+ns+"/broken" {
					t.Errorf("failed rollout: deployment %+v, object %q", d, ke.Object)
				}
			}
		})
	}
	// An object the API server refuses: the error names it.
	svc := filepath.Join(dir, "svc.yaml")
	if err := os.WriteFile(svc, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: svc}\nspec: {ports: [{port: 99999}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := containerization.OrchestrateKubernetes(ctx, "svc", svc, ns, containerization.KubernetesOptions{Kubeconfig: kubeconfig})
	var ke *containerization.KubernetesError
	if !errors.As(err, &ke) || ke.Object != "service/"+ns+"/svc" || !errors.Is(err, containerization.ErrInvalidArgument) || !strings.Contains(err.Error(), svc+":1") {
		t.Errorf("refused object: %v (object %q), want the service named with its file and line", err, ke.Object)
	}
	// Applied under a name of its own ("demo"), the result names its Deployment, and acting on its application
	// acts on the whole application.
	d, err := containerization.OrchestrateKubernetes(ctx, "demo", "examples/k8s", ns, containerization.KubernetesOptions{Kubeconfig: kubeconfig, Wait: true, Timeout: time.Minute})
	if err != nil || d.Name != "myrmex-demo-web" || d.Application != "demo" || d.Status != "running" {
		t.Fatalf("apply as demo: %v %+v", err, d)
	}
	kopts := containerization.KubernetesOptions{Kubeconfig: kubeconfig, Wait: true}
	if got, err := containerization.GetKubernetesDeployment(ctx, d.Application, ns, kopts); err != nil || got.Name != "myrmex-demo-web" {
		t.Fatalf("get demo: %v %+v", err, got)
	}
	if deleted, err := containerization.DeleteKubernetesDeployment(ctx, d.Application, ns, kopts); err != nil || len(deleted) != 3 {
		t.Fatalf("delete of demo: %v %+v, want its deployment, service and configmap", err, deleted)
	}
	if _, err := c.Typed().CoreV1().Services(ns).Get(ctx, "myrmex-demo-web", metav1.GetOptions{}); err == nil {
		t.Error("the service is still there after the application's delete")
	}
	if _, err := containerization.OrchestrateKubernetes(ctx, "Bad Name", "examples/k8s", ns, containerization.KubernetesOptions{Kubeconfig: kubeconfig}); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("bad name: %v", err)
	}
	c2, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.ScaleKubernetesDeployment(ctx, "demo", ns, -1, containerization.KubernetesOptions{}); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("scale to -1: %v", err)
	}
	if _, err := c2.RollbackKubernetesDeployment(ctx, "demo", ns, -2, containerization.KubernetesOptions{}); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("rollback to revision -2: %v", err)
	}
	if _, err := c2.KubernetesDeploymentHistory(ctx, "", ns, containerization.KubernetesOptions{}); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("history of no name: %v", err)
	}
}

// An empty namespace is the kubeconfig context's, as kubectl takes it (the facade used "default").
func TestKubernetesContextNamespace(t *testing.T) {
	kubeconfig, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Contexts[cfg.CurrentContext].Namespace = ns
	withNS := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, withNS); err != nil {
		t.Fatal(err)
	}
	opts := containerization.KubernetesOptions{Kubeconfig: withNS}
	d, err := containerization.OrchestrateKubernetes(ctx, "ctxns", "examples/k8s", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if d.Namespace != ns {
		t.Errorf("applied to namespace %q, want the context's %q", d.Namespace, ns)
	}
	if _, err := c.Status(ctx, ns, "ctxns"); err != nil {
		t.Errorf("the workload is not in the context's namespace %s: %v", ns, err)
	}
	if got, err := containerization.GetKubernetesDeployment(ctx, "ctxns", "", opts); err != nil || got.Namespace != ns {
		t.Errorf("GetKubernetesDeployment(namespace \"\") = %+v, %v; want it found in %s", got, err, ns)
	}
	if _, err := containerization.DeleteKubernetesDeployment(ctx, "ctxns", "", opts); err != nil {
		t.Errorf("DeleteKubernetesDeployment(namespace \"\") = %v", err)
	}
	if _, err := c.Status(ctx, ns, "ctxns"); !errors.Is(err, containerization.ErrNotFound) {
		t.Errorf("after delete, status = %v; want not found", err)
	}
}
