package main

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The full scan's database is an export of realistic size that the benchmark makes from the shapes of osv.dev's real
// records (those of the repository's fixtures), seeded, so that every run makes the same one; the real fixtures
// are inside it, so the test image's real findings are among its records. The counts follow osv.dev's shares
// loosely: Debian's converter writes the most records, then GitHub's npm and PyPI advisories, then the Go
// vulnerability database.
const (
	genDebian = 30_000
	genNPM    = 12_000
	genPyPI   = 8_000
	genGo     = 4_000
	// genSeed makes the export; a change of the generator that changes its records changes genVersion.
	genSeed    = 17
	genVersion = "osv-gen/1"
)

// osvRecord is the part of the OSV schema the generator writes and the conversion to Grype's formats reads: every
// field the fixtures use.
type osvRecord struct {
	SchemaVersion    string         `json:"schema_version,omitempty"`
	ID               string         `json:"id"`
	Summary          string         `json:"summary,omitempty"`
	Details          string         `json:"details,omitempty"`
	Aliases          []string       `json:"aliases,omitempty"`
	Upstream         []string       `json:"upstream,omitempty"`
	Published        string         `json:"published,omitempty"`
	Modified         string         `json:"modified"`
	Withdrawn        string         `json:"withdrawn,omitempty"`
	Severity         []osvSeverity  `json:"severity,omitempty"`
	Affected         []osvAffected  `json:"affected"`
	References       []osvReference `json:"references,omitempty"`
	DatabaseSpecific map[string]any `json:"database_specific,omitempty"`
}

type osvSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type osvAffected struct {
	Package           osvPackage     `json:"package"`
	Ranges            []osvRange     `json:"ranges,omitempty"`
	Versions          []string       `json:"versions,omitempty"`
	EcosystemSpecific map[string]any `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  map[string]any `json:"database_specific,omitempty"`
}

type osvPackage struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Purl      string `json:"purl,omitempty"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
}

type osvReference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// export is what the generator made: a zip per ecosystem family, as osv.dev serves <ecosystem>/all.zip, and the
// records themselves (the fixtures' too) for the conversion to Grype's formats.
type export struct {
	zips     []string
	records  []osvRecord
	fixtures []string // the fixtures' ids
	// fixtureIDs are the ids a finding from a fixture carries: the CVE among its ids, else its own (cveOrID).
	fixtureIDs map[string]bool
	counts     map[string]int
	bytes      int64 // JSON, uncompressed
}

// Real package names of each family, busiest first (see namer): the test image's packages are among them.
var (
	debianNames = strings.Fields(`linux chromium firefox-esr thunderbird imagemagick openjdk-17 qemu php8.2 tiff ffmpeg
		binutils glibc openssl curl gnutls28 libxml2 python3.11 ncurses systemd krb5 perl sqlite3 expat vim tar
		gnupg2 libgcrypt20 pcre2 zlib xz-utils bzip2 util-linux shadow coreutils bash dpkg apt e2fsprogs libzstd lz4
		libtasn1-6 p11-kit nettle gmp libidn2 libunistring libseccomp libcap2 libcap-ng audit pam sed grep gzip
		findutils diffutils debianutils base-files hostname init-system-helpers libselinux libsemanage libsepol
		acl attr db5.3 cdebconf debconf gcc-12 mawk libxcrypt libmd libbsd keyutils libffi libpsl nghttp2 openldap
		cyrus-sasl2 libssh2 rtmpdump brotli libtirpc libnsl readline tzdata sysvinit procps iputils ca-certificates`)
	npmNames = strings.Fields(`lodash minimist axios express next jsonwebtoken moment node-fetch ws semver
		tar undici follow-redirects qs ip xml2js handlebars marked ejs pug dompurify sanitize-html jquery
		underscore async debug ms mime glob minimatch braces micromatch path-to-regexp body-parser cookie`)
	pypiNames = strings.Fields(`requests django flask pillow urllib3 jinja2 cryptography pyyaml tornado aiohttp
		werkzeug sqlalchemy numpy paramiko twisted lxml setuptools pip certifi idna gunicorn uvicorn fastapi`)
	goNames = strings.Fields(`golang.org/x/net golang.org/x/text golang.org/x/crypto github.com/opencontainers/runc
		github.com/containerd/containerd github.com/docker/docker google.golang.org/grpc golang.org/x/image
		github.com/hashicorp/vault github.com/gin-gonic/gin k8s.io/kubernetes github.com/prometheus/prometheus`)
)

// Debian's releases in the export, with the codenames its purls carry.
var debianReleases = []struct {
	n        int
	codename string
}{{11, "bullseye"}, {12, "bookworm"}, {13, "trixie"}}

var urgencies = []string{"not yet assigned", "not yet assigned", "unimportant", "low", "medium", "high"}

// generator draws every random choice from one seeded stream, so that the export is the same in every run.
type generator struct{ rng *rand.Rand }

// ghsaAlphabet is the alphabet of GitHub's advisory ids.
const ghsaAlphabet = "23456789cfghjmpqrvwx"

func (g *generator) ghsa() string {
	var b strings.Builder
	b.WriteString("GHSA")
	for range 3 {
		b.WriteByte('-')
		for range 4 {
			b.WriteByte(ghsaAlphabet[g.rng.IntN(len(ghsaAlphabet))])
		}
	}
	return b.String()
}

// namer draws package names from a family's list with a Zipf spread over total names, as osv.dev's export has a
// few packages with hundreds of records and a long tail with one or two. The real names take the ranks first,
// first+step, first+2·step…, so that the test image's packages meet about as many records as in the real
// export (tens to a few hundred for the busiest); synthetic names prefix<rank> take the other ranks.
func (g *generator) namer(real []string, total, first, step int, prefix string) func() string {
	z := rand.NewZipf(g.rng, 1.1, 4, uint64(total-1))
	return func() string {
		i := int(z.Uint64())
		if j := (i - first) / step; i >= first && (i-first)%step == 0 && j < len(real) {
			return real[j]
		}
		return fmt.Sprintf("%s%d", prefix, i)
	}
}

func (g *generator) date(year int) string {
	t := time.Date(year, time.Month(1+g.rng.IntN(12)), 1+g.rng.IntN(28), g.rng.IntN(24), g.rng.IntN(60), g.rng.IntN(60), 0, time.UTC)
	return t.Format(time.RFC3339)
}

// cvss is a CVSS v3.1 vector with a random impact.
func (g *generator) cvss() string {
	lvl := func() string { return []string{"N", "L", "H"}[g.rng.IntN(3)] }
	return fmt.Sprintf("CVSS:3.1/AV:%s/AC:%s/PR:%s/UI:%s/S:U/C:%s/I:%s/A:%s",
		[]string{"N", "A", "L", "P"}[g.rng.IntN(4)], []string{"L", "H"}[g.rng.IntN(2)], lvl(), []string{"N", "R"}[g.rng.IntN(2)],
		lvl(), lvl(), lvl())
}

func (g *generator) details(what string) string {
	return fmt.Sprintf("A flaw was found in %s. A crafted input can cause an out-of-bounds read in the parser, "+
		"leading to a denial of service or the disclosure of memory. The issue was reported by a third party.", what)
}

// semver is a version as npm, PyPI and Go write them.
func (g *generator) semver() string {
	return fmt.Sprintf("%d.%d.%d", g.rng.IntN(6), g.rng.IntN(25), g.rng.IntN(15))
}

// debianVersion is a Debian version in a release: upstream, Debian revision, and the release's security suffix.
func (g *generator) debianVersion(release int) string {
	v := fmt.Sprintf("%d.%d.%d-%d", g.rng.IntN(4), g.rng.IntN(40), g.rng.IntN(10), 1+g.rng.IntN(9))
	if g.rng.IntN(2) == 0 {
		v += fmt.Sprintf("+deb%du%d", release, 1+g.rng.IntN(9))
	}
	return v
}

func (g *generator) debianRecord(i int, name string) osvRecord {
	year := 2015 + g.rng.IntN(11)                   // published before the records were modified (2026)
	cve := fmt.Sprintf("CVE-%d-%d", year, 100000+i) // 6 digits: never a fixture's
	r := osvRecord{SchemaVersion: "1.9.0", ID: "DEBIAN-" + cve, Upstream: []string{cve}, Details: g.details(name),
		Published: g.date(year), Modified: "2026-08-27T23:05:02Z",
		References: []osvReference{{"ADVISORY", "https://security-tracker.debian.org/tracker/" + cve}}}
	if g.rng.IntN(2) == 0 {
		r.Severity = []osvSeverity{{"CVSS_V3", g.cvss()}}
	}
	urgency := urgencies[g.rng.IntN(len(urgencies))]
	for _, rel := range debianReleases {
		if g.rng.IntN(5) == 0 { // not every release has the package, or the issue
			continue
		}
		a := osvAffected{Package: osvPackage{Ecosystem: fmt.Sprintf("Debian:%d", rel.n), Name: name,
			Purl: fmt.Sprintf("pkg:deb/debian/%s?arch=source&distro=%s", name, rel.codename)},
			EcosystemSpecific: map[string]any{"urgency": urgency}}
		if g.rng.IntN(6) == 0 {
			// No fix yet: every version is affected, and Debian's converter lists the ones it knows.
			a.Ranges = []osvRange{{"ECOSYSTEM", []osvEvent{{Introduced: "0"}}}}
			for range 2 + g.rng.IntN(12) {
				a.Versions = append(a.Versions, g.debianVersion(rel.n))
			}
		} else {
			a.Ranges = []osvRange{{"ECOSYSTEM", []osvEvent{{Introduced: "0"}, {Fixed: g.debianVersion(rel.n)}}}}
		}
		r.Affected = append(r.Affected, a)
	}
	if len(r.Affected) == 0 {
		return g.debianRecord(i, name)
	}
	return r
}

// ghsaRecord is a GitHub advisory as osv.dev serves it for npm and PyPI (and, beside GO- records, for Go).
func (g *generator) ghsaRecord(i int, ecosystem, rangeType, purlType, name string) osvRecord {
	year := 2017 + g.rng.IntN(9)
	r := osvRecord{SchemaVersion: "1.4.0", ID: g.ghsa(), Summary: "Denial of service in " + name, Details: g.details(name),
		Published: g.date(year), Modified: g.date(2026)}
	if g.rng.IntN(10) != 0 {
		r.Aliases = []string{fmt.Sprintf("CVE-%d-%d", year, 200000+i)}
	}
	severity := []string{"LOW", "MODERATE", "HIGH", "CRITICAL"}[g.rng.IntN(4)]
	r.Severity = []osvSeverity{{"CVSS_V3", g.cvss()}}
	r.DatabaseSpecific = map[string]any{"cwe_ids": []string{fmt.Sprintf("CWE-%d", 20+g.rng.IntN(900))}, "severity": severity,
		"github_reviewed": true}
	for range 1 + g.rng.IntN(2) {
		a := osvAffected{Package: osvPackage{Ecosystem: ecosystem, Name: name, Purl: "pkg:" + purlType + "/" + name}}
		introduced := "0"
		if g.rng.IntN(3) == 0 {
			introduced = g.semver()
		}
		ev := []osvEvent{{Introduced: introduced}}
		fix := g.semver()
		if !semverLess(introduced, fix) {
			fix = bump(introduced)
		}
		if g.rng.IntN(10) == 0 {
			ev = append(ev, osvEvent{LastAffected: fix})
		} else {
			ev = append(ev, osvEvent{Fixed: fix})
		}
		a.Ranges = []osvRange{{rangeType, ev}}
		r.Affected = append(r.Affected, a)
	}
	r.References = []osvReference{{"ADVISORY", "https://nvd.nist.gov/vuln/detail/" + r.cveOrID()}, {"PACKAGE", "https://github.com/example/" + name}}
	return r
}

// goRecord is a record of the Go vulnerability database.
func (g *generator) goRecord(i int, name string) osvRecord {
	year := 2020 + g.rng.IntN(6)
	id := fmt.Sprintf("GO-%d-%d", year, 5000+i) // above the fixtures' numbers
	r := osvRecord{SchemaVersion: "1.3.1", ID: id, Summary: "Panic on crafted input in " + name, Details: g.details(name),
		Aliases: []string{fmt.Sprintf("CVE-%d-%d", year, 400000+i), g.ghsa()}, Published: g.date(year), Modified: g.date(2026),
		DatabaseSpecific: map[string]any{"url": "https://pkg.go.dev/vuln/" + id, "review_status": "REVIEWED"}}
	introduced := "0"
	if g.rng.IntN(3) == 0 {
		introduced = g.semver()
	}
	fixed := g.semver()
	if !semverLess(introduced, fixed) {
		fixed = bump(introduced)
	}
	r.Affected = []osvAffected{{Package: osvPackage{Ecosystem: "Go", Name: name},
		Ranges:            []osvRange{{"SEMVER", []osvEvent{{Introduced: introduced}, {Fixed: fixed}}}},
		EcosystemSpecific: map[string]any{"imports": []map[string]any{{"path": name, "symbols": []string{"Parse", "Decode"}}}}}}
	r.References = []osvReference{{"FIX", "https://go.dev/cl/" + fmt.Sprint(300000+i)}}
	return r
}

// cveOrID is the record's CVE among its aliases and upstream ids, else its id: what a finding is compared by.
func (r osvRecord) cveOrID() string {
	for _, a := range append(slices.Clone(r.Aliases), r.Upstream...) {
		if strings.HasPrefix(a, "CVE-") {
			return a
		}
	}
	return r.ID
}

// semverLess compares two x.y.z versions.
func semverLess(a, b string) bool {
	var x, y [3]int
	fmt.Sscanf(a, "%d.%d.%d", &x[0], &x[1], &x[2])
	fmt.Sscanf(b, "%d.%d.%d", &y[0], &y[1], &y[2])
	return slices.Compare(x[:], y[:]) < 0
}

// bump is a version above v: its patch number plus one.
func bump(v string) string {
	var x [3]int
	fmt.Sscanf(v, "%d.%d.%d", &x[0], &x[1], &x[2])
	return fmt.Sprintf("%d.%d.%d", x[0], x[1], x[2]+1)
}

// generateExport writes the export into dir: Debian.zip, npm.zip, PyPI.zip and Go.zip, the fixtures (the
// repository's real records, under fixtureDirs of root) each in its family's zip.
func generateExport(root, dir string) (*export, error) {
	g := &generator{rng: rand.New(rand.NewPCG(genSeed, 0x6f7376))}
	ex := &export{counts: map[string]int{}, fixtureIDs: map[string]bool{}}
	byFamily := map[string][]osvRecord{}
	raw := map[string][]byte{} // the fixtures' own bytes, by id

	debian := g.namer(debianNames, 4_000, 0, 3, "srcpkg")
	for i := range genDebian {
		byFamily["Debian"] = append(byFamily["Debian"], g.debianRecord(i, debian()))
	}
	npm := g.namer(npmNames, 6_000, 20, 10, "npm-pkg-")
	for i := range genNPM {
		byFamily["npm"] = append(byFamily["npm"], g.ghsaRecord(i, "npm", "SEMVER", "npm", npm()))
	}
	pypi := g.namer(pypiNames, 4_000, 20, 10, "pypkg")
	for i := range genPyPI {
		byFamily["PyPI"] = append(byFamily["PyPI"], g.ghsaRecord(genNPM+i, "PyPI", "ECOSYSTEM", "pypi", pypi()))
	}
	gomod := g.namer(goNames, 1_500, 20, 10, "example.org/mod")
	for i := range genGo {
		byFamily["Go"] = append(byFamily["Go"], g.goRecord(i, gomod()))
	}

	for _, d := range fixtureDirs {
		files, err := filepath.Glob(filepath.Join(root, d, "*.json"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no advisories in %s", filepath.Join(root, d))
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			var r osvRecord
			if err := json.Unmarshal(data, &r); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(r.Affected) == 0 {
				return nil, fmt.Errorf("%s: no affected package", f)
			}
			fam, _, _ := strings.Cut(r.Affected[0].Package.Ecosystem, ":")
			byFamily[fam] = append(byFamily[fam], r)
			raw[r.ID] = data
			ex.fixtures = append(ex.fixtures, r.ID)
			ex.fixtureIDs[r.cveOrID()] = true
		}
	}

	for _, fam := range []string{"Debian", "npm", "PyPI", "Go"} {
		path := filepath.Join(dir, fam+".zip")
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		zw := zip.NewWriter(f)
		for _, r := range byFamily[fam] {
			data, ok := raw[r.ID]
			if !ok {
				if data, err = json.Marshal(r); err != nil {
					f.Close()
					return nil, err
				}
			}
			w, err := zw.Create(r.ID + ".json")
			if err != nil {
				f.Close()
				return nil, err
			}
			if _, err := w.Write(data); err != nil {
				f.Close()
				return nil, err
			}
			ex.bytes += int64(len(data))
		}
		if err := zw.Close(); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		ex.zips = append(ex.zips, path)
		ex.records = append(ex.records, byFamily[fam]...)
		ex.counts[fam] = len(byFamily[fam])
	}
	return ex, nil
}

// fixtureDirs hold the repository's real OSV records, which the scanner's tests match the Debian image against.
var fixtureDirs = []string{"scan/match/testdata", "testdata/osv"}
