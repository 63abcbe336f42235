package engine

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/errdefs"
)

func TestRequestRejectsBadInput(t *testing.T) {
	good := ContainerConfig{Image: "img"}
	with := func(f func(*ContainerConfig)) ContainerConfig { c := good; f(&c); return c }
	tests := []struct {
		name  string
		cname string
		cfg   ContainerConfig
	}{
		{"no name", "", good},
		{"bad name", "-x", good},
		{"names disagree", "a1", with(func(c *ContainerConfig) { c.Name = "b1" })},
		{"no image", "web", ContainerConfig{}},
		{"port not a number", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"http": "80"} })},
		{"port out of range", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"70000": "80"} })},
		{"host port out of range", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"80": "0"} })},
		{"bad protocol", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"80/icmp": "80"} })},
		{"bad host ip", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"80": "localhost:8080"} })},
		{"range lengths differ", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"80-82": "8080-8081"} })},
		{"range to one port", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"80-82": "8080"} })},
		{"descending range", "web", with(func(c *ContainerConfig) { c.Ports = PortBindings{"82-80": ""} })},
		{"relative container path", "web", with(func(c *ContainerConfig) { c.Volumes = map[string]VolumeMount{"v": {Bind: "data"}} })},
		{"bad volume mode", "web", with(func(c *ContainerConfig) { c.Volumes = map[string]VolumeMount{"v": {Bind: "/d", Mode: "rx"}} })},
		{"unsupported volume mode in string form", "web", with(func(c *ContainerConfig) { c.Volumes = map[string]VolumeMount{"v": ParseVolumeMount("/d:z")} })},
		{"bad volume name", "web", with(func(c *ContainerConfig) { c.Volumes = map[string]VolumeMount{"a b": {Bind: "/d"}} })},
		{"two mounts on one path", "web", with(func(c *ContainerConfig) {
			c.Volumes = map[string]VolumeMount{"v1": {Bind: "/d"}, "v2": {Bind: "/d/"}}
		})},
		{"empty network", "web", with(func(c *ContainerConfig) { c.Networks = []string{""} })},
		{"network twice", "web", with(func(c *ContainerConfig) { c.Networks = []string{"n1", "n1"} })},
		{"host network with others", "web", with(func(c *ContainerConfig) { c.Networks = []string{"host", "n1"} })},
		{"bad cpu", "web", with(func(c *ContainerConfig) { c.Resources.CPULimit = "half" })},
		{"zero cpu", "web", with(func(c *ContainerConfig) { c.Resources.CPULimit = "0" })},
		{"bad memory", "web", with(func(c *ContainerConfig) { c.Resources.MemoryLimit = "lots" })},
		{"memory below minimum", "web", with(func(c *ContainerConfig) { c.Resources.MemoryLimit = "1m" })},
		{"reservation above limit", "web", with(func(c *ContainerConfig) {
			c.Resources.MemoryLimit, c.Resources.MemoryReservation = "64m", "128m"
		})},
		{"cpu reservation above limit", "web", with(func(c *ContainerConfig) {
			c.Resources.CPULimit, c.Resources.CPUReservation = "0.5", "1"
		})},
		{"bad restart policy", "web", with(func(c *ContainerConfig) { c.RestartPolicy = "sometimes" })},
		{"count on always", "web", with(func(c *ContainerConfig) { c.RestartPolicy = "always:3" })},
		{"negative count", "web", with(func(c *ContainerConfig) { c.RestartPolicy = "on-failure:-1" })},
		{"env name with =", "web", with(func(c *ContainerConfig) { c.Environment = map[string]string{"A=B": "c"} })},
		{"env name with NUL", "web", with(func(c *ContainerConfig) { c.Environment = map[string]string{"A\x00B": "c"} })},
		{"env value with NUL", "web", with(func(c *ContainerConfig) { c.Environment = map[string]string{"A": "b\x00c"} })},
		{"cpu limit NaN", "web", with(func(c *ContainerConfig) { c.Resources.CPULimit = "NaN" })},
		{"cpu limit that rounds to no limit", "web", with(func(c *ContainerConfig) { c.Resources.CPULimit = "1e-10" })},
		{"cpu limit below the engine's 0.01", "web", with(func(c *ContainerConfig) { c.Resources.CPULimit = "5m" })},
		{"cpu reservation NaN", "web", with(func(c *ContainerConfig) { c.Resources.CPUReservation = "nan" })},
		{"cpu reservation that rounds to zero", "web", with(func(c *ContainerConfig) { c.Resources.CPUReservation = "1e-10m" })},
		{"empty label key", "web", with(func(c *ContainerConfig) { c.Labels = map[string]string{"": "x"} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.request(tt.cname)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("request(%q) error = %v, want ErrInvalidArgument", tt.cname, err)
			}
		})
	}
}

// CPU amounts that are not a finite positive number, or that round to no quota, are refused: NaN converts to a
// huge negative quota and 1e-10 to 0, which the engine reads as no limit.
func TestParseCPUsRejectsNonsense(t *testing.T) {
	for _, s := range []string{"NaN", "nan", "-NaN", "NaNm", "Inf", "+Inf", "-Inf", "infinity", "1e400", "-1", "-0.5", "-500m",
		"0", "0m", "-0", "1e-10", "1e-10m", "0.0000000001", "0.0001", "0.5m", "4097", "", "m", "half"} {
		if n, err := ParseCPUs(s); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseCPUs(%q) = %d, %v; want ErrInvalidArgument", s, n, err)
		}
	}
	for s, want := range map[string]int64{"0.5": 5e8, "500m": 5e8, "2": 2e9, "1m": 1e6, "0.3": 3e8, "4096": 4096e9, "1e-3": 1e6} {
		if n, err := ParseCPUs(s); err != nil || n != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", s, n, err, want)
		}
	}
}

func TestRequestTranslatesConfig(t *testing.T) {
	cfg := ContainerConfig{
		Image:       "img:1",
		Command:     []string{"httpd", "-f"},
		Environment: map[string]string{"B": "2", "A": "1"},
		Ports: PortBindings{
			"8080/tcp":  "127.0.0.1:18080",
			"53/udp":    "1053",
			"9000":      "",
			"7000-7001": "[::1]:17000-17001",
		},
		Volumes: map[string]VolumeMount{
			"data":       {Bind: "/data"},
			"/etc/hosts": {Bind: "/h", Mode: "ro"},
		},
		Resources:     Resources{CPULimit: "500m", MemoryLimit: "256m", CPUReservation: "0.25", MemoryReservation: "128MiB"},
		RestartPolicy: "on-failure:3",
		Labels:        map[string]string{"team": "ants"},
	}
	req, err := cfg.request("web")
	if err != nil {
		t.Fatalf("request() = %v", err)
	}
	if got, want := req.config.Env, []string{"A=1", "B=2"}; !equal(got, want) {
		t.Errorf("Env = %v, want %v", got, want)
	}
	if req.config.Labels[ManagedLabel] != "true" || req.config.Labels["team"] != "ants" {
		t.Errorf("Labels = %v, want team=ants and %s=true", req.config.Labels, ManagedLabel)
	}
	wantBindings := map[string]network.PortBinding{
		"8080/tcp": {HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "18080"},
		"53/udp":   {HostPort: "1053"},
		"9000/tcp": {},
		"7000/tcp": {HostIP: netip.MustParseAddr("::1"), HostPort: "17000"},
		"7001/tcp": {HostIP: netip.MustParseAddr("::1"), HostPort: "17001"},
	}
	if len(req.host.PortBindings) != len(wantBindings) {
		t.Errorf("PortBindings = %v, want %d ports", req.host.PortBindings, len(wantBindings))
	}
	for port, want := range wantBindings {
		got := req.host.PortBindings[network.MustParsePort(port)]
		if len(got) != 1 || got[0] != want {
			t.Errorf("PortBindings[%s] = %v, want [%v]", port, got, want)
		}
		if _, ok := req.config.ExposedPorts[network.MustParsePort(port)]; !ok {
			t.Errorf("ExposedPorts lacks %s", port)
		}
	}
	mounts := map[string]mount.Mount{}
	for _, m := range req.host.Mounts {
		mounts[m.Target] = m
	}
	if m := mounts["/data"]; m.Type != mount.TypeVolume || m.Source != "data" || m.ReadOnly || m.VolumeOptions.Labels[ManagedLabel] != "true" {
		t.Errorf("mount /data = %+v, want labelled named volume data, rw", m)
	}
	if m := mounts["/h"]; m.Type != mount.TypeBind || m.Source != "/etc/hosts" || !m.ReadOnly {
		t.Errorf("mount /h = %+v, want read-only bind of /etc/hosts", m)
	}
	r := req.host.Resources
	if r.NanoCPUs != 5e8 || r.Memory != 256<<20 || r.CPUShares != 256 || r.MemoryReservation != 128<<20 {
		t.Errorf("Resources = NanoCPUs %d Memory %d CPUShares %d MemoryReservation %d, want 5e8, 256MiB, 256, 128MiB",
			r.NanoCPUs, r.Memory, r.CPUShares, r.MemoryReservation)
	}
	if rp := req.host.RestartPolicy; rp.Name != container.RestartPolicyOnFailure || rp.MaximumRetryCount != 3 {
		t.Errorf("RestartPolicy = %+v, want on-failure:3", rp)
	}
}

func TestConfigFromYAMLAndJSON(t *testing.T) {
	doc := `
image: myrmex.local/web:test
name: web
command: [httpd, -f]
environment: {MODE: prod}
ports:
  "8080/tcp": "127.0.0.1:18080"
  "53/udp": 1053
volumes:
  data: /data
  /srv/conf: {bind: /etc/app, mode: ro}
  logs: /var/log:ro
networks: [front, back]
resources: {cpu_limit: "0.5", memory_limit: 256m}
restart_policy: unless-stopped
labels: {team: ants}
`
	var cfg ContainerConfig
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatalf("yaml.Unmarshal() = %v", err)
	}
	if cfg.Ports["53/udp"] != "1053" || cfg.Ports["8080/tcp"] != "127.0.0.1:18080" {
		t.Errorf("Ports = %v, want numbers read as strings", cfg.Ports)
	}
	if v := cfg.Volumes["/srv/conf"]; v != (VolumeMount{Bind: "/etc/app", Mode: "ro"}) {
		t.Errorf("Volumes[/srv/conf] = %+v, want object form read", v)
	}
	if v := cfg.Volumes["logs"]; v != (VolumeMount{Bind: "/var/log", Mode: "ro"}) {
		t.Errorf("Volumes[logs] = %+v, want string form with mode read", v)
	}
	if err := cfg.Validate("web"); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	// JSON round trip keeps the specification's field names and the values.
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	_ = json.Unmarshal(b, &fields)
	for _, k := range []string{"image", "name", "command", "environment", "ports", "volumes", "networks", "resources", "restart_policy", "labels"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("json.Marshal(ContainerConfig) lacks %q: %s", k, b)
		}
	}
	var back ContainerConfig
	if err := json.Unmarshal(b, &back); err != nil || back.Volumes["logs"] != cfg.Volumes["logs"] || back.Resources != cfg.Resources {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, cfg)
	}
}

func TestParseLogTime(t *testing.T) {
	now := mustTime("2026-01-02T03:04:05Z")
	tests := []struct{ in, want string }{
		{"", ""},
		{"10m", "1767322445.000000000"},
		{"1767322445", "1767322445"},
		{"2026-01-02T03:04:05Z", "1767323045.000000000"},
	}
	for _, tt := range tests {
		if got, err := ParseLogTime(tt.in, now); err != nil || got != tt.want {
			t.Errorf("ParseLogTime(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseLogTime("yesterday", now); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParseLogTime(%q) error = %v, want ErrInvalidArgument", "yesterday", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
