package match

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/inventory"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// Source is where advisories come from; *vulndb.DB is one.
type Source interface {
	// Lookup returns the records that name the package in the ecosystem. Records are pointers because protobuf
	// messages must not be copied.
	Lookup(ecosystem, name string) ([]*osvschema.Vulnerability, error)
	// HasEcosystem reports whether the source holds the ecosystem at all.
	HasEcosystem(ecosystem string) bool
}

// Options configures Match. The zero value reports every finding and ignores none.
type Options struct {
	// SeverityThreshold, when set, fills Result.Violations with the findings at or above it.
	SeverityThreshold Severity
	// Ignore rules move findings to Result.Ignored; see IgnoreRule.
	Ignore []IgnoreRule
	// Now is the time rule expiry is judged against; zero means time.Now().
	Now time.Time
}

// Result is what Match found.
type Result struct {
	// Findings are the vulnerabilities found and not ignored, most severe first.
	Findings []Finding `json:"findings"`
	// Ignored are the findings an ignore rule matched, with its reason.
	Ignored []Ignored `json:"ignored,omitempty"`
	// Violations are the Findings at or above Options.SeverityThreshold; nil without a threshold.
	Violations []Finding `json:"violations,omitempty"`
	// Warnings say what was not checked and why: ecosystems the database lacks, versions that cannot be
	// compared, rules that expired.
	Warnings []string `json:"warnings,omitempty"`
	// Checked counts the packages compared with the database; Unchecked those that could not be.
	Checked   int `json:"checked"`
	Unchecked int `json:"unchecked"`
}

// Finding is one vulnerability in one package.
type Finding struct {
	// ID is the id of the record the finding carries; CVEID is the CVE among it and its aliases, else ID.
	ID    string `json:"id"`
	CVEID string `json:"cve_id"`
	// Aliases are the other ids of the vulnerability: aliases, and the records merged into this finding.
	Aliases []string `json:"aliases,omitempty"`
	// Severity is critical, high, medium, low or unknown; Score and Vector are the CVSS base score and vector
	// it came from, empty when it came from an ecosystem's rating.
	Severity Severity `json:"severity"`
	Score    float64  `json:"score,omitempty"`
	Vector   string   `json:"vector,omitempty"`
	// Package is the package as the inventory found it (the binary package for Debian).
	Package inventory.Package `json:"package"`
	// InstalledVersion is the package's version. Debian's and Alpine's were compared by their source version,
	// which Package holds.
	InstalledVersion string `json:"version"`
	// FixedVersion is the lowest version that fixes the vulnerability, empty when none does yet.
	FixedVersion string `json:"fixed_version"`
	Summary      string `json:"summary,omitempty"`
	Description  string `json:"description"`
	// URL is where to read about it: the record's advisory reference, else osv.dev's page.
	URL string `json:"url"`
}

// Ignored is a finding an ignore rule matched.
type Ignored struct {
	Finding Finding   `json:"finding"`
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires,omitzero"`
}

// Match looks each package up in db and returns the vulnerabilities that affect its version. It fails only when
// db fails; what it cannot check it says in Result.Warnings.
func Match(pkgs []inventory.Package, db Source, opts Options) (*Result, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: matching: no advisory source", errdefs.ErrInvalidArgument)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	res := &Result{}
	rules := activeRules(opts.Ignore, now, res)

	type key struct{ eco, name string }
	cache := map[key][]*osvschema.Vulnerability{}
	missing := map[string]int{}
	var noEcosystem, noVersion []string
	problems := map[string]bool{}
	var found []Finding
	for _, p := range pkgs {
		if p.Ecosystem == "" {
			noEcosystem = append(noEcosystem, p.Name)
			continue
		}
		if !db.HasEcosystem(p.Ecosystem) {
			missing[p.Ecosystem]++
			continue
		}
		name, version := target(p)
		if version == "" {
			noVersion = append(noVersion, p.Name)
			continue
		}
		k := key{p.Ecosystem, vulndb.NormalizeName(p.Ecosystem, name)}
		recs, ok := cache[k]
		if !ok {
			var err error
			if recs, err = db.Lookup(p.Ecosystem, name); err != nil {
				return nil, fmt.Errorf("matching %s (%s): %w", name, p.Ecosystem, err)
			}
			cache[k] = recs
		}
		res.Checked++
		fs, probs := matchPackage(p, name, version, recs)
		found = append(found, fs...)
		for _, pr := range probs {
			problems[pr] = true
		}
	}

	for _, eco := range sortedKeys(missing) {
		res.Unchecked += missing[eco]
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"no advisories for ecosystem %s in the database: its %s not checked", eco, plural(missing[eco], "package was", "packages were")))
	}
	if len(noEcosystem) > 0 {
		res.Unchecked += len(noEcosystem)
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s no ecosystem and %s not checked: %s",
			plural(len(noEcosystem), "package has", "packages have"), pick(len(noEcosystem), "was", "were"), list(noEcosystem)))
	}
	if len(noVersion) > 0 {
		res.Unchecked += len(noVersion)
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s no version and %s not checked: %s",
			plural(len(noVersion), "package has", "packages have"), pick(len(noVersion), "was", "were"), list(noVersion)))
	}
	res.Warnings = append(res.Warnings, sortedKeys(problems)...)

	for _, f := range found {
		if r, ok := firstMatching(rules, f); ok {
			res.Ignored = append(res.Ignored, Ignored{Finding: f, Reason: r.Reason, Expires: r.Expires})
			continue
		}
		res.Findings = append(res.Findings, f)
	}
	sortFindings(res.Findings)
	sort.SliceStable(res.Ignored, func(i, j int) bool { return lessFinding(res.Ignored[i].Finding, res.Ignored[j].Finding) })
	if opts.SeverityThreshold != "" {
		res.Violations = []Finding{}
		for _, f := range res.Findings {
			if f.Severity.AtLeast(opts.SeverityThreshold) {
				res.Violations = append(res.Violations, f)
			}
		}
	}
	return res, nil
}

// sourceFamilies are the ecosystems whose advisories name source packages.
var sourceFamilies = map[string]bool{"Debian": true, "Ubuntu": true, "Alpine": true}

// target is the name and version a package is looked up and compared by.
func target(p inventory.Package) (name, version string) {
	name, version = p.Name, p.Version
	if sourceFamilies[vulndb.Family(p.Ecosystem)] {
		if p.SourceName != "" {
			name = p.SourceName
		}
		if p.SourceVersion != "" {
			version = p.SourceVersion
		}
	}
	return name, version
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool { return lessFinding(fs[i], fs[j]) })
}

// lessFinding orders findings most severe first, then by package and id, so that output is stable.
func lessFinding(a, b Finding) bool {
	if a.Severity.rank() != b.Severity.rank() {
		return a.Severity.rank() > b.Severity.rank()
	}
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	if a.Package.Name != b.Package.Name {
		return a.Package.Name < b.Package.Name
	}
	if a.Package.Ecosystem != b.Package.Ecosystem {
		return a.Package.Ecosystem < b.Package.Ecosystem
	}
	return a.ID < b.ID
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func plural(n int, one, many string) string {
	return fmt.Sprintf("%d %s", n, pick(n, one, many))
}

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// list names up to ten items.
func list(items []string) string {
	if len(items) > 10 {
		return strings.Join(items[:10], ", ") + fmt.Sprintf(" and %d more", len(items)-10)
	}
	return strings.Join(items, ", ")
}
