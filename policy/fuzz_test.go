package policy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
)

// FuzzPolicy: a policy file either is refused with ErrInvalidArgument, or it parses to a policy whose JSON the
// schema accepts, that lists its rules and evaluates any image and container without panicking, the same way
// twice.
func FuzzPolicy(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("version: 1\n"))
	f.Add([]byte("version: 1\nimages:\n  registries: []\n"))
	f.Add([]byte("version: 1\nimages:\n  vulnerabilities: {max_severity: none, ignore: [{id: X, statement: s, expires: 2030-01-01}]}\n"))
	f.Add([]byte("version: 1\nruntime: {host_paths: {allow: [/]}, require_limits: [pids]}\ngates: {apply: warn}\n"))
	f.Add([]byte("version: 1\nx: &a [1]\ny: *a\n"))
	f.Add([]byte("version: 1\nimages:\n  signatures: {keys: [testdata/release.pub], min_keys: 1}\n"))
	var schema map[string]any
	if err := json.Unmarshal(policy.Schema, &schema); err != nil {
		f.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.json", schema); err != nil {
		f.Fatal(err)
	}
	sch, err := c.Compile("policy.json")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	score := 50.0
	images := []policy.Image{
		{Reference: "registry.example.com/team/app:1", Digest: "sha256:aa", Scan: &policy.Scan{Time: now.Add(-time.Hour), Vulnerabilities: true,
			ComplianceScore: &score, Findings: []policy.Finding{{ID: "CVE-1", Aliases: []string{"X"}, Severity: "high", Package: "p"}}}},
		{Reference: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	}
	containers := []policy.Container{{Name: "c", User: "+0", HostPaths: []string{"/etc"}, Privileged: true}}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := policy.Parse(doc, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Parse = %v, want ErrInvalidArgument", err)
			}
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Fatalf("the parser accepted %q, which the schema refuses: %v\n%s", doc, err, b)
		}
		_ = p.Rules()
		_ = p.Problems()
		for _, gate := range []string{policy.GateBuild, policy.GatePush, policy.GateCreate, policy.GateApply} {
			a := p.Evaluate(gate, images, containers, now)
			b := p.Evaluate(gate, images, containers, now)
			if len(a.Violations) != len(b.Violations) || a.Allowed != b.Allowed {
				t.Fatalf("Evaluate is not deterministic: %+v, %+v", a, b)
			}
		}
	})
}
