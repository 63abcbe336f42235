// Package testenv connects tests to the real engine they run against and cleans up after them.
//
// A test that needs the engine calls [Engine]. Without an engine it skips on a developer's machine, but fails
// under `make test` and CI (MYRMEX_REQUIRE_ENGINE or CI set): there a skipped test would hide a broken setup.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// Label marks what a test made; its value is the test's run id.
const Label = "io.codomyrmex.myrmex.test"

var seedOnce sync.Once
var seedErr error

// Required reports whether a missing component must fail the test instead of skipping it.
func Required() bool { return os.Getenv("CI") != "" || os.Getenv("MYRMEX_REQUIRE_ENGINE") != "" }

// Engine connects to the engine at DOCKER_HOST, makes sure the test images exist, and closes the client when the
// test ends. It skips or fails (see the package doc) when no engine answers.
func Engine(t testing.TB) *engine.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.New(ctx, engine.Options{})
	if err != nil {
		if Required() {
			t.Fatalf("the tests need a container engine: %v", err)
		}
		t.Skipf("no container engine (run `make test`, which starts one): %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	seedOnce.Do(func() { seedErr = testimages.Ensure(ctx, eng) })
	if seedErr != nil {
		t.Fatalf("seeding test images: %v", seedErr)
	}
	return eng
}

// Run is one test's claim on the engine: a unique name prefix and a label value, with cleanup of every container
// that carries that label.
type Run struct {
	ID    string
	eng   *engine.Client
	after []func()
}

// NewRun starts a run for t: when t ends, every container labelled with the run's id is removed with its
// anonymous volumes.
func NewRun(t testing.TB, eng *engine.Client) *Run {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	if len(prefix) > 30 {
		prefix = prefix[:30]
	}
	r := &Run{ID: prefix + "-" + hex.EncodeToString(b), eng: eng}
	t.Cleanup(func() {
		if left := r.Sweep(); left != 0 {
			t.Logf("cleanup removed %d container(s) the test left behind", left)
		}
		for i := len(r.after) - 1; i >= 0; i-- {
			r.after[i]()
		}
	})
	return r
}

// AfterSweep registers f to run when the test ends, after the run's containers are gone: the place to remove
// networks and volumes, which the engine refuses to remove while a container uses them.
func (r *Run) AfterSweep(f func()) { r.after = append(r.after, f) }

// Name returns a container name unique to this run.
func (r *Run) Name(suffix string) string { return r.ID + "-" + suffix }

// Labels returns the labels that tie a container to this run.
func (r *Run) Labels() map[string]string { return map[string]string{Label: r.ID} }

// Config returns a configuration for image labelled for this run.
func (r *Run) Config(image string, command ...string) engine.ContainerConfig {
	return engine.ContainerConfig{Image: image, Command: command, Labels: r.Labels()}
}

// Containers lists the IDs of the containers, in any state, labelled for this run.
func (r *Run) Containers() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := r.eng.API().ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: client.Filters{}.Add("label", Label+"="+r.ID),
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(res.Items))
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// Sweep removes every container of the run and returns how many there were.
func (r *Run) Sweep() int {
	ids, err := r.Containers()
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, id := range ids {
		_, _ = r.eng.API().ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	return len(ids)
}

// Eventually polls cond every 200ms until it holds or timeout passes, and reports whether it held.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}
