package kube_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/kube"
)

// The test control plane's API server killed (SIGKILL) and started again (scripts/kube.sh restart-apiserver)
// during an apply that waits: the apply resumes and succeeds, or fails with a typed error (the API server
// unavailable, or the wait's deadline) — never an unclassified one; and an apply after the restart brings the
// application to running. It restarts the API server every other test shares, so it runs under `make
// reliability` only (make test skips TestReliability*).
func TestReliabilityAPIServerRestart(t *testing.T) {
	_, c := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, c)
	script, err := filepath.Abs("../scripts/kube.sh")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	objs := parse(t, deployment("restart", "registry.local/web:1", 3, ""))

	restarted := make(chan error, 1)
	var once atomic.Bool
	res, err := c.Apply(ctx, objs, kube.ApplyOptions{Name: "restart", Namespace: ns, Wait: true, Timeout: 2 * time.Minute,
		Progress: func(e kube.Event) {
			if e.Phase == "apply" && once.CompareAndSwap(false, true) {
				go func() {
					cmd := exec.Command("bash", script, "restart-apiserver")
					cmd.Env = append(os.Environ(), "DELAY=2")
					out, err := cmd.CombinedOutput()
					if err != nil {
						err = errors.Join(err, errors.New(string(out)))
					}
					restarted <- err
				}()
			}
		}})
	if !once.Load() {
		t.Fatalf("Apply = %v before any object was applied: the API server was not restarted", err)
	}
	if rerr := <-restarted; rerr != nil {
		t.Fatalf("restarting the API server: %v", rerr)
	}
	t.Logf("Apply across the API server's restart = %v", err)
	if err != nil && errdefs.KindOf(err).Code == "internal" {
		t.Errorf("Apply across the API server's restart = %v: unclassified, want success or a typed error", err)
	}
	if err == nil && (res.Status == nil || res.Status.Status != "running") {
		t.Errorf("Apply succeeded across the restart with status %+v, want running", res.Status)
	}

	// Afterwards the same apply completes, and the application runs.
	res, err = c.Apply(ctx, objs, kube.ApplyOptions{Name: "restart", Namespace: ns, Wait: true, Timeout: 2 * time.Minute})
	if err != nil || res.Status == nil || res.Status.Status != "running" || res.Status.ReadyReplicas != 3 {
		t.Fatalf("Apply after the restart = %v, status %+v; want running with 3 ready", err, res.Status)
	}
}
