package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/server"
)

// pushUser pushes an image (no layers) whose configuration runs as user to reg, and returns its reference.
func pushUser(t *testing.T, reg *testenv.Registry, repoTag, user string) string {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{User: user}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Ref(repoTag), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}
	return reg.Ref(repoTag)
}

func mustPolicy(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(text), "test-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// admissionPolicy allows images from reg only, and refuses privileged containers and containers run as root.
func admissionPolicy(t *testing.T, reg *testenv.Registry, gates string) *policy.Policy {
	return mustPolicy(t, fmt.Sprintf("version: 1\nimages: {registries: [%q]}\nruntime: {no_privileged: true, non_root: true}\n%s", reg.Host, gates))
}

// podSpec is a pod spec running image, privileged or not.
func podSpec(image string, privileged bool) map[string]any {
	return map[string]any{"containers": []any{map[string]any{"name": "app", "image": image,
		"securityContext": map[string]any{"privileged": privileged}}}}
}

// workload is an object of kind (group/version Kind) named web in namespace shop that runs spec.
func workload(apiVersion, kind string, spec map[string]any) map[string]any {
	obj := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "web", "namespace": "shop"}}
	tpl := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}}, "spec": spec}
	switch kind {
	case "Pod":
		obj["spec"] = spec
	case "CronJob":
		obj["spec"] = map[string]any{"schedule": "* * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": tpl}}}
	default:
		obj["spec"] = map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "template": tpl}
	}
	return obj
}

// reviewOf is an AdmissionReview of one request, as kube-apiserver sends it.
func reviewOf(uid, op string, obj, old map[string]any) map[string]any {
	o := obj
	if o == nil {
		o = old
	}
	apiVersion, _ := o["apiVersion"].(string)
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	req := map[string]any{"uid": uid, "kind": map[string]any{"group": group, "version": version, "kind": o["kind"]},
		"resource": map[string]any{"group": group, "version": version, "resource": strings.ToLower(o["kind"].(string)) + "s"},
		"name":     "web", "namespace": "shop", "operation": op, "userInfo": map[string]any{"username": "alice"},
		"object": obj, "oldObject": old, "dryRun": false}
	return map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
}

// admission posts a review (no token: as the API server does) and returns the answer's status, the response of a
// 200, and the body.
func (e *env) admission(review any) (int, *admissionv1.AdmissionResponse, []byte) {
	e.t.Helper()
	st, body := e.do("", "POST", "/v1/admission", review)
	if st != 200 {
		return st, nil, body
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil || out.Response == nil {
		e.t.Fatalf("the answer is not an AdmissionReview with a response: %v: %s", err, body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
		e.t.Errorf("the answer is a %s of %s, want an AdmissionReview of admission.k8s.io/v1", out.Kind, out.APIVersion)
	}
	return st, out.Response, body
}

// The webhook's protocol, over real HTTP: each kind that runs pods is held to the policy at the apply gate (the
// images resolved in their registry, the pod specs read), the answer carries the request's uid, a refusal names
// the rule, an allowed request carries the warnings of a gate that warns; deletes, other kinds, subresources and
// updates that change nothing the policy reads are allowed; a hostile body is 400 before anything is looked up;
// a registry that does not answer in time is a denial that says so.
func TestAdmissionReview(t *testing.T) {
	reg, other := testenv.InProcess(t), testenv.InProcess(t)
	app := pushUser(t, reg, "shop/app:1", "1000")
	root := pushUser(t, reg, "shop/root:1", "")
	elsewhere := pushUser(t, other, "shop/app:1", "1000")
	noEngine := "unix://" + filepath.Join(t.TempDir(), "no-engine.sock") // the webhook needs no engine
	e := newEnvWith(t, containerization.Config{Host: noEngine, Policy: admissionPolicy(t, reg, "")})

	kinds := []struct{ apiVersion, kind string }{{"v1", "Pod"}, {"v1", "ReplicationController"}, {"apps/v1", "Deployment"},
		{"apps/v1", "StatefulSet"}, {"apps/v1", "DaemonSet"}, {"apps/v1", "ReplicaSet"}, {"batch/v1", "Job"}, {"batch/v1", "CronJob"}}
	for i, k := range kinds {
		uid := fmt.Sprintf("uid-%d", i)
		st, resp, body := e.admission(reviewOf(uid, "CREATE", workload(k.apiVersion, k.kind, podSpec(app, true)), nil))
		if st != 200 || string(resp.UID) != uid || resp.Allowed || resp.Result == nil || resp.Result.Code != 403 ||
			!strings.Contains(resp.Result.Message, "runtime.no_privileged: container "+k.kind+"/shop/web/app") {
			t.Errorf("a privileged %s = %d %s, want it denied for runtime.no_privileged, with uid %s", k.kind, st, body, uid)
		}
		if i == 0 {
			e.valid("/v1/admission", "POST", 200, body)
		}
		if st, resp, body := e.admission(reviewOf(uid, "CREATE", workload(k.apiVersion, k.kind, podSpec(app, false)), nil)); st != 200 || !resp.Allowed || len(resp.Warnings) > 0 {
			t.Errorf("a compliant %s = %d %s, want it allowed", k.kind, st, body)
		}
	}

	deploy := func(spec map[string]any) map[string]any { return workload("apps/v1", "Deployment", spec) }
	labelled := deploy(podSpec(app, true))
	labelled["metadata"].(map[string]any)["labels"] = map[string]any{"team": "ants"}
	deleting := deploy(podSpec(app, true))
	deleting["metadata"].(map[string]any)["deletionTimestamp"] = "2026-01-01T00:00:00Z"
	generated := workload("v1", "Pod", podSpec(app, true))
	generated["metadata"] = map[string]any{"generateName": "web-7d9f-", "namespace": "shop"}
	fromController := reviewOf("u", "CREATE", generated, nil)
	fromController["request"].(map[string]any)["name"] = "" // the API server may not have named it yet
	dry := reviewOf("dry", "CREATE", deploy(podSpec(app, true)), nil)
	dry["request"].(map[string]any)["dryRun"] = true
	status := reviewOf("status", "UPDATE", workload("v1", "Pod", podSpec(app, true)), workload("v1", "Pod", podSpec(app, false)))
	status["request"].(map[string]any)["subResource"] = "status"
	configMap := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "web"}, "data": map[string]any{"privileged": "true"}}
	for _, tc := range []struct {
		name   string
		review map[string]any
		allow  bool
		rule   string // in a denial's message
	}{
		{"image run as root", reviewOf("u", "CREATE", deploy(podSpec(root, false)), nil), false, "runtime.non_root: container Deployment/shop/web/app: it would run as the image's user, root"},
		{"image of another registry", reviewOf("u", "CREATE", deploy(podSpec(elsewhere, false)), nil), false, "images.registries: " + other.Host + "/shop/app:1@sha256:"},
		{"image not in its registry", reviewOf("u", "CREATE", deploy(podSpec(reg.Ref("shop/nosuch:1"), false)), nil), false, "the policy could not be checked, and what cannot be checked is denied: "},
		{"runAsNonRoot over a root image", reviewOf("u", "CREATE", deploy(map[string]any{"securityContext": map[string]any{"runAsNonRoot": true},
			"containers": []any{map[string]any{"name": "app", "image": root}}}), nil), true, ""},
		{"dry run", dry, false, "runtime.no_privileged"},
		{"a controller's pod", fromController, false, "runtime.no_privileged: container Pod/shop/web-7d9f-*/app"},
		{"update made privileged", reviewOf("u", "UPDATE", deploy(podSpec(app, true)), deploy(podSpec(app, false))), false, "runtime.no_privileged"},
		{"update of labels only", reviewOf("u", "UPDATE", labelled, deploy(podSpec(app, true))), true, ""},
		{"update of an object being deleted", reviewOf("u", "UPDATE", deleting, deploy(podSpec(app, false))), true, ""},
		{"delete", reviewOf("u", "DELETE", nil, deploy(podSpec(app, true))), true, ""},
		{"connect", reviewOf("u", "CONNECT", workload("v1", "Pod", podSpec(app, true)), nil), true, ""},
		{"status subresource", status, true, ""},
		{"another kind", reviewOf("u", "CREATE", configMap, nil), true, ""},
	} {
		st, resp, body := e.admission(tc.review)
		if st != 200 || resp.Allowed != tc.allow || (!tc.allow && (resp.Result == nil || resp.Result.Code != 403 || !strings.Contains(resp.Result.Message, tc.rule))) {
			t.Errorf("%s = %d %s, want allowed %v with %q", tc.name, st, body, tc.allow, tc.rule)
		}
	}

	// Hostile or malformed bodies: 400, before anything is looked up.
	good, _ := json.Marshal(reviewOf("u", "CREATE", deploy(podSpec(app, false)), nil))
	mangle := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, bad := range []string{
		``, `{`, `[]`, `null`, string(good) + ` {}`,
		mangle(func(m map[string]any) { m["apiVersion"] = "admission.k8s.io/v1beta1" }),
		mangle(func(m map[string]any) { m["kind"] = "TokenReview" }),
		mangle(func(m map[string]any) { delete(m, "request") }),
		mangle(func(m map[string]any) { m["Request"] = m["request"]; delete(m, "request") }), // field names are case-sensitive
		mangle(func(m map[string]any) { delete(m["request"].(map[string]any), "uid") }),
		mangle(func(m map[string]any) { delete(m["request"].(map[string]any), "operation") }),
		mangle(func(m map[string]any) { m["request"].(map[string]any)["object"] = []any{1} }),
		mangle(func(m map[string]any) { m["request"].(map[string]any)["object"] = nil }),
		mangle(func(m map[string]any) { m["request"].(map[string]any)["object"].(map[string]any)["kind"] = "Pod" }),
		strings.Replace(string(good), `"uid":"u"`, `"uid":"u","uid":"v"`, 1),
		strings.Replace(string(good), `"privileged":false`, `"privileged":false,"privileged":true`, 1),
		mangle(func(m map[string]any) { m["padding"] = strings.Repeat("a", 70<<10) }), // over the server's 64 KiB
	} {
		if st, _, body := e.admission(bad); st != 400 || !strings.Contains(string(body), `"invalid_argument"`) {
			t.Errorf("the body %.80q = %d %s, want 400", bad, st, body)
		}
	}
	// Objects of the right kind whose fields have the wrong types are read as Kubernetes would not write them,
	// without failing the server: an answer, never a 500.
	for _, odd := range []map[string]any{
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": 5, "spec": "x"},
		{"apiVersion": "apps/v1", "kind": "Deployment", "spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": "x", "volumes": 3}}}},
		{"apiVersion": "apps/v1", "kind": "Deployment", "spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{5, map[string]any{"image": 7, "securityContext": []any{}, "resources": map[string]any{"limits": "x"}, "volumeMounts": 1}}}}}},
	} {
		if st, _, body := e.admission(reviewOf("odd", "CREATE", odd, nil)); st != 200 && st != 400 {
			t.Errorf("an odd Deployment %v = %d %s, want an answer", odd, st, body)
		}
	}
	if !strings.Contains(string(good), `"privileged":false`) || !strings.Contains(string(good), `"uid":"u"`) {
		t.Fatalf("the duplicated fields above were not made: %s", good)
	}

	// A gate that warns: allowed, with the violations as warnings.
	warn := newEnvWith(t, containerization.Config{Host: noEngine, Policy: admissionPolicy(t, reg, "gates: {apply: warn}")})
	if st, resp, body := warn.admission(reviewOf("w", "CREATE", deploy(podSpec(app, true)), nil)); st != 200 || !resp.Allowed ||
		len(resp.Warnings) != 1 || !strings.HasPrefix(resp.Warnings[0], "policy (warn): runtime.no_privileged: container Deployment/shop/web/app") {
		t.Errorf("a privileged Deployment under a gate that warns = %d %s, want it allowed with a warning", st, body)
	}

	// Off, the route is not there.
	off := newEnvWith(t, containerization.Config{Host: noEngine, Policy: admissionPolicy(t, reg, "")}, func(c *server.Config) { c.Admission.Enabled = false })
	if st, _, body := off.admission(reviewOf("o", "CREATE", deploy(podSpec(app, true)), nil)); st != 404 {
		t.Errorf("the webhook when off = %d %s, want 404", st, body)
	}

	// A registry that takes the connection and never answers (a fault no real registry makes on demand): the
	// review ends at the server's deadline, denied with why.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	hang := &testenv.Registry{Host: ln.Addr().String()}
	slow := newEnvWith(t, containerization.Config{Host: noEngine, Policy: admissionPolicy(t, hang, "")},
		func(c *server.Config) { c.Admission.Timeout = time.Second })
	st, resp, body := slow.admission(reviewOf("s", "CREATE", deploy(podSpec(hang.Ref("shop/app:1"), false)), nil))
	if st != 200 || resp.Allowed || resp.Result.Code != 504 || !strings.Contains(resp.Result.Message, "the policy could not be checked within 1s") ||
		!strings.Contains(resp.Result.Message, hang.Ref("shop/app:1")) {
		t.Errorf("a review whose registry never answers = %d %s, want it denied at the deadline", st, body)
	}
}

// kubectl is the test control plane's kubectl (scripts/kube.sh builds it beside the control plane).
func kubectl(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("bash", "../scripts/kube.sh", "bin").Output()
	bin := filepath.Join(strings.TrimSpace(string(out)), "kubectl")
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		if testenv.Required() {
			t.Fatalf("kubectl (scripts/kube.sh bin): %v", err)
		}
		t.Skipf("no kubectl (scripts/kube.sh build): %v", err)
	}
	return bin
}

// The webhook on the test control plane, called by kube-apiserver over HTTPS: kubectl's violating Deployment is
// denied with the rule, a compliant one admitted (and the ReplicaSet and Pods its controllers make, which the
// webhook holds too, run); a Pod is held; an update that makes a Deployment privileged is denied, one that only
// labels it is not; a server-side dry run is held the same; with the server stopped, failurePolicy Fail denies.
func TestAdmissionWebhookOnCluster(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	bin := kubectl(t)
	ns := testenv.KubeNamespace(t, kc) // deleted last: cleanups run in reverse order
	reg, other := testenv.InProcess(t), testenv.InProcess(t)
	app := pushUser(t, reg, "shop/app:1", "1000")
	root := pushUser(t, other, "shop/root:1", "")

	// The server over HTTPS on loopback, with a certificate of the tests' CA for 127.0.0.1.
	caPEM, certPEM, keyPEM := testenv.ServerPKI(t)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, containerization.Config{Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock"), Policy: admissionPolicy(t, reg, "")})
	hs := httptest.NewUnstartedServer(e.srv.Handler())
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	hs.StartTLS()
	t.Cleanup(hs.Close)

	// The registration: this namespace only, named for it, failurePolicy Fail. Its deletion is the last cleanup
	// registered, so the first to run, whatever happens: a Fail webhook left behind would deny its namespace's
	// pods.
	wc, err := server.WebhookConfiguration(server.WebhookOptions{Name: "myrmex-test-" + ns, URL: hs.URL, Certificate: certPEM, CA: caPEM,
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": ns}, FailurePolicy: "Fail"})
	if err != nil {
		t.Fatal(err)
	}
	wc.Labels[testenv.Label] = ns
	hooks := kc.Typed().AdmissionregistrationV1().ValidatingWebhookConfigurations()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := hooks.Delete(ctx, wc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting the webhook configuration %s: %v", wc.Name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := hooks.Create(ctx, wc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("registering the webhook: %v", err)
	}

	run := func(stdin string, args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	deployment := func(name, image string, privileged bool) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - name: app
        image: %s
        securityContext: {privileged: %v}
`, name, image, privileged)
	}
	denied := `admission webhook "` + server.WebhookName + `" denied the request: refused by the policy at the apply gate; `

	// The API server takes a moment to load a new configuration: a server-side dry run of the violating
	// Deployment until the webhook denies it (a dry run is held the same, and changes nothing).
	var stderr string
	if !testenv.Eventually(30*time.Second, func() bool {
		_, stderr, _ = run(deployment("web", app, true), "apply", "--dry-run=server", "-f", "-")
		return strings.Contains(stderr, denied)
	}) {
		t.Fatalf("the server-side dry run of a privileged Deployment was not denied by the webhook: %s", stderr)
	}

	// A violating Deployment, applied with kubectl: denied with the rule, and nothing made.
	_, stderr, err = run(deployment("web", app, true), "apply", "-f", "-")
	if err == nil || !strings.Contains(stderr, denied+"runtime.no_privileged: container Deployment/"+ns+"/web/app: the container is privileged") {
		t.Fatalf("kubectl apply of a privileged Deployment = %v: %s, want it denied for runtime.no_privileged", err, stderr)
	}
	t.Logf("kubectl apply of a privileged Deployment: %s", strings.TrimSpace(stderr))
	if _, err := kc.Typed().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the denied Deployment is in the cluster: %v", err)
	}

	// A compliant one is admitted; its ReplicaSet and Pods, which the webhook holds too, are made and run.
	if _, stderr, err := run(deployment("web", app, false), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply of a compliant Deployment: %v: %s", err, stderr)
	}
	if _, stderr, err := run("", "rollout", "status", "deployment/web", "--timeout=90s"); err != nil {
		t.Fatalf("the compliant Deployment's rollout: %v: %s", err, stderr)
	}

	// A Pod: run as root, from a registry the policy does not allow.
	_, stderr, err = run("", "run", "rooted", "--image="+root, "--restart=Never")
	if err == nil || !strings.Contains(stderr, denied) || !strings.Contains(stderr, "images.registries: "+other.Host+"/shop/root:1@sha256:") ||
		!strings.Contains(stderr, "runtime.non_root: container Pod/"+ns+"/rooted/rooted: it would run as the image's user, root") {
		t.Errorf("kubectl run of a root Pod from another registry = %v: %s, want it denied for images.registries and runtime.non_root", err, stderr)
	}

	// Updates: making it privileged is denied; labelling it, which changes no pod, is not.
	if _, stderr, err := run(deployment("web", app, true), "apply", "-f", "-"); err == nil || !strings.Contains(stderr, denied+"runtime.no_privileged") {
		t.Errorf("kubectl apply making the Deployment privileged = %v: %s, want it denied", err, stderr)
	}
	if _, stderr, err := run("", "label", "deployment/web", "team=ants"); err != nil {
		t.Errorf("kubectl label of the Deployment: %v: %s, want it allowed", err, stderr)
	}

	// The server stops: failurePolicy Fail denies, with the API server's own message.
	hs.Close()
	_, stderr, err = run(deployment("web2", app, false), "apply", "-f", "-")
	if err == nil || !strings.Contains(stderr, `failed calling webhook "`+server.WebhookName+`"`) {
		t.Errorf("kubectl apply with the server down = %v: %s, want it denied by failurePolicy Fail", err, stderr)
	}
	t.Logf("with the server down, kubectl says: %s", strings.TrimSpace(stderr))
}

// myrmex serve --admission as a real process over HTTPS (the tests' CA, a certificate for 127.0.0.1), with its
// --policy: the webhook answers without a token and denies a privileged Pod with the rule; the other routes still
// want one.
func TestServeAdmissionProcess(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "myrmex")
	build := exec.Command("go", "build", "-o", bin, "./cmd/myrmex")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	reg := testenv.InProcess(t)
	app := pushUser(t, reg, "shop/app:1", "1000")
	caPEM, certPEM, keyPEM := testenv.ServerPKI(t)
	files := map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM,
		"policy.yaml": fmt.Appendf(nil, "version: 1\nimages: {registries: [%q]}\nruntime: {no_privileged: true}\n", reg.Host)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "--policy", filepath.Join(dir, "policy.yaml"), "serve", "--admission", "--listen", "127.0.0.1:0",
		"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"), "--state", filepath.Join(dir, "state.db"))
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	url := ""
	sc := bufio.NewScanner(stderr)
	for url == "" && sc.Scan() {
		if m := regexp.MustCompile(`serving the API on (https://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatal("the server did not say where it listens over HTTPS")
	}
	go io.Copy(io.Discard, stderr)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	post := func(path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		resp, err := client.Post(url+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	st, body := post("/v1/admission", reviewOf("p", "CREATE", workload("v1", "Pod", podSpec(app, true)), nil))
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); st != 200 || err != nil || out.Response == nil || out.Response.UID != "p" || out.Response.Allowed ||
		!strings.Contains(out.Response.Result.Message, "runtime.no_privileged: container Pod/shop/web/app") {
		t.Errorf("a privileged Pod's review = %d %s, want it denied", st, body)
	}
	if st, body := post("/v1/scans", map[string]string{"image_name": app}); st != 401 {
		t.Errorf("a scan without a token = %d %s, want 401", st, body)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
}
