package match_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/osv-scalibr/semantic"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/match"
)

// sign is -1, 0 or +1 as c is below, at or above zero.
func fuzzSign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// fuzzCheckOrder checks that the versions of an ecosystem that parse are totally ordered by Compare, the way the
// matcher compares an installed version with an advisory's events (semantic.Parse, then Version.Compare, whose
// error it ignores): Compare of two parsed versions never fails, and it is reflexive, antisymmetric and
// transitive on the triple, for equality as well as order. A version that does not parse must be refused with
// semantic.ErrInvalidVersion.
func fuzzCheckOrder(t *testing.T, ecosystem string, a, b, c string) {
	t.Helper()
	raw := []string{a, b, c}
	var vs []semantic.Version
	var strs []string
	for _, s := range raw {
		v, err := semantic.Parse(s, ecosystem)
		if err != nil {
			if !errors.Is(err, semantic.ErrInvalidVersion) {
				t.Fatalf("Parse(%q, %s) error %v is not ErrInvalidVersion", s, ecosystem, err)
			}
			continue
		}
		vs = append(vs, v)
		strs = append(strs, s)
	}
	// The order, computed once for every pair.
	order := make([][]int, len(vs))
	for i := range vs {
		order[i] = make([]int, len(vs))
		for j := range vs {
			c, err := vs[i].Compare(vs[j])
			if err != nil {
				t.Fatalf("%s: Compare(%q, %q) = %v", ecosystem, strs[i], strs[j], err)
			}
			if cs, err := vs[i].CompareStr(strs[j]); err != nil || fuzzSign(cs) != fuzzSign(c) {
				t.Fatalf("%s: CompareStr(%q, %q) = %d, %v; Compare = %d", ecosystem, strs[i], strs[j], cs, err, c)
			}
			order[i][j] = fuzzSign(c)
		}
	}
	for i := range vs {
		if c := order[i][i]; c != 0 {
			t.Fatalf("%s: not reflexive: Compare(%q, %q) = %d", ecosystem, strs[i], strs[i], c)
		}
		for j := range vs {
			if cij, cji := order[i][j], order[j][i]; cij != -cji {
				t.Fatalf("%s: not antisymmetric: Compare(%q, %q) = %d but Compare(%q, %q) = %d",
					ecosystem, strs[i], strs[j], cij, strs[j], strs[i], cji)
			}
			for k := range vs {
				cij, cjk, cik := order[i][j], order[j][k], order[i][k]
				// a ≤ b and b ≤ c imply a ≤ c, strictly when either is strict; a = b = c implies a = c.
				if cij <= 0 && cjk <= 0 && (cik > 0 || (cik == 0 && (cij < 0 || cjk < 0))) {
					t.Fatalf("%s: not transitive: %q vs %q = %d, %q vs %q = %d, but %q vs %q = %d",
						ecosystem, strs[i], strs[j], cij, strs[j], strs[k], cjk, strs[i], strs[k], cik)
				}
			}
		}
	}
}

// fuzzAddTriples seeds f with triples of versions drawn from vs.
func fuzzAddTriples(f *testing.F, vs []string) {
	for i := range vs {
		f.Add(vs[i], vs[(i+1)%len(vs)], vs[(i+2)%len(vs)])
		f.Add(vs[i], vs[(i*7+3)%len(vs)], vs[i])
	}
}

// FuzzCompareDebian checks that Debian (and Ubuntu) package versions, as dpkg orders them (epochs, ~, revisions),
// are totally ordered: Compare is reflexive, antisymmetric and transitive and never fails on parsed versions.
func FuzzCompareDebian(f *testing.F) {
	fuzzAddTriples(f, []string{"1.0", "1.0-1", "1:1.2.11.dfsg-4.1", "1:1.2.13.dfsg-1", "3.0.11-1~deb12u2", "3.0.11-1",
		"1.1.1k-1+deb11u2", "2.36-9+deb12u4", "0~rc1", "1.0~", "1.0~~", "1.0a", "1.0+", "a", "", " ", "1:", ":1",
		"1.0-", "-1", "2:0", "10", "9", "1.0.0", "1.00", "0001", "1.0-1-2", "abc~def", "1.2.3+dfsg1-2ubuntu0.1",
		"99999999999999999999999999", "1é", "1.0-1~bpo12+1"})
	f.Fuzz(func(t *testing.T, a, b, c string) {
		fuzzCheckOrder(t, "Debian:12", a, b, c)
	})
}

// fuzzAPKVersion is the grammar of apk versions (apk-package(5)): number{.number}{letter}{_suffix{number}}{~hash}{-r#}.
var fuzzAPKVersion = regexp.MustCompile(`^[0-9]+(\.(0|[1-9][0-9]*))*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)

// FuzzCompareAlpine checks that Alpine package versions (apk: letters, _suffixes, ~hash, -rN) that follow apk's
// version grammar are totally ordered. Two kinds of version are left out, because osv-scalibr's order is known
// not to be transitive on them: strings outside the grammar, which it compares as strings among themselves and
// by their parsed prefix with the others ("0.0.0_rc00_0", "", "0.0.0_p0-0"), and number components after the
// first with a leading zero, which it compares as strings, while a missing component counts as the number 0
// ("0.0.0" < "0.0.00" = "0" = "0.0.0").
func FuzzCompareAlpine(f *testing.F) {
	fuzzAddTriples(f, []string{"1.2.3-r0", "1.2.3-r1", "1.2.3a-r0", "1.2.3_rc1-r0", "1.2.3_p1-r0", "1.2.3_alpha-r0",
		"1.2.3_beta2", "1.2.3_pre1_git20240101-r3", "3.0.15-r1", "1.36.1-r31", "2024a-r0", "1.2", "1.2.0", "1.02",
		"0", "", "r0", "1.2.3-r", "1.2.3~git", "1.2.3_cvs20240101", "1.2.3_svn", "1.2.3_hg", "1.2.3_rc", "1..2",
		"1.2.3-r99999999999999999999"})
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if !fuzzAPKVersion.MatchString(a) || !fuzzAPKVersion.MatchString(b) || !fuzzAPKVersion.MatchString(c) {
			t.Skip("not an apk version")
		}
		fuzzCheckOrder(t, "Alpine:v3.20", a, b, c)
	})
}

// FuzzCompareSemver checks that npm and Go module versions (semver 2.0.0: pre-releases, build metadata, v
// prefixes, pseudo-versions) are totally ordered in both ecosystems.
func FuzzCompareSemver(f *testing.F) {
	fuzzAddTriples(f, []string{"1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0+build.1", "v1.2.3", "v0.0.0-20240101000000-abcdef123456",
		"v2.0.0+incompatible", "4.17.21", "4.17.20", "1", "1.2", "", "x", "1.0.0-", "1.0.0-0", "1.0.0--",
		"1.0.0-a.1.b", "01.2.3", "1.2.3.4", "1.2.3-rc1", "99999999999999999999.0.0", "1.0.0-é"})
	f.Fuzz(func(t *testing.T, a, b, c string) {
		fuzzCheckOrder(t, "npm", a, b, c)
		fuzzCheckOrder(t, "Go", a, b, c)
	})
}

// FuzzComparePyPI checks that PyPI versions (PEP 440: epochs, pre/post/dev releases, local versions,
// normalisation of spellings) are totally ordered.
func FuzzComparePyPI(f *testing.F) {
	fuzzAddTriples(f, []string{"2.31.0", "2.31.0rc1", "2.31.0.post1", "2.31.0.dev1", "1!1.0", "1.0a1", "1.0.a.1",
		"1.0-alpha1", "1.0b2.post3.dev4", "1.0+local.7", "1.0+local.a", "1.0c1", "1.0pre1", "1.0preview1",
		"1.0-1", "1.0_post_1", "v1.0", " 1.0 ", "1.0.0", "1", "", "junk", "1.0rev", "1.0r", "0.0.0.0.0.1",
		"1.0.dev", "1.0+ubuntu-1", "1.0+UBUNTU.1", "99999999999999999999"})
	f.Fuzz(func(t *testing.T, a, b, c string) {
		fuzzCheckOrder(t, "PyPI", a, b, c)
	})
}

// FuzzCompareRedHat checks that RPM versions (rpmvercmp: epochs, ~ and ^, alphanumeric segments) are totally
// ordered.
func FuzzCompareRedHat(f *testing.F) {
	fuzzAddTriples(f, []string{"0:1.2.3-4.el9", "1.2.3-4.el9", "1:1.2.3-4.el9", "1.2.3-4.el9_2", "1.2.3~rc1-1",
		"1.2.3^git1-1", "1.2.3", "1.2.3a", "1.2.3.a", "2.28-225.el9", "1.0-1.fc40", "a", "", "1..2", "1.0~~",
		"1.0^", "1.0^^", "0001", "1.0_1", "1.0-1.0", "99999999999999999999", ":1", "1:", "1.0é"})
	f.Fuzz(func(t *testing.T, a, b, c string) {
		fuzzCheckOrder(t, "Red Hat", a, b, c)
	})
}

// fuzzIgnoreFiles are .trivyignore.yaml files: Trivy's format with every field, and malformed ones.
var fuzzIgnoreFiles = []string{
	"vulnerabilities:\n  - id: CVE-2023-4911\n    statement: no SUID binaries in the image\n    expired_at: 2027-01-01\n" +
		"  - id: GHSA-35jh-r3h4-6jhm\n    paths:\n      - \"usr/src/app/node_modules/lodash/package.json\"\n" +
		"    purls:\n      - \"pkg:npm/lodash\"\n  - id: CVE-2024-29415\n    expired_at: \"2026-03-01T12:00:00Z\"\n" +
		"misconfigurations:\n  - id: AVD-DS-0001\nsecrets:\n",
	"",
	"vulnerabilities: []\n",
	"vulnerabilities:\n",
	"vulnerabilities:\n  - id: \"  CVE-1  \"\n",
	"vulnerabilities:\n  - statement: no id\n",
	"vulnerabilities:\n  - id: \"   \"\n",
	"vulnerabilities:\n  - id: CVE-1\n    expired_at: next week\n",
	"vulnerabilities:\n  - id: CVE-1\n    expired_at: 2024-08-20T10:00:00.123456789+02:00\n",
	"vulnerabilities:\n  - id: CVE-1\n    expired_at: 2024-02-30\n",
	"vulnerabilities:\n  - id: CVE-1\n    expired_at: 20240820\n",
	"vulnerabilities:\n  - id: 12345\n",
	"vulnerabilities:\n  - id: [a, b]\n",
	"vulnerabilities: {id: CVE-1}\n",
	"vulnerabilities:\n  - id: CVE-1\n    paths: not-a-list\n",
	"vulnerabilities:\n  - id: CVE-1\n    purls: [\"pkg:deb/debian/libc6@2.36?arch=amd64\", null]\n",
	"vulnerabilities:\n  - &a {id: CVE-1}\n  - *a\n",
	"{\"vulnerabilities\": [{\"id\": \"CVE-1\", \"statement\": \"json is yaml\"}]}",
	"vulnerabilities:\n  - id: CVE-1\n  - id: CVE-1\n",
	"vulnerabilities:\n\t- id: tab\n",
	"- id: CVE-1\n",
	"\xff\xfe",
}

// FuzzLoadIgnoreFile checks match.LoadIgnoreFile on arbitrary file contents: a refusal wraps
// errdefs.ErrInvalidArgument; every rule has a non-empty ID without surrounding spaces; and the rules written
// back in the .trivyignore.yaml format load again to the same rules.
func FuzzLoadIgnoreFile(f *testing.F) {
	for _, s := range fuzzIgnoreFiles {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), ".trivyignore.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rules, err := match.LoadIgnoreFile(path)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("LoadIgnoreFile error %v does not wrap ErrInvalidArgument", err)
			}
			if rules != nil {
				t.Fatalf("LoadIgnoreFile returned rules %+v with the error %v", rules, err)
			}
			return
		}
		type entry struct {
			ID        string   `json:"id"`
			Paths     []string `json:"paths,omitempty"`
			PURLs     []string `json:"purls,omitempty"`
			Statement string   `json:"statement,omitempty"`
			ExpiredAt string   `json:"expired_at,omitempty"`
		}
		var doc struct {
			Vulnerabilities []entry `json:"vulnerabilities"`
		}
		for i, r := range rules {
			if r.ID == "" || r.ID != strings.TrimSpace(r.ID) {
				t.Fatalf("rule %d has the ID %q", i, r.ID)
			}
			e := entry{ID: r.ID, Paths: r.Paths, PURLs: r.PURLs, Statement: r.Reason}
			if !r.Expires.IsZero() {
				e.ExpiredAt = r.Expires.Format(time.RFC3339Nano)
			}
			doc.Vulnerabilities = append(doc.Vulnerabilities, e)
		}

		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatalf("writing the rules back: %v", err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := match.LoadIgnoreFile(path)
		if err != nil {
			t.Fatalf("the rules %+v written back as\n%s\ndo not load: %v", rules, out, err)
		}
		same := func(a, b match.IgnoreRule) bool {
			return a.ID == b.ID && a.Reason == b.Reason && a.Expires.Equal(b.Expires) &&
				slices.Equal(a.Paths, b.Paths) && slices.Equal(a.PURLs, b.PURLs)
		}
		if !slices.EqualFunc(rules, again, same) {
			t.Fatalf("the rules written back as\n%s\nload as %+v, want %+v", out, again, rules)
		}
	})
}
