// Package policy is Myrmex's one policy: a versioned YAML file that says which images may be built, pushed, run
// and deployed, and how containers may run, evaluated the same way at every gate (build, push, container create,
// Kubernetes apply, pipeline). A refusal is an [*Error] wrapping errdefs.ErrPolicyViolation that names the rule,
// the image (by digest) and the finding, with the whole [Verdict].
//
//	version: 1
//	images:
//	  vulnerabilities:
//	    max_severity: medium        # high and critical findings are refused
//	    ignore:
//	      - id: CVE-2023-4911
//	        statement: not reachable, no setuid programs in the image
//	        expires: 2027-01-01
//	  max_scan_age: 24h
//	  min_compliance_score: 70
//	  registries: [registry.example.com/team, "127.0.0.1:5000"]
//	  tags: {forbid_latest: true, require_digest: false}
//	  signatures: {keys: [release.pub]}   # cosign signatures by these keys (package signature)
//	runtime:
//	  no_privileged: true
//	  require_limits: [memory, cpu]
//	  non_root: true
//	  no_host_network: true
//	  host_paths: {allow: [/var/log]}
//	gates: {push: warn}
//
// Each rule applies only when it is written: an empty policy allows everything. The schema is [Schema]
// (docs/policy.md says each rule in words).
package policy

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/strictyaml"
	"github.com/codomyrmex/containerization/signature"
)

// Version is the policy format this package reads.
const Version = 1

// MaxFileSize bounds a policy file.
const MaxFileSize = 1 << 20

// Bounds on the lists of a policy.
const (
	maxIgnores = 10000
	maxList    = 1000
	maxKeys    = 100
)

// Schema is the policy format's JSON Schema (draft 2020-12).
//
//go:embed schema.json
var Schema []byte

// Policy is one policy file.
type Policy struct {
	Version int      `yaml:"version" json:"version"`
	Images  *Images  `yaml:"images,omitempty" json:"images,omitempty"`
	Runtime *Runtime `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	Gates   *Gates   `yaml:"gates,omitempty" json:"gates,omitempty"`
	// File is where the policy was read from ("" when parsed from bytes).
	File string `yaml:"-" json:"-"`
}

// Images are the rules an image is held to wherever it is used.
type Images struct {
	Vulnerabilities *Vulnerabilities `yaml:"vulnerabilities,omitempty" json:"vulnerabilities,omitempty"`
	// MaxScanAge is the oldest scan accepted ("24h", "7d"); an older one is scanned again where the gate can, and
	// refused where it cannot.
	MaxScanAge *Duration `yaml:"max_scan_age,omitempty" json:"max_scan_age,omitempty"`
	// MinComplianceScore is the lowest compliance score accepted (0–100).
	MinComplianceScore *float64 `yaml:"min_compliance_score,omitempty" json:"min_compliance_score,omitempty"`
	// Registries, when written, are where images may come from: a registry host ("registry.example.com",
	// "127.0.0.1:5000") or a repository prefix ("registry.example.com/team"). An empty list allows none.
	Registries *[]string   `yaml:"registries,omitempty" json:"registries,omitempty"`
	Tags       *Tags       `yaml:"tags,omitempty" json:"tags,omitempty"`
	Signatures *Signatures `yaml:"signatures,omitempty" json:"signatures,omitempty"`
}

// Signatures requires images to be signed (cosign's format, see package signature) by these keys: a signature of
// the image's digest, in its registry, over a payload naming that digest. Held where images run (create, apply,
// pipeline) and at a copy, whose source is in a registry; not at build or push, before an image is in one.
type Signatures struct {
	// Keys are the public keys (PKIX PEM, as cosign.pub): file names, relative to the policy file, or the PEM
	// text itself. They are read when the policy is.
	Keys []string `yaml:"keys" json:"keys"`
	// MinKeys is how many different keys of the list must have signed the digest; 0 means 1, any one of them.
	MinKeys int `yaml:"min_keys,omitempty" json:"min_keys,omitempty"`

	keys []*signature.Key
}

// PublicKeys are the keys read from Keys.
func (s *Signatures) PublicKeys() []*signature.Key { return s.keys }

// Need is how many different keys must have signed.
func (s *Signatures) Need() int { return max(s.MinKeys, 1) }

// Vulnerabilities says which findings an image may carry.
type Vulnerabilities struct {
	// MaxSeverity is the highest severity allowed: critical, high, medium, low, or none (no finding at all, of
	// any severity, unknown included). Findings of unknown severity rank below low.
	MaxSeverity string `yaml:"max_severity" json:"max_severity"`
	// Ignore are findings accepted, each with why and until when.
	Ignore []Ignore `yaml:"ignore,omitempty" json:"ignore,omitempty"`
}

// Ignore accepts the findings of one vulnerability, as an entry of Trivy's .trivyignore.yaml does; the statement
// and the expiry are required.
type Ignore struct {
	// ID is any id of the vulnerability: its record's, its CVE, another alias.
	ID string `yaml:"id" json:"id"`
	// Package narrows the ignore to one package (binary or source name).
	Package   string `yaml:"package,omitempty" json:"package,omitempty"`
	Statement string `yaml:"statement" json:"statement"`
	// Expires is the day (UTC) from which the finding counts again.
	Expires Date `yaml:"expires" json:"expires"`
}

// Tags are rules on how an image is named.
type Tags struct {
	// ForbidLatest refuses the tag latest, written or implied.
	ForbidLatest bool `yaml:"forbid_latest,omitempty" json:"forbid_latest,omitempty"`
	// RequireDigest refuses references without a digest (name@sha256:…).
	RequireDigest bool `yaml:"require_digest,omitempty" json:"require_digest,omitempty"`
}

// Runtime are the rules a container is held to when it is created.
type Runtime struct {
	NoPrivileged bool `yaml:"no_privileged,omitempty" json:"no_privileged,omitempty"`
	// RequireLimits are the limits every container must set: cpu, memory, pids.
	RequireLimits []string `yaml:"require_limits,omitempty" json:"require_limits,omitempty"`
	// NonRoot refuses containers that would run as root (the container's user, else the image's).
	NonRoot       bool `yaml:"non_root,omitempty" json:"non_root,omitempty"`
	NoHostNetwork bool `yaml:"no_host_network,omitempty" json:"no_host_network,omitempty"`
	// HostPaths, when written, are the only host paths (and what is below them) a container may mount.
	HostPaths *HostPaths `yaml:"host_paths,omitempty" json:"host_paths,omitempty"`
}

// HostPaths is the allow-list of host paths.
type HostPaths struct {
	Allow []string `yaml:"allow" json:"allow"`
}

// Gates says what each gate does with a refusal: enforce (the default: the operation is refused), warn (it goes
// on, and the verdict is in its result), or off (not evaluated).
type Gates struct {
	Build    Mode `yaml:"build,omitempty" json:"build,omitempty"`
	Push     Mode `yaml:"push,omitempty" json:"push,omitempty"`
	Create   Mode `yaml:"create,omitempty" json:"create,omitempty"`
	Apply    Mode `yaml:"apply,omitempty" json:"apply,omitempty"`
	Pipeline Mode `yaml:"pipeline,omitempty" json:"pipeline,omitempty"`
}

// Mode is what a gate does with a refusal.
type Mode string

// The modes.
const (
	Enforce Mode = "enforce"
	Warn    Mode = "warn"
	Off     Mode = "off"
)

// The gates.
const (
	GateBuild    = "build"
	GatePush     = "push"
	GateCreate   = "create"
	GateApply    = "apply"
	GatePipeline = "pipeline"
)

// Mode is what gate does with a refusal under p.
func (p *Policy) Mode(gate string) Mode {
	if p == nil {
		return Off
	}
	var m Mode
	if p.Gates != nil {
		switch gate {
		case GateBuild:
			m = p.Gates.Build
		case GatePush:
			m = p.Gates.Push
		case GateCreate:
			m = p.Gates.Create
		case GateApply:
			m = p.Gates.Apply
		case GatePipeline:
			m = p.Gates.Pipeline
		}
	}
	if m == "" {
		return Enforce
	}
	return m
}

// Duration is a length of time written as Go writes it ("90m", "24h") or in days ("7d").
type Duration time.Duration

// Date is a day, written 2027-01-01 (or as an RFC 3339 time).
type Date time.Time

// Load reads and checks a policy file. A file that does not exist wraps errdefs.ErrNotFound; anything wrong in
// it wraps errdefs.ErrInvalidArgument and names the file, the line and the field.
func Load(file string) (*Policy, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: policy file %s does not exist", errdefs.ErrNotFound, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: policy file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading policy file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	p, err := Parse(data, file)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Parse reads and checks a policy; name says where it came from, for messages.
func Parse(data []byte, name string) (*Policy, error) {
	if name == "" {
		name = "policy"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", errdefs.ErrInvalidArgument, name, fmt.Sprintf(format, args...))
	}
	var p Policy
	root, err := strictyaml.Decode(data, &p, strictyaml.Options{MaxSize: MaxFileSize, MaxDepth: 16, What: "a policy", Friendly: friendly})
	if err != nil {
		if err.Error() == "empty" {
			return nil, bad("empty: a policy starts with `version: %d`", Version)
		}
		return nil, bad("%v", err)
	}
	p.File = name
	if p.Version != Version {
		line := fieldLine(root, "version")
		if p.Version == 0 {
			return nil, bad("line %d: version is missing: a policy starts with `version: %d`", line, Version)
		}
		return nil, bad("line %d: version %d: this Myrmex reads version %d", line, p.Version, Version)
	}
	if err := p.validate(root); err != nil {
		return nil, bad("%v", err)
	}
	return &p, nil
}

// friendly rewrites yaml.v3's "field x not found in type policy.Images" as "unknown field x in images".
func friendly(msg string) string {
	if i := strings.Index(msg, " not found in type policy."); i > 0 {
		typ := msg[i+len(" not found in type policy."):]
		where := map[string]string{"Policy": "the policy", "Images": "images", "Vulnerabilities": "images.vulnerabilities",
			"Ignore": "an ignore", "Tags": "images.tags", "Signatures": "images.signatures", "Runtime": "runtime", "HostPaths": "runtime.host_paths", "Gates": "gates"}[typ]
		if where == "" {
			where = typ
		}
		return strings.Replace(msg[:i], "field ", "unknown field ", 1) + " in " + where + " (a rule this Myrmex does not know: see `myrmex policy schema`)"
	}
	return msg
}

// validate checks what the types cannot: values, bounds, the keys' files.
func (p *Policy) validate(root *yaml.Node) error {
	if im := p.Images; im != nil {
		if v := im.Vulnerabilities; v != nil {
			if _, ok := severityRank(v.MaxSeverity); !ok {
				return fmt.Errorf("line %d: images.vulnerabilities.max_severity %q: want critical, high, medium, low or none",
					fieldLine(root, "images", "vulnerabilities", "max_severity"), v.MaxSeverity)
			}
			if len(v.Ignore) > maxIgnores {
				return fmt.Errorf("line %d: more than %d ignores", fieldLine(root, "images", "vulnerabilities", "ignore"), maxIgnores)
			}
			ignores := listNode(root, "images", "vulnerabilities", "ignore")
			for i, ig := range v.Ignore {
				line := fieldLine(root, "images", "vulnerabilities", "ignore")
				if ignores != nil && i < len(ignores.Content) {
					line = ignores.Content[i].Line
				}
				switch {
				case strings.TrimSpace(ig.ID) == "":
					return fmt.Errorf("line %d: an ignore without an id", line)
				case strings.TrimSpace(ig.Statement) == "":
					return fmt.Errorf("line %d: ignore %s has no statement: say why the finding is accepted", line, ig.ID)
				case time.Time(ig.Expires).IsZero():
					return fmt.Errorf("line %d: ignore %s has no expiry (expires: YYYY-MM-DD): an accepted finding is looked at again", line, ig.ID)
				}
			}
		}
		if s := im.MinComplianceScore; s != nil && (math.IsNaN(*s) || *s < 0 || *s > 100) {
			return fmt.Errorf("line %d: images.min_compliance_score %v: want 0 to 100", fieldLine(root, "images", "min_compliance_score"), *s)
		}
		if d := im.MaxScanAge; d != nil && *d <= 0 {
			return fmt.Errorf("line %d: images.max_scan_age must be positive", fieldLine(root, "images", "max_scan_age"))
		}
		if r := im.Registries; r != nil {
			if len(*r) > maxList {
				return fmt.Errorf("line %d: more than %d registries", fieldLine(root, "images", "registries"), maxList)
			}
			for _, e := range *r {
				if err := checkRegistry(e); err != nil {
					return fmt.Errorf("line %d: images.registries: %v", fieldLine(root, "images", "registries"), err)
				}
			}
		}
	}
	if im := p.Images; im != nil && im.Signatures != nil {
		if err := im.Signatures.read(root, p.File); err != nil {
			return err
		}
	}
	if rt := p.Runtime; rt != nil {
		for i, l := range rt.RequireLimits {
			if l != "cpu" && l != "memory" && l != "pids" {
				return fmt.Errorf("line %d: runtime.require_limits: %q: want cpu, memory or pids", fieldLine(root, "runtime", "require_limits"), l)
			}
			if slices.Contains(rt.RequireLimits[:i], l) {
				return fmt.Errorf("line %d: runtime.require_limits: %s is written twice", fieldLine(root, "runtime", "require_limits"), l)
			}
		}
		if hp := rt.HostPaths; hp != nil {
			if hp.Allow == nil {
				// An empty allow-list is written `allow: []`; the key left out reads as neither.
				return fmt.Errorf("line %d: runtime.host_paths has no allow: write the paths (allow: [] allows none)", fieldLine(root, "runtime", "host_paths"))
			}
			if len(hp.Allow) > maxList {
				return fmt.Errorf("line %d: more than %d host paths", fieldLine(root, "runtime", "host_paths"), maxList)
			}
			for _, a := range hp.Allow {
				if !path.IsAbs(a) || path.Clean(a) != a || strings.ContainsRune(a, 0) {
					return fmt.Errorf("line %d: runtime.host_paths.allow: %q: want a clean absolute path", fieldLine(root, "runtime", "host_paths", "allow"), a)
				}
			}
		}
	}
	if g := p.Gates; g != nil {
		for _, m := range []struct {
			name string
			mode Mode
		}{{GateBuild, g.Build}, {GatePush, g.Push}, {GateCreate, g.Create}, {GateApply, g.Apply}, {GatePipeline, g.Pipeline}} {
			if m.mode != "" && m.mode != Enforce && m.mode != Warn && m.mode != Off {
				return fmt.Errorf("line %d: gates.%s: %q: want enforce, warn or off", fieldLine(root, "gates", m.name), m.name, m.mode)
			}
		}
	}
	return nil
}

// read reads the keys, relative to the policy file's directory; each key once, each key a public key.
func (s *Signatures) read(root *yaml.Node, file string) error {
	line := fieldLine(root, "images", "signatures", "keys")
	switch {
	case len(s.Keys) == 0:
		return fmt.Errorf("line %d: images.signatures.keys is empty: name the public keys whose signatures are required", line)
	case len(s.Keys) > maxKeys:
		return fmt.Errorf("line %d: more than %d keys", line, maxKeys)
	case s.MinKeys < 0 || s.MinKeys > len(s.Keys):
		return fmt.Errorf("line %d: images.signatures.min_keys %d: want 1 to the number of keys (%d)",
			fieldLine(root, "images", "signatures", "min_keys"), s.MinKeys, len(s.Keys))
	}
	dir := ""
	if file != "" && file != "policy" {
		dir = filepath.Dir(file)
	}
	list := listNode(root, "images", "signatures", "keys")
	s.keys = nil
	for i, k := range s.Keys {
		if list != nil && i < len(list.Content) {
			line = list.Content[i].Line
		}
		key, err := signature.ReadPublicKey(k, dir)
		if err != nil {
			return fmt.Errorf("line %d: images.signatures.keys: %s", line, strings.TrimPrefix(err.Error(), errdefs.ErrInvalidArgument.Error()+": "))
		}
		for _, prev := range s.keys {
			if prev.Fingerprint == key.Fingerprint {
				return fmt.Errorf("line %d: images.signatures.keys: %s is the same key as %s", line, key.Source, prev.Source)
			}
		}
		s.keys = append(s.keys, key)
	}
	return nil
}

// listNode is the sequence node at keys, nil when absent.
func listNode(n *yaml.Node, keys ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, k := range keys {
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
				}
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	if n.Kind != yaml.SequenceNode {
		return nil
	}
	return n
}

// checkRegistry accepts "host", "host:port" and "host[:port]/path" prefixes.
func checkRegistry(e string) error {
	host, rest, _ := strings.Cut(e, "/")
	if host == "" || strings.ContainsAny(e, " \t\n@") || strings.HasSuffix(e, "/") || strings.Contains(e, "://") {
		return fmt.Errorf("%q: want a registry host (host[:port]) or a repository prefix (host/team)", e)
	}
	if h, port, ok := strings.Cut(host, ":"); ok {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || h == "" {
			return fmt.Errorf("%q: bad port", e)
		}
	}
	if rest != "" && (strings.Contains(rest, "//") || rest != strings.ToLower(rest)) {
		return fmt.Errorf("%q: a repository prefix is lower case, one slash between parts", e)
	}
	return nil
}

// Problems are what makes a valid policy refuse every image or every container, said in words; empty when none.
func (p *Policy) Problems() []string {
	var out []string
	if im := p.Images; im != nil {
		if im.Registries != nil && len(*im.Registries) == 0 {
			out = append(out, "images.registries is empty: every image is refused (leave the rule out to allow any registry)")
		}
	}
	return out
}

// severityRank ranks a max_severity; none is below every finding.
func severityRank(s string) (int, bool) {
	switch s {
	case "critical":
		return 4, true
	case "high":
		return 3, true
	case "medium":
		return 2, true
	case "low":
		return 1, true
	case "none":
		return -1, true
	}
	return 0, false
}

// findingRank ranks a finding's severity; unknown below low.
func findingRank(s string) int {
	if r, ok := severityRank(strings.ToLower(s)); ok && r > 0 {
		return r
	}
	return 0
}

// UnmarshalYAML reads "90m", "24h" or "7d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q: want a duration such as 24h or 7d", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go does.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as Go does.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// ParseDuration reads a duration as Go does, or a whole number of days ("7d"), up to 100 years.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("%q: want whole days from 0 to 36500", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// UnmarshalYAML reads 2027-01-01 or an RFC 3339 time.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		for _, layout := range []string{time.DateOnly, time.RFC3339} {
			if t, err := time.Parse(layout, n.Value); err == nil && t.Year() >= 2000 && t.Year() < 10000 {
				*d = Date(t.UTC())
				return nil
			}
		}
	}
	return fmt.Errorf("line %d: %q: want a date, YYYY-MM-DD", n.Line, n.Value)
}

// MarshalYAML writes the day.
func (d Date) MarshalYAML() (any, error) { return time.Time(d).Format(time.DateOnly), nil }

// MarshalJSON writes the day.
func (d Date) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Time(d).Format(time.DateOnly))), nil
}

// UnmarshalYAML reads a mode.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	switch Mode(n.Value) {
	case Enforce, Warn, Off:
		*m = Mode(n.Value)
		return nil
	}
	return fmt.Errorf("line %d: %q: want enforce, warn or off", n.Line, n.Value)
}

// Rule is one rule a policy writes, as `myrmex policy check` lists it.
type Rule struct {
	Rule  string `json:"rule"`
	Value string `json:"value"`
}

// Rules lists the rules p writes, in the file's order of sections.
func (p *Policy) Rules() []Rule {
	var out []Rule
	add := func(rule, format string, args ...any) { out = append(out, Rule{rule, fmt.Sprintf(format, args...)}) }
	if im := p.Images; im != nil {
		if v := im.Vulnerabilities; v != nil {
			add("images.vulnerabilities", "findings above %s are refused, %d ignored by id", v.MaxSeverity, len(v.Ignore))
		}
		if a := im.MaxScanAge; a != nil {
			add("images.max_scan_age", "scans older than %s are not accepted", time.Duration(*a))
		}
		if s := im.MinComplianceScore; s != nil {
			add("images.min_compliance_score", "compliance scores below %g are refused", *s)
		}
		if r := im.Registries; r != nil {
			if len(*r) == 0 {
				add("images.registries", "no registry is allowed")
			} else {
				add("images.registries", "images only from: %s", strings.Join(*r, ", "))
			}
		}
		if t := im.Tags; t != nil && t.ForbidLatest {
			add("images.tags.forbid_latest", "the tag latest is refused where images run")
		}
		if t := im.Tags; t != nil && t.RequireDigest {
			add("images.tags.require_digest", "images run only by digest")
		}
		if sg := im.Signatures; sg != nil {
			var names []string
			for _, k := range sg.keys {
				names = append(names, k.Source+" ("+k.Fingerprint[:19]+"…)")
			}
			add("images.signatures", "images run or copied must be signed by %d of: %s", sg.Need(), strings.Join(names, ", "))
		}
	}
	if rt := p.Runtime; rt != nil {
		if rt.NoPrivileged {
			add("runtime.no_privileged", "privileged containers are refused")
		}
		if len(rt.RequireLimits) > 0 {
			add("runtime.require_limits", "containers must set limits: %s", strings.Join(rt.RequireLimits, ", "))
		}
		if rt.NonRoot {
			add("runtime.non_root", "containers must not run as root")
		}
		if rt.NoHostNetwork {
			add("runtime.no_host_network", "the host network is refused")
		}
		if hp := rt.HostPaths; hp != nil {
			add("runtime.host_paths", "host paths only under: %s", strings.Join(hp.Allow, ", "))
		}
	}
	for _, g := range []string{GateBuild, GatePush, GateCreate, GateApply, GatePipeline} {
		add("gates."+g, "%s", p.Mode(g))
	}
	return out
}

// fieldLine is the line of the field at keys in the document (strictyaml.Line).
func fieldLine(root *yaml.Node, keys ...string) int { return strictyaml.Line(root, keys...) }
