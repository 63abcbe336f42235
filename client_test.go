package containerization_test

import (
	"context"
	"errors"
	"testing"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/registry"
)

// New opens nothing: a client for an engine that is not there is made, its calls check their input first, and a
// call that needs the engine says it is unavailable.
func TestClientConnectsOnFirstUse(t *testing.T) {
	ctx := context.Background()
	c, err := containerization.New(ctx, containerization.Config{Host: "unix:///nonexistent/docker.sock"})
	if err != nil {
		t.Fatalf("New with no engine there = %v; it should open nothing yet", err)
	}
	defer c.Close()
	if _, err := c.ManageContainers(ctx, "frobnicate", "web", nil, containerization.ManageOptions{}); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("bad input = %v, want ErrInvalidArgument before any connection", err)
	}
	res, err := c.ManageContainers(ctx, containerization.OpInspect, "web", nil, containerization.ManageOptions{})
	var cme *containerization.ContainerManagementError
	if !errors.Is(err, containerization.ErrUnavailable) || !errors.As(err, &cme) || res == nil || res.Success {
		t.Errorf("inspect with no engine = %+v, %v; want a ContainerManagementError wrapping ErrUnavailable", res, err)
	}
	if _, err := c.OptimizeContainers(ctx, "app:1", "performance", containerization.OptimizeOptions{}); !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("OptimizeContainers(performance, no repository to measure with) = %v, want ErrInvalidArgument before any connection", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := containerization.New(cancelled, containerization.Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("New(cancelled) = %v", err)
	}
}

// A push's gzip level is checked before any engine or registry is reached.
func TestRegistryGzipLevelRefusedFirst(t *testing.T) {
	_, err := containerization.ManageContainerRegistry(context.Background(), containerization.RegistryPush, "app:1", "127.0.0.1:1",
		containerization.RegistryOptions{PushOptions: registry.PushOptions{GzipLevel: 12}, Host: "unix:///nonexistent/docker.sock"})
	if !errors.Is(err, containerization.ErrInvalidArgument) {
		t.Errorf("push at gzip level 12 = %v, want ErrInvalidArgument", err)
	}
}
