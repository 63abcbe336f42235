package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Details is a container as the inspect operation reports it, in Myrmex's own shape (the engine library's type
// stays inside this package): what it runs, its state and health, its resources, ports, networks and mounts.
type Details struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Image   string    `json:"image"`    // as the configuration names it
	ImageID string    `json:"image_id"` // the image it was created from
	Created time.Time `json:"created"`
	// Command is the process the container runs: entrypoint and arguments together.
	Command    []string          `json:"command"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Env        []string          `json:"env,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`

	State        ContainerState `json:"state"`
	RestartCount int            `json:"restart_count"`

	// MemoryLimitBytes, MemoryReservationBytes, NanoCPUs and CPUShares are the limits (0: none).
	MemoryLimitBytes       int64  `json:"memory_limit_bytes,omitempty"`
	MemoryReservationBytes int64  `json:"memory_reservation_bytes,omitempty"`
	NanoCPUs               int64  `json:"nano_cpus,omitempty"`
	CPUShares              int64  `json:"cpu_shares,omitempty"`
	RestartPolicy          string `json:"restart_policy,omitempty"`
	Privileged             bool   `json:"privileged"`
	ReadOnlyRootfs         bool   `json:"read_only_rootfs"`
	NetworkMode            string `json:"network_mode,omitempty"`
	// The isolation the engine applied: capabilities dropped and added, security options (no-new-privileges,
	// seccomp, apparmor), the process limit, tmpfs mounts.
	CapDrop     []string          `json:"cap_drop,omitempty"`
	CapAdd      []string          `json:"cap_add,omitempty"`
	SecurityOpt []string          `json:"security_opt,omitempty"`
	PidsLimit   int64             `json:"pids_limit,omitempty"`
	Tmpfs       map[string]string `json:"tmpfs,omitempty"`

	// Ports are the published ports ("127.0.0.1:8080->80/tcp") and the exposed ones that are not ("443/tcp").
	Ports    []string                   `json:"ports"`
	Networks map[string]NetworkEndpoint `json:"networks"`
	Mounts   []Mount                    `json:"mounts"`
}

// ContainerState is a container's state and health.
type ContainerState struct {
	Status     string    `json:"status"` // created, running, paused, restarting, removing, exited, dead
	Running    bool      `json:"running"`
	Paused     bool      `json:"paused"`
	Restarting bool      `json:"restarting"`
	OOMKilled  bool      `json:"oom_killed"`
	Dead       bool      `json:"dead"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exit_code"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Health is the HEALTHCHECK's verdict (starting, healthy, unhealthy), empty without one.
	Health              string `json:"health,omitempty"`
	HealthFailingStreak int    `json:"health_failing_streak,omitempty"`
}

// NetworkEndpoint is a container's place on one network.
type NetworkEndpoint struct {
	IPAddress  string   `json:"ip_address,omitempty"`
	Gateway    string   `json:"gateway,omitempty"`
	MacAddress string   `json:"mac_address,omitempty"`
	Aliases    []string `json:"aliases,omitempty"`
}

// Mount is a volume, bind mount or tmpfs of a container.
type Mount struct {
	Type        string `json:"type"` // volume, bind, tmpfs
	Name        string `json:"name,omitempty"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only"`
}

// Details inspects the container name (or id) and returns it in Myrmex's shape; see [Client.Inspect] for the errors.
func (c *Client) Details(ctx context.Context, name string) (Details, error) {
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return Details{}, err
	}
	return DetailsOf(ins), nil
}

// DetailsOf puts the engine's inspect answer into Myrmex's shape.
func DetailsOf(ins container.InspectResponse) Details {
	d := Details{
		ID: ins.ID, Name: strings.TrimPrefix(ins.Name, "/"), ImageID: ins.Image, RestartCount: ins.RestartCount,
		Created:  engineTime(ins.Created),
		Command:  append([]string{ins.Path}, ins.Args...),
		Ports:    []string{},
		Networks: map[string]NetworkEndpoint{},
		Mounts:   []Mount{},
	}
	if ins.Path == "" {
		d.Command = ins.Args
	}
	if c := ins.Config; c != nil {
		d.Image, d.Entrypoint, d.Cmd, d.WorkingDir, d.User, d.Env, d.Labels = c.Image, c.Entrypoint, c.Cmd, c.WorkingDir, c.User, c.Env, c.Labels
		for p := range c.ExposedPorts {
			d.Ports = append(d.Ports, p.String())
		}
	}
	if s := ins.State; s != nil {
		d.State = ContainerState{Status: string(s.Status), Running: s.Running, Paused: s.Paused, Restarting: s.Restarting,
			OOMKilled: s.OOMKilled, Dead: s.Dead, Pid: s.Pid, ExitCode: s.ExitCode, Error: s.Error,
			StartedAt: engineTime(s.StartedAt), FinishedAt: engineTime(s.FinishedAt)}
		if s.Health != nil {
			d.State.Health, d.State.HealthFailingStreak = string(s.Health.Status), s.Health.FailingStreak
		}
	}
	if h := ins.HostConfig; h != nil {
		d.MemoryLimitBytes, d.MemoryReservationBytes, d.NanoCPUs, d.CPUShares = h.Memory, h.MemoryReservation, h.NanoCPUs, h.CPUShares
		d.RestartPolicy, d.Privileged, d.ReadOnlyRootfs, d.NetworkMode = string(h.RestartPolicy.Name), h.Privileged, h.ReadonlyRootfs, string(h.NetworkMode)
		d.CapDrop, d.CapAdd, d.Tmpfs = h.CapDrop, h.CapAdd, h.Tmpfs
		for _, o := range h.SecurityOpt {
			if k, v, ok := strings.Cut(o, "="); ok && k == "seccomp" && v != "unconfined" {
				o = "seccomp=<profile>" // the profile's JSON, not repeated here
			}
			d.SecurityOpt = append(d.SecurityOpt, o)
		}
		if h.PidsLimit != nil {
			d.PidsLimit = *h.PidsLimit
		}
	}
	if n := ins.NetworkSettings; n != nil {
		published := map[string]bool{}
		for port, bindings := range n.Ports {
			for _, b := range bindings {
				d.Ports = append(d.Ports, fmt.Sprintf("%s:%s->%s", hostIP(b.HostIP), b.HostPort, port.String()))
				published[port.String()] = true
			}
		}
		// An exposed port that is published is listed once, as published.
		d.Ports = slices.DeleteFunc(d.Ports, func(p string) bool { return published[p] })
		for name, ep := range n.Networks {
			if ep == nil {
				continue
			}
			e := NetworkEndpoint{MacAddress: ep.MacAddress.String(), Aliases: ep.Aliases}
			if ep.IPAddress.IsValid() {
				e.IPAddress = ep.IPAddress.String()
			}
			if ep.Gateway.IsValid() {
				e.Gateway = ep.Gateway.String()
			}
			d.Networks[name] = e
		}
	}
	for _, m := range ins.Mounts {
		d.Mounts = append(d.Mounts, Mount{Type: string(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination, ReadOnly: !m.RW})
	}
	slices.Sort(d.Ports)
	d.Ports = slices.Compact(d.Ports)
	return d
}

// engineTime reads a time as the engine writes it (RFC 3339 with nanoseconds); the engine's zero time
// ("0001-01-01T00:00:00Z") and anything unreadable are the zero time.
func engineTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
