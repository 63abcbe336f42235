package containerization_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/signature"
)

// signingKeys writes a key pair (no password) and a stranger's public key to a directory, and returns a policy
// requiring signatures by the pair's key.
func signingKeys(t *testing.T) (key, stranger, doc string) {
	t.Helper()
	dir := t.TempDir()
	priv, pub, err := signature.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := signature.GenerateKeyPair(nil)
	for f, data := range map[string][]byte{"release.key": priv, "release.pub": pub, "other.pub": other} {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "release.key"), filepath.Join(dir, "other.pub"),
		fmt.Sprintf("version: 1\nimages:\n  signatures:\n    keys: [%s]\n", filepath.Join(dir, "release.pub"))
}

// images.signatures at the create and start gates, on the real engine: an image pulled from a registry runs
// once its digest there is signed by the policy's key; unsigned, signed by another key, or only in the engine
// (no digest in a registry), it is refused, naming the rule, the image by digest and why.
func TestPolicySignaturesCreateGate(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := testenv.InProcess(t)
	key, stranger, doc := signingKeys(t)
	c, err := containerization.New(ctx, containerization.Config{Engine: eng, Policy: mustPolicy(t, doc)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain, _ := containerization.New(ctx, containerization.Config{Engine: eng})
	defer plain.Close()
	ro := containerization.RegistryOptions{Engine: eng, Transport: reg.Transport()}
	run := testenv.NewRun(t, eng)
	opts := containerization.ManageOptions{Engine: eng}

	// Two images in the registry, pulled into the engine (a pull by Myrmex loads them without a repository
	// digest: the gate finds their digest by the configuration the registry has).
	var images []string
	for _, repo := range []string{"signed", "unsigned"} {
		push := ro
		push.Destination = reg.Ref(run.ID + "/" + repo + ":1")
		if _, err := plain.ManageContainerRegistry(ctx, containerization.RegistryPush, testimages.Busybox, reg.URL(), push); err != nil {
			t.Fatalf("push = %v", err)
		}
		img := reg.Host + "/" + run.ID + "/" + repo + ":1"
		if _, err := plain.ManageContainerRegistry(ctx, containerization.RegistryPull, img, "", ro); err != nil {
			t.Fatalf("pull = %v", err)
		}
		t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), img, imageRemoveForce()) })
		images = append(images, img)
	}
	signedImg, unsignedImg := images[0], images[1]
	s, err := plain.SignImage(ctx, signedImg, containerization.SignOptions{Key: key, Registry: ro})
	if err != nil {
		t.Fatalf("SignImage = %v", err)
	}
	digest := s.Image[strings.Index(s.Image, "@")+1:]

	for _, tc := range []struct{ name, image, want string }{
		{"unsigned", unsignedImg, "not signed: no signature is stored"},
		{"only in the engine", testimages.Busybox, "only in the engine"},
	} {
		cfg := run.Config(tc.image)
		_, err := c.ManageContainers(ctx, containerization.OpCreate, run.Name(strings.ReplaceAll(tc.name, " ", "-")), &cfg, opts)
		if !errors.Is(err, containerization.ErrPolicyViolation) || !strings.Contains(err.Error(), "images.signatures") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create of the %s image = %v, want images.signatures saying %q", tc.name, err, tc.want)
		}
	}

	// Signed: created and started, the verdict naming the digest verified.
	name := run.Name("signed")
	cfg := run.Config(signedImg, "sleep", "30")
	res, err := c.ManageContainers(ctx, containerization.OpCreate, name, &cfg, opts)
	if err != nil || res.PolicyVerdict == nil || !res.PolicyVerdict.Allowed || res.PolicyVerdict.Images[0].Digest != digest {
		t.Fatalf("create of the signed image = %+v, %v; want allowed, digest %s", res, err, digest)
	}
	if _, err := c.ManageContainers(ctx, containerization.OpStart, name, nil, opts); err != nil {
		t.Fatalf("start of the signed image = %v", err)
	}

	// The same image under a policy trusting another key only: refused at start, by the image the container has.
	strangers, _ := containerization.New(ctx, containerization.Config{Engine: eng, Policy: mustPolicy(t,
		fmt.Sprintf("version: 1\nimages:\n  signatures:\n    keys: [%s]\n", stranger))})
	defer strangers.Close()
	_, err = strangers.ManageContainers(ctx, containerization.OpStart, name, nil, opts)
	if !errors.Is(err, containerization.ErrPolicyViolation) || !strings.Contains(err.Error(), "@"+digest) || !strings.Contains(err.Error(), "made by none of the keys") {
		t.Errorf("start under another key = %v, want refused naming the digest and why", err)
	}
}

// images.signatures at the apply gate and at a copy, on a real control plane and registry: an unsigned image is
// refused before anything reaches the cluster or the destination; the signed one goes through.
func TestPolicySignaturesApplyAndCopy(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := testenv.InProcess(t)
	signedDigest := pushDebianLike(t, reg, "shop/signed:1", "1.0-2", "1000")
	unsignedDigest := pushDebianLike(t, reg, "shop/unsigned:1", "1.0-3", "1000")
	key, _, doc := signingKeys(t)
	c, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig, Policy: mustPolicy(t, doc)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ro := containerization.RegistryOptions{Transport: reg.Transport()}
	if _, err := c.SignImage(ctx, "http://"+reg.Ref("shop/signed:1"), containerization.SignOptions{Key: key, Registry: ro}); err != nil {
		t.Fatalf("SignImage = %v", err)
	}
	manifest := func(image string) string {
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
      containers:
      - {name: web, image: %q}
`, reg.Ref(image))
		if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	opts := containerization.KubernetesOptions{Kubeconfig: kubeconfig, Registry: ro}
	d, err := c.OrchestrateKubernetes(ctx, "web", manifest("shop/unsigned:1"), ns, opts)
	if !errors.Is(err, containerization.ErrPolicyViolation) || d == nil || d.Status != "refused" ||
		!strings.Contains(err.Error(), "images.signatures: "+reg.Ref("shop/unsigned:1@"+unsignedDigest.String())+": not signed") {
		t.Fatalf("apply of the unsigned image = %+v, %v; want refused naming the rule and the digest", d, err)
	}
	d, err = c.OrchestrateKubernetes(ctx, "web", manifest("shop/signed:1"), ns, opts)
	if err != nil || !d.PolicyVerdict.Allowed || d.PolicyVerdict.Images[0].Digest != signedDigest.String() {
		t.Fatalf("apply of the signed image = %+v, %v", d, err)
	}

	// copy: the source is verified where it is.
	mirror := testenv.InProcess(t)
	cp := ro
	cp.Destination = "http://" + mirror.Ref("mirror/unsigned:1")
	if _, err := c.ManageContainerRegistry(ctx, containerization.RegistryCopy, "http://"+reg.Ref("shop/unsigned:1"), "", cp); !errors.Is(err, containerization.ErrPolicyViolation) {
		t.Errorf("copy of the unsigned image = %v, want ErrPolicyViolation", err)
	}
	cp.Destination = "http://" + mirror.Ref("mirror/signed:1")
	if _, err := c.ManageContainerRegistry(ctx, containerization.RegistryCopy, "http://"+reg.Ref("shop/signed:1"), "", cp); err != nil {
		t.Errorf("copy of the signed image = %v", err)
	}
	// Its signature stayed behind: the copy is unsigned where it went, until a copy takes the signatures along.
	pub := strings.TrimSuffix(key, ".key") + ".pub"
	mro := containerization.RegistryOptions{Transport: mirror.Transport()}
	vo := containerization.VerifyOptions{Keys: []string{pub}, Registry: mro}
	if _, err := c.VerifyImage(ctx, cp.Destination, vo); !errors.Is(err, containerization.ErrPolicyViolation) {
		t.Errorf("VerifyImage of the copy without its signatures = %v, want ErrPolicyViolation", err)
	}
	cp.CopySignatures = true
	res, err := c.ManageContainerRegistry(ctx, containerization.RegistryCopy, "http://"+reg.Ref("shop/signed:1"), "", cp)
	if err != nil || res.SignaturesCopied != 1 {
		t.Fatalf("copy --signatures = %+v, %v; want 1 signature copied", res, err)
	}
	if v, err := c.VerifyImage(ctx, cp.Destination, vo); err != nil || len(v.Verified) != 1 {
		t.Errorf("VerifyImage of the copy with its signatures = %+v, %v", v, err)
	}
}
