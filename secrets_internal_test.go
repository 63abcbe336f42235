package containerization

import (
	"errors"
	"testing"

	"github.com/codomyrmex/containerization/engine"
)

type mapSecrets map[string]string

func (m mapSecrets) Secret(name string) (string, bool, error) { v, ok := m[name]; return v, ok, nil }

func TestResolveSecrets(t *testing.T) {
	src := mapSecrets{"db": "s3cret", "api": "t0ken"}
	cfg := &ContainerConfig{Image: "x", Environment: map[string]string{"A": "secret:db", "B": "plain", "C": "secret:api"}}
	out, err := resolveSecrets(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	if out.Environment["A"] != "s3cret" || out.Environment["C"] != "t0ken" || out.Environment["B"] != "plain" || out.Labels[engine.SecretEnvLabel] != "A,C" {
		t.Errorf("resolved = %+v", out)
	}
	if cfg.Environment["A"] != "secret:db" || cfg.Labels != nil {
		t.Errorf("the caller's config changed: %+v", cfg)
	}
	if same, _ := resolveSecrets(&ContainerConfig{Environment: map[string]string{"B": "plain"}}, nil); same == nil {
		t.Error("a config without secrets needs no store")
	}
	if _, err := resolveSecrets(cfg, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no store = %v", err)
	}
	if _, err := resolveSecrets(&ContainerConfig{Environment: map[string]string{"A": "secret:none"}}, src); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing secret = %v", err)
	}
	spoof := &ContainerConfig{Environment: map[string]string{"A": "secret:db"}, Labels: map[string]string{engine.SecretEnvLabel: "B"}}
	if _, err := resolveSecrets(spoof, src); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a config setting Myrmex's secret label = %v", err)
	}
}
