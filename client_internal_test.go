package containerization

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/scan"
	"github.com/codomyrmex/containerization/scan/vulndb"
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

// The advisory database is opened once per directory and kept, until an import replaces it: then the next call
// gets the new generation, while the old handle stays readable (a scan may still hold it) until Close.
func TestClientKeepsTheAdvisoryDatabase(t *testing.T) {
	ctx := context.Background()
	src, dir := t.TempDir(), t.TempDir()
	files, _ := filepath.Glob("testdata/osv/*.json")
	if len(files) == 0 {
		t.Fatal("no OSV fixtures in testdata/osv")
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, filepath.Base(files[0])), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vulndb.Import(ctx, src, vulndb.Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	c := newClient(Config{})
	if _, err := c.advisoryDB(t.TempDir()); !errors.Is(err, scan.ErrNoDatabase) {
		t.Errorf("advisoryDB(empty dir) = %v, want ErrNoDatabase", err)
	}
	first, err := c.advisoryDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.advisoryDB(dir); again != first {
		t.Error("a second call opened the database again")
	}
	if _, err := vulndb.Import(ctx, src, vulndb.Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	second, err := c.advisoryDB(dir)
	if err != nil || second == first {
		t.Fatalf("after an import: %v, same handle %v; want the new generation", err, second == first)
	}
	if eco := first.Ecosystems(); len(eco) == 0 {
		t.Error("the replaced handle reads nothing")
	}
	if _, err := first.Lookup(first.Ecosystems()[0], "x"); err != nil {
		t.Errorf("the replaced handle was closed while the client is open: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("closing the replaced handle after the client's Close = %v, want os.ErrClosed (the client closed it)", err)
	}
	if _, err := c.advisoryDB(dir); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("advisoryDB after Close = %v, want ErrInvalidArgument", err)
	}
}

// One registry transport per CA file, so that calls reuse its connections; a CA file that cannot be read is an
// error, and is not kept.
func TestClientSharesRegistryTransports(t *testing.T) {
	c := newClient(Config{})
	defer c.Close()
	a, err := c.transport("")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := c.transport(""); b != a {
		t.Error("two transports for the system's roots")
	}
	if _, err := c.transport("/nonexistent/ca.pem"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("transport(missing CA file) = %v, want ErrInvalidArgument", err)
	}
	ro, err := c.registryOptions(RegistryOptions{}, "", RegistryCredentials{}, nil)
	if err != nil || ro.Transport != a {
		t.Errorf("registryOptions() transport = %v, %v; want the client's", ro.Transport, err)
	}
}
