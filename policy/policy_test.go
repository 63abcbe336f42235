package policy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
)

const full = `# every rule
version: 1
images:
  vulnerabilities:
    max_severity: medium
    ignore:
      - id: CVE-2023-4911
        package: glibc
        statement: not reachable, no setuid programs in the image
        expires: 2027-01-01
  max_scan_age: 7d
  min_compliance_score: 70
  registries: [registry.example.com/team, "127.0.0.1:5000", docker.io/library]
  tags: {forbid_latest: true, require_digest: true}
  signatures:
    keys:
      - |
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJkQCfAXl9/ojSB5TJyFpS+RdRS9k
        +//Q1DeG2ZmH61UXTwXpYOpyebqJAFU7xExDGEGO9eOGY0hPlrvDd/sdRQ==
        -----END PUBLIC KEY-----
    min_keys: 1
runtime:
  no_privileged: true
  require_limits: [memory, cpu, pids]
  non_root: true
  no_host_network: true
  host_paths: {allow: [/var/log, /srv/data]}
gates: {build: enforce, push: warn, create: enforce, apply: enforce, pipeline: off}
`

func TestParseFull(t *testing.T) {
	p, err := policy.Parse([]byte(full), "full.yaml")
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	im := p.Images
	if im.Vulnerabilities.MaxSeverity != "medium" || len(im.Vulnerabilities.Ignore) != 1 || time.Duration(*im.MaxScanAge) != 7*24*time.Hour ||
		*im.MinComplianceScore != 70 || len(*im.Registries) != 3 || !im.Tags.ForbidLatest || !im.Tags.RequireDigest {
		t.Errorf("images = %+v", im)
	}
	if ig := im.Vulnerabilities.Ignore[0]; ig.ID != "CVE-2023-4911" || ig.Package != "glibc" || time.Time(ig.Expires).Format(time.DateOnly) != "2027-01-01" {
		t.Errorf("ignore = %+v", ig)
	}
	rt := p.Runtime
	if !rt.NoPrivileged || !rt.NonRoot || !rt.NoHostNetwork || len(rt.RequireLimits) != 3 || len(rt.HostPaths.Allow) != 2 {
		t.Errorf("runtime = %+v", rt)
	}
	if p.Mode(policy.GatePush) != policy.Warn || p.Mode(policy.GatePipeline) != policy.Off || p.Mode(policy.GateApply) != policy.Enforce {
		t.Errorf("gates = %+v", p.Gates)
	}
	if (&policy.Policy{Version: 1}).Mode(policy.GateCreate) != policy.Enforce || (*policy.Policy)(nil).Mode(policy.GateCreate) != policy.Off {
		t.Error("the default mode is enforce with a policy, off without")
	}
	if probs := p.Problems(); len(probs) != 0 {
		t.Errorf("Problems = %q", probs)
	}
}

// The schema describes exactly the fields the Go types read, and the full example validates against it; what
// the parser refuses for its shape, the schema refuses too.
func TestSchemaMatchesTheTypes(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(policy.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("policy.json", schema); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("policy.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(full), "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err := sch.Validate(doc); err != nil {
		t.Errorf("the full policy does not validate against the schema: %v\n%s", err, b)
	}
	for _, bad := range []string{`{"version":2}`, `{"version":1,"images":{"max_severity":"high"}}`, `{"version":1,"signatures":{}}`,
		`{"version":1,"images":{"vulnerabilities":{"max_severity":"high","ignore":[{"id":"X","statement":"s"}]}}}`,
		`{"version":1,"gates":{"push":"maybe"}}`, `{"version":1,"runtime":{"require_limits":["disk"]}}`} {
		doc, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if sch.Validate(doc) == nil {
			t.Errorf("the schema accepts %s", bad)
		}
		if _, err := policy.Parse([]byte(bad), ""); err == nil {
			t.Errorf("Parse accepts %s", bad)
		}
	}
	// Every field of the types, and no other, is a property of the schema, at every level.
	var walk func(where string, typ reflect.Type, node map[string]any)
	walk = func(where string, typ reflect.Type, node map[string]any) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if node["items"] != nil {
			node = node["items"].(map[string]any)
		}
		props, _ := node["properties"].(map[string]any)
		var fields, inSchema []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" || tag == "" {
				continue
			}
			fields = append(fields, tag)
			sub, _ := props[tag].(map[string]any)
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft.PkgPath() == typ.PkgPath() && ft.Name() != "Date" && sub != nil {
				walk(where+"."+tag, ft, sub)
			}
		}
		for k := range props {
			inSchema = append(inSchema, k)
		}
		sort.Strings(fields)
		sort.Strings(inSchema)
		if !slices.Equal(fields, inSchema) {
			t.Errorf("%s: the types have %q, the schema %q", where, fields, inSchema)
		}
	}
	walk("policy", reflect.TypeFor[policy.Policy](), schema)
}

// Bad input is refused with the line and the field, and wraps ErrInvalidArgument; an unknown rule is an error.
func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"", "empty"},
		{"images: {}\n", "line 1: version is missing"},
		{"version: 2\n", "line 1: version 2: this Myrmex reads version 1"},
		{"version: 1\nimages:\n  max_severity: high\n", "line 3: unknown field max_severity in images"},
		{"version: 1\nsignatures:\n  required: true\n", "line 2: unknown field signatures in the policy"},
		{"version: 1\nruntime:\n  no_privilegd: true\n", "line 3: unknown field no_privilegd in runtime"},
		{"version: 1\nimages:\n  vulnerabilities:\n    max_severity: extreme\n", `line 4: images.vulnerabilities.max_severity "extreme"`},
		{"version: 1\nimages:\n  vulnerabilities:\n    max_severity: high\n    ignore:\n      - id: CVE-1\n        expires: 2027-01-01\n", "line 6: ignore CVE-1 has no statement"},
		{"version: 1\nimages:\n  vulnerabilities:\n    max_severity: high\n    ignore:\n      - id: CVE-1\n        statement: fine\n", "line 6: ignore CVE-1 has no expiry"},
		{"version: 1\nimages:\n  vulnerabilities:\n    max_severity: high\n    ignore:\n      - {id: CVE-1, statement: s, expires: someday}\n", `line 6: "someday": want a date`},
		{"version: 1\nimages:\n  min_compliance_score: 101\n", "line 3: images.min_compliance_score 101"},
		{"version: 1\nimages:\n  max_scan_age: soon\n", `line 3: "soon": want a duration`},
		{"version: 1\nimages:\n  max_scan_age: -1h\n", "line 3: images.max_scan_age must be positive"},
		{"version: 1\nimages:\n  registries: [\"https://registry.example.com\"]\n", "line 3: images.registries"},
		{"version: 1\nruntime:\n  require_limits: [disk]\n", `line 3: runtime.require_limits: "disk"`},
		{"version: 1\nruntime:\n  require_limits: [disks]\n", `line 3: runtime.require_limits: "disks": want cpu, memory or pids`},
		{"version: 1\nruntime:\n  host_paths: {allow: [var/log]}\n", `runtime.host_paths.allow: "var/log"`},
		{"version: 1\ngates:\n  push: maybe\n", `line 3: "maybe": want enforce, warn or off`},
		{"version: 1\nimages: [1, 2]\n", "line 2"},
		{"version: 1\n---\nversion: 1\n", "more than one YAML document"},
		{"version: 1\nx: &a [1]\ny: *a\n", "aliases are not allowed"},
		{"version: 1\nimages:\n  tags: {forbid_latest: yes please}\n", "line 3"},
		{"\xff\xfe", "not UTF-8"},
	} {
		_, err := policy.Parse([]byte(c.doc), "p.yaml")
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "p.yaml") {
			t.Errorf("Parse(%q) = %v, want ErrInvalidArgument naming p.yaml and %q", c.doc, err, c.want)
		}
	}
	big := "version: 1\n# " + strings.Repeat("x", policy.MaxFileSize) + "\n"
	if _, err := policy.Parse([]byte(big), ""); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse(2 MiB) = %v", err)
	}
	if _, err := policy.Load(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Load(missing) = %v, want ErrNotFound", err)
	}
	f := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(f, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := policy.Load(f); err != nil || p.File != f {
		t.Errorf("Load = %+v, %v", p, err)
	}
}

// A policy that refuses everything says so.
func TestProblems(t *testing.T) {
	p, err := policy.Parse([]byte("version: 1\nimages:\n  registries: []\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if probs := p.Problems(); len(probs) != 1 || !strings.Contains(probs[0], "every image is refused") {
		t.Errorf("Problems = %q", probs)
	}
	v := p.Evaluate(policy.GatePush, []policy.Image{{Reference: "registry.example.com/a:1", Digest: "sha256:aa"}}, nil, time.Now())
	if v.Allowed || len(v.Violations) != 1 || v.Violations[0].Rule != "images.registries" {
		t.Errorf("verdict = %+v", v)
	}
}

func score(f float64) *float64 { return &f }

func TestEvaluate(t *testing.T) {
	p, err := policy.Parse([]byte(full), "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clean := &policy.Scan{Time: now.Add(-time.Hour), Vulnerabilities: true, ComplianceScore: score(90), Findings: []policy.Finding{
		{ID: "DEBIAN-CVE-2023-4911", Aliases: []string{"CVE-2023-4911"}, Severity: "high", Package: "libc6", SourcePackage: "glibc", Version: "2.36-9"},
		{ID: "CVE-2024-1", Severity: "medium", Package: "zlib1g", Version: "1"},
		{ID: "CVE-2024-2", Severity: "unknown", Package: "zlib1g", Version: "1"},
	}}
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pinned := "registry.example.com/team/app@" + digest
	signed := &policy.SignatureCheck{Signed: []string{"sha256:ab"}}
	for _, c := range []struct {
		name   string
		gate   string
		image  policy.Image
		want   []string // rules broken, in order
		ignore int
	}{
		{"clean, pinned, ignored finding", policy.GateCreate, policy.Image{Reference: pinned, Digest: digest, Scan: clean, Signatures: signed}, nil, 1},
		{"a critical finding", policy.GatePush, policy.Image{Reference: "registry.example.com/team/app:1", Digest: digest, Scan: &policy.Scan{
			Time: now, Vulnerabilities: true, ComplianceScore: score(90), Findings: []policy.Finding{{ID: "CVE-2024-9", Severity: "CRITICAL", Package: "openssl", Version: "3.0", FixedVersion: "3.1"}}}},
			[]string{"images.vulnerabilities"}, 0},
		{"another registry, latest implied, old scan, low score", policy.GateCreate, policy.Image{Reference: "quay.io/x/app", Scan: &policy.Scan{
			Time: now.Add(-8 * 24 * time.Hour), Vulnerabilities: true, ComplianceScore: score(50)}},
			[]string{"images.registries", "images.tags.forbid_latest", "images.tags.require_digest", "images.signatures", "images.max_scan_age", "images.min_compliance_score"}, 0},
		{"tags are for the gates that run images", policy.GatePush, policy.Image{Reference: "127.0.0.1:5000/app:latest", Scan: clean}, nil, 1},
		{"Docker Hub's library by its short name", policy.GateApply, policy.Image{Reference: "nginx@" + digest, Scan: clean, Signatures: signed}, nil, 1},
		{"a prefix is not a prefix of another name", policy.GatePush, policy.Image{Reference: "registry.example.com/teamster/app:1", Scan: clean}, []string{"images.registries"}, 1},
		{"not scanned", policy.GateBuild, policy.Image{Reference: "registry.example.com/team/app:1"},
			[]string{"images.vulnerabilities", "images.max_scan_age", "images.min_compliance_score"}, 0},
		{"compliance only", policy.GateBuild, policy.Image{Reference: "registry.example.com/team/app:1", Scan: &policy.Scan{Time: now, ComplianceScore: score(80)}},
			[]string{"images.vulnerabilities"}, 0},
	} {
		v := p.Evaluate(c.gate, []policy.Image{c.image}, nil, now)
		var got []string
		for _, x := range v.Violations {
			got = append(got, x.Rule)
		}
		if !slices.Equal(got, c.want) || len(v.Ignored) != c.ignore || v.Allowed != (len(c.want) == 0) || v.Policy != "full.yaml" {
			t.Errorf("%s: violations %q, ignored %d, allowed %v; want %q, %d", c.name, got, len(v.Ignored), v.Allowed, c.want, c.ignore)
		}
		err := v.Err()
		if v.Mode == policy.Enforce && len(c.want) > 0 && (!errors.Is(err, errdefs.ErrPolicyViolation) || !strings.Contains(err.Error(), c.want[0])) {
			t.Errorf("%s: Err = %v", c.name, err)
		}
		if v.Mode == policy.Warn && err != nil {
			t.Errorf("%s: a warning gate refused: %v", c.name, err)
		}
	}

	// The refusal names the rule, the image by digest and the finding.
	v := p.Evaluate(policy.GateCreate, []policy.Image{{Reference: "registry.example.com/team/app@" + digest, Digest: digest, Scan: &policy.Scan{
		Time: now, Vulnerabilities: true, ComplianceScore: score(90), Findings: []policy.Finding{{ID: "CVE-2024-9", Severity: "critical", Package: "openssl", Version: "3.0", FixedVersion: "3.1"}}}}}, nil, now)
	want := "images.vulnerabilities: registry.example.com/team/app@" + digest + ": CVE-2024-9 (critical, above medium) in openssl 3.0, fixed in 3.1"
	if err := v.Err(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Err = %v\nwant it to hold %q", err, want)
	}

	// An expired ignore counts again, and says so.
	later := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clean.Time = later
	v = p.Evaluate(policy.GateCreate, []policy.Image{{Reference: pinned, Digest: digest, Scan: clean}}, nil, later)
	if v.Allowed || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "expired on 2027-01-01") {
		t.Errorf("expired ignore: %+v", v)
	}

	// Many findings are counted past the bound.
	many := &policy.Scan{Time: now, Vulnerabilities: true, ComplianceScore: score(90)}
	for range 250 {
		many.Findings = append(many.Findings, policy.Finding{ID: "CVE-X", Severity: "high"})
	}
	v = p.Evaluate(policy.GatePush, []policy.Image{{Reference: pinned, Scan: many}}, nil, now)
	if n := len(v.Violations); n != 101 || !strings.Contains(v.Violations[100].Finding, "and 150 more") {
		t.Errorf("%d violations, the last %+v", n, v.Violations[n-1])
	}
}

func TestEvaluateContainers(t *testing.T) {
	p, err := policy.Parse([]byte(full), "")
	if err != nil {
		t.Fatal(err)
	}
	ok := policy.Container{Name: "web", User: "1000:1000", CPU: true, Memory: true, Pids: true, HostPaths: []string{"/var/log/app", "/srv/data"}}
	if v := p.Evaluate(policy.GateCreate, nil, []policy.Container{ok}, time.Now()); !v.Allowed {
		t.Errorf("a compliant container: %+v", v.Violations)
	}
	for _, c := range []struct {
		c    policy.Container
		want []string
	}{
		{policy.Container{Name: "a", User: "app", Privileged: true, HostNetwork: true, CPU: true, Memory: true, Pids: true},
			[]string{"runtime.no_privileged", "runtime.no_host_network"}},
		{policy.Container{Name: "b", User: "", Memory: true, Pids: true}, []string{"runtime.require_limits", "runtime.non_root"}},
		{policy.Container{Name: "p", User: "1", Memory: true, CPU: true}, []string{"runtime.require_limits"}},
		{policy.Container{Name: "c", User: "00:1", CPU: true, Memory: true, Pids: true}, []string{"runtime.non_root"}},
		{policy.Container{Name: "d", User: "root", CPU: true, Memory: true, Pids: true}, []string{"runtime.non_root"}},
		{policy.Container{Name: "e", User: "10", CPU: true, Memory: true, Pids: true, HostPaths: []string{"/var/logger", "/", "/var/log/../../etc"}},
			[]string{"runtime.host_paths", "runtime.host_paths", "runtime.host_paths"}},
	} {
		v := p.Evaluate(policy.GateCreate, nil, []policy.Container{c.c}, time.Now())
		var got []string
		for _, x := range v.Violations {
			got = append(got, x.Rule)
			if x.Container != c.c.Name {
				t.Errorf("violation %+v does not name the container", x)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.c.Name, got, c.want)
		}
	}
}
