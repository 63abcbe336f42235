package containerization_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/yamlout"
)

// fuzzContainerConfigs are ContainerConfig files in the specification's JSON and YAML forms, valid and not.
var fuzzContainerConfigs = []string{
	`{"image": "nginx:1.27", "name": "web"}`,
	`{"image": "nginx:1.27", "name": "/web", "command": ["nginx", "-g", "daemon off;"],
	  "environment": {"A": "1", "EMPTY": ""}, "ports": {"80/tcp": "127.0.0.1:8080", "443": 8443, "53/udp": "",
	  "8000-8002/tcp": "[::1]:18000-18002"}, "volumes": {"data": "/var/lib/data", "/srv/conf": "/etc/app:ro",
	  "./rel": {"bind": "/rel", "mode": "rw"}}, "networks": ["front", "back"],
	  "resources": {"cpu_limit": "0.5", "memory_limit": "256m", "cpu_reservation": "250m", "memory_reservation": "128MiB"},
	  "restart_policy": "on-failure:3", "labels": {"team": "a"}}`,
	"image: alpine:3.20\nname: job\ncommand: [sh, -c, 'echo hi']\nrestart_policy: unless-stopped\n",
	"image: alpine\nname: web\nports:\n  8080/tcp: 18080\n  9000: \"\"\nvolumes:\n  cache: /cache\n  /tmp: {bind: /host-tmp, mode: ro}\n",
	"image: alpine\nname: web\nnetworks: [host]\n",
	"image: alpine\nname: web\nnetworks: [host, other]\n",
	"image: alpine\nname: web\nnetworks: [a, a]\n",
	"image: alpine\nname: web\nresources: {cpu_limit: 5m}\n",
	"image: alpine\nname: web\nresources: {cpu_limit: NaN}\n",
	"image: alpine\nname: web\nresources: {memory_limit: 1k}\n",
	"image: alpine\nname: web\nresources: {cpu_limit: '1', cpu_reservation: '2'}\n",
	"image: alpine\nname: web\nrestart_policy: always:3\n",
	"image: alpine\nname: web\nports: {99999/tcp: 1}\n",
	"image: alpine\nname: web\nports: {80/icmp: 1}\n",
	"image: alpine\nname: web\nports: {8000-8001: 9000}\n",
	"image: alpine\nname: web\nvolumes: {data: relative/path}\n",
	"image: alpine\nname: web\nvolumes: {data: '/x:z'}\n",
	"image: alpine\nname: web\nvolumes: {a: /same, b: /same/}\n",
	"image: alpine\nname: web\nvolumes: {'bad name': /x}\n",
	"image: alpine\nname: web\nenvironment: {'A=B': x, 'NUL': \"a\\0b\"}\n",
	"image: alpine\nname: web\nlabels: {'': x}\n",
	"image: alpine\nname: web\nunknown_field: 1\n",
	"image: alpine\nname: web\nimage: twice\n",
	"name: noimage\n",
	"image: alpine\n",
	"image: alpine\nname: '-bad'\n",
	`{"image": "alpine", "name": "web", "ports": null, "volumes": null, "command": []}`,
	`{"image": "alpine", "name": "web", "volumes": {"data": {"bind": "/srv/a:b"}, "/host": {"bind": "/data:ro"}}}`,
	`{"image": 1}`,
	`[]`,
	``,
	`null`,
}

// fuzzSameConfig reports whether two configs are equal, an empty map or list being the same as none (PortBindings
// decodes a JSON null as an empty map).
func fuzzSameConfig(a, b containerization.ContainerConfig) bool {
	norm := func(c containerization.ContainerConfig) containerization.ContainerConfig {
		if len(c.Command) == 0 {
			c.Command = nil
		}
		if len(c.Environment) == 0 {
			c.Environment = nil
		}
		if len(c.Ports) == 0 {
			c.Ports = nil
		}
		if len(c.Volumes) == 0 {
			c.Volumes = nil
		}
		if len(c.Networks) == 0 {
			c.Networks = nil
		}
		if len(c.Labels) == 0 {
			c.Labels = nil
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// FuzzContainerConfig decodes arbitrary bytes as a ContainerConfig, in JSON (encoding/json) and in the YAML or
// JSON of a config file (sigs.k8s.io/yaml's UnmarshalStrict, as `myrmex container create -f` reads it), and
// validates it as the create operation does. Neither decoding nor validation panics; a refusal wraps
// errdefs.ErrInvalidArgument; and a config that validates, encoded to JSON (and to YAML) and decoded again, is
// equal to it (an empty map or list being the same as none) and validates again.
func FuzzContainerConfig(f *testing.F) {
	for _, s := range fuzzContainerConfigs {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"image": "nginx", "name": "web"}`), "web")
	f.Add([]byte(`{"image": "nginx", "name": "web"}`), "other")
	f.Add([]byte(`{"image": "nginx"}`), "/web")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		var fromJSON, fromFile containerization.ContainerConfig
		decoded := map[string]*containerization.ContainerConfig{}
		if json.Unmarshal(data, &fromJSON) == nil {
			decoded["encoding/json"] = &fromJSON
		}
		if yaml.UnmarshalStrict(data, &fromFile) == nil {
			decoded["config file"] = &fromFile
		}
		for form, cfg := range decoded {
			err := cfg.Validate(name)
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("%s: Validate error %v does not wrap ErrInvalidArgument", form, err)
				}
				continue
			}
			fuzzRoundTrip(t, form, *cfg, name)
		}
	})
}

// FuzzContainerConfigFields builds a ContainerConfig from arbitrary field values (the values a caller of the
// library or the CLI's flags put in it) and validates it: validation never panics, a refusal wraps
// errdefs.ErrInvalidArgument, and a config that validates survives the JSON and the YAML round trip equal and
// valid. It reaches valid configs far more often than FuzzContainerConfig's bytes do.
func FuzzContainerConfigFields(f *testing.F) {
	f.Add("nginx:1.27", "web", "nginx -g daemon-off", "A", "1", "80/tcp", "127.0.0.1:8080", "data", "/var/lib/data",
		"", "front", "0.5", "256m", "250m", "128m", "on-failure:3", "team", "a")
	f.Add("alpine", "/job", "", "", "", "8000-8002", "[::1]:18000-18002", "/srv/conf", "/etc/app", "ro", "host",
		"2", "1g", "", "", "unless-stopped", "", "")
	f.Add("alpine", "job", "sh", "PATH", "/bin", "53/udp", "", "./rel", "/rel", "rw", "", "500m", "512MiB", "1", "1g",
		"always", "k", "")
	f.Add("alpine", "job", "", "", "", "", "", "data", "/srv/a:b", "", "", "", "", "", "", "", "", "")
	f.Add("alpine", "job", "", "", "", "9000", "18080", "~/x", "/x", "readonly", "container:other", "4096", "6m",
		"1m", "6m", "no", "", "")
	f.Fuzz(func(t *testing.T, image, name, command, envKey, envValue, portKey, portValue, volKey, volBind, volMode,
		network, cpuLimit, memLimit, cpuRes, memRes, restart, labelKey, labelValue string) {
		cfg := containerization.ContainerConfig{
			Image:         image,
			Name:          name,
			Command:       strings.Fields(command),
			Resources:     containerization.Resources{CPULimit: cpuLimit, MemoryLimit: memLimit, CPUReservation: cpuRes, MemoryReservation: memRes},
			RestartPolicy: restart,
		}
		if envKey != "" || envValue != "" {
			cfg.Environment = map[string]string{envKey: envValue}
		}
		if portKey != "" {
			cfg.Ports = containerization.PortBindings{portKey: portValue}
		}
		if volKey != "" {
			cfg.Volumes = map[string]containerization.VolumeMount{volKey: {Bind: volBind, Mode: volMode}}
		}
		if network != "" {
			cfg.Networks = []string{network}
		}
		if labelKey != "" || labelValue != "" {
			cfg.Labels = map[string]string{labelKey: labelValue}
		}
		if err := cfg.Validate(""); err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Validate error %v does not wrap ErrInvalidArgument", err)
			}
			return
		}
		fuzzRoundTrip(t, "fields", cfg, "")
	})
}

// fuzzRoundTrip checks that a config that validates, encoded to JSON and to YAML and decoded again, is the same
// config and validates again.
func fuzzRoundTrip(t *testing.T, form string, cfg containerization.ContainerConfig, name string) {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("%s: a valid config does not encode: %v", form, err)
	}
	var again containerization.ContainerConfig
	if err := json.Unmarshal(js, &again); err != nil {
		t.Fatalf("%s: the config encoded as %s does not decode: %v", form, js, err)
	}
	if err := again.Validate(name); err != nil {
		t.Fatalf("%s: the valid config %+v, encoded as %s, decodes to %+v, which does not validate: %v",
			form, cfg, js, again, err)
	}
	if !fuzzSameConfig(again, cfg) {
		t.Fatalf("%s: the config %+v, encoded as %s, decodes to %+v", form, cfg, js, again)
	}

	// As myrmex -o yaml writes it.
	ys, err := yamlout.Marshal(cfg)
	if err != nil {
		t.Fatalf("%s: a valid config does not encode as YAML: %v", form, err)
	}
	var fromYAML containerization.ContainerConfig
	if err := yaml.UnmarshalStrict(ys, &fromYAML); err != nil {
		t.Fatalf("%s: the config written as YAML\n%s\ndoes not read back: %v", form, ys, err)
	}
	if !fuzzSameConfig(fromYAML, cfg) {
		t.Fatalf("%s: the config %+v, written as YAML\n%s\nreads back as %+v", form, cfg, ys, fromYAML)
	}
}
