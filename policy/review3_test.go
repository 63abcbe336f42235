package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
)

func review3Parse(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(src), "p.yaml")
	if err != nil {
		t.Fatalf("Parse(%q) = %v", src, err)
	}
	return p
}

// A user the runtime reads as UID 0 is root however it is spelt: a sign ("+0", "-0", Go's and libcontainer's
// Atoi take it), or a UID that is 0 once truncated to 32 bits (containerd's WithUser does uint32(v)).
func TestReview3NonRootNumericSpellings(t *testing.T) {
	p := review3Parse(t, "version: 1\nruntime: {non_root: true}\n")
	for _, u := range []string{"+0", "-0", "+00:0", " 0", "0 ", "4294967296", "+4294967296:1"} {
		v := p.Evaluate(policy.GateCreate, nil, []policy.Container{{Name: "c", User: u}}, time.Now())
		if v.Allowed {
			t.Errorf("user %q is allowed by non_root, want refused", u)
		}
	}
	for _, u := range []string{"1000", "1000:0", "app", "4294967297"} {
		if v := p.Evaluate(policy.GateCreate, nil, []policy.Container{{Name: "c", User: u}}, time.Now()); !v.Allowed {
			t.Errorf("user %q refused: %v", u, v.Violations)
		}
	}
}

// An image ID ("sha256:<hex>", or the 64 hex digits alone) names no registry: the engine reads it as an ID,
// whatever image that is, so it is not from docker.io because its spelling parses as library/sha256.
func TestReview3ImageIDIsNoRegistry(t *testing.T) {
	p := review3Parse(t, "version: 1\nimages: {registries: [docker.io]}\n")
	for _, ref := range []string{"sha256:" + strings.Repeat("ab", 32), strings.Repeat("ab", 32)} {
		v := p.Evaluate(policy.GateCreate, []policy.Image{{Reference: ref}}, nil, time.Now())
		if v.Allowed {
			t.Errorf("image ID %s allowed by registries [docker.io]", ref)
		}
	}
	if v := p.Evaluate(policy.GateCreate, []policy.Image{{Reference: "nginx:1"}}, nil, time.Now()); !v.Allowed {
		t.Errorf("nginx:1 refused: %v", v.Violations)
	}
}

// A registry host is compared as hosts are, whatever its case; a repository path is not.
func TestReview3RegistryHostCase(t *testing.T) {
	p := review3Parse(t, "version: 1\nimages: {registries: [Registry.Example.com/team, \"LocalHost:5000\"]}\n")
	for ref, want := range map[string]bool{
		"registry.example.com/team/app:1":       true,
		"REGISTRY.example.com/team/app:1":       true,
		"localhost:5000/app:1":                  true,
		"registry.example.com/teamx/app:1":      false,
		"registry.example.com.evil.io/team/a:1": false,
	} {
		v := p.Evaluate(policy.GateCreate, []policy.Image{{Reference: ref}}, nil, time.Now())
		if v.Allowed != want {
			t.Errorf("%s: allowed %v, want %v (%v)", ref, v.Allowed, want, v.Violations)
		}
	}
}

// A rule written without a value (YAML null) is refused with its line: `registries:` with its entries
// commented out would otherwise allow every registry, the opposite of `registries: []`.
func TestReview3NullRuleRefused(t *testing.T) {
	for _, c := range []struct{ src, line, field string }{
		{"version: 1\nimages:\n  registries:\n  # - registry.example.com\n", "line 3", "registries"},
		{"version: 1\nimages:\n  vulnerabilities: ~\n", "line 3", "vulnerabilities"},
		{"version: 1\nruntime:\n  host_paths: null\n", "line 3", "host_paths"},
		{"version: 1\nruntime:\n", "line 2", "runtime"},
	} {
		_, err := policy.Parse([]byte(c.src), "p.yaml")
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.line) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Parse(%q) = %v, want ErrInvalidArgument naming %s and %s", c.src, err, c.line, c.field)
		}
	}
}

// require_limits names each limit once: a million "cpu" would make a million violations per container.
func TestReview3RequireLimitsOnce(t *testing.T) {
	_, err := policy.Parse([]byte("version: 1\nruntime:\n  require_limits: [cpu, memory, cpu]\n"), "p.yaml")
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Parse = %v, want ErrInvalidArgument at line 3", err)
	}
}
