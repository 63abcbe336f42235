package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/scan/inventory"
)

// The kinds of package compared, in Syft's names; anything else is compared under its own name.
var kinds = []string{"deb", "npm", "go-module", "python"}

// pkg is a package as the comparison sees it: its kind in Syft's terms, its name and its version.
type pkg struct{ kind, name, version string }

func (p pkg) String() string { return p.name + "@" + p.version }

// key is what two tools' packages are matched by. Go's versions are written "v0.3.5" in modules and "go1.26.8" for
// the standard library by some tools and without the prefix by others; the prefix is dropped for the match only.
func (p pkg) key() string {
	v := p.version
	if p.kind == "go-module" {
		v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	}
	return p.kind + " " + p.name + "@" + v
}

// kindOf maps an OSV ecosystem ("Debian:12", "npm", "Go", "PyPI") to Syft's package type.
func kindOf(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	switch base {
	case "Debian", "Ubuntu":
		return "deb"
	case "Alpine":
		return "apk"
	case "Red Hat", "Rocky Linux", "AlmaLinux", "openSUSE", "SUSE":
		return "rpm"
	case "Go":
		return "go-module"
	case "PyPI":
		return "python"
	}
	return strings.ToLower(base)
}

// scanOutput is what one round found, in the terms the checks compare.
type scanOutput struct {
	packages    []pkg // sorted by key
	layers      int   // Myrmex's inventory: the image's layers, and those read from the cache
	cached      int
	warnings    []string
	findings    []string // the full scan's findings, "package@version CVE", sorted
	scanned     int      // the full scan's packages_scanned
	compliance  *float64 // the full scan's compliance score
	scanSeconds float64  // in the process, Myrmex only
	tool        string   // the version Syft wrote in its SBOM
}

// count is the packages found: those listed, or those the full scan says it scanned.
func (o *scanOutput) count() int {
	if o.packages == nil {
		return o.scanned
	}
	return len(o.packages)
}

func sortPackages(ps []pkg) []pkg {
	slices.SortFunc(ps, func(a, b pkg) int { return cmp.Compare(a.key(), b.key()) })
	return ps
}

func readJSON(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	return nil
}

func readInventory(file string) (*scanOutput, error) {
	var res inventory.Result
	if err := readJSON(file, &res); err != nil {
		return nil, err
	}
	out := &scanOutput{layers: res.Stats.Layers, cached: res.Stats.CachedLayers, warnings: res.Warnings}
	for _, p := range res.Packages {
		out.packages = append(out.packages, pkg{kindOf(p.Ecosystem), p.Name, p.Version})
	}
	sortPackages(out.packages)
	return out, nil
}

func readFullScan(file string) (*scanOutput, error) {
	var res containerization.SecurityScanResult
	if err := readJSON(file, &res); err != nil {
		return nil, err
	}
	out := &scanOutput{scanned: res.PackagesScanned, compliance: res.ComplianceScore, warnings: res.Warnings}
	for _, v := range res.Vulnerabilities {
		out.findings = append(out.findings, fmt.Sprintf("%s@%s %s", v.Package, v.Version, v.CVEID))
	}
	slices.Sort(out.findings)
	return out, nil
}

// syftDocument is the part of Syft's syft-json output the benchmark reads.
type syftDocument struct {
	Artifacts []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Type    string `json:"type"`
	} `json:"artifacts"`
	Descriptor struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"descriptor"`
}

func readSyft(file string) (*scanOutput, error) {
	var doc syftDocument
	if err := readJSON(file, &doc); err != nil {
		return nil, err
	}
	out := &scanOutput{tool: doc.Descriptor.Name + " " + doc.Descriptor.Version}
	for _, a := range doc.Artifacts {
		out.packages = append(out.packages, pkg{a.Type, a.Name, a.Version})
	}
	sortPackages(out.packages)
	return out, nil
}

// samePackages says how two lists of packages differ, or "" when they hold the same packages.
func samePackages(want, got []pkg) string {
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("%d packages where the reference has %d; missing %v, extra %v", len(got), len(want),
		minus(counts(want), counts(got)), minus(counts(got), counts(want)))
}

func counts(ps []pkg) map[string]int {
	m := map[string]int{}
	for _, p := range ps {
		m[p.key()]++
	}
	return m
}

// minus lists the keys of a that b has fewer of, with "×n" when a has several more.
func minus(a, b map[string]int) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if d := a[k] - b[k]; d > 0 {
			s := k
			if d > 1 {
				s += fmt.Sprintf(" ×%d", d)
			}
			out = append(out, s)
		}
	}
	return out
}

// comparison sets the packages Myrmex's inventory found beside Syft's and the image's own manifest, kind by kind.
type comparison struct {
	Kinds  []kindRow `json:"by_ecosystem"`
	Myrmex int       `json:"myrmex_total"`
	Syft   int       `json:"syft_total"`
	Image  int       `json:"image_total"`
	Both   int       `json:"both_total"` // found by both, by name@version
	Match  string    `json:"matched_by"`
	Notes  []string  `json:"notes,omitempty"`
}

// kindRow is one kind of package. Lists name packages as name@version, as each tool wrote it.
type kindRow struct {
	Kind          string   `json:"kind"`
	Myrmex        int      `json:"myrmex"`
	Syft          int      `json:"syft"`
	Image         int      `json:"image"` // what testimages' manifest of the image lists
	Both          int      `json:"both"`
	OnlyMyrmex    []string `json:"only_myrmex,omitempty"`
	OnlySyft      []string `json:"only_syft,omitempty"`
	MyrmexMissing []string `json:"myrmex_missing_from_image,omitempty"` // in the manifest, not found by Myrmex
	SyftMissing   []string `json:"syft_missing_from_image,omitempty"`
	MyrmexExtra   []string `json:"myrmex_not_in_image_manifest,omitempty"` // found by Myrmex, not in the manifest
	SyftExtra     []string `json:"syft_not_in_image_manifest,omitempty"`
}

// compare sets the reference runs of both tools (the untimed first runs every round was checked against) beside
// each other and beside the image's manifest.
func (b *bench) compare() (comparison, error) {
	my, sy := b.ref[refMyrmex], b.ref[refSyft]
	if my == nil || sy == nil {
		return comparison{}, fmt.Errorf("no reference run to compare")
	}
	img := b.manifestPackages()
	c := comparison{Match: "kind, name and version; Go versions without their leading v or go (v0.3.5 = 0.3.5, go1.26.8 = 1.26.8)"}
	seen := slices.Clone(kinds)
	for _, ps := range [][]pkg{my.packages, sy.packages} {
		for _, p := range ps {
			if !slices.Contains(seen, p.kind) {
				seen = append(seen, p.kind)
			}
		}
	}
	for _, k := range seen {
		m, s, i := ofKind(my.packages, k), ofKind(sy.packages, k), ofKind(img, k)
		row := kindRow{Kind: k, Myrmex: len(m), Syft: len(s), Image: len(i)}
		mc, sc, ic := counts(m), counts(s), counts(i)
		for key, n := range mc {
			row.Both += min(n, sc[key])
		}
		row.OnlyMyrmex, row.OnlySyft = display(m, minus(mc, sc)), display(s, minus(sc, mc))
		row.MyrmexMissing, row.SyftMissing = display(i, minus(ic, mc)), display(i, minus(ic, sc))
		row.MyrmexExtra, row.SyftExtra = display(m, minus(mc, ic)), display(s, minus(sc, ic))
		c.Kinds = append(c.Kinds, row)
		c.Myrmex, c.Syft, c.Image, c.Both = c.Myrmex+row.Myrmex, c.Syft+row.Syft, c.Image+row.Image, c.Both+row.Both
	}
	// The manifest lists a Go binary's dependencies and standard library, not its main module, whose version
	// the build information gives as "(devel)" for a build outside version control: say what each tool made of it.
	if main := b.img.Go.Main; main != "" {
		var got []string
		for _, t := range []struct {
			tool string
			ps   []pkg
		}{{"Myrmex (osv-scalibr)", my.packages}, {"Syft", sy.packages}} {
			v := "does not list it"
			for _, p := range t.ps {
				if p.kind == "go-module" && p.name == main {
					v = fmt.Sprintf("%q", p.version)
				}
			}
			got = append(got, t.tool+" "+v)
		}
		c.Notes = append(c.Notes, fmt.Sprintf("%s is the main module of %s, built without version control information; the image's "+
			"manifest lists the binary's dependencies and standard library, not its main module. As its version, %s.", main,
			b.img.Go.Path, strings.Join(got, ", ")))
	}
	return c, nil
}

func ofKind(ps []pkg, kind string) []pkg {
	var out []pkg
	for _, p := range ps {
		if p.kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// display turns the keys minus returned back into name@version as the tool wrote it.
func display(ps []pkg, keys []string) []string {
	var out []string
	for _, k := range keys {
		key, times, _ := strings.Cut(k, " ×")
		for _, p := range ps {
			if p.key() == key {
				s := p.String()
				if times != "" {
					s += " ×" + times
				}
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// manifestPackages is what testimages read from the image's own files when it built it: dpkg's status, the npm
// packages' package.json, the Go binary's build information (its modules and the standard library) and the Python
// metadata.
func (b *bench) manifestPackages() []pkg {
	var ps []pkg
	for _, p := range b.img.Dpkg {
		ps = append(ps, pkg{"deb", p.Name, p.Version})
	}
	for _, p := range b.img.Npm {
		ps = append(ps, pkg{"npm", p.Name, p.Version})
	}
	for _, m := range b.img.Go.Modules {
		ps = append(ps, pkg{"go-module", m.Path, m.Version})
	}
	if b.img.Go.GoVersion != "" {
		ps = append(ps, pkg{"go-module", "stdlib", b.img.Go.GoVersion})
	}
	for _, p := range b.img.Python {
		ps = append(ps, pkg{"python", p.Name, p.Version})
	}
	return sortPackages(ps)
}
