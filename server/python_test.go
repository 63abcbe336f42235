package server_test

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry/credstore"
	"github.com/codomyrmex/containerization/server/state"
)

// The Python client's own tests (clients/python/tests), on Debian's python3 with nothing installed, against a
// real server over real HTTP with the engine, BuildKit, a registry and the control plane behind it.
func TestPythonClient(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		if testenv.Required() {
			t.Fatalf("%s: %v (scripts/engine.sh up installs Debian's python3)", python, err)
		}
		t.Skip("no Debian python3")
	}
	eng := testenv.Engine(t)
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, credstore.KeySize)
	rand.Read(key)
	store, err := credstore.Open(credstore.Options{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, containerization.Config{Engine: eng, Kubeconfig: kubeconfig, Registries: store})
	t.Cleanup(func() { // what the client's pipeline built
		_, _ = eng.API().ImageRemove(context.Background(), "myrmex.local/py-pipeline:test", client.ImageRemoveOptions{Force: true})
	})
	reg := testenv.InProcess(t)
	// A saved registry with a retention policy, for the client's retention run.
	admin, err := containerization.New(t.Context(), containerization.Config{Registries: store})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.AddRegistry(t.Context(), "pyreg", containerization.ContainerRegistry{URL: "http://" + reg.Host,
		RetentionPolicy: map[string]any{"rules": []any{map[string]any{"repositories": map[string]any{"pattern": "**"},
			"tags": map[string]any{"pattern": "**"}, "retain": map[string]any{"most_recently_pushed": 1}}}}}, containerization.AddRegistryOptions{}); err != nil {
		t.Fatal(err)
	}
	buildCtx := t.TempDir()
	if err := os.WriteFile(filepath.Join(buildCtx, "Dockerfile"), []byte("FROM "+testimages.Busybox+"\nRUN echo built > /built\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	manifests, err := filepath.Abs("../examples/k8s")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), python, "-m", "unittest", "discover", "-v", "-s", "tests", "-t", ".")
	cmd.Dir = "../clients/python"
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "MYRMEX_URL="+e.url, "MYRMEX_TOKEN="+e.tokens[state.ScopeOperate],
		"MYRMEX_READ_TOKEN="+e.tokens[state.ScopeRead], "MYRMEX_TEST_IMAGE="+testimages.Busybox, "MYRMEX_TEST_CONTEXT="+buildCtx,
		"MYRMEX_TEST_REGISTRY="+reg.Host, "MYRMEX_TEST_SAVED_REGISTRY=pyreg", "MYRMEX_TEST_MANIFESTS="+manifests, "MYRMEX_TEST_NAMESPACE="+ns)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("python3 -m unittest: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), " ... ok"); n < 13 {
		t.Errorf("%d Python tests passed, want 13:\n%s", n, out)
	}
	t.Logf("%s", out)
}
