package testenv_test

import (
	"context"
	"testing"
	"time"

	bkclient "github.com/moby/buildkit/client"

	"github.com/codomyrmex/containerization/internal/testenv"
)

func TestBuildkitd(t *testing.T) {
	addr := testenv.Buildkitd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := bkclient.New(ctx, addr)
	if err != nil {
		t.Fatalf("client.New(%q) = %v", addr, err)
	}
	defer c.Close()
	workers, err := c.ListWorkers(ctx)
	if err != nil || len(workers) == 0 {
		t.Fatalf("ListWorkers() = %d workers, %v; want one OCI worker", len(workers), err)
	}
}
