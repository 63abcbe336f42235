package match

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/errdefs"
)

// IgnoreRule ignores the findings of one vulnerability, like an entry of Trivy's .trivyignore.yaml. Every
// condition that is set must hold; within Paths and PURLs, any one entry is enough.
type IgnoreRule struct {
	// ID is any id of the vulnerability: the record's, its CVE, or another alias.
	ID string `json:"id"`
	// Package, when set, narrows the rule to packages of that name (binary or source).
	Package string `json:"package,omitempty"`
	// Paths, when set, narrow the rule to packages found in one of these files; path.Match patterns, with or
	// without a leading slash.
	Paths []string `json:"paths,omitempty"`
	// PURLs, when set, narrow the rule to these packages; a purl without a version matches every version, and
	// its qualifiers must all be on the package's.
	PURLs []string `json:"purls,omitempty"`
	// Reason says why the finding is accepted (Trivy's statement).
	Reason string `json:"statement,omitempty"`
	// Expires, when set, is when the rule stops applying (Trivy's expired_at): from then on the finding is
	// reported again and the Result warns about the rule.
	Expires time.Time `json:"expired_at,omitzero"`
}

// Expired reports whether the rule no longer applies at now.
func (r IgnoreRule) Expired(now time.Time) bool { return !r.Expires.IsZero() && r.Expires.Before(now) }

// LoadIgnoreFile reads the vulnerabilities of an ignore file in the format of Trivy's .trivyignore.yaml:
//
//	vulnerabilities:
//	  - id: CVE-2023-4911
//	    statement: not reachable, no SUID binaries in the image
//	    expired_at: 2026-01-01
//	  - id: GHSA-35jh-r3h4-6jhm
//	    purls: ["pkg:npm/lodash"]
//	    paths: ["usr/src/app/package-lock.json"]
//
// Its other sections (misconfigurations, secrets, licenses) are not for this package and are ignored. A file
// that does not exist is an error wrapping errdefs.ErrNotFound; one that cannot be read, errdefs.ErrInvalidArgument.
func LoadIgnoreFile(file string) ([]IgnoreRule, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: ignore file %s does not exist", errdefs.ErrNotFound, file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading ignore file %s: %w", file, err)
	}
	var doc struct {
		Vulnerabilities []struct {
			ID        string   `json:"id"`
			Paths     []string `json:"paths"`
			PURLs     []string `json:"purls"`
			Statement string   `json:"statement"`
			ExpiredAt expiry   `json:"expired_at"`
		} `json:"vulnerabilities"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: ignore file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	rules := make([]IgnoreRule, 0, len(doc.Vulnerabilities))
	for i, v := range doc.Vulnerabilities {
		if strings.TrimSpace(v.ID) == "" {
			return nil, fmt.Errorf("%w: ignore file %s: vulnerability %d has no id", errdefs.ErrInvalidArgument, file, i+1)
		}
		rules = append(rules, IgnoreRule{
			ID: strings.TrimSpace(v.ID), Paths: v.Paths, PURLs: v.PURLs, Reason: v.Statement, Expires: time.Time(v.ExpiredAt),
		})
	}
	return rules, nil
}

// expiry reads expired_at as a date (2024-08-20, which is midnight UTC, as Trivy reads it) or an RFC 3339 time.
type expiry time.Time

func (e *expiry) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expired_at: want a date such as 2024-08-20: %w", err)
	}
	if s == "" {
		return nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			*e = expiry(t)
			return nil
		}
	}
	return fmt.Errorf("expired_at %q: want a date such as 2024-08-20", s)
}

// activeRules returns the rules that have not expired, and warns in res about those that have.
func activeRules(rules []IgnoreRule, now time.Time, res *Result) []IgnoreRule {
	var active []IgnoreRule
	for _, r := range rules {
		if r.Expired(now) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("ignore rule for %s expired on %s: its findings are reported again",
				r.ID, r.Expires.Format(time.DateOnly)))
			continue
		}
		active = append(active, r)
	}
	return active
}

func firstMatching(rules []IgnoreRule, f Finding) (IgnoreRule, bool) {
	for _, r := range rules {
		if r.matches(f) {
			return r, true
		}
	}
	return IgnoreRule{}, false
}

func (r IgnoreRule) matches(f Finding) bool {
	id := strings.TrimSpace(r.ID)
	named := strings.EqualFold(id, f.ID) || strings.EqualFold(id, f.CVEID)
	for _, a := range f.Aliases {
		named = named || strings.EqualFold(id, a)
	}
	if !named {
		return false
	}
	if r.Package != "" && r.Package != f.Package.Name && r.Package != f.Package.SourceName {
		return false
	}
	if len(r.Paths) > 0 && !anyPathMatches(r.Paths, f.Package.Locations) {
		return false
	}
	if len(r.PURLs) > 0 {
		pkg, ok := parsePURL(f.Package.PURL)
		if !ok {
			return false
		}
		hit := false
		for _, p := range r.PURLs {
			if want, ok := parsePURL(p); ok && want.covers(pkg) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func anyPathMatches(patterns, locations []string) bool {
	for _, p := range patterns {
		p = strings.TrimPrefix(p, "/")
		for _, l := range locations {
			l = strings.TrimPrefix(l, "/")
			if ok, _ := path.Match(p, l); ok || p == l {
				return true
			}
		}
	}
	return false
}

// purl is a package URL cut into what an ignore rule compares: type, namespace and name; version; qualifiers.
type purl struct {
	base, version string
	qualifiers    url.Values
}

func parsePURL(s string) (purl, bool) {
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return purl{}, false
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, query, _ := strings.Cut(rest, "?")
	var p purl
	if at := strings.LastIndex(rest, "@"); at > strings.LastIndex(rest, "/") {
		p.version, _ = url.PathUnescape(rest[at+1:])
		rest = rest[:at]
	}
	base, err := url.PathUnescape(strings.Trim(rest, "/"))
	if err != nil {
		return purl{}, false
	}
	typ, name, _ := strings.Cut(base, "/")
	p.base = strings.ToLower(typ) + "/" + name
	p.qualifiers, _ = url.ParseQuery(query)
	return p, true
}

// covers reports whether the purl p of a rule names the package purl q.
func (p purl) covers(q purl) bool {
	if p.base != q.base || (p.version != "" && p.version != q.version) {
		return false
	}
	for k := range p.qualifiers {
		if p.qualifiers.Get(k) != q.qualifiers.Get(k) {
			return false
		}
	}
	return true
}
