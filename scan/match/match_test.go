package match_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/inventory"
	"github.com/codomyrmex/containerization/scan/match"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

var fixtureDB struct {
	once sync.Once
	dir  string
	err  error
}

// openFixtures opens a database imported from testdata, the real advisories in OSV form.
func openFixtures(t *testing.T) *vulndb.DB {
	t.Helper()
	fixtureDB.once.Do(func() {
		fixtureDB.dir, fixtureDB.err = os.MkdirTemp("", "match-fixtures-")
		if fixtureDB.err == nil {
			_, fixtureDB.err = vulndb.Import(context.Background(), "testdata", vulndb.Options{Dir: fixtureDB.dir})
		}
	})
	if fixtureDB.err != nil {
		t.Fatal(fixtureDB.err)
	}
	db, err := vulndb.Open(vulndb.Options{Dir: fixtureDB.dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDB.dir != "" {
		os.RemoveAll(fixtureDB.dir)
	}
	os.Exit(code)
}

func deb(release, name, version, source string) inventory.Package {
	return inventory.Package{
		Name: name, Version: version, SourceName: source, SourceVersion: version, Ecosystem: "Debian:" + release,
		PURL: "pkg:deb/debian/" + name + "@" + version + "?arch=amd64&distro=debian-" + release,
	}
}

// image is a package list like a bookworm image with npm, Go and Python layers, plus a bullseye package.
var image = []inventory.Package{
	deb("12", "libc6", "2.36-9+deb12u1", "glibc"),
	deb("12", "libtinfo6", "6.4-4", "ncurses"),
	deb("12", "libssl3", "3.0.11-1~deb12u2", "openssl"),
	deb("11", "libssl1.1", "1.1.1k-1+deb11u1", "openssl"),
	{Name: "lodash", Version: "4.17.20", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.20",
		Locations: []string{"usr/src/app/node_modules/lodash/package.json"}},
	{Name: "ip", Version: "2.0.1", Ecosystem: "npm", PURL: "pkg:npm/ip@2.0.1"},
	{Name: "golang.org/x/text", Version: "0.3.6", Ecosystem: "Go", PURL: "pkg:golang/golang.org/x/text@0.3.6"},
	{Name: "github.com/opencontainers/runc", Version: "1.1.12", Ecosystem: "Go", PURL: "pkg:golang/github.com/opencontainers/runc@1.1.12"},
	{Name: "Requests", Version: "2.28.1", Ecosystem: "PyPI", PURL: "pkg:pypi/requests@2.28.1"},
	{Name: "requests", Version: "2.2.1", Ecosystem: "PyPI", PURL: "pkg:pypi/requests@2.2.1",
		Locations: []string{"opt/legacy/lib/python2.7/site-packages/requests-2.2.1.dist-info/METADATA"}},
}

type want struct {
	pkg, id, cve string
	severity     match.Severity
	score        float64
	fixed        string
	aliases      []string
}

func TestMatchFindsExactlyTheFixtures(t *testing.T) {
	db := openFixtures(t)
	pkgs := append(slices.Clone(image), inventory.Package{Name: "musl", Version: "1.2.4-r2", Ecosystem: "Alpine:v3.19"})
	res, err := match.Match(pkgs, db, match.Options{})
	if err != nil {
		t.Fatalf("Match = %v", err)
	}
	wants := []want{
		{"ip", "GHSA-2p57-rm9w-gvfp", "CVE-2024-29415", match.SeverityHigh, 8.1, "", []string{"CVE-2024-29415"}},
		{"libc6", "DEBIAN-CVE-2023-4911", "CVE-2023-4911", match.SeverityHigh, 7.8, "2.36-9+deb12u3", []string{"CVE-2023-4911", "DSA-5514-1"}},
		{"golang.org/x/text", "GO-2021-0113", "CVE-2021-38561", match.SeverityHigh, 7.5, "0.3.7", []string{"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"}},
		{"libssl1.1", "DEBIAN-CVE-2022-0778", "CVE-2022-0778", match.SeverityHigh, 7.5, "1.1.1k-1+deb11u2", []string{"CVE-2022-0778", "DSA-5103-1"}},
		{"lodash", "GHSA-35jh-r3h4-6jhm", "CVE-2021-23337", match.SeverityHigh, 7.2, "4.17.21", []string{"CVE-2021-23337"}},
		{"Requests", "GHSA-j8r2-6x86-q33q", "CVE-2023-32681", match.SeverityMedium, 6.1, "2.31.0", []string{"CVE-2023-32681"}},
		{"libtinfo6", "DEBIAN-CVE-2025-6141", "CVE-2025-6141", match.SeverityMedium, 4.8, "", []string{"CVE-2025-6141"}},
		{"libc6", "DEBIAN-CVE-2010-4756", "CVE-2010-4756", match.SeverityLow, 0, "", []string{"CVE-2010-4756"}},
	}
	if len(res.Findings) != len(wants) {
		var got []string
		for _, f := range res.Findings {
			got = append(got, f.Package.Name+" "+f.ID)
		}
		t.Fatalf("Match found %d findings %v, want %d", len(got), got, len(wants))
	}
	for i, w := range wants {
		f := res.Findings[i]
		if f.Package.Name != w.pkg || f.ID != w.id || f.CVEID != w.cve || f.Severity != w.severity || f.Score != w.score ||
			f.FixedVersion != w.fixed || !slices.Equal(f.Aliases, w.aliases) {
			t.Errorf("finding %d = {%s %s %s %s %.1f fixed %q aliases %v}, want %+v",
				i, f.Package.Name, f.ID, f.CVEID, f.Severity, f.Score, f.FixedVersion, f.Aliases, w)
		}
		if f.Description == "" || f.URL == "" || f.InstalledVersion != f.Package.Version {
			t.Errorf("finding %s: description %q, url %q, installed %q; want them filled", f.ID, f.Description, f.URL, f.InstalledVersion)
		}
	}
	if res.Checked != len(image) || res.Unchecked != 1 {
		t.Errorf("Checked %d, Unchecked %d; want %d and 1", res.Checked, res.Unchecked, len(image))
	}
	if !slices.Equal(res.Warnings, []string{"no advisories for ecosystem Alpine:v3.19 in the database: its 1 package was not checked"}) {
		t.Errorf("Warnings = %q, want the missing Alpine ecosystem", res.Warnings)
	}
}

// The negative controls: each package is named by an advisory that must not match it.
func TestMatchNegativeControls(t *testing.T) {
	db := openFixtures(t)
	tests := []struct {
		name string
		pkg  inventory.Package
		// notIDs must appear in no finding of the package, under any of its ids.
		notIDs []string
	}{
		{"fixed before the installed version (DEBIAN-CVE-2022-0778 fixed in 1.1.1n-1 for bookworm)",
			deb("12", "libssl3", "3.0.11-1~deb12u2", "openssl"), []string{"DEBIAN-CVE-2022-0778", "CVE-2022-0778"}},
		{"another Debian release's advisory (DSA-5103-1 is for buster and bullseye)",
			deb("12", "libssl3", "3.0.11-1~deb12u2", "openssl"), []string{"DSA-5103-1", "CVE-2021-4160"}},
		{"the fixed version itself (DSA-5514-1, DEBIAN-CVE-2023-4911)",
			deb("12", "libc6", "2.36-9+deb12u3", "glibc"), []string{"DSA-5514-1", "DEBIAN-CVE-2023-4911"}},
		{"a backported fix: same upstream version, later Debian revision",
			deb("11", "libssl1.1", "1.1.1k-1+deb11u2", "openssl"), []string{"DEBIAN-CVE-2022-0778", "DSA-5103-1"}},
		{"a withdrawn advisory (GHSA-c5pj-mqfh-rvc3)",
			inventory.Package{Name: "github.com/opencontainers/runc", Version: "1.1.12", Ecosystem: "Go"}, []string{"GHSA-c5pj-mqfh-rvc3", "CVE-2024-3154"}},
		{"a version before the range was introduced (requests 2.2.1, GHSA-j8r2-6x86-q33q from 2.3.0)",
			inventory.Package{Name: "requests", Version: "2.2.1", Ecosystem: "PyPI"}, []string{"GHSA-j8r2-6x86-q33q"}},
		{"the binary name, which Debian advisories do not use",
			inventory.Package{Name: "glibc-tools", Version: "2.36-9+deb12u1", Ecosystem: "Debian:12"}, []string{"DEBIAN-CVE-2023-4911"}},
		{"lodash at the fix", inventory.Package{Name: "lodash", Version: "4.17.21", Ecosystem: "npm"}, []string{"GHSA-35jh-r3h4-6jhm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := match.Match([]inventory.Package{tt.pkg}, db, match.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Findings {
				ids := append([]string{f.ID, f.CVEID}, f.Aliases...)
				for _, not := range tt.notIDs {
					if slices.Contains(ids, not) {
						t.Errorf("Match(%s %s) found %s (%v), want no match", tt.pkg.Name, tt.pkg.Version, f.ID, f.Aliases)
					}
				}
			}
		})
	}
}

// A Debian:12 package at a bullseye-era version does match, but by Debian:12's range only: DSA-5103-1's
// bullseye entry would say fixed in 1.1.1k-1+deb11u2.
func TestMatchUsesOnlyThePackagesRelease(t *testing.T) {
	db := openFixtures(t)
	res, err := match.Match([]inventory.Package{deb("12", "libssl1.1", "1.1.1k-1", "openssl")}, db, match.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 {
		t.Fatalf("Match = %+v, want DEBIAN-CVE-2022-0778 alone", res.Findings)
	}
	if f := res.Findings[0]; f.ID != "DEBIAN-CVE-2022-0778" || f.FixedVersion != "1.1.1n-1" || slices.Contains(f.Aliases, "DSA-5103-1") {
		t.Errorf("Match = %s fixed %q aliases %v, want DEBIAN-CVE-2022-0778 fixed 1.1.1n-1 without DSA-5103-1", f.ID, f.FixedVersion, f.Aliases)
	}
}

func TestMatchIgnoreRules(t *testing.T) {
	db := openFixtures(t)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rules := []match.IgnoreRule{
		{ID: "CVE-2023-4911", Reason: "no SUID binaries in the image", Expires: now.Add(24 * time.Hour)},
		{ID: "cve-2021-23337", PURLs: []string{"pkg:npm/lodash"}, Paths: []string{"/usr/src/app/node_modules/*/package.json"}, Reason: "template() unused"},
		{ID: "GHSA-ppp9-7jff-5vj2", Reason: "accepted until spring", Expires: now.Add(-24 * time.Hour)},
		{ID: "CVE-2024-29415", PURLs: []string{"pkg:npm/ip@1.1.8"}, Reason: "another version"},
		{ID: "DEBIAN-CVE-2025-6141", Package: "ncurses", Reason: "by source name"},
	}
	res, err := match.Match(image, db, match.Options{Ignore: rules, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var ignored []string
	for _, ig := range res.Ignored {
		ignored = append(ignored, ig.Finding.ID+": "+ig.Reason)
	}
	wantIgnored := []string{
		"DEBIAN-CVE-2023-4911: no SUID binaries in the image",
		"GHSA-35jh-r3h4-6jhm: template() unused",
		"DEBIAN-CVE-2025-6141: by source name",
	}
	if !slices.Equal(ignored, wantIgnored) {
		t.Errorf("Ignored = %q, want %q", ignored, wantIgnored)
	}
	var ids []string
	for _, f := range res.Findings {
		ids = append(ids, f.ID)
	}
	for _, still := range []string{"GO-2021-0113", "GHSA-2p57-rm9w-gvfp"} {
		if !slices.Contains(ids, still) {
			t.Errorf("Findings = %v, want %s still reported", ids, still)
		}
	}
	if !slices.Contains(res.Warnings, "ignore rule for GHSA-ppp9-7jff-5vj2 expired on 2026-05-31: its findings are reported again") {
		t.Errorf("Warnings = %q, want the expired rule named", res.Warnings)
	}
}

func TestMatchSeverityThreshold(t *testing.T) {
	db := openFixtures(t)
	for _, tt := range []struct {
		threshold match.Severity
		want      int
	}{{match.SeverityCritical, 0}, {match.SeverityHigh, 5}, {match.SeverityMedium, 7}, {match.SeverityLow, 8}, {"", 0}} {
		res, err := match.Match(image, db, match.Options{SeverityThreshold: tt.threshold})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Violations) != tt.want || (tt.threshold == "") != (res.Violations == nil) {
			t.Errorf("Match(threshold %q): %d violations (nil %v), want %d", tt.threshold, len(res.Violations), res.Violations == nil, tt.want)
		}
	}
}

func TestLoadIgnoreFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".trivyignore.yaml")
	os.WriteFile(path, []byte(`vulnerabilities:
  - id: CVE-2023-4911
    statement: no SUID binaries in the image
    expired_at: 2027-01-01
  - id: GHSA-35jh-r3h4-6jhm
    paths:
      - "usr/src/app/node_modules/lodash/package.json"
    purls:
      - "pkg:npm/lodash"
  - id: CVE-2024-29415
    expired_at: "2026-03-01T12:00:00Z"
misconfigurations:
  - id: AVD-DS-0001
secrets:
`), 0o644)
	rules, err := match.LoadIgnoreFile(path)
	if err != nil {
		t.Fatalf("LoadIgnoreFile = %v", err)
	}
	want := []match.IgnoreRule{
		{ID: "CVE-2023-4911", Reason: "no SUID binaries in the image", Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "GHSA-35jh-r3h4-6jhm", Paths: []string{"usr/src/app/node_modules/lodash/package.json"}, PURLs: []string{"pkg:npm/lodash"}},
		{ID: "CVE-2024-29415", Expires: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	if len(rules) != len(want) {
		t.Fatalf("LoadIgnoreFile = %+v, want %+v", rules, want)
	}
	for i := range want {
		r, w := rules[i], want[i]
		if r.ID != w.ID || r.Reason != w.Reason || !r.Expires.Equal(w.Expires) || !slices.Equal(r.Paths, w.Paths) || !slices.Equal(r.PURLs, w.PURLs) {
			t.Errorf("rule %d = %+v, want %+v", i, r, w)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("vulnerabilities:\n  - statement: no id\n"), 0o644)
	if _, err := match.LoadIgnoreFile(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("LoadIgnoreFile(entry without id) = %v, want ErrInvalidArgument", err)
	}
	os.WriteFile(bad, []byte("vulnerabilities:\n  - id: CVE-1\n    expired_at: next week\n"), 0o644)
	if _, err := match.LoadIgnoreFile(bad); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "expired_at") {
		t.Errorf("LoadIgnoreFile(bad date) = %v, want ErrInvalidArgument about expired_at", err)
	}
	if _, err := match.LoadIgnoreFile(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("LoadIgnoreFile(missing) = %v, want ErrNotFound", err)
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]match.Severity{"CRITICAL": match.SeverityCritical, "High": match.SeverityHigh,
		"moderate": match.SeverityMedium, "medium": match.SeverityMedium, "low": match.SeverityLow, "unknown": match.SeverityUnknown} {
		if got, err := match.ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := match.ParseSeverity("severe"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParseSeverity(severe) = %v, want ErrInvalidArgument", err)
	}
}

// failingSource injects a database failure, which a real database does not produce on demand.
type failingSource struct{}

func (failingSource) Lookup(string, string) ([]*osvschema.Vulnerability, error) {
	return nil, errors.New("disk on fire")
}
func (failingSource) HasEcosystem(string) bool { return true }

func TestMatchReturnsSourceErrors(t *testing.T) {
	if _, err := match.Match(image[:1], failingSource{}, match.Options{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Match(failing source) = %v, want its error", err)
	}
	if _, err := match.Match(image, nil, match.Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Match(nil source) = %v, want ErrInvalidArgument", err)
	}
}
