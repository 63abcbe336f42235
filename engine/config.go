package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/codomyrmex/containerization/errdefs"
)

// ContainerConfig is the specification's ContainerConfig: what a container is made of. JSON and YAML field names
// are the specification's.
type ContainerConfig struct {
	// Image is the image reference the container runs (required).
	Image string `json:"image"`
	// Name is the container name; it must agree with the name given to the operation when both are set.
	Name string `json:"name"`
	// Command replaces the image's CMD.
	Command []string `json:"command"`
	// Environment is set in the container's environment.
	Environment map[string]string `json:"environment"`
	// Ports publishes container ports on the host: "8080/tcp": "127.0.0.1:18080". See [PortBindings].
	Ports PortBindings `json:"ports"`
	// Volumes mounts named volumes and host paths: "data": "/var/lib/data", "/srv/conf": "/etc/app:ro".
	// See [VolumeMount].
	Volumes map[string]VolumeMount `json:"volumes"`
	// Networks are the user-defined networks the container joins, the first one at creation.
	Networks []string `json:"networks"`
	// Resources limits and reserves CPU and memory.
	Resources Resources `json:"resources"`
	// RestartPolicy is "no" (default), "always", "unless-stopped", "on-failure" or "on-failure:N".
	RestartPolicy string `json:"restart_policy"`
	// Labels are set on the container, beside [ManagedLabel].
	Labels map[string]string `json:"labels"`

	// The isolation a container runs with (docker run's flags in brackets). See [ContainerConfig.Hardened].
	//
	// User runs the process as NAME or UID, with :GROUP or :GID (--user); empty: the image's USER.
	User string `json:"user,omitempty"`
	// ReadOnly mounts the root filesystem read-only (--read-only); Tmpfs mounts writable tmpfs directories,
	// path → options ("size=64m,mode=1777"; --tmpfs).
	ReadOnly bool              `json:"read_only,omitempty"`
	Tmpfs    map[string]string `json:"tmpfs,omitempty"`
	// CapDrop and CapAdd drop and add Linux capabilities ("ALL", "NET_BIND_SERVICE" or "CAP_NET_BIND_SERVICE";
	// --cap-drop, --cap-add).
	CapDrop []string `json:"cap_drop,omitempty"`
	CapAdd  []string `json:"cap_add,omitempty"`
	// NoNewPrivileges keeps the process and its children from gaining privileges through setuid programs or
	// file capabilities (--security-opt no-new-privileges).
	NoNewPrivileges bool `json:"no_new_privileges,omitempty"`
	// PidsLimit bounds the number of processes (--pids-limit); 0: the engine's default, none.
	PidsLimit int64 `json:"pids_limit,omitempty"`
	// SeccompProfile is the system-call filter: empty for the engine's default, "unconfined" for none, or a
	// JSON profile file (--security-opt seccomp=…).
	SeccompProfile string `json:"seccomp_profile,omitempty"`
	// Privileged gives every capability and the host's devices (--privileged). False unless asked.
	Privileged bool `json:"privileged,omitempty"`
	// Hardened turns on a safe set at once, under what the fields above set: every capability dropped (unless
	// CapDrop names some), no new privileges, a read-only root filesystem with a tmpfs /tmp (64 MB) unless
	// Tmpfs names mounts, and at most 512 processes unless PidsLimit is set. It cannot be combined with
	// Privileged.
	Hardened bool `json:"hardened,omitempty"`
}

// Resources is the specification's resources block.
//
// CPU amounts are a number of CPUs ("0.5", "2") or millicores ("500m"), from 1m to 4096; cpu_limit is at least
// 0.01, the engine's smallest quota. Memory amounts take docker's units: "256m", "1g", "512MiB". cpu_limit
// becomes a CFS quota (docker run --cpus), memory_limit a hard limit (--memory), memory_reservation a soft limit
// (--memory-reservation). The engine has no CPU reservation for a single container, so cpu_reservation becomes
// the relative CPU weight that guarantees that share under contention (--cpu-shares = cpus × 1024), as Compose
// does for a reservation outside swarm.
type Resources struct {
	CPULimit          string `json:"cpu_limit"`
	MemoryLimit       string `json:"memory_limit"`
	CPUReservation    string `json:"cpu_reservation"`
	MemoryReservation string `json:"memory_reservation"`
}

// PortBindings maps a container port to its host binding, in the forms docker run -p accepts, split at the key:
//
//	"8080/tcp": "127.0.0.1:18080"   host address and port
//	"8080":     "18080"             all host addresses (the protocol defaults to tcp)
//	"53/udp":   "1053"
//	"9000/tcp": ""                  an ephemeral host port chosen by the engine
//	"8000-8002/tcp": "127.0.0.1:18000-18002"   ranges of equal length
//	"8080/tcp": "[::1]:18080"       IPv6 host address
//
// In JSON and YAML a host port may also be written as a number.
type PortBindings map[string]string

// UnmarshalJSON accepts host ports written as strings or numbers.
func (p *PortBindings) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(PortBindings, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("ports[%q]: want a host binding string or port number, got %s", k, v)
			}
			s = n.String()
		}
		out[k] = s
	}
	*p = out
	return nil
}

// VolumeMount is where a volume or host path is mounted in the container. In JSON and YAML it is written either
// as a string, "/container/path" or "/container/path:ro", or as docker-py's object {"bind": "/path", "mode": "ro"}.
//
// The key of the volumes map says what is mounted: a key that starts with "/", "./", "../" or "~/" is a host path
// (a bind mount, relative paths resolved against the working directory); any other key is a named volume, created
// by the engine with [ManagedLabel] when it does not exist.
type VolumeMount struct {
	Bind string `json:"bind"`
	Mode string `json:"mode"`
}

// UnmarshalJSON accepts the string form and the object form.
func (v *VolumeMount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = ParseVolumeMount(s)
		return nil
	}
	type plain VolumeMount
	return json.Unmarshal(b, (*plain)(v))
}

// MarshalJSON writes the compact string form, or the object form when the string would read back as another
// mount (a path with a colon in it: "/data:ro" as a path is not "/data" read-only).
func (v VolumeMount) MarshalJSON() ([]byte, error) {
	if ParseVolumeMount(v.String()) == v {
		return json.Marshal(v.String())
	}
	type plain VolumeMount
	return json.Marshal(plain(v))
}

// String returns "path" or "path:mode".
func (v VolumeMount) String() string {
	if v.Mode == "" {
		return v.Bind
	}
	return v.Bind + ":" + v.Mode
}

// ParseVolumeMount reads "/path" or "/path:mode". What follows the last colon is the mode unless it holds a slash,
// so that a mode Myrmex does not support (":z") is refused by validation instead of becoming part of the path.
func ParseVolumeMount(s string) VolumeMount {
	if i := strings.LastIndexByte(s, ':'); i > 0 && !strings.Contains(s[i+1:], "/") {
		return VolumeMount{Bind: s[:i], Mode: s[i+1:]}
	}
	return VolumeMount{Bind: s}
}

// createRequest is a ContainerConfig checked and translated into the Engine API's terms.
type createRequest struct {
	name     string
	config   *container.Config
	host     *container.HostConfig
	networks []string
}

var (
	nameRE   = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	volumeRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
)

// ValidName reports whether name is a valid container, network or volume name for the engine.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// notUTF8 names the first string field of cfg that is not valid UTF-8, or returns "".
func notUTF8(cfg ContainerConfig) string {
	bad := func(vals ...string) bool {
		return slices.ContainsFunc(vals, func(v string) bool { return !utf8.ValidString(v) })
	}
	r := cfg.Resources
	switch {
	case bad(cfg.Name):
		return "name"
	case bad(cfg.Image):
		return "image"
	case bad(cfg.Command...):
		return "command"
	case bad(cfg.Networks...):
		return "networks"
	case bad(cfg.RestartPolicy):
		return "restart_policy"
	case bad(cfg.User, cfg.SeccompProfile):
		return "user or seccomp_profile"
	case bad(cfg.CapAdd...) || bad(cfg.CapDrop...):
		return "cap_add or cap_drop"
	case bad(r.CPULimit, r.MemoryLimit, r.CPUReservation, r.MemoryReservation):
		return "resources"
	}
	for k, v := range cfg.Environment {
		if bad(k, v) {
			return "environment"
		}
	}
	for k, v := range cfg.Labels {
		if bad(k, v) {
			return "labels"
		}
	}
	for k, v := range cfg.Ports {
		if bad(k, v) {
			return "ports"
		}
	}
	for k, v := range cfg.Volumes {
		if bad(k, v.Bind, v.Mode) {
			return "volumes"
		}
	}
	for k, v := range cfg.Tmpfs {
		if bad(k, v) {
			return "tmpfs"
		}
	}
	return ""
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// Validate checks the whole configuration without touching the engine, and returns every problem found.
func (cfg ContainerConfig) Validate(name string) error {
	_, err := cfg.request(name)
	return err
}

// request checks cfg and translates it. name is the operation's container name, which wins over cfg.Name.
func (cfg ContainerConfig) request(name string) (*createRequest, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	switch {
	case name == "" && cfg.Name == "":
		bad("a container name is required")
	case name == "":
		name = cfg.Name
	case cfg.Name != "" && strings.TrimPrefix(cfg.Name, "/") != strings.TrimPrefix(name, "/"):
		bad("config name %q disagrees with container name %q", cfg.Name, name)
	}
	name = strings.TrimPrefix(name, "/")
	if name != "" && !nameRE.MatchString(name) {
		bad("container name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]+", name)
	}
	if strings.TrimSpace(cfg.Image) == "" {
		bad("image is required")
	}
	// The engine takes the configuration as JSON, which would turn bytes that are not UTF-8 into U+FFFD: the
	// container would run with other strings than the ones validated.
	if field := notUTF8(cfg); field != "" {
		bad("%s holds bytes that are not UTF-8", field)
	}

	req := &createRequest{
		name: name,
		config: &container.Config{
			Image:  cfg.Image,
			Cmd:    slices.Clone(cfg.Command),
			Labels: map[string]string{},
		},
		host: &container.HostConfig{},
	}

	for _, k := range slices.Sorted(maps.Keys(cfg.Environment)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad("environment variable name %q is invalid", k)
			continue
		}
		if strings.ContainsRune(cfg.Environment[k], 0) {
			// The environment is a list of C strings: a NUL would cut the value short.
			bad("environment variable %s: the value contains a NUL byte", k)
			continue
		}
		req.config.Env = append(req.config.Env, k+"="+cfg.Environment[k])
	}

	for k, v := range cfg.Labels {
		if k == "" {
			bad("label with an empty key")
		}
		req.config.Labels[k] = v
	}
	req.config.Labels[ManagedLabel] = "true"

	exposed, bindings, err := parsePorts(cfg.Ports)
	if err != nil {
		bad("%v", err)
	}
	req.config.ExposedPorts = exposed
	req.host.PortBindings = bindings

	mounts, err := parseVolumes(cfg.Volumes)
	if err != nil {
		bad("%v", err)
	}
	req.host.Mounts = mounts

	seen := map[string]bool{}
	for _, n := range cfg.Networks {
		switch {
		case n == "":
			bad("empty network name")
		case seen[n]:
			bad("network %q listed twice", n)
		case n == "host" || n == "none" || strings.HasPrefix(n, "container:"):
			if len(cfg.Networks) > 1 {
				bad("network mode %q cannot be combined with other networks", n)
			}
		case !nameRE.MatchString(n):
			bad("network name %q is invalid", n)
		}
		seen[n] = true
		req.networks = append(req.networks, n)
	}

	if err := parseResources(cfg.Resources, &req.host.Resources); err != nil {
		bad("%v", err)
	}
	rp, err := parseRestartPolicy(cfg.RestartPolicy)
	if err != nil {
		bad("%v", err)
	}
	req.host.RestartPolicy = rp
	for _, e := range isolation(cfg, req) {
		bad("%s", e)
	}

	if len(errs) > 0 {
		return nil, invalid("%s", strings.Join(errs, "; "))
	}
	return req, nil
}

// ParseRestartPolicy reads "no", "always", "unless-stopped", "on-failure" or "on-failure:N". Empty means "no".
func ParseRestartPolicy(s string) (container.RestartPolicy, error) {
	p, err := parseRestartPolicy(s)
	return p, asInvalid(err)
}

// ParseCPUs reads a CPU amount: "0.5", "2" or "500m", from 1m (0.001) to 4096 CPUs. It returns nano-CPUs. NaN,
// infinities, negative amounts and amounts below a millicore are an ErrInvalidArgument.
func ParseCPUs(s string) (int64, error) {
	n, err := parseCPUs(s)
	return n, asInvalid(err)
}

// ParseMemory reads a memory amount in docker's units ("256m", "1g", "512MiB") and returns bytes.
func ParseMemory(s string) (int64, error) {
	n, err := parseMemory(s)
	return n, asInvalid(err)
}

func asInvalid(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
}

func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	mode, count, hasCount := strings.Cut(s, ":")
	var p container.RestartPolicy
	switch mode {
	case "", "no":
		p.Name = container.RestartPolicyDisabled
	case "always":
		p.Name = container.RestartPolicyAlways
	case "unless-stopped":
		p.Name = container.RestartPolicyUnlessStopped
	case "on-failure":
		p.Name = container.RestartPolicyOnFailure
	default:
		return p, fmt.Errorf("restart_policy %q: want no, always, unless-stopped or on-failure[:N]", s)
	}
	if hasCount {
		if p.Name != container.RestartPolicyOnFailure {
			return p, fmt.Errorf("restart_policy %q: only on-failure takes a retry count", s)
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 0 {
			return p, fmt.Errorf("restart_policy %q: retry count must be a non-negative integer", s)
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// CPU amounts in nano-CPUs: the smallest is a millicore (Kubernetes' unit), and the smallest limit 0.01 CPU, a
// CFS quota of 1ms per 100ms period, the kernel's minimum.
const (
	minCPUs     = 1e6
	maxCPUs     = 4096e9
	minCPULimit = 1e7
)

func parseCPUs(s string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "m"), 64)
	if err == nil && strings.HasSuffix(s, "m") {
		f /= 1000
	}
	n := math.Round(f * 1e9)
	// NaN compares false to everything, so the range is checked as what must hold, not what must not.
	if err != nil || !(n >= minCPUs && n <= maxCPUs) {
		return 0, fmt.Errorf("cpu amount %q: want a number of CPUs (\"0.5\") or millicores (\"500m\") from 1m to 4096", s)
	}
	return int64(n), nil
}

// minMemory is the engine's smallest memory limit on Linux.
const minMemory = 6 * 1024 * 1024

func parseMemory(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("memory amount %q: want a size such as 256m, 1g or 512MiB", s)
	}
	return n, nil
}

func parseResources(r Resources, out *container.Resources) error {
	var errs []string
	if r.CPULimit != "" {
		n, err := parseCPUs(r.CPULimit)
		if err != nil {
			errs = append(errs, "cpu_limit: "+err.Error())
		} else if n < minCPULimit {
			// Below it the quota rounds to 0, which the engine reads as no limit, or the kernel refuses it.
			errs = append(errs, fmt.Sprintf("cpu_limit %s is below the engine's minimum of 0.01 (10m)", r.CPULimit))
		}
		out.NanoCPUs = n
	}
	if r.CPUReservation != "" {
		n, err := parseCPUs(r.CPUReservation)
		if err != nil {
			errs = append(errs, "cpu_reservation: "+err.Error())
		} else if out.NanoCPUs > 0 && n > out.NanoCPUs {
			errs = append(errs, fmt.Sprintf("cpu_reservation %s is above cpu_limit %s", r.CPUReservation, r.CPULimit))
		}
		// The kernel's minimum weight is 2.
		out.CPUShares = max(2, n*1024/1e9)
	}
	if r.MemoryLimit != "" {
		n, err := parseMemory(r.MemoryLimit)
		if err != nil {
			errs = append(errs, "memory_limit: "+err.Error())
		} else if n < minMemory {
			errs = append(errs, fmt.Sprintf("memory_limit %s is below the engine's minimum of 6MiB", r.MemoryLimit))
		}
		out.Memory = n
	}
	if r.MemoryReservation != "" {
		n, err := parseMemory(r.MemoryReservation)
		if err != nil {
			errs = append(errs, "memory_reservation: "+err.Error())
		} else if out.Memory > 0 && n > out.Memory {
			errs = append(errs, fmt.Sprintf("memory_reservation %s is above memory_limit %s", r.MemoryReservation, r.MemoryLimit))
		}
		out.MemoryReservation = n
	}
	if len(errs) > 0 {
		return fmt.Errorf("resources: %s", strings.Join(errs, "; "))
	}
	return nil
}

type portRange struct{ lo, hi int }

func (r portRange) len() int { return r.hi - r.lo + 1 }

func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 65535 {
		return portRange{}, fmt.Errorf("port %q is not a number in 1-65535", lo)
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil || b < a || b > 65535 {
			return portRange{}, fmt.Errorf("port range %q is not ascending within 1-65535", s)
		}
	}
	return portRange{a, b}, nil
}

func parsePorts(ports PortBindings) (network.PortSet, network.PortMap, error) {
	if len(ports) == 0 {
		return nil, nil, nil
	}
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	var errs []string
	for _, key := range slices.Sorted(maps.Keys(ports)) {
		value := ports[key]
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Sprintf("ports[%q]: ", key)+fmt.Sprintf(format, args...))
		}
		spec, proto, _ := strings.Cut(key, "/")
		switch proto {
		case "":
			proto = "tcp"
		case "tcp", "udp", "sctp":
		default:
			fail("protocol %q: want tcp, udp or sctp", proto)
			continue
		}
		cports, err := parsePortRange(spec)
		if err != nil {
			fail("%v", err)
			continue
		}

		// The host side: [ip:][port[-port]], with IPv6 addresses in brackets.
		hostIP, hostPorts := "", value
		if strings.HasPrefix(value, "[") {
			end := strings.Index(value, "]")
			if end < 0 || (len(value) > end+1 && value[end+1] != ':') {
				fail("host binding %q: want [ipv6]:port", value)
				continue
			}
			hostIP, hostPorts = value[1:end], strings.TrimPrefix(value[end+1:], ":")
		} else if i := strings.LastIndexByte(value, ':'); i >= 0 {
			hostIP, hostPorts = value[:i], value[i+1:]
		}
		var ip netip.Addr
		if hostIP != "" {
			if ip, err = netip.ParseAddr(hostIP); err != nil {
				fail("host address %q is not an IP address", hostIP)
				continue
			}
		}
		var hports portRange
		if hostPorts != "" {
			if hports, err = parsePortRange(hostPorts); err != nil {
				fail("host %v", err)
				continue
			}
			if hports.len() != cports.len() && hports.len() != 1 {
				fail("container range %s and host range %s differ in length", spec, hostPorts)
				continue
			}
			if hports.len() == 1 && cports.len() > 1 {
				fail("a container port range needs a host port range of the same length")
				continue
			}
		}
		for i := 0; i < cports.len(); i++ {
			p, err := network.ParsePort(fmt.Sprintf("%d/%s", cports.lo+i, proto))
			if err != nil {
				fail("%v", err)
				break
			}
			exposed[p] = struct{}{}
			b := network.PortBinding{HostIP: ip}
			if hostPorts != "" {
				b.HostPort = strconv.Itoa(hports.lo + i)
			}
			bindings[p] = append(bindings[p], b)
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return exposed, bindings, nil
}

func isHostPath(key string) bool {
	return strings.HasPrefix(key, "/") || strings.HasPrefix(key, "./") || strings.HasPrefix(key, "../") ||
		key == "." || key == ".." || strings.HasPrefix(key, "~/")
}

func parseVolumes(volumes map[string]VolumeMount) ([]mount.Mount, error) {
	var out []mount.Mount
	var errs []string
	targets := map[string]string{}
	for _, src := range slices.Sorted(maps.Keys(volumes)) {
		v := volumes[src]
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Sprintf("volumes[%q]: ", src)+fmt.Sprintf(format, args...))
		}
		target := path.Clean(v.Bind)
		if v.Bind == "" || !path.IsAbs(v.Bind) {
			fail("container path %q must be absolute", v.Bind)
			continue
		}
		if other, dup := targets[target]; dup {
			fail("container path %s is also the target of %q", target, other)
			continue
		}
		targets[target] = src
		m := mount.Mount{Target: target}
		switch v.Mode {
		case "", "rw":
		case "ro", "readonly":
			m.ReadOnly = true
		default:
			fail("mode %q: want ro or rw", v.Mode)
			continue
		}
		if isHostPath(src) {
			source := src
			if strings.HasPrefix(src, "~/") {
				home, err := os.UserHomeDir()
				if err != nil {
					fail("cannot expand ~: %v", err)
					continue
				}
				source = filepath.Join(home, src[2:])
			}
			abs, err := filepath.Abs(source)
			if err != nil {
				fail("%v", err)
				continue
			}
			m.Type, m.Source = mount.TypeBind, abs
		} else {
			if !volumeRE.MatchString(src) {
				fail("volume name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]+, or a host path starting with / or ./", src)
				continue
			}
			m.Type, m.Source = mount.TypeVolume, src
			m.VolumeOptions = &mount.VolumeOptions{Labels: map[string]string{ManagedLabel: "true"}}
		}
		out = append(out, m)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// HostPaths are the host paths c mounts (absolute, as the engine would mount them: relative and ~ paths
// resolved, and symbolic links followed where they exist on this machine).
func (c ContainerConfig) HostPaths() ([]string, error) {
	mounts, err := parseVolumes(c.Volumes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	var out []string
	for _, m := range mounts {
		if m.Type != mount.TypeBind {
			continue
		}
		p := m.Source
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		out = append(out, p)
	}
	return out, nil
}
