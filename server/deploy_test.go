package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/policy"
)

// deployDir is the repository's deploy/ directory.
const deployDir = "../deploy"

// The image of myrmex serve: deploy/Dockerfile built by Myrmex (BuildContainers, the engine's BuildKit) from a
// fresh context made by scripts/image.sh, FROM scratch; run hardened (read-only root, no capabilities) under
// deploy/policy.yaml's runtime rules (its USER is not root) with a self-signed certificate mounted, its port published on loopback. It answers its
// health check over HTTPS, a token made with myrmex serve token create inside the container opens GET /v1/jobs,
// it runs as 65532, its HEALTHCHECK turns healthy, and it refuses a non-loopback address without TLS.
func TestServeImage(t *testing.T) {
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	// The first build of the static binary compiles the module afresh (CGO_ENABLED=0, -trimpath); later ones are
	// cached.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	const version = "v0.0.0-deploytest"
	dir := filepath.Join(t.TempDir(), "context")
	sh := exec.CommandContext(ctx, "scripts/image.sh", "context", dir)
	sh.Dir = ".."
	sh.Env = append(os.Environ(), "VERSION="+version)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("scripts/image.sh context: %v\n%s", err, out)
	}
	// The container is held to deploy/policy.yaml's runtime rules but for host paths: the test mounts its TLS
	// directory from the host.
	pol, err := policy.Parse([]byte("version: 1\nimages: {tags: {forbid_latest: true}}\n"+
		"runtime: {no_privileged: true, non_root: true, require_limits: [cpu, memory], no_host_network: true}\n"), "serve-image.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := containerization.New(ctx, containerization.Config{Engine: eng, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	image := "myrmex.local/myrmex-serve:" + run.ID
	run.AfterSweep(func() {
		_, _ = eng.API().ImageRemove(context.Background(), image, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	res, err := c.BuildContainers(ctx, image, containerization.BuildOptions{
		Options: build.Options{ContextPath: dir, BuildArgs: map[string]string{"VERSION": version, "REVISION": "deploytest"}},
		Scan:    "off",
	})
	if err != nil {
		t.Fatalf("BuildContainers(deploy/Dockerfile) = %+v, %v", res, err)
	}
	if len(res.Lint) != 0 {
		t.Errorf("deploy/Dockerfile has lint findings: %+v", res.Lint)
	}
	ins, err := eng.API().ImageInspect(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ins.Config
	if cfg.User != "65532:65532" {
		t.Errorf("the image's USER = %q, want 65532:65532", cfg.User)
	}
	if _, ok := cfg.ExposedPorts["8443/tcp"]; !ok {
		t.Errorf("the image exposes %v, want 8443/tcp", cfg.ExposedPorts)
	}
	if cfg.Healthcheck == nil || !slices.Equal(cfg.Healthcheck.Test[:4], []string{"CMD", "/usr/local/bin/myrmex", "serve", "health"}) {
		t.Errorf("the image's HEALTHCHECK = %+v, want myrmex serve health", cfg.Healthcheck)
	}
	for k, want := range map[string]string{"org.opencontainers.image.title": "myrmex", "org.opencontainers.image.version": version,
		"org.opencontainers.image.revision": "deploytest", "org.opencontainers.image.source": "https://github.com/codomyrmex/containerization"} {
		if got := cfg.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	// The TLS pair, readable by the server's user (the directory is mounted as it is).
	certPEM, keyPEM := selfSigned(t)
	otherPEM, _ := selfSigned(t)
	tlsDir := t.TempDir()
	for f, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "other.crt": otherPEM} {
		if err := os.WriteFile(filepath.Join(tlsDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(tlsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stateVolume := run.Name("state")
	run.AfterSweep(func() {
		_, _ = eng.API().VolumeRemove(context.Background(), stateVolume, client.VolumeRemoveOptions{Force: true})
	})

	name := run.Name("serve")
	cc := run.Config(image) // the image's own command: serve on 0.0.0.0:8443 with TLS
	cc.Ports = containerization.PortBindings{"8443/tcp": "127.0.0.1:"}
	cc.Volumes = map[string]containerization.VolumeMount{tlsDir: {Bind: "/etc/myrmex/tls", Mode: "ro"}, stateVolume: {Bind: "/var/lib/myrmex"}}
	cc.Hardened = true
	cc.Resources = containerization.Resources{CPULimit: "1", MemoryLimit: "512m"}
	if r, err := c.ManageContainers(ctx, containerization.OpCreate, name, &cc, containerization.ManageOptions{}); err != nil {
		t.Fatalf("create = %+v, %v", r, err)
	}
	if r, err := c.ManageContainers(ctx, containerization.OpStart, name, nil, containerization.ManageOptions{}); err != nil {
		t.Fatalf("start = %+v, %v", r, err)
	}
	details := func() *containerization.ContainerDetails {
		r, err := c.ManageContainers(ctx, containerization.OpInspect, name, nil, containerization.ManageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Details
	}
	logs := func() string {
		r, _ := c.ManageContainers(ctx, containerization.OpLogs, name, nil, containerization.ManageOptions{})
		return r.Logs
	}
	d := details()
	var hostPort string
	for _, p := range d.Ports {
		if h, ok := strings.CutSuffix(p, "->8443/tcp"); ok && strings.HasPrefix(h, "127.0.0.1:") {
			hostPort = h
		}
	}
	if hostPort == "" {
		t.Fatalf("no port published for 8443: %v", d.Ports)
	}
	if !d.ReadOnlyRootfs || !slices.Contains(d.CapDrop, "ALL") {
		t.Errorf("the container is not hardened: read-only %t, cap_drop %v", d.ReadOnlyRootfs, d.CapDrop)
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(hc.CloseIdleConnections)
	get := func(path, token string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+hostPort+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), nil
	}
	var status int
	var body string
	if !testenv.Eventually(time.Minute, func() bool {
		status, body, err = get("/v1/health", "")
		return err == nil
	}) {
		t.Fatalf("GET /v1/health over HTTPS: %v; the container's log:\n%s", err, logs())
	}
	if status != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("GET /v1/health = %d %s", status, body)
	}
	if status, body, err := get("/v1/jobs", ""); err != nil || status != 401 {
		t.Errorf("GET /v1/jobs without a token = %d %s, %v; want 401", status, body, err)
	}

	// A token made inside the container, in the state the server uses, opens the API.
	out, _, code := execIn(t, ctx, eng, name, "myrmex", "serve", "token", "create", "deploytest", "--scope", "read", "--expires", "1h",
		"--state", "/var/lib/myrmex/server.db")
	token := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(token, "myx_") {
		t.Fatalf("myrmex serve token create in the container = %q, exit %d", out, code)
	}
	if status, body, err := get("/v1/jobs", token); err != nil || status != 200 || !strings.Contains(body, `"jobs"`) {
		t.Errorf("GET /v1/jobs with the token = %d %s, %v", status, body, err)
	}
	if status, _, err := get("/v1/jobs", token+"x"); err != nil || status != 401 {
		t.Errorf("GET /v1/jobs with a wrong token = %d, %v; want 401", status, err)
	}

	// The server runs as the image's user, not root.
	if uid := procUID(t, details().State.Pid); uid != "65532" {
		t.Errorf("the server runs as uid %q, want 65532", uid)
	}
	// The HEALTHCHECK's command passes with the server's certificate, fails with another; the engine sees it healthy.
	probe := []string{"myrmex", "serve", "health", "--url", "https://127.0.0.1:8443/v1/health", "--tls-cert"}
	if out, errOut, code := execIn(t, ctx, eng, name, append(probe, "/etc/myrmex/tls/tls.crt")...); code != 0 || !strings.HasPrefix(out, "ok\t") {
		t.Errorf("myrmex serve health in the container = %q %q, exit %d", out, errOut, code)
	}
	if _, errOut, code := execIn(t, ctx, eng, name, append(probe, "/etc/myrmex/tls/other.crt")...); code != 5 {
		t.Errorf("myrmex serve health pinning another certificate exited %d (%s), want 5", code, errOut)
	}
	if !testenv.Eventually(90*time.Second, func() bool { return details().State.Health == "healthy" }) {
		t.Errorf("the container's health is %q after 90s, want healthy", details().State.Health)
	}

	// The rule holds in the image: beyond loopback without TLS is refused (exit 2).
	bare := run.Name("bare")
	bc := run.Config(image, "serve", "--listen", "0.0.0.0:8443")
	bc.Hardened = true
	bc.Resources = cc.Resources
	if _, err := c.ManageContainers(ctx, containerization.OpCreate, bare, &bc, containerization.ManageOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ManageContainers(ctx, containerization.OpStart, bare, nil, containerization.ManageOptions{}); err != nil {
		t.Fatal(err)
	}
	var st engine.ContainerState
	testenv.Eventually(30*time.Second, func() bool {
		r, err := c.ManageContainers(ctx, containerization.OpInspect, bare, nil, containerization.ManageOptions{})
		if err == nil {
			st = r.Details.State
		}
		return st.Status == "exited"
	})
	if st.Status != "exited" || st.ExitCode != 2 {
		t.Errorf("serve --listen 0.0.0.0:8443 without TLS in the image: %s, exit %d; want exited, 2", st.Status, st.ExitCode)
	}
}

// execIn runs cmd in a running container and returns its stdout, stderr and exit code.
func execIn(t *testing.T, ctx context.Context, eng *engine.Client, container string, cmd ...string) (string, string, int) {
	t.Helper()
	api := eng.API()
	x, err := api.ExecCreate(ctx, container, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	att, err := api.ExecAttach(ctx, x.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, io.LimitReader(att.Reader, 1<<20)); err != nil {
		t.Fatalf("exec %v: reading its output: %v", cmd, err)
	}
	var code int
	if !testenv.Eventually(30*time.Second, func() bool {
		ins, err := api.ExecInspect(ctx, x.ID, client.ExecInspectOptions{})
		code = ins.ExitCode
		return err == nil && !ins.Running
	}) {
		t.Fatalf("exec %v did not end", cmd)
	}
	return stdout.String(), stderr.String(), code
}

// procUID is the real user ID of a process, from /proc (the engine's containers share this machine's PIDs).
func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	t.Fatalf("/proc/%d/status has no Uid line", pid)
	return ""
}

// deploy/kubernetes applied by Myrmex (OrchestrateKubernetes, the images overridden) to a namespace of the test
// that carries namespace.yaml's Pod Security labels, under deploy/policy.yaml: the policy admits every container,
// the API server's restricted profile admits every pod, the Deployment's two replicas and the StatefulSet become
// ready, and every field the manifests write is in the live objects as written.
func TestDeployManifests(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	manifests := filepath.Join(deployDir, "kubernetes")

	// namespace.yaml's labels on the test's namespace: Pod Security Admission enforces the restricted profile.
	nsObjs, err := kube.ReadManifests(filepath.Join(manifests, "namespace.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nsObjs) != 1 || nsObjs[0].GetKind() != "Namespace" || nsObjs[0].GetName() != "myrmex" ||
		nsObjs[0].GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace.yaml = %+v, want the Namespace myrmex enforcing the restricted profile", nsObjs)
	}
	live, err := kc.Typed().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range nsObjs[0].GetLabels() {
		live.Labels[k] = v
	}
	if _, err := kc.Typed().CoreV1().Namespaces().Update(ctx, live, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Stand-in images, in a registry: the policy resolves every image the manifests run; KWOK runs none.
	reg := testenv.InProcess(t)
	images := map[string]string{"myrmex": pushStandIn(t, reg, "codomyrmex/myrmex:test"), "postgres": pushStandIn(t, reg, "library/postgres:17")}

	// The StatefulSet's claim binds to a volume made for it: the test cluster has no storage provisioner.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-postgres-data", Labels: map[string]string{testenv.Label: ns}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/nonexistent/" + ns}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "data-myrmex-postgres-0"},
		},
	}
	if _, err := kc.Typed().CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kc.Typed().CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})

	pol, err := policy.Load(filepath.Join(deployDir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, app := range []struct {
		name, dir, kind, container string
		replicas                   int
	}{
		{"myrmex-postgres", "postgres", "StatefulSet", "postgres", 1},
		{"myrmex", "myrmex", "Deployment", "myrmex", 2},
	} {
		dir := filepath.Join(manifests, app.dir)
		d, err := c.OrchestrateKubernetes(ctx, app.name, dir, ns, containerization.KubernetesOptions{
			Kubeconfig: kubeconfig, Images: map[string]string{app.container: images[app.container]}, Wait: true, Timeout: 4 * time.Minute,
			Registry: containerization.RegistryOptions{Transport: reg.Transport()},
		})
		if err != nil {
			t.Fatalf("OrchestrateKubernetes(%s) = %+v, %v", dir, d, err)
		}
		if v := d.PolicyVerdict; v == nil || !v.Allowed || len(v.Violations) != 0 {
			t.Errorf("%s: the policy's verdict = %+v, want allowed", app.name, v)
		}
		if d.Kind != app.kind || d.Replicas != app.replicas || d.ReadyReplicas != app.replicas {
			t.Errorf("%s: %s with %d of %d replicas ready, want a %s with %d", app.name, d.Kind, d.ReadyReplicas, d.Replicas, app.kind, app.replicas)
		}
		objs, err := kube.ReadManifests(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resources[gvk.Kind]}
			if gvr.Resource == "" {
				t.Fatalf("%s: a kind the test does not know: %s", o.Source, gvk.Kind)
			}
			got, err := kc.Dynamic().Resource(gvr).Namespace(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s: %v", o.Ref(), err)
				continue
			}
			want := o.Object
			if gvk.Kind == "Secret" { // stringData is written, data is read
				want = secretAsRead(want)
			}
			for _, diff := range written(want, got.Object, "", images) {
				t.Errorf("%s (%s): %s", o.Ref(), o.Source, diff)
			}
		}
	}
}

// resources are the kinds of deploy/kubernetes and their resources.
var resources = map[string]string{"Deployment": "deployments", "StatefulSet": "statefulsets", "Service": "services",
	"Secret": "secrets", "ServiceAccount": "serviceaccounts", "PodDisruptionBudget": "poddisruptionbudgets",
	"NetworkPolicy": "networkpolicies"}

// written lists where live differs from what want (a manifest) writes: every field of want must be in live with
// the same value, lists with as many items; what the API server adds is not compared. A container's image is the
// override for its name.
func written(want, live any, path string, images map[string]string) []string {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: live %v, want an object", path, live)}
		}
		var diffs []string
		for k, wv := range w {
			if k == "image" && strings.HasSuffix(path, "]") {
				if name, _ := w["name"].(string); images[name] != "" {
					wv = images[name]
				}
			}
			lv, ok := l[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			diffs = append(diffs, written(wv, lv, path+"."+k, images)...)
		}
		return diffs
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(w) {
			return []string{fmt.Sprintf("%s: live %v, want %v", path, live, want)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, written(w[i], l[i], fmt.Sprintf("%s[%d]", path, i), images)...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, live) && fmt.Sprint(want) != fmt.Sprint(live) {
			return []string{fmt.Sprintf("%s = %v, want %v", path, live, want)}
		}
		return nil
	}
}

// secretAsRead is a Secret manifest as the API server returns it: stringData merged into data, base64-encoded.
func secretAsRead(obj map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		if k != "stringData" {
			out[k] = v
		}
	}
	if sd, ok := obj["stringData"].(map[string]any); ok {
		data := map[string]any{}
		if d, ok := obj["data"].(map[string]any); ok {
			for k, v := range d {
				data[k] = v
			}
		}
		for k, v := range sd {
			data[k] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v)))
		}
		out["data"] = data
	}
	return out
}

// pushStandIn pushes a small image to reg as ref and returns its reference: what the apply gate resolves.
func pushStandIn(t *testing.T, reg *testenv.Registry, ref string) string {
	t.Helper()
	layer, err := random.Layer(256, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(reg.Ref(ref), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}
	return reg.Ref(ref)
}
