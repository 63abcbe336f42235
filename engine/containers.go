package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/errdefs"
)

// State is what a lifecycle operation leaves behind.
type State struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"` // created, running, paused, restarting, removing, exited, dead, or removed
	// Changed is false when the operation found the container already as asked (stopping a stopped container).
	Changed bool `json:"changed"`
	// Warnings are the engine's, such as a memory limit the kernel cannot enforce.
	Warnings []string `json:"warnings,omitempty"`
}

// Container is one line of a listing.
type Container struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Image   string            `json:"image"`
	State   string            `json:"state"`
	Status  string            `json:"status"`
	Created time.Time         `json:"created"`
	Ports   []string          `json:"ports"`
	Labels  map[string]string `json:"labels"`
	Managed bool              `json:"managed"`
}

// CreateOptions tunes [Client.Create]. The zero value refuses networks that do not exist.
type CreateOptions struct {
	// CreateNetworks creates the configuration's missing networks (bridge driver, labelled as Myrmex's)
	// instead of failing.
	CreateNetworks bool
}

// Create makes a container from cfg without starting it. name wins over cfg.Name; they must agree when both are
// set. The configuration is validated in full before the engine is called. A name in use gives an error wrapping
// [errdefs.ErrAlreadyExists]; a missing network one wrapping [errdefs.ErrNotFound], unless opts.CreateNetworks.
// When a later step fails (joining a second network), the container is removed again: nothing is left behind.
func (c *Client) Create(ctx context.Context, name string, cfg ContainerConfig, opts CreateOptions) (State, error) {
	req, err := cfg.request(name)
	if err != nil {
		return State{}, err
	}
	if err := c.ensureNetworks(ctx, req.networks, opts.CreateNetworks); err != nil {
		return State{}, err
	}
	var netcfg *network.NetworkingConfig
	if len(req.networks) > 0 {
		first := req.networks[0]
		req.host.NetworkMode = container.NetworkMode(first)
		if container.NetworkMode(first).IsUserDefined() {
			netcfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first: {}}}
		}
	}
	res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:             req.name,
		Config:           req.config,
		HostConfig:       req.host,
		NetworkingConfig: netcfg,
	})
	if err != nil {
		err = c.classify(err)
		if errors.Is(err, errdefs.ErrConflict) {
			return State{}, fmt.Errorf("container name %q is in use: %w", req.name, errdefs.ErrAlreadyExists)
		}
		if errors.Is(err, errdefs.ErrNotFound) {
			return State{}, fmt.Errorf("image %q: %w (Myrmex does not pull on create: pull or build it first)", req.config.Image, err)
		}
		return State{}, err
	}
	// API 1.41 attaches one network at creation; the rest are joined before the container ever runs.
	for _, n := range req.networks[min(1, len(req.networks)):] {
		if _, err := c.api.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: res.ID}); err != nil {
			err = c.classify(err)
			c.removeQuietly(res.ID)
			return State{}, fmt.Errorf("joining network %q: %w", n, err)
		}
	}
	c.log.Debug("created container", "name", req.name, "id", res.ID)
	return State{ID: res.ID, Name: req.name, Status: string(container.StateCreated), Changed: true, Warnings: res.Warnings}, nil
}

// removeQuietly undoes a half-made container with a context of its own, so that a cancelled caller still
// leaves nothing behind.
func (c *Client) removeQuietly(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		c.log.Debug("removing half-made container", "id", id, "err", err)
	}
}

func (c *Client) ensureNetworks(ctx context.Context, names []string, create bool) error {
	for _, n := range names {
		if !container.NetworkMode(n).IsUserDefined() {
			continue
		}
		if err := c.ensureNetwork(ctx, n, create); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) ensureNetwork(ctx context.Context, name string, create bool) error {
	c.netMu.Lock()
	defer c.netMu.Unlock()
	_, err := c.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err == nil {
		return nil
	}
	if err = c.classify(err); !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("inspecting network %q: %w", name, err)
	}
	if !create {
		return fmt.Errorf("network %q: %w (create it with `docker network create %s`, or ask Myrmex to create missing networks)",
			name, errdefs.ErrNotFound, name)
	}
	_, err = c.api.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{ManagedLabel: "true"},
	})
	if err != nil {
		return fmt.Errorf("creating network %q: %w", name, c.classify(err))
	}
	c.log.Debug("created network", "name", name)
	return nil
}

// Inspect returns the engine's full view of a container.
func (c *Client) Inspect(ctx context.Context, name string) (container.InspectResponse, error) {
	if name == "" {
		return container.InspectResponse{}, invalid("a container name is required")
	}
	res, err := c.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		err = c.classify(err)
		if errors.Is(err, errdefs.ErrNotFound) {
			return container.InspectResponse{}, fmt.Errorf("container %q: %w", name, errdefs.ErrNotFound)
		}
		return container.InspectResponse{}, err
	}
	maskSecrets(res.Container.Config)
	return res.Container, nil
}

// SecretEnvLabel lists, comma-separated, the environment variables of a container whose values came from the
// secret store: Inspect and Details show them as "<secret>".
const SecretEnvLabel = "io.codomyrmex.myrmex.secret-env"

// SecretMask is what a secret's value reads as.
const SecretMask = "<secret>"

func maskSecrets(cfg *container.Config) {
	if cfg == nil || cfg.Labels[SecretEnvLabel] == "" {
		return
	}
	names := strings.Split(cfg.Labels[SecretEnvLabel], ",")
	for i, kv := range cfg.Env {
		if k, _, ok := strings.Cut(kv, "="); ok && slices.Contains(names, k) {
			cfg.Env[i] = k + "=" + SecretMask
		}
	}
}

func stateOf(ins container.InspectResponse, changed bool) State {
	s := State{ID: ins.ID, Name: strings.TrimPrefix(ins.Name, "/"), Changed: changed}
	if ins.State != nil {
		s.Status = string(ins.State.Status)
	}
	return s
}

// active reports whether the container has a process or is about to (running, paused, restarting).
func active(ins container.InspectResponse) bool {
	return ins.State != nil && (ins.State.Running || ins.State.Paused || ins.State.Restarting)
}

// Start starts a container. Starting a running container succeeds with Changed false.
func (c *Client) Start(ctx context.Context, name string) (State, error) {
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return State{}, err
	}
	if ins.State != nil && ins.State.Running {
		return stateOf(ins, false), nil
	}
	if _, err := c.api.ContainerStart(ctx, ins.ID, client.ContainerStartOptions{}); err != nil {
		return stateOf(ins, false), fmt.Errorf("starting %q: %w", name, c.classify(err))
	}
	return c.stateAfter(ctx, ins.ID, name)
}

// StopOptions tunes [Client.Stop] and [Client.Restart].
type StopOptions struct {
	// Timeout is how long the container may take to stop after SIGTERM before it is killed. Nil uses the
	// container's own stop timeout (10s unless set).
	Timeout *time.Duration
}

func (o StopOptions) seconds() *int {
	if o.Timeout == nil {
		return nil
	}
	s := int(o.Timeout.Round(time.Second) / time.Second)
	return &s
}

// Stop stops a container. Stopping a container that is not running succeeds with Changed false.
func (c *Client) Stop(ctx context.Context, name string, opts StopOptions) (State, error) {
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return State{}, err
	}
	if !active(ins) {
		return stateOf(ins, false), nil
	}
	if _, err := c.api.ContainerStop(ctx, ins.ID, client.ContainerStopOptions{Timeout: opts.seconds()}); err != nil {
		return stateOf(ins, false), fmt.Errorf("stopping %q: %w", name, c.classify(err))
	}
	return c.stateAfter(ctx, ins.ID, name)
}

// Restart stops (if running) and starts a container.
func (c *Client) Restart(ctx context.Context, name string, opts StopOptions) (State, error) {
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return State{}, err
	}
	if _, err := c.api.ContainerRestart(ctx, ins.ID, client.ContainerRestartOptions{Timeout: opts.seconds()}); err != nil {
		return stateOf(ins, false), fmt.Errorf("restarting %q: %w", name, c.classify(err))
	}
	return c.stateAfter(ctx, ins.ID, name)
}

// RemoveOptions tunes [Client.Remove].
type RemoveOptions struct {
	// Force kills a running container before removing it. Without it, removing a running container is an error
	// wrapping [errdefs.ErrConflict].
	Force bool
	// Volumes also removes the container's anonymous volumes. Named volumes are never removed.
	Volumes bool
}

// Remove deletes a container.
func (c *Client) Remove(ctx context.Context, name string, opts RemoveOptions) (State, error) {
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return State{}, err
	}
	if active(ins) && !opts.Force {
		return stateOf(ins, false), fmt.Errorf("container %q is %s: %w (stop it first, or remove with force)",
			name, ins.State.Status, errdefs.ErrConflict)
	}
	if _, err := c.api.ContainerRemove(ctx, ins.ID, client.ContainerRemoveOptions{Force: opts.Force, RemoveVolumes: opts.Volumes}); err != nil {
		return stateOf(ins, false), fmt.Errorf("removing %q: %w", name, c.classify(err))
	}
	s := stateOf(ins, true)
	s.Status = "removed"
	return s, nil
}

func (c *Client) stateAfter(ctx context.Context, id, name string) (State, error) {
	ins, err := c.Inspect(ctx, id)
	if err != nil {
		return State{ID: id, Name: name, Changed: true}, err
	}
	return stateOf(ins, true), nil
}

// ListOptions tunes [Client.List].
type ListOptions struct {
	// Foreign includes containers that Myrmex did not create.
	Foreign bool
	// RunningOnly leaves out containers that are not running.
	RunningOnly bool
}

// List returns containers in every state, Myrmex's own unless opts.Foreign, newest first.
func (c *Client) List(ctx context.Context, opts ListOptions) ([]Container, error) {
	f := client.Filters{}
	if !opts.Foreign {
		f.Add("label", ManagedLabel+"=true")
	}
	res, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: !opts.RunningOnly, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", c.classify(err))
	}
	out := make([]Container, 0, len(res.Items))
	for _, s := range res.Items {
		ct := Container{
			ID:      s.ID,
			Image:   s.Image,
			State:   string(s.State),
			Status:  s.Status,
			Created: time.Unix(s.Created, 0).UTC(),
			Labels:  s.Labels,
			Managed: s.Labels[ManagedLabel] == "true",
			Ports:   []string{},
		}
		if len(s.Names) > 0 {
			ct.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, p := range s.Ports {
			ct.Ports = append(ct.Ports, formatPort(p))
		}
		slices.Sort(ct.Ports)
		ct.Ports = slices.Compact(ct.Ports)
		out = append(out, ct)
	}
	slices.SortStableFunc(out, func(a, b Container) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func formatPort(p container.PortSummary) string {
	if p.PublicPort == 0 {
		return fmt.Sprintf("%d/%s", p.PrivatePort, p.Type)
	}
	return fmt.Sprintf("%s:%d->%d/%s", hostIP(p.IP), p.PublicPort, p.PrivatePort, p.Type)
}

// hostIP is the host address a port is published on, as ports are written: 0.0.0.0 when none is set, an IPv6
// address in brackets.
func hostIP(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "0.0.0.0"
	case ip.Is6():
		return "[" + ip.String() + "]"
	}
	return ip.String()
}
