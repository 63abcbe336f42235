package cli

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization"
)

// CycloneDX 1.5, JSON: a BOM whose subject (metadata.component) is the image, whose components are the packages
// a vulnerability affects, and whose vulnerabilities section lists each vulnerability once with the packages it
// affects.
type (
	cdxBOM struct {
		Schema          string             `json:"$schema"`
		BOMFormat       string             `json:"bomFormat"`
		SpecVersion     string             `json:"specVersion"`
		SerialNumber    string             `json:"serialNumber"`
		Version         int                `json:"version"`
		Metadata        cdxMetadata        `json:"metadata"`
		Components      []cdxComponent     `json:"components"`
		Vulnerabilities []cdxVulnerability `json:"vulnerabilities"`
	}
	cdxMetadata struct {
		Timestamp string       `json:"timestamp"`
		Tools     cdxTools     `json:"tools"`
		Component cdxComponent `json:"component"`
	}
	cdxTools struct {
		Components []cdxComponent `json:"components"`
	}
	cdxComponent struct {
		BOMRef     string        `json:"bom-ref,omitempty"`
		Type       string        `json:"type"`
		Name       string        `json:"name"`
		Version    string        `json:"version,omitempty"`
		PURL       string        `json:"purl,omitempty"`
		Properties []cdxProperty `json:"properties,omitempty"`
	}
	cdxProperty struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	cdxVulnerability struct {
		BOMRef         string         `json:"bom-ref"`
		ID             string         `json:"id"`
		Source         *cdxSource     `json:"source,omitempty"`
		References     []cdxReference `json:"references,omitempty"`
		Ratings        []cdxRating    `json:"ratings"`
		Description    string         `json:"description,omitempty"`
		Recommendation string         `json:"recommendation,omitempty"`
		Affects        []cdxAffect    `json:"affects"`
	}
	cdxSource struct {
		Name string `json:"name"`
		URL  string `json:"url,omitempty"`
	}
	cdxReference struct {
		ID     string    `json:"id"`
		Source cdxSource `json:"source"`
	}
	cdxRating struct {
		Score    float64 `json:"score,omitempty"`
		Severity string  `json:"severity"`
		Method   string  `json:"method,omitempty"`
		Vector   string  `json:"vector,omitempty"`
	}
	cdxAffect struct {
		Ref      string       `json:"ref"`
		Versions []cdxVersion `json:"versions"`
	}
	cdxVersion struct {
		Version string `json:"version"`
		Status  string `json:"status"`
	}
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
func cycloneDXOf(res *containerization.SecurityScanResult) cdxBOM {
	bom := cdxBOM{
		Schema: "http://cyclonedx.org/schema/bom-1.5.schema.json", BOMFormat: "CycloneDX", SpecVersion: "1.5",
		SerialNumber: "urn:uuid:" + uuid4(), Version: 1,
		Metadata: cdxMetadata{
			Timestamp: res.ScanTimestamp.UTC().Format(time.RFC3339),
			Tools:     cdxTools{Components: []cdxComponent{{Type: "application", Name: "myrmex", Version: buildVersion().Version}}},
			Component: cdxComponent{BOMRef: res.ImageName, Type: "container", Name: res.ImageName},
		},
		Components: []cdxComponent{}, Vulnerabilities: []cdxVulnerability{},
	}
	components := map[string]bool{}
	vulns := map[string]int{}
	fixes := map[string][]string{}
	for _, v := range sortedFindings(res.Vulnerabilities) {
		ref := cdxRef(v)
		if !components[ref] {
			components[ref] = true
			c := cdxComponent{BOMRef: ref, Type: "library", Name: v.Package, Version: v.Version, PURL: v.PURL}
			for _, p := range []cdxProperty{{"myrmex:ecosystem", v.Ecosystem}, {"myrmex:source_package", v.SourcePackage}, {"myrmex:layer", v.Layer}} {
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
			cv := cdxVulnerability{
				BOMRef: "vuln:" + v.CVEID, ID: v.CVEID, Description: strings.TrimSpace(v.Description),
				Ratings: []cdxRating{{Score: v.Score, Severity: v.Severity, Method: cdxMethod(v.Vector), Vector: v.Vector}},
				Source:  &cdxSource{Name: advisorySource(cmp.Or(v.ID, v.CVEID)), URL: v.URL},
			}
			for _, id := range append([]string{v.ID}, v.Aliases...) {
				if id != "" && id != v.CVEID {
					cv.References = append(cv.References, cdxReference{ID: id, Source: cdxSource{Name: advisorySource(id)}})
				}
			}
			bom.Vulnerabilities = append(bom.Vulnerabilities, cv)
		}
		cv := &bom.Vulnerabilities[i]
		if !slices.ContainsFunc(cv.Affects, func(a cdxAffect) bool { return a.Ref == ref }) {
			cv.Affects = append(cv.Affects, cdxAffect{Ref: ref, Versions: []cdxVersion{{Version: v.Version, Status: "affected"}}})
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

// uuid4 is a random RFC 4122 version 4 UUID, for the BOM's serial number.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
