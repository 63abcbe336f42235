package containerization_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry/credstore"
)

// Environment overrides written secret:NAME become a Secret applied with the manifests and references to its keys:
// the pod spec, the result and the events never hold the value; a secret not in the store, or no store, refuses
// the apply before anything reaches the cluster.
func TestKubernetesSecretsFromTheStore(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const canary = "canary-kube-s3cret-7d1f"
	store := tempStore(t)
	if err := store.PutSecret("db-password", canary); err != nil {
		t.Fatal(err)
	}
	c, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig, Secrets: store})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var outputs []string
	opts := containerization.KubernetesOptions{
		Environment: map[string]string{"DB_PASSWORD": "secret:db-password", "MODE": "test"},
		Progress: func(e containerization.Event) {
			b, _ := json.Marshal(e)
			outputs = append(outputs, string(b))
		},
	}

	// Refused before anything is applied: a secret not in the store, and a client without a store.
	missing := opts
	missing.Environment = map[string]string{"X": "secret:nosuch"}
	if _, err := c.OrchestrateKubernetes(ctx, "myrmex-demo-web", "examples/k8s", ns, missing); !errors.Is(err, containerization.ErrNotFound) {
		t.Errorf("a secret not in the store = %v, want ErrNotFound", err)
	}
	bare, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if _, err := bare.OrchestrateKubernetes(ctx, "myrmex-demo-web", "examples/k8s", ns, opts); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("no secret store = %v, want ErrInvalidArgument", err)
	}
	if _, err := kc.Typed().AppsV1().Deployments(ns).Get(ctx, "myrmex-demo-web", metav1.GetOptions{}); err == nil {
		t.Fatal("a refused apply reached the cluster")
	}

	d, err := c.OrchestrateKubernetes(ctx, "myrmex-demo-web", "examples/k8s", ns, opts)
	b, _ := json.Marshal(d)
	outputs = append(outputs, string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Environment["DB_PASSWORD"]; got != "(from secret myrmex-demo-web-myrmex-secrets, key db-password)" || d.Environment["MODE"] != "test" {
		t.Errorf("the deployment's environment = %v", d.Environment)
	}
	sec, err := kc.Typed().CoreV1().Secrets(ns).Get(ctx, "myrmex-demo-web-myrmex-secrets", metav1.GetOptions{})
	if err != nil || string(sec.Data["db-password"]) != canary {
		t.Fatalf("the Secret = %v, %v", sec, err)
	}
	dep, err := kc.Typed().AppsV1().Deployments(ns).Get(ctx, "myrmex-demo-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(dep.Spec.Template)
	outputs = append(outputs, string(spec))
	if !strings.Contains(string(spec), `"secretKeyRef":{"name":"myrmex-demo-web-myrmex-secrets","key":"db-password"}`) {
		t.Errorf("the pod template does not refer to the Secret: %s", spec)
	}
	for _, out := range outputs {
		if strings.Contains(out, canary) {
			t.Errorf("an output or the pod spec holds the secret's value: %.300s", out)
		}
	}
}

// tempStore is Myrmex's encrypted store in a temporary directory, with a random key.
func tempStore(t *testing.T) *credstore.Store {
	t.Helper()
	key := make([]byte, credstore.KeySize)
	rand.Read(key)
	store, err := credstore.Open(credstore.Options{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return store
}
