package containerization

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/policy"
)

// The operations of [ManageContainers]: the specification's six, and list and inspect, which users expect.
const (
	OpCreate  = "create"
	OpStart   = "start"
	OpStop    = "stop"
	OpRemove  = "remove"
	OpRestart = "restart"
	OpLogs    = "logs"
	OpList    = "list"
	OpInspect = "inspect"
)

// ContainerOperations lists the operations [ManageContainers] accepts.
var ContainerOperations = []string{OpCreate, OpStart, OpStop, OpRemove, OpRestart, OpLogs, OpList, OpInspect}

// ContainerResult is what manage_containers returns. The first eight fields are the specification's; the rest
// say what a caller needs beyond them and are left out of JSON when empty.
type ContainerResult struct {
	Operation     string  `json:"operation"`
	ContainerName string  `json:"container_name"`
	Success       bool    `json:"success"`
	ContainerID   string  `json:"container_id"`
	Status        string  `json:"status"`
	ExecutionTime float64 `json:"execution_time"` // seconds
	Logs          string  `json:"logs"`
	ErrorMessage  string  `json:"error_message"`

	// Changed is false when the container already was as asked (stopping a stopped container), which
	// succeeds.
	Changed bool `json:"changed"`
	// Stdout and Stderr split Logs by stream.
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	// Warnings are the engine's, from create.
	Warnings []string `json:"warnings,omitempty"`
	// Containers is the list operation's answer.
	Containers []engine.Container `json:"containers,omitzero"`
	// Details is the inspect operation's answer: the container's configuration, state, resources, ports,
	// networks and mounts.
	Details *ContainerDetails `json:"details,omitempty"`
	// PolicyVerdict is the policy's verdict at create and start, when a policy is set (see package policy).
	PolicyVerdict *policy.Verdict `json:"policy_verdict,omitempty"`
}

// ContainerDetails is what inspect tells of a container; see [engine.Details].
type ContainerDetails = engine.Details

// LogOptions selects the log lines of the logs operation; see [engine.LogOptions].
type LogOptions = engine.LogOptions

// ManageOptions are the operation-specific parameters of [ManageContainers]. The zero value works: it talks to the
// engine at DOCKER_HOST (or the default socket) with the engine's own defaults.
type ManageOptions struct {
	// Engine reuses a connected client; when nil, one is opened to Host for the call and closed after.
	Engine *engine.Client
	// Host is the engine address when Engine is nil; empty means DOCKER_HOST, else the default socket.
	Host string
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger

	// CreateNetworks (create) creates missing networks instead of failing.
	CreateNetworks bool
	// StopTimeout (stop, restart) is the grace period before SIGKILL; nil uses the container's own.
	StopTimeout *time.Duration
	// Force (remove) kills a running container first.
	Force bool
	// RemoveVolumes (remove) also removes the container's anonymous volumes.
	RemoveVolumes bool
	// Logs (logs) selects the lines to read.
	Logs LogOptions
	// Foreign (list) includes containers that Myrmex did not create.
	Foreign bool
	// Policy (create, start) is held to the container and its image instead of the client's (Config.Policy).
	Policy *policy.Policy
	// Secrets (create) resolves environment values written "secret:NAME", instead of the client's (Config.Secrets).
	Secrets SecretSource
}

// ManageContainers runs one lifecycle operation on a container: create (from config), start, stop, remove,
// restart, logs, list or inspect. Input is checked in full before the engine is called. Operations are safe to
// repeat: starting a running container or stopping a stopped one succeeds with Changed false.
//
// The result is never nil: on failure it carries Success false and ErrorMessage, and the error is a
// *[ContainerManagementError] wrapping a sentinel: [ErrInvalidArgument] for bad input, [ErrNotFound] for an
// unknown container, image or network, [ErrAlreadyExists] for a name in use, [ErrConflict] for removing a running
// container without Force, [ErrUnavailable] when no engine answers.
func (c *Client) ManageContainers(ctx context.Context, operation, containerName string, config *ContainerConfig, opts ManageOptions) (*ContainerResult, error) {
	start := time.Now()
	res := &ContainerResult{Operation: operation, ContainerName: containerName}
	finish := func(err error) (*ContainerResult, error) {
		res.ExecutionTime = time.Since(start).Seconds()
		if err != nil {
			res.Success = false
			res.ErrorMessage = err.Error()
			return res, &ContainerManagementError{Op: operation, Container: res.ContainerName, Err: err}
		}
		res.Success = true
		return res, nil
	}

	if err := validateOperation(operation, containerName, config, opts); err != nil {
		return finish(err)
	}
	if operation == OpCreate && containerName == "" {
		res.ContainerName = strings.TrimPrefix(config.Name, "/")
	}

	if operation == OpCreate {
		src := opts.Secrets
		if src == nil {
			src = c.cfg.Secrets
		}
		resolved, err := resolveSecrets(config, src)
		if err != nil {
			return finish(err)
		}
		config = resolved
	}

	eng, err := c.engineFor(ctx, opts.Engine)
	if err != nil {
		return finish(err)
	}

	if pol := c.policyFor(opts.Policy); pol != nil && (operation == OpCreate || operation == OpStart) {
		var err error
		if res.PolicyVerdict, err = c.containerGate(ctx, pol, eng, operation, containerName, config); err != nil {
			return finish(err)
		}
	}

	var st engine.State
	stop := engine.StopOptions{Timeout: opts.StopTimeout}
	switch operation {
	case OpCreate:
		st, err = eng.Create(ctx, containerName, *config, engine.CreateOptions{CreateNetworks: opts.CreateNetworks})
	case OpStart:
		st, err = eng.Start(ctx, containerName)
	case OpStop:
		st, err = eng.Stop(ctx, containerName, stop)
	case OpRestart:
		st, err = eng.Restart(ctx, containerName, stop)
	case OpRemove:
		st, err = eng.Remove(ctx, containerName, engine.RemoveOptions{Force: opts.Force, Volumes: opts.RemoveVolumes})
	case OpLogs:
		var d engine.Details
		if d, err = eng.Details(ctx, containerName); err == nil {
			var logs engine.Logs
			logs, err = eng.Logs(ctx, d.ID, opts.Logs)
			res.Logs, res.Stdout, res.Stderr = logs.Combined, logs.Stdout, logs.Stderr
			st = engine.State{ID: d.ID, Status: d.State.Status}
		}
	case OpInspect:
		var d engine.Details
		if d, err = eng.Details(ctx, containerName); err == nil {
			res.Details = &d
			st = engine.State{ID: d.ID, Status: d.State.Status}
		}
	case OpList:
		res.Containers, err = eng.List(ctx, engine.ListOptions{Foreign: opts.Foreign})
		if err == nil && res.Containers == nil {
			res.Containers = []engine.Container{} // "containers": [] when there are none, for callers that index it
		}
	}
	res.ContainerID, res.Status, res.Changed, res.Warnings = st.ID, st.Status, st.Changed, st.Warnings
	return finish(err)
}

func validateOperation(operation, name string, config *ContainerConfig, opts ManageOptions) error {
	if !slices.Contains(ContainerOperations, operation) {
		return fmt.Errorf("%w: unknown operation %q: want one of %s", ErrInvalidArgument, operation,
			strings.Join(ContainerOperations, ", "))
	}
	switch operation {
	case OpList:
		return nil
	case OpCreate:
		if config == nil {
			return fmt.Errorf("%w: create needs a container config", ErrInvalidArgument)
		}
		return config.Validate(name)
	case OpLogs:
		if _, err := engine.ParseLogTime(opts.Logs.Since, time.Now()); err != nil {
			return err
		}
		if _, err := engine.ParseLogTime(opts.Logs.Until, time.Now()); err != nil {
			return err
		}
	}
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: %s needs a container name", ErrInvalidArgument, operation)
	}
	if opts.StopTimeout != nil && *opts.StopTimeout < 0 {
		return fmt.Errorf("%w: stop timeout %v is negative", ErrInvalidArgument, *opts.StopTimeout)
	}
	return nil
}

// MetricsOptions tunes [GetContainerMetrics]. The zero value samples Myrmex's own running containers on the
// engine at DOCKER_HOST.
type MetricsOptions struct {
	Engine *engine.Client
	Host   string
	Logger *slog.Logger
	// Foreign includes running containers that Myrmex did not create (when no name is given).
	Foreign bool
	// Concurrency bounds the containers sampled at once; zero samples them all at once.
	Concurrency int
	// Via says where the readings come from: "cgroups" (the container's cgroups, read beside the engine: Myrmex
	// on the engine's Linux host as root, cgroup v1), "engine" (the engine's stats stream), or empty: the cgroups
	// when they can be read, else the engine. The figures are the same formulas on the same counters.
	Via string
}

// GetContainerMetrics samples one container, or, with an empty name, every running container of Myrmex's
// concurrently. Errors are *[ContainerManagementError] with Op "stats".
func (c *Client) GetContainerMetrics(ctx context.Context, containerName string, opts MetricsOptions) ([]ContainerMetrics, error) {
	fail := func(err error) ([]ContainerMetrics, error) {
		return nil, &ContainerManagementError{Op: "stats", Container: containerName, Err: err}
	}
	if err := engine.CheckMetricsVia(opts.Via); err != nil {
		return fail(err)
	}
	eng, err := c.engineFor(ctx, opts.Engine)
	if err != nil {
		return fail(err)
	}
	if containerName != "" {
		m, err := eng.MetricsVia(ctx, containerName, opts.Via)
		if err != nil {
			return fail(err)
		}
		return []ContainerMetrics{m}, nil
	}
	all, err := eng.MetricsAll(ctx, engine.MetricsOptions{Foreign: opts.Foreign, Concurrency: opts.Concurrency, Via: opts.Via})
	if err != nil {
		return all, &ContainerManagementError{Op: "stats", Err: err}
	}
	return all, nil
}
