package match

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/google/osv-scalibr/semantic"
	"github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/codomyrmex/containerization/scan/inventory"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// hit is a record that affects a package's version.
type hit struct {
	rec *osvschema.Vulnerability
	// entry is the affected entry that matched; its severity and urgency count before the record's.
	entry *osvschema.Affected
	// fixed is the version that fixes it, empty when none does.
	fixed string
}

// matchPackage returns the findings of one package, and what kept part of it from being checked.
func matchPackage(p inventory.Package, name, version string, recs []*osvschema.Vulnerability) ([]Finding, []string) {
	var problems []string
	v, err := semantic.Parse(version, p.Ecosystem)
	if err != nil {
		v = nil
		if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
			problems = append(problems, fmt.Sprintf("versions of ecosystem %s cannot be compared: its packages were checked "+
				"only against advisories that list their exact version", p.Ecosystem))
		} else {
			problems = append(problems, fmt.Sprintf("version %q of %s (%s) cannot be parsed (%v): it was checked only "+
				"against advisories that list it exactly", version, p.Name, p.Ecosystem, err))
		}
	}
	var hits []hit
	for _, rec := range recs {
		if vulndb.Withdrawn(rec) {
			continue
		}
		h, ok, err := affects(rec, p.Ecosystem, name, version, v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("advisory %s has a range that cannot be evaluated (%v): that range was not checked",
				rec.GetId(), err))
		}
		if ok {
			hits = append(hits, h)
		}
	}
	return group(p, hits), problems
}

// affects reports whether rec affects the given version of the package in the ecosystem. v is the parsed
// version, nil when it cannot be compared: then only versions[] lists count. A range whose versions cannot be
// parsed is skipped and reported in the error; the others still count.
func affects(rec *osvschema.Vulnerability, eco, name, version string, v semantic.Version) (hit, bool, error) {
	var (
		h          = hit{rec: rec}
		matched    bool
		unfixed    bool
		fixes      []semantic.Version
		fixStrings []string
		rangeErr   error
	)
	want := vulndb.NormalizeName(eco, name)
	for _, a := range rec.GetAffected() {
		if a.GetPackage().GetEcosystem() != eco || vulndb.NormalizeName(eco, a.GetPackage().GetName()) != want {
			continue
		}
		inEntry := slices.Contains(a.GetVersions(), version)
		rangeMatched := false
		for _, r := range a.GetRanges() {
			if v == nil || (r.GetType() != osvschema.Range_ECOSYSTEM && r.GetType() != osvschema.Range_SEMVER) {
				continue
			}
			ok, fix, err := inRange(r, eco, v)
			if err != nil {
				rangeErr = err
				continue
			}
			if !ok {
				continue
			}
			inEntry, rangeMatched = true, true
			if fix == nil {
				unfixed = true
				continue
			}
			fixes = append(fixes, fix.ver)
			fixStrings = append(fixStrings, fix.raw)
		}
		if inEntry && !rangeMatched {
			unfixed = true // listed as affected, with no range to say what fixes it
		}
		if inEntry && !matched {
			matched, h.entry = true, a
		}
	}
	if !matched {
		return hit{}, false, rangeErr
	}
	if !unfixed && len(fixes) > 0 {
		// Every matching range has a fix: the version is safe once past all of them.
		best := 0
		for i := range fixes {
			if c, _ := fixes[i].Compare(fixes[best]); c > 0 {
				best = i
			}
		}
		h.fixed = fixStrings[best]
	}
	return h, true, rangeErr
}

type eventKind int

const (
	introduced eventKind = iota
	fixed
	lastAffected
	limit
)

type event struct {
	kind eventKind
	raw  string
	ver  semantic.Version
	zero bool // "introduced: 0", before every version
}

// inRange evaluates one ECOSYSTEM or SEMVER range as the OSV specification says, and returns the lowest fixed
// event above v when v is affected (nil when the range has none).
func inRange(r *osvschema.Range, eco string, v semantic.Version) (bool, *event, error) {
	var evs []event
	for _, e := range r.GetEvents() {
		var ev event
		switch {
		case e.GetIntroduced() != "":
			ev = event{kind: introduced, raw: e.GetIntroduced()}
		case e.GetFixed() != "":
			ev = event{kind: fixed, raw: e.GetFixed()}
		case e.GetLastAffected() != "":
			ev = event{kind: lastAffected, raw: e.GetLastAffected()}
		case e.GetLimit() != "":
			ev = event{kind: limit, raw: e.GetLimit()}
		default:
			continue
		}
		if ev.kind == introduced && ev.raw == "0" {
			ev.zero = true
		} else {
			parsed, err := semantic.Parse(ev.raw, eco)
			if err != nil {
				return false, nil, fmt.Errorf("version %q: %w", ev.raw, err)
			}
			ev.ver = parsed
		}
		evs = append(evs, ev)
	}
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if a.zero || b.zero {
			return a.zero && !b.zero
		}
		c, _ := a.ver.Compare(b.ver)
		return c < 0
	})
	// cmp compares v with an event's version.
	cmp := func(e event) int {
		if e.zero {
			return 1
		}
		c, _ := v.Compare(e.ver)
		return c
	}

	limited, belowLimit := false, false
	affected := false
	for _, e := range evs {
		switch e.kind {
		case introduced:
			if cmp(e) >= 0 {
				affected = true
			}
		case fixed:
			if cmp(e) >= 0 {
				affected = false
			}
		case lastAffected:
			if cmp(e) > 0 {
				affected = false
			}
		case limit:
			limited = true
			if cmp(e) < 0 {
				belowLimit = true
			}
		}
	}
	if !affected || (limited && !belowLimit) {
		return false, nil, nil
	}
	for i, e := range evs {
		if e.kind == fixed && cmp(e) < 0 {
			return true, &evs[i], nil
		}
	}
	return true, nil, nil
}
