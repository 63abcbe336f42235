package cli

import (
	"errors"
	"testing"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
)

func TestParsePublish(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, key, binding string
	}{
		{"8080/tcp=127.0.0.1:18080", "8080/tcp", "127.0.0.1:18080"},
		{"8080=18080", "8080", "18080"},
		{"9000/tcp=", "9000/tcp", ""},
		{"8080/tcp=[::1]:18080", "8080/tcp", "[::1]:18080"},
		{"127.0.0.1:18080:8080/tcp", "8080/tcp", "127.0.0.1:18080"},
		{"18080:8080", "8080", "18080"},
		{"8080", "8080", ""},
		{"53/udp", "53/udp", ""},
		{"127.0.0.1::8080", "8080", "127.0.0.1:"},
		{"[::1]:18080:8080/tcp", "8080/tcp", "[::1]:18080"},
		{"8000-8002:8000-8002", "8000-8002", "8000-8002"},
	} {
		key, binding, err := parsePublish(tc.in)
		if err != nil || key != tc.key || binding != tc.binding {
			t.Errorf("parsePublish(%q) = %q, %q, %v; want %q, %q, nil", tc.in, key, binding, err, tc.key, tc.binding)
		}
	}
	for _, in := range []string{"=18080", "18080:", "", "/tcp"} {
		if _, _, err := parsePublish(in); !errors.Is(err, containerization.ErrInvalidArgument) {
			t.Errorf("parsePublish(%q) = %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestParseVolume(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, source string
		mount      engine.VolumeMount
	}{
		{"data:/var/lib/data", "data", engine.VolumeMount{Bind: "/var/lib/data"}},
		{"./site:/www:ro", "./site", engine.VolumeMount{Bind: "/www", Mode: "ro"}},
		{"/srv/conf:/etc/app:rw", "/srv/conf", engine.VolumeMount{Bind: "/etc/app", Mode: "rw"}},
	} {
		source, m, err := parseVolume(tc.in)
		if err != nil || source != tc.source || m != tc.mount {
			t.Errorf("parseVolume(%q) = %q, %+v, %v; want %q, %+v, nil", tc.in, source, m, err, tc.source, tc.mount)
		}
	}
	for _, in := range []string{"/data", ":/data", "data:", ""} {
		if _, _, err := parseVolume(in); !errors.Is(err, containerization.ErrInvalidArgument) {
			t.Errorf("parseVolume(%q) = %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestParseKeyValues(t *testing.T) {
	t.Setenv("MYRMEX_CLI_TEST_PASS", "passed")
	m := map[string]string{"KEEP": "1"}
	err := parseKeyValues("env", []string{"A=1", "B=", "C=x=y", "MYRMEX_CLI_TEST_PASS", "MYRMEX_CLI_TEST_UNSET"}, m, true)
	want := map[string]string{"KEEP": "1", "A": "1", "B": "", "C": "x=y", "MYRMEX_CLI_TEST_PASS": "passed"}
	if err != nil || len(m) != len(want) {
		t.Fatalf("parseKeyValues(env) = %v, %v; want %v", m, err, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("parseKeyValues(env)[%q] = %q, want %q", k, m[k], v)
		}
	}
	for _, in := range []string{"novalue", "=v"} {
		if err := parseKeyValues("label", []string{in}, map[string]string{}, false); !errors.Is(err, containerization.ErrInvalidArgument) {
			t.Errorf("parseKeyValues(label, %q) = %v, want ErrInvalidArgument", in, err)
		}
	}
}
