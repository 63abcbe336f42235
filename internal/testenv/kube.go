package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization/kube"
)

// DefaultKubeconfig is where scripts/kube.sh writes the test control plane's kubeconfig.
const DefaultKubeconfig = "/run/myrmex-test/kube/kubeconfig"

// Kube is the test control plane (scripts/kube.sh up: kube-apiserver, etcd, controller-manager, scheduler and
// KWOK nodes): its kubeconfig at MYRMEX_TEST_KUBECONFIG or DefaultKubeconfig, and a client. It skips, or fails
// under make test and CI, when no control plane answers. It never uses the user's own KUBECONFIG.
func Kube(t testing.TB) (string, *kube.Client) {
	t.Helper()
	path := os.Getenv("MYRMEX_TEST_KUBECONFIG")
	if path == "" {
		path = DefaultKubeconfig
	}
	c, err := kube.New(kube.Config{Kubeconfig: path})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err = c.Ping(ctx)
		cancel()
	}
	if err != nil {
		if Required() {
			t.Fatalf("the tests need the test Kubernetes control plane (scripts/kube.sh up): %v", err)
		}
		t.Skipf("no test Kubernetes control plane (run `make test`, or scripts/kube.sh up): %v", err)
	}
	return path, c
}

// KubeNamespace makes a namespace of its own for the test, deleted with everything in it when the test ends.
func KubeNamespace(t testing.TB, c *kube.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "t-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Typed().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{Label: name}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	// The default service account appears a moment after the namespace; pods cannot be created before.
	if !Eventually(20*time.Second, func() bool {
		_, err := c.Typed().CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}) {
		t.Fatalf("namespace %s: no default service account after 20s", name)
	}
	t.Cleanup(func() { DeleteNamespace(t, c, name) })
	return name
}

// DeleteNamespace deletes a namespace and waits (up to a minute) until it is gone.
func DeleteNamespace(t testing.TB, c *kube.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.Typed().CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Errorf("deleting namespace %s: %v", name, err)
		return
	}
	if !Eventually(time.Minute, func() bool {
		_, err := c.Typed().CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}) {
		t.Logf("namespace %s still terminating after a minute", name)
	}
}
