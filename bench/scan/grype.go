package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// Grype is built from its own module at this version (v0.122.0 needs a newer Go than the benchmark's); it brings
// Syft v1.57.1, the Syft the benchmark runs alone, so both measure the same cataloging.
const (
	grypeModule  = "github.com/anchore/grype"
	grypePackage = grypeModule + "/cmd/grype"
	grypeVersion = "v0.121.3"
)

// grypeDBBuildSource is a small program, built in the same throwaway module as Grype, that builds Grype's v6
// database with Grype's own builder (grype/db.Build, the code of grype-db) from vunnel provider workspaces.
//
//go:embed testdata/grypedbbuild/main.go
var grypeDBBuildSource []byte

// grypeTools are the two programs built from Grype's module.
type grypeTools struct {
	grype, dbBuild string
	how            string
}

// ensureGrype returns grype and the database builder, built once into $(go env GOCACHE)/../myrmex-bench-bin/
// grype-VERSION/ from a throwaway module that requires Grype; the main module's go.mod is never touched.
func ensureGrype(ctx context.Context, named string) (grypeTools, error) {
	dir, err := benchkit.BinDir(ctx, "grype-"+grypeVersion)
	if err != nil {
		return grypeTools{}, err
	}
	t := grypeTools{grype: filepath.Join(dir, "grype"), dbBuild: filepath.Join(dir, "grypedbbuild")}
	if named != "" {
		if t.grype, err = exec.LookPath(named); err != nil {
			return t, err
		}
	}
	record := filepath.Join(dir, "BUILD")
	if executable(t.grype) && executable(t.dbBuild) {
		b, _ := os.ReadFile(record)
		t.how = strings.TrimSpace(string(b))
		return t, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return t, err
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return t, err
	}
	defer os.RemoveAll(work)
	goVersion, _ := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	ldflags := "-ldflags=-X main.version=" + grypeVersion
	benchkit.Logf("building grype %s and its database builder into %s (once; many minutes when the module cache is cold)", grypeVersion, dir)
	start := time.Now()
	gomod := fmt.Sprintf("module myrmex.local/bench/grypebuild\n\ngo 1.26\n\nrequire %s %s\n", grypeModule, grypeVersion)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod), 0o644); err != nil {
		return t, err
	}
	if err := os.MkdirAll(filepath.Join(work, "grypedbbuild"), 0o755); err != nil {
		return t, err
	}
	if err := os.WriteFile(filepath.Join(work, "grypedbbuild", "main.go"), grypeDBBuildSource, 0o644); err != nil {
		return t, err
	}
	if err := benchkit.GoCmd(ctx, work, nil, "get", grypePackage+"@"+grypeVersion, grypeModule+"/grype/db@"+grypeVersion); err != nil {
		return t, err
	}
	if err := benchkit.GoCmd(ctx, work, nil, "build", "-o", filepath.Join(work, "grypedbbuild.bin"), "./grypedbbuild"); err != nil {
		return t, err
	}
	if named == "" {
		if err := benchkit.GoCmd(ctx, work, nil, "build", ldflags, "-o", filepath.Join(work, "grype.bin"), grypePackage); err != nil {
			return t, err
		}
	}
	t.how = fmt.Sprintf("go build %s %s and the benchmark's grypedbbuild in a throwaway module requiring %s %s (GOWORK=off, %s), built in %.0f s",
		ldflags, grypePackage, grypeModule, grypeVersion, strings.TrimSpace(string(goVersion)), time.Since(start).Seconds())
	if err := os.Rename(filepath.Join(work, "grypedbbuild.bin"), t.dbBuild); err != nil {
		return t, err
	}
	if named == "" {
		if err := os.Rename(filepath.Join(work, "grype.bin"), t.grype); err != nil {
			return t, err
		}
	}
	return t, os.WriteFile(record, []byte(t.how+"\n"), 0o644)
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// The vunnel schemas of the envelopes Grype's builder reads; it picks its processor by the schema's path and
// major version.
const (
	schemaOS     = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/os/schema-1.1.0.json"
	schemaGitHub = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/github-security-advisory/schema-1.0.1.json"
	schemaOSV    = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/osv/schema-1.6.1.json"
	// itemsPerFile packs this many records into one result file (an envelope's item may be a list), so that
	// the workspace is not 90,000 small files; Grype's builder reads both forms the same way.
	itemsPerFile = 500
)

// grypeConversion says what the conversion made and what it left out.
type grypeConversion struct {
	Items   map[string]int `json:"items"`   // by provider
	Skipped []string       `json:"skipped"` // record ids with no equivalent in Grype's sources
}

// writeGrypeWorkspace converts the export's records into the provider formats Grype's own sources are in, one
// workspace directory per provider, as vunnel would write them from the same advisories:
//
//   - Debian (DEBIAN-CVE-*): vunnel's debian provider, the "os" schema: one vulnerability per CVE and release
//     (namespace debian:N), a FixedIn per source package with the fixed version, empty when there is none;
//     the urgency as its severity (unimportant = Negligible).
//   - GitHub advisories (GHSA-*, npm, PyPI, Go): vunnel's github provider, the GHSA schema: a FixedIn per range
//     (">= introduced, < fixed", "<= last_affected") with the fix as its identifier, the advisory's CVEs, its
//     severity, its withdrawal.
//   - Go vulnerability database (GO-*): the OSV record itself, which Grype's builder reads as vunnel's OSV
//     schema.
//
// Debian's DSA-* records have no record of their own in Grype's Debian data (vunnel folds an advisory into the
// CVE's fix), so they are skipped and listed.
func writeGrypeWorkspace(ex *export, ws string) (grypeConversion, error) {
	conv := grypeConversion{Items: map[string]int{}}
	items := map[string][]envelopeItem{} // by provider
	type osKey struct{ cve, ns string }
	osVulns := map[osKey]*osVulnerability{}
	var osOrder []osKey
	for _, r := range ex.records {
		switch {
		case strings.HasPrefix(r.ID, "DEBIAN-"):
			cve := r.cveOrID()
			for _, a := range r.Affected {
				ns := "debian:" + strings.TrimPrefix(a.Package.Ecosystem, "Debian:")
				k := osKey{cve, ns}
				v := osVulns[k]
				if v == nil {
					v = &osVulnerability{Name: cve, NamespaceName: ns, Description: r.Details, Link: "https://security-tracker.debian.org/tracker/" + cve,
						Severity: debianSeverity(a.EcosystemSpecific), CVSS: []any{}, Metadata: map[string]any{}}
					osVulns[k] = v
					osOrder = append(osOrder, k)
				}
				v.FixedIn = append(v.FixedIn, osFixedIn{Name: a.Package.Name, NamespaceName: ns, VersionFormat: "dpkg",
					Version: fixedOf(a), VendorAdvisory: vendorAdvisory{AdvisorySummary: []any{}}})
			}
		case strings.HasPrefix(r.ID, "GHSA-"):
			items["github"] = append(items["github"], envelopeItem{schemaGitHub, r.ID, githubAdvisoryOf(r)})
		case strings.HasPrefix(r.ID, "GO-"):
			items["govulndb"] = append(items["govulndb"], envelopeItem{schemaOSV, r.ID, r})
		default:
			conv.Skipped = append(conv.Skipped, r.ID)
		}
	}
	for _, k := range osOrder {
		items["debian"] = append(items["debian"], envelopeItem{schemaOS, k.ns + "/" + k.cve, map[string]any{"Vulnerability": osVulns[k]}})
	}
	for provider, its := range items {
		dir := filepath.Join(ws, provider, "results")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return conv, err
		}
		for i := 0; i < len(its); i += itemsPerFile {
			batch := its[i:min(i+itemsPerFile, len(its))]
			list := make([]any, len(batch))
			for j, it := range batch {
				list[j] = it.item
			}
			env := map[string]any{"schema": batch[0].schema, "identifier": fmt.Sprintf("%s-%05d", provider, i/itemsPerFile), "item": list}
			data, err := json.Marshal(env)
			if err != nil {
				return conv, err
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d.json", i/itemsPerFile)), data, 0o644); err != nil {
				return conv, err
			}
		}
		conv.Items[provider] = len(its)
	}
	slices.Sort(conv.Skipped)
	return conv, nil
}

type envelopeItem struct {
	schema, id string
	item       any
}

// osVulnerability is vunnel's "os" schema, as its debian provider writes it.
type osVulnerability struct {
	Name          string         `json:"Name"`
	NamespaceName string         `json:"NamespaceName"`
	Description   string         `json:"Description"`
	Severity      string         `json:"Severity"`
	Link          string         `json:"Link"`
	CVSS          []any          `json:"CVSS"`
	FixedIn       []osFixedIn    `json:"FixedIn"`
	Metadata      map[string]any `json:"Metadata"`
}

type osFixedIn struct {
	Name           string         `json:"Name"`
	NamespaceName  string         `json:"NamespaceName"`
	Version        string         `json:"Version"`
	VersionFormat  string         `json:"VersionFormat"`
	VendorAdvisory vendorAdvisory `json:"VendorAdvisory"`
}

type vendorAdvisory struct {
	AdvisorySummary []any `json:"AdvisorySummary"`
	NoAdvisory      bool  `json:"NoAdvisory"`
}

// fixedOf is an affected entry's fixed version, empty when it has none.
func fixedOf(a osvAffected) string {
	for _, r := range a.Ranges {
		for _, e := range r.Events {
			if e.Fixed != "" {
				return e.Fixed
			}
		}
	}
	return ""
}

// debianSeverity is vunnel's reading of the Debian security tracker's urgency.
func debianSeverity(eco map[string]any) string {
	u, _ := eco["urgency"].(string)
	switch strings.TrimSuffix(u, "**") {
	case "unimportant":
		return "Negligible"
	case "low":
		return "Low"
	case "medium":
		return "Medium"
	case "high":
		return "High"
	}
	return "Unknown"
}

// githubAdvisoryOf is vunnel's github provider's form of a GitHub advisory.
func githubAdvisoryOf(r osvRecord) map[string]any {
	var cves []string
	for _, a := range r.Aliases {
		if strings.HasPrefix(a, "CVE-") {
			cves = append(cves, a)
		}
	}
	if cves == nil {
		cves = []string{}
	}
	ecosystem := map[string]string{"npm": "npm", "PyPI": "python", "Go": "go"}
	var fixedIn []map[string]any
	ns := ""
	for _, a := range r.Affected {
		eco := ecosystem[a.Package.Ecosystem]
		ns = "github:" + eco
		for _, rg := range a.Ranges {
			var intro, fixed, last string
			for _, e := range rg.Events {
				intro, fixed, last = cmpOr(e.Introduced, intro), cmpOr(e.Fixed, fixed), cmpOr(e.LastAffected, last)
			}
			var cons []string
			if intro != "" && intro != "0" {
				cons = append(cons, ">= "+intro)
			}
			switch {
			case fixed != "":
				cons = append(cons, "< "+fixed)
			case last != "":
				cons = append(cons, "<= "+last)
			}
			id := fixed
			if id == "" {
				id = "None"
			}
			fixedIn = append(fixedIn, map[string]any{"name": a.Package.Name, "ecosystem": eco, "namespace": ns,
				"identifier": id, "range": strings.Join(cons, ", ")})
		}
	}
	sev, _ := r.DatabaseSpecific["severity"].(string)
	if strings.EqualFold(sev, "moderate") {
		sev = "medium"
	}
	adv := map[string]any{"ghsaId": r.ID, "Summary": r.Summary, "Severity": titleCase(sev), "CVE": cves,
		"Metadata": map[string]any{"CVE": cves}, "FixedIn": fixedIn, "url": "https://github.com/advisories/" + r.ID,
		"published": r.Published, "updated": r.Modified, "namespace": ns, "Classification": "GENERAL"}
	if r.Withdrawn != "" {
		adv["withdrawn"] = r.Withdrawn
	}
	for _, s := range r.Severity {
		if s.Type == "CVSS_V3" {
			adv["cvss_severities"] = []map[string]string{{"vector": s.Score, "version": "3.1"}}
		}
	}
	return map[string]any{"Advisory": adv, "Vulnerability": map[string]any{}}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

// grypeDocument is the part of `grype -o json` the benchmark reads.
type grypeDocument struct {
	Matches []struct {
		Vulnerability struct {
			ID string `json:"id"`
		} `json:"vulnerability"`
		RelatedVulnerabilities []struct {
			ID string `json:"id"`
		} `json:"relatedVulnerabilities"`
		Artifact struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Type    string `json:"type"`
		} `json:"artifact"`
	} `json:"matches"`
	Descriptor struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		DB      struct {
			Status struct {
				SchemaVersion string `json:"schemaVersion"`
				From          string `json:"from"`
				Built         string `json:"built"`
			} `json:"status"`
		} `json:"db"`
	} `json:"descriptor"`
}

// readGrype reads Grype's findings as "package@version ID", the ID the CVE among the match's ids when there is
// one (as Myrmex's findings carry), each finding once.
func readGrype(file string) (*scanOutput, error) {
	var doc grypeDocument
	if err := readJSON(file, &doc); err != nil {
		return nil, err
	}
	out := &scanOutput{tool: doc.Descriptor.Name + " " + doc.Descriptor.Version}
	seen := map[string]bool{}
	for _, m := range doc.Matches {
		id := m.Vulnerability.ID
		if !strings.HasPrefix(id, "CVE-") {
			for _, r := range m.RelatedVulnerabilities {
				if strings.HasPrefix(r.ID, "CVE-") {
					id = r.ID
					break
				}
			}
		}
		v := m.Artifact.Version
		if m.Artifact.Type == "go-module" {
			v = strings.TrimPrefix(v, "v") // as the packages are compared: Syft writes v0.3.5, osv-scalibr 0.3.5
		}
		f := fmt.Sprintf("%s@%s %s", m.Artifact.Name, v, id)
		if !seen[f] {
			seen[f] = true
			out.findings = append(out.findings, f)
		}
	}
	slices.Sort(out.findings)
	return out, nil
}

// findingsComparison sets Myrmex's full scan's findings beside Grype's, both from their untimed first runs (every
// round was checked against them), each finding "package@version ID".
type findingsComparison struct {
	Myrmex     int      `json:"myrmex"`
	Grype      int      `json:"grype"`
	Both       int      `json:"both"`
	OnlyMyrmex []string `json:"only_myrmex"`
	OnlyGrype  []string `json:"only_grype"`
	// FromFixtures are the findings from the real records, by tool.
	FixturesMyrmex []string `json:"fixtures_myrmex"`
	FixturesGrype  []string `json:"fixtures_grype"`
}

func (b *bench) compareFindings() findingsComparison {
	my, gr := b.ref[refFull].findings, b.ref[refGrype].findings
	c := findingsComparison{Myrmex: len(my), Grype: len(gr)}
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, f := range list {
			m[f] = true
		}
		return m
	}
	myS, grS := in(my), in(gr)
	fixture := func(f string) bool {
		_, id, _ := strings.Cut(f, " ")
		return b.fixtureIDs[id]
	}
	for _, f := range my {
		if grS[f] {
			c.Both++
		} else {
			c.OnlyMyrmex = append(c.OnlyMyrmex, f)
		}
		if fixture(f) {
			c.FixturesMyrmex = append(c.FixturesMyrmex, f)
		}
	}
	for _, f := range gr {
		if !myS[f] {
			c.OnlyGrype = append(c.OnlyGrype, f)
		}
		if fixture(f) {
			c.FixturesGrype = append(c.FixturesGrype, f)
		}
	}
	return c
}
