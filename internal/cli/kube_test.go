package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/kube"
)

// kubeSession runs myrmex kube commands against the test control plane, in a namespace of the test's own.
type kubeSession struct {
	t          *testing.T
	kubeconfig string
	ns         string
	client     *kube.Client
}

func newKubeSession(t *testing.T) *kubeSession {
	t.Helper()
	kubeconfig, client := testenv.Kube(t)
	return &kubeSession{t: t, kubeconfig: kubeconfig, ns: testenv.KubeNamespace(t, client), client: client}
}

// run runs myrmex kube args with stdin, the session's kubeconfig and namespace.
func (s *kubeSession) run(stdin string, args ...string) result {
	s.t.Helper()
	full := append(append([]string{"kube"}, args...), "--kubeconfig", s.kubeconfig, "-n", s.ns)
	return myrmexIn(s.t, strings.NewReader(stdin), full...)
}

// expect runs myrmex kube args and fails the test unless it exits with code.
func (s *kubeSession) expect(code int, args ...string) result {
	s.t.Helper()
	r := s.run("", args...)
	if r.code != code {
		s.t.Fatalf("myrmex kube %q = exit %d, want %d; stdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// decode reads the KubernetesDeployment a command printed with -o json.
func decodeDeployment(t *testing.T, r result) containerization.KubernetesDeployment {
	t.Helper()
	var d containerization.KubernetesDeployment
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("stdout is not a KubernetesDeployment in JSON: %v\n%s", err, r.stdout)
	}
	return d
}

// status returns myrmex kube status NAME -o json.
func (s *kubeSession) status(name string) containerization.KubernetesDeployment {
	s.t.Helper()
	return decodeDeployment(s.t, s.expect(0, "status", name, "-o", "json"))
}

// appManifests are a ConfigMap, a Service and a Deployment named name (container web, image
// registry.local/app:1, MODE=dev, one replica). waiting, when set, is the reason KWOK gives its pods instead of
// making them ready.
func appManifests(name, waiting string) string {
	extra := ""
	if waiting != "" {
		extra = "\n        myrmex.codomyrmex.dev/simulate-waiting: " + waiting
	}
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config
data:
  greeting: hello
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s%[2]s
    spec:
      containers:
      - name: web
        image: registry.local/app:1
        ports:
        - containerPort: 8080
        env:
        - name: MODE
          value: dev
`, name, extra)
}

// writeManifests writes text to a file of its own in a temporary directory.
func writeManifests(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubeApplyStatusScaleDelete(t *testing.T) {
	t.Parallel()
	s := newKubeSession(t)
	path := writeManifests(t, appManifests("web", ""))

	r := s.expect(0, "apply", "web", "-f", path, "--wait", "--timeout", "2m",
		"--replicas", "3", "--image", "web=registry.local/app:2", "--set-label", "team=a", "--env", "MODE=prod")
	for _, obj := range []string{"configmap/" + s.ns + "/web-config", "service/" + s.ns + "/web", "deployment.apps/" + s.ns + "/web"} {
		if !strings.Contains(r.stdout, obj) {
			t.Errorf("apply stdout does not list %s:\n%s", obj, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "OBJECT") || !strings.Contains(r.stdout, "3/3 ready") {
		t.Errorf("apply stdout lacks the changes table or the summary with 3/3 ready:\n%s", r.stdout)
	}
	for _, line := range []string{
		"apply  deployment.apps/" + s.ns + "/web  created",
		"wait  deployment.apps/" + s.ns + "/web  Current",
	} {
		if !strings.Contains(r.stderr, line) {
			t.Errorf("apply stderr lacks the progress line %q:\n%s", line, r.stderr)
		}
	}

	d := s.status("web")
	if d.Name != "web" || d.Namespace != s.ns || d.Kind != "Deployment" || d.Status != "running" {
		t.Errorf("status = %s/%s %s %s, want %s/web Deployment running", d.Namespace, d.Name, d.Kind, d.Status, s.ns)
	}
	if d.Replicas != 3 || d.ReadyReplicas != 3 {
		t.Errorf("replicas = %d ready of %d, want 3 of 3", d.ReadyReplicas, d.Replicas)
	}
	if d.Image != "registry.local/app:2" {
		t.Errorf("image = %q, want the override registry.local/app:2", d.Image)
	}
	if d.Environment["MODE"] != "prod" {
		t.Errorf("environment = %v, want MODE=prod", d.Environment)
	}
	if len(d.Pods) != 3 {
		t.Errorf("pods = %+v, want 3", d.Pods)
	}
	for _, p := range d.Pods {
		if !p.Ready || p.Phase != "Running" {
			t.Errorf("pod %s is %s, ready %v; want Running and ready", p.Name, p.Phase, p.Ready)
		}
	}
	if !slices.Contains(d.Services, "web") {
		t.Errorf("services = %v, want web", d.Services)
	}
	live, err := s.client.Typed().AppsV1().Deployments(s.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if live.Labels["team"] != "a" || live.Spec.Template.Labels["team"] != "a" {
		t.Errorf("labels = %v, template labels = %v; want team=a on both", live.Labels, live.Spec.Template.Labels)
	}

	table := s.expect(0, "status", "web")
	for _, want := range []string{"NAME", "PHASE", "READY", "RESTARTS", "REASON", "CONTAINER", "NODE", "registry.local/app:2", "3/3 ready"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, table.stdout)
		}
	}
	for _, p := range d.Pods {
		if !strings.Contains(table.stdout, p.Name) {
			t.Errorf("status table lacks pod %s:\n%s", p.Name, table.stdout)
		}
	}

	s.expect(0, "scale", "web", "1")
	if d := s.status("web"); d.Replicas != 1 {
		t.Errorf("after scale 1: replicas = %d, want 1", d.Replicas)
	}
	live, err = s.client.Typed().AppsV1().Deployments(s.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil || live.Spec.Replicas == nil || *live.Spec.Replicas != 1 {
		t.Errorf("after scale 1: the cluster's spec.replicas = %v (%v), want 1", live.Spec.Replicas, err)
	}
	var last containerization.KubernetesDeployment
	if !testenv.Eventually(30*time.Second, func() bool {
		last = s.status("web")
		return len(last.Pods) == 1 && last.ReadyReplicas == 1
	}) {
		t.Errorf("after scale 1: pods = %+v, ready %d; want one ready pod", last.Pods, last.ReadyReplicas)
	}

	r = s.expect(0, "delete", "web", "--wait")
	for _, obj := range []string{"configmap/" + s.ns + "/web-config", "service/" + s.ns + "/web", "deployment.apps/" + s.ns + "/web"} {
		if !strings.Contains(r.stdout, obj) {
			t.Errorf("delete stdout does not list %s:\n%s", obj, r.stdout)
		}
	}
	ctx := t.Context()
	if _, err := s.client.Typed().AppsV1().Deployments(s.ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: getting the Deployment = %v, want not found", err)
	}
	if _, err := s.client.Typed().CoreV1().Services(s.ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: getting the Service = %v, want not found", err)
	}
	if _, err := s.client.Typed().CoreV1().ConfigMaps(s.ns).Get(ctx, "web-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: getting the ConfigMap = %v, want not found", err)
	}
	s.expect(cli.ExitNotFound, "status", "web")
	s.expect(cli.ExitNotFound, "delete", "web")
}

func TestKubeRollbackHistory(t *testing.T) {
	t.Parallel()
	s := newKubeSession(t)
	path := writeManifests(t, appManifests("web", ""))

	s.expect(0, "apply", "web", "-f", path, "--wait", "--timeout", "2m")
	r := s.expect(0, "apply", "web", "-f", path, "--wait", "--timeout", "2m", "--image", "web=registry.local/app:2")
	if !strings.Contains(r.stdout, `"registry.local/app:1" → "registry.local/app:2"`) {
		t.Errorf("apply of a new image does not show the image change:\n%s", r.stdout)
	}
	if d := s.status("web"); d.Image != "registry.local/app:2" {
		t.Fatalf("after the image change: image = %q, want registry.local/app:2", d.Image)
	}

	var revs []kube.Revision
	r = s.expect(0, "history", "web", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &revs); err != nil {
		t.Fatalf("history -o json: %v\n%s", err, r.stdout)
	}
	if len(revs) < 2 {
		t.Fatalf("history = %+v, want 2 revisions at least", revs)
	}
	if cur := revs[len(revs)-1]; !cur.Current || cur.Images["web"] != "registry.local/app:2" {
		t.Errorf("latest revision = %+v, want the current one, with registry.local/app:2", cur)
	}
	table := s.expect(0, "history", "web")
	for _, want := range []string{"REVISION", "REPLICASET", "IMAGES", "CREATED", "CURRENT", "web=registry.local/app:1", "web=registry.local/app:2"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("history table lacks %q:\n%s", want, table.stdout)
		}
	}

	r = s.expect(0, "rollback", "web", "--wait", "--timeout", "2m", "-o", "json")
	if d := decodeDeployment(t, r); d.Image != "registry.local/app:1" || d.Status != "running" {
		t.Errorf("rollback printed image %q, status %q; want registry.local/app:1, running", d.Image, d.Status)
	}
	live, err := s.client.Typed().AppsV1().Deployments(s.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := live.Spec.Template.Spec.Containers[0].Image; img != "registry.local/app:1" {
		t.Errorf("after rollback: the cluster's image = %q, want registry.local/app:1", img)
	}
	revs = nil
	r = s.expect(0, "history", "web", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &revs); err != nil {
		t.Fatal(err)
	}
	if len(revs) < 2 {
		t.Errorf("history after rollback = %+v, want 2 revisions at least", revs)
	}
	for _, rev := range revs {
		if rev.Current && rev.Images["web"] != "registry.local/app:1" {
			t.Errorf("current revision after rollback = %+v, want registry.local/app:1", rev)
		}
	}
	s.expect(cli.ExitNotFound, "rollback", "web", "--to-revision", "99")
}

func TestKubeApplyDryRun(t *testing.T) {
	t.Parallel()
	s := newKubeSession(t)
	path := writeManifests(t, appManifests("web", ""))

	// A new application: nothing is created.
	r := s.expect(0, "apply", "web", "-f", path, "--dry-run")
	if !strings.Contains(r.stdout, "created (dry run)") {
		t.Errorf("dry run of a new application does not say created (dry run):\n%s", r.stdout)
	}
	ctx := t.Context()
	if _, err := s.client.Typed().AppsV1().Deployments(s.ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry run: getting the Deployment = %v, want not found", err)
	}
	if _, err := s.client.Typed().CoreV1().ConfigMaps(s.ns).Get(ctx, "web-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry run: getting the ConfigMap = %v, want not found", err)
	}

	// An existing one: the output says what would change, and nothing does.
	s.expect(0, "apply", "web", "-f", path, "--wait", "--timeout", "2m")
	before, err := s.client.Typed().AppsV1().Deployments(s.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r = s.expect(0, "apply", "web", "-f", path, "--dry-run", "--replicas", "4", "--image", "registry.local/app:9")
	for _, want := range []string{"configured (dry run)", "spec.replicas: 1 → 4", "registry.local/app:9", "unchanged (dry run)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	d := decodeDeployment(t, s.expect(0, "apply", "web", "-f", path, "--dry-run", "--replicas", "4", "-o", "json"))
	if !d.DryRun {
		t.Errorf("dry run -o json: dry_run = false")
	}
	after, err := s.client.Typed().AppsV1().Deployments(s.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *after.Spec.Replicas != 1 || after.Spec.Template.Spec.Containers[0].Image != "registry.local/app:1" ||
		after.ResourceVersion != before.ResourceVersion {
		t.Errorf("after a dry run: replicas %d, image %s, resourceVersion %s → %s; want 1, registry.local/app:1, unchanged",
			*after.Spec.Replicas, after.Spec.Template.Spec.Containers[0].Image, before.ResourceVersion, after.ResourceVersion)
	}
}

func TestKubeApplyStdinAndPrune(t *testing.T) {
	t.Parallel()
	s := newKubeSession(t)
	manifests := appManifests("api", "")

	r := s.run(manifests, "apply", "api", "-f", "-", "--wait", "--timeout", "2m", "-o", "json")
	if r.code != 0 {
		t.Fatalf("apply -f - = exit %d; stderr:\n%s", r.code, r.stderr)
	}
	d := decodeDeployment(t, r) // the whole of stdout is the JSON document
	if d.Name != "api" || d.ReadyReplicas != 1 || len(d.Pods) != 1 || d.Status != "running" {
		t.Errorf("apply -f - = %s %s, %d ready, %d pods; want api running, 1 ready pod", d.Name, d.Status, d.ReadyReplicas, len(d.Pods))
	}
	if len(d.Changes) != 3 {
		t.Errorf("changes = %+v, want the ConfigMap, Service and Deployment", d.Changes)
	}
	if r.stderr != "" {
		t.Errorf("-o json wrote to stderr: %q", r.stderr)
	}

	// The same manifests without the ConfigMap, with --prune: the ConfigMap goes.
	withoutConfig := manifests[strings.Index(manifests, "---\n")+4:]
	r = s.run(withoutConfig, "apply", "api", "-f", "-", "--prune")
	if r.code != 0 {
		t.Fatalf("apply --prune = exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "configmap/"+s.ns+"/api-config") || !strings.Contains(r.stdout, "pruned") {
		t.Errorf("apply --prune does not show the pruned ConfigMap:\n%s", r.stdout)
	}
	if _, err := s.client.Typed().CoreV1().ConfigMaps(s.ns).Get(t.Context(), "api-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after prune: getting the ConfigMap = %v, want not found", err)
	}
}

func TestKubeApplyRolloutFailure(t *testing.T) {
	t.Parallel()
	s := newKubeSession(t)
	path := writeManifests(t, appManifests("broken", "ImagePullBackOff"))

	r := s.expect(cli.ExitRolloutFailed, "apply", "broken", "-f", path, "--wait", "--timeout", "60s")
	// Failing fast, the error names the reason; a wait that ran out its timeout would say it timed out.
	if strings.Contains(r.stderr, "timed out") || strings.Contains(r.stderr, "deadline exceeded") {
		t.Errorf("the failing rollout was reported at the timeout, not as soon as the pod showed it:\n%s", r.stderr)
	}
	pods, err := s.client.Typed().CoreV1().Pods(s.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=broken"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("listing the pods = %d pods, %v; want one", len(pods.Items), err)
	}
	named := false
	for _, p := range pods.Items {
		named = named || strings.Contains(r.stderr, p.Name)
	}
	if !named || !strings.Contains(r.stderr, "ImagePullBackOff") {
		t.Errorf("stderr does not name the pod and ImagePullBackOff:\n%s", r.stderr)
	}
	// The deployment is still shown, with the pod that cannot start.
	if !strings.Contains(r.stdout, "ImagePullBackOff") || !strings.Contains(r.stdout, "failed") {
		t.Errorf("stdout does not show the failed deployment and its pod:\n%s", r.stdout)
	}

	// With -o json, the deployment is the JSON document on stdout, and the exit code is the same.
	r = s.expect(cli.ExitRolloutFailed, "apply", "broken", "-f", path, "--wait", "--timeout", "60s", "-o", "json")
	d := decodeDeployment(t, r)
	if d.Status != "failed" || len(d.Pods) == 0 || d.Pods[0].Reason != "ImagePullBackOff" || d.Pods[0].Container != "web" {
		t.Errorf("-o json: status %q, pods %+v; want failed with a pod in ImagePullBackOff, container web", d.Status, d.Pods)
	}
	// status --wait fails the same way.
	r = s.expect(cli.ExitRolloutFailed, "status", "broken", "--wait", "--timeout", "60s")
	if !strings.Contains(r.stderr, "ImagePullBackOff") || !strings.Contains(r.stdout, "ImagePullBackOff") {
		t.Errorf("status --wait of the failing deployment:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

func TestKubeUsageErrors(t *testing.T) {
	t.Parallel()
	// A kubeconfig whose API server does not answer: a command that got as far as contacting it would exit 5,
	// not 2.
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: nowhere
  context:
    cluster: nowhere
    user: nobody
current-context: nowhere
users:
- name: nobody
  user:
    token: unused
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	path := writeManifests(t, appManifests("web", ""))

	for _, args := range [][]string{
		{"apply", "web", "-f", path, "--replicas", "-1"},
		{"apply", "web", "-f", path, "--image", "=x"},
		{"apply", "web", "-f", path, "--image", "web="},
		{"apply", "web", "-f", path, "--image", "a:1", "--image", "b:1"},
		{"apply", "web", "-f", path, "--env", "NOEQUALS"},
		{"apply", "web", "-f", path, "--set-label", "=v"},
		{"apply", "web", "-f", path, "--set-annotation", "novalue"},
		{"apply", "web", "-f", path, "--requests", "cpu=abc"},
		{"apply", "web", "-f", path, "--limits", "gpu=1"},
		{"apply", "web", "-f", path, "--requests", "cpu"},
		{"apply", "web", "-f", path, "--timeout", "-1s"},
		{"apply", "web", "-f", path, "--replicas", "three"},
		{"apply", "web"},
		{"apply", "-f", path},
		{"apply", "Not_A_Name", "-f", path},
		{"scale", "web", "abc"},
		{"scale", "web"},
		{"rollback", "web", "--to-revision", "-1"},
		{"status", "a", "b"},
		{"history"},
		{"delete"},
		{"nosuch"},
		{"status", "web", "-o", "xml"},
	} {
		full := append(append([]string{"kube"}, args...), "--kubeconfig", kubeconfig)
		r := myrmex(t, full...)
		if r.code != cli.ExitUsage {
			t.Errorf("myrmex %q = exit %d, want %d (usage); stderr:\n%s", full, r.code, cli.ExitUsage, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("myrmex %q wrote to stdout: %q", full, r.stdout)
		}
	}
	// The same command lines with good values do contact the cluster, which does not answer.
	if r := myrmex(t, "kube", "apply", "web", "-f", path, "--replicas", "2", "--kubeconfig", kubeconfig); r.code != cli.ExitUnavailable {
		t.Errorf("apply against a cluster that does not answer = exit %d, want %d; stderr:\n%s", r.code, cli.ExitUnavailable, r.stderr)
	}
}
