package containerization_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
)

// A secret rotated in the store and applied again: the apply's changes (result and events) say the Secret's data
// changed, never the old or the new value, in clear or in base64 as the API server returns it.
func TestReview4RotatedSecretNeverInTheChanges(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const old, rotated = "canary-review4-old-5e1a", "canary-review4-new-9c3b"
	store := tempStore(t)
	c, err := containerization.New(ctx, containerization.Config{Kubeconfig: kubeconfig, Secrets: store})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var outputs []string
	opts := containerization.KubernetesOptions{
		Environment: map[string]string{"DB_PASSWORD": "secret:db-password"},
		Progress: func(e containerization.Event) {
			b, _ := json.Marshal(e)
			outputs = append(outputs, string(b))
		},
	}
	for _, v := range []string{old, rotated} {
		if err := store.PutSecret("db-password", v); err != nil {
			t.Fatal(err)
		}
		for _, dry := range []bool{true, false} {
			o := opts
			o.DryRun = dry
			d, err := c.OrchestrateKubernetes(ctx, "myrmex-demo-web", "examples/k8s", ns, o)
			b, _ := json.Marshal(d)
			outputs = append(outputs, string(b))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	changed := false
	for _, out := range outputs {
		changed = changed || strings.Contains(out, "data.db-password")
		for _, v := range []string{old, rotated} {
			if strings.Contains(out, v) || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(v))) {
				t.Errorf("an output holds the secret's value %q: %.400s", v, out)
			}
		}
	}
	if !changed {
		t.Errorf("no output says the Secret's data changed: %q", outputs)
	}
}
