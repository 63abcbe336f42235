package containerization_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/policy"
)

// debianImage is a small image a scan reads as Debian 12 with myrmex-demo at version installed; user is its
// configuration's USER.
func pushDebianLike(t *testing.T, reg *testenv.Registry, ref, version, user string) v1.Hash {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n"},
		{"var/lib/dpkg/status", "Package: myrmex-demo\nStatus: install ok installed\nVersion: " + version + "\nArchitecture: all\nMaintainer: tests\nDescription: a test package\n\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(f.body))
	}
	_ = tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.Config.User = user
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(reg.Ref(ref), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

// The apply gate: every container of the manifests (init containers included) is resolved to its digest and
// held to the policy before anything reaches the cluster; a refusal applies nothing; --pin-digests applies what
// was checked, so a tag moved afterwards changes nothing; pod specs are held to the runtime rules.
func TestPolicyApplyGate(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	reg := testenv.InProcess(t)
	vulnerable := pushDebianLike(t, reg, "shop/worker:1", "1.0-1", "")
	fixed := pushDebianLike(t, reg, "shop/web:1", "1.0-2", "1000")
	db := upgradeDB(t)
	c, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig,
		Policy:     mustPolicy(t, highIsRefused+"runtime:\n  no_privileged: true\n  non_root: true\n  require_limits: [memory]\n"),
		PolicyScan: containerization.ScanOptions{DBDir: db, Cache: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	manifest := func(initImage, image, extra string) string {
		dir := t.TempDir()
		doc := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
      - {name: init, image: %q, resources: {limits: {memory: 32Mi}}}
      containers:
      - name: web
        image: %q
        resources: {limits: {memory: 64Mi}}%s
`, reg.Ref(initImage), reg.Ref(image), extra)
		if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	opts := containerization.KubernetesOptions{Kubeconfig: kubeconfig, Registry: containerization.RegistryOptions{Transport: reg.Transport()}}
	deployed := func() error {
		_, err := kc.Typed().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err
	}

	// The vulnerable image hides in an init container: refused, nothing applied.
	d, err := c.OrchestrateKubernetes(ctx, "web", manifest("shop/worker:1", "shop/web:1", ""), ns, opts)
	if !errors.Is(err, containerization.ErrPolicyViolation) || d == nil || d.PolicyVerdict == nil || d.Status != "refused" {
		t.Fatalf("apply with a vulnerable init container = %+v, %v", d, err)
	}
	for _, want := range []string{"at the apply gate", "images.vulnerabilities", "shop/worker:1@" + vulnerable.String(), "runtime.non_root", "/web/init"} {
		if !strings.Contains(err.Error()+fmt.Sprint(d.PolicyVerdict.Violations), want) {
			t.Errorf("the refusal does not say %q: %v %+v", want, err, d.PolicyVerdict.Violations)
		}
	}
	if err := deployed(); err == nil {
		t.Fatal("the refused deployment was applied")
	}

	// A privileged container is refused for that alone.
	_, err = c.OrchestrateKubernetes(ctx, "web", manifest("shop/web:1", "shop/web:1", "\n        securityContext: {privileged: true}"), ns, opts)
	if v := containerization.PolicyVerdict(err); v == nil || len(v.Violations) != 1 || v.Violations[0].Rule != "runtime.no_privileged" {
		t.Errorf("privileged: %v", err)
	}

	// The clean image, pinned: the applied template names the digest checked.
	opts.PinDigests = true
	d, err = c.OrchestrateKubernetes(ctx, "web", manifest("shop/web:1", "shop/web:1", ""), ns, opts)
	if err != nil || !d.PolicyVerdict.Allowed {
		t.Fatalf("apply of the clean image = %+v, %v", d, err)
	}
	live, err := kc.Typed().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := reg.Ref("shop/web@" + fixed.String())
	spec := live.Spec.Template.Spec
	if spec.Containers[0].Image != want || spec.InitContainers[0].Image != want {
		t.Errorf("applied images %q and %q, want %q", spec.Containers[0].Image, spec.InitContainers[0].Image, want)
	}
	// The tag moves to the vulnerable image: what runs is still what was checked; applying the tag again is refused.
	pushDebianLike(t, reg, "shop/web:1", "1.0-1", "1000")
	live, _ = kc.Typed().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if live.Spec.Template.Spec.Containers[0].Image != want {
		t.Errorf("after the tag moved the deployment runs %q", live.Spec.Template.Spec.Containers[0].Image)
	}
	if _, err := c.OrchestrateKubernetes(ctx, "web", manifest("shop/web:1", "shop/web:1", ""), ns, opts); !errors.Is(err, containerization.ErrPolicyViolation) {
		t.Errorf("apply after the tag moved = %v, want ErrPolicyViolation", err)
	}

	// A scan attached to the image's digest is the gate's evidence: no second scan. It names its database; a
	// scan older than max_scan_age is not used.
	api := pushDebianLike(t, reg, "shop/api:1", "1.0-2", "1000")
	sr, err := c.ScanContainerSecurity(ctx, "docker://http://"+reg.Ref("shop/api:1"), "full", containerization.ScanOptions{DBDir: db, Cache: t.TempDir(),
		Attach: true, Registry: containerization.RegistryOptions{Transport: reg.Transport()}})
	if err != nil || sr.Evidence == nil || sr.SBOMEvidence == nil || sr.ImageDigest != api.String() {
		t.Fatalf("scan --attach = %+v, %v", sr, err)
	}
	// The SBOM beside it lists the package.
	apiRef, _ := name.ParseReference(reg.Ref("shop/api:1"), name.Insecure)
	sbom, _, err := policy.Fetch(ctx, apiRef.Context(), sr.SBOMEvidence.Digest, remote.WithTransport(reg.Transport()))
	if err != nil || !strings.Contains(string(sbom), `"name":"myrmex-demo","version":"1.0-2"`) || !strings.Contains(string(sbom), `"bomFormat":"CycloneDX"`) {
		t.Errorf("the attached SBOM = %.300s, %v", sbom, err)
	}
	listed, err := c.AttachedScans(ctx, reg.Ref("shop/api:1"), containerization.RegistryOptions{Transport: reg.Transport()})
	if err != nil || len(listed) != 1 || listed[0].Digest != sr.Evidence.Digest || listed[0].Annotations[policy.AnnotationSummary] != "critical=0 high=0 medium=0 low=0 unknown=0" {
		t.Errorf("AttachedScans = %+v, %v", listed, err)
	}
	d, err = c.OrchestrateKubernetes(ctx, "web", manifest("shop/api:1", "shop/api:1", ""), ns, opts)
	if err != nil || len(d.PolicyVerdict.Images) != 1 || d.PolicyVerdict.Images[0].Scan != "attached "+sr.Evidence.Digest {
		t.Errorf("apply with attached evidence = %+v, %v", d.PolicyVerdict, err)
	}
	fresh, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig,
		Policy:     mustPolicy(t, highIsRefused+"  max_scan_age: 2s\n"),
		PolicyScan: containerization.ScanOptions{DBDir: db, Cache: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	time.Sleep(2500 * time.Millisecond) // the attached scan is now older than the policy accepts
	d, err = fresh.OrchestrateKubernetes(ctx, "web", manifest("shop/api:1", "shop/api:1", ""), ns, opts)
	if err != nil || d.PolicyVerdict.Images[0].Scan != "scanned" {
		t.Errorf("apply with stale evidence = %+v, %v", d.PolicyVerdict, err)
	}
}
