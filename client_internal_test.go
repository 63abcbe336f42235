package containerization

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/codomyrmex/containerization/internal/testenv"
)

// One engine connection for every call of a Client, opened once even when the first calls race.
func TestClientSharesOneEngine(t *testing.T) {
	testenv.Engine(t) // skips, or fails under make test, without an engine
	ctx := context.Background()
	c, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.eng != nil {
		t.Fatal("New connected already; connections are opened on first use")
	}
	var wg sync.WaitGroup
	seen := make(chan any, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := c.ManageContainers(ctx, OpList, "", nil, ManageOptions{}); err != nil {
				t.Error(err)
			}
			e, err := c.engine(ctx)
			if err != nil {
				t.Error(err)
			}
			seen <- e
		})
	}
	wg.Wait()
	close(seen)
	first := c.eng
	for e := range seen {
		if e != first {
			t.Fatalf("calls got different engine clients: %p and %p", e, first)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ManageContainers(ctx, OpList, "", nil, ManageOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a call after Close = %v, want ErrInvalidArgument", err)
	}
}

// One cluster client per kubeconfig, context and field manager, with the client's defaults filled in.
func TestClientKubeClientsPerCluster(t *testing.T) {
	kubeconfig, _ := testenv.Kube(t)
	c, err := New(context.Background(), Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.kube(KubernetesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.kube(KubernetesOptions{Kubeconfig: kubeconfig})
	if err != nil || a != b {
		t.Errorf("the default cluster and the same kubeconfig named: %p, %p (%v); want one client", a, b, err)
	}
	other, err := c.kube(KubernetesOptions{FieldManager: "someone-else"})
	if err != nil || other == a || other.FieldManager() != "someone-else" {
		t.Errorf("another field manager got %p (%v), want a client of its own", other, err)
	}
	if len(c.kubes) != 2 {
		t.Errorf("%d cluster clients, want 2", len(c.kubes))
	}
}
