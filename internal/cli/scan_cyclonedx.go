package cli

import (
	"cmp"
	"slices"
	"strings"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/scan/cyclonedx"
)

// cdxMethod names the CVSS version of a vector as CycloneDX's scoreMethod does; v2 vectors carry no prefix.
func cdxMethod(vector string) string {
	switch {
	case vector == "":
		return ""
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		return "CVSSv31"
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		return "CVSSv3"
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		return "CVSSv4"
	case strings.HasPrefix(vector, "AV:"):
		return "CVSSv2"
	}
	return "other"
}

// advisorySource names the database an advisory id comes from, by its prefix; the rest are OSV's.
func advisorySource(id string) string {
	for prefix, name := range map[string]string{
		"CVE-": "NVD", "GHSA-": "GitHub Advisory Database", "GO-": "Go Vulnerability Database",
		"DSA-": "Debian Security Tracker", "DEBIAN-": "Debian Security Tracker", "DLA-": "Debian Security Tracker",
		"PYSEC-": "PyPI Advisory Database",
	} {
		if strings.HasPrefix(id, prefix) {
			return name
		}
	}
	return "OSV"
}

// cdxRef is a package's bom-ref: its package URL, else its ecosystem, name and version.
func cdxRef(v containerization.Vulnerability) string {
	if v.PURL != "" {
		return v.PURL
	}
	return v.Ecosystem + "/" + v.Package + "@" + v.Version
}

// cycloneDXOf turns a scan result into a CycloneDX 1.5 BOM with a vulnerabilities section.
func cycloneDXOf(res *containerization.SecurityScanResult) cyclonedx.BOM {
	bom := cyclonedx.New(res.ImageName, res.ScanTimestamp, "myrmex", buildVersion().Version)
	components := map[string]bool{}
	vulns := map[string]int{}
	fixes := map[string][]string{}
	for _, v := range sortedFindings(res.Vulnerabilities) {
		ref := cdxRef(v)
		if !components[ref] {
			components[ref] = true
			c := cyclonedx.Component{BOMRef: ref, Type: "library", Name: v.Package, Version: v.Version, PURL: v.PURL}
			for _, p := range []cyclonedx.Property{{Name: "myrmex:ecosystem", Value: v.Ecosystem},
				{Name: "myrmex:source_package", Value: v.SourcePackage}, {Name: "myrmex:layer", Value: v.Layer}} {
				if p.Value != "" {
					c.Properties = append(c.Properties, p)
				}
			}
			bom.Components = append(bom.Components, c)
		}
		i, seen := vulns[v.CVEID]
		if !seen {
			i = len(bom.Vulnerabilities)
			vulns[v.CVEID] = i
			cv := cyclonedx.Vulnerability{
				BOMRef: "vuln:" + v.CVEID, ID: v.CVEID, Description: strings.TrimSpace(v.Description),
				Ratings: []cyclonedx.Rating{{Score: v.Score, Severity: v.Severity, Method: cdxMethod(v.Vector), Vector: v.Vector}},
				Source:  &cyclonedx.Source{Name: advisorySource(cmp.Or(v.ID, v.CVEID)), URL: v.URL},
			}
			for _, id := range append([]string{v.ID}, v.Aliases...) {
				if id != "" && id != v.CVEID {
					cv.References = append(cv.References, cyclonedx.Reference{ID: id, Source: cyclonedx.Source{Name: advisorySource(id)}})
				}
			}
			bom.Vulnerabilities = append(bom.Vulnerabilities, cv)
		}
		cv := &bom.Vulnerabilities[i]
		if !slices.ContainsFunc(cv.Affects, func(a cyclonedx.Affect) bool { return a.Ref == ref }) {
			cv.Affects = append(cv.Affects, cyclonedx.Affect{Ref: ref, Versions: []cyclonedx.Version{{Version: v.Version, Status: "affected"}}})
			if v.FixedVersion != "" {
				fixes[v.CVEID] = append(fixes[v.CVEID], v.Package+" to "+v.FixedVersion)
			}
		}
	}
	for id, i := range vulns {
		if f := fixes[id]; len(f) > 0 {
			bom.Vulnerabilities[i].Recommendation = "upgrade " + strings.Join(f, ", ")
		}
	}
	return bom
}
