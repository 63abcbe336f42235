// Package cyclonedx writes CycloneDX 1.5 JSON: the BOM of a scan (its vulnerable components and vulnerabilities,
// `myrmex scan -o cyclonedx`) and the SBOM of an image (every package found), attached to images as evidence.
package cyclonedx

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/scan/inventory"
)

// Schema is the JSON schema the documents follow.
const Schema = "http://cyclonedx.org/schema/bom-1.5.schema.json"

// The document: a BOM whose subject (metadata.component) is the image, whose components are the packages
// a vulnerability affects, and whose vulnerabilities section lists each vulnerability once with the packages it
// affects.
type (
	BOM struct {
		Schema          string          `json:"$schema"`
		BOMFormat       string          `json:"bomFormat"`
		SpecVersion     string          `json:"specVersion"`
		SerialNumber    string          `json:"serialNumber"`
		Version         int             `json:"version"`
		Metadata        Metadata        `json:"metadata"`
		Components      []Component     `json:"components"`
		Vulnerabilities []Vulnerability `json:"vulnerabilities"`
	}
	Metadata struct {
		Timestamp string    `json:"timestamp"`
		Tools     Tools     `json:"tools"`
		Component Component `json:"component"`
	}
	Tools struct {
		Components []Component `json:"components"`
	}
	Component struct {
		BOMRef     string     `json:"bom-ref,omitempty"`
		Type       string     `json:"type"`
		Name       string     `json:"name"`
		Version    string     `json:"version,omitempty"`
		PURL       string     `json:"purl,omitempty"`
		Properties []Property `json:"properties,omitempty"`
	}
	Property struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	Vulnerability struct {
		BOMRef         string      `json:"bom-ref"`
		ID             string      `json:"id"`
		Source         *Source     `json:"source,omitempty"`
		References     []Reference `json:"references,omitempty"`
		Ratings        []Rating    `json:"ratings"`
		Description    string      `json:"description,omitempty"`
		Recommendation string      `json:"recommendation,omitempty"`
		Affects        []Affect    `json:"affects"`
	}
	Source struct {
		Name string `json:"name"`
		URL  string `json:"url,omitempty"`
	}
	Reference struct {
		ID     string `json:"id"`
		Source Source `json:"source"`
	}
	Rating struct {
		Score    float64 `json:"score,omitempty"`
		Severity string  `json:"severity"`
		Method   string  `json:"method,omitempty"`
		Vector   string  `json:"vector,omitempty"`
	}
	Affect struct {
		Ref      string    `json:"ref"`
		Versions []Version `json:"versions"`
	}
	Version struct {
		Version string `json:"version"`
		Status  string `json:"status"`
	}
)

// New is an empty BOM about subject (an image), made at ts by tool at toolVersion.
func New(subject string, ts time.Time, tool, toolVersion string) BOM {
	return BOM{
		Schema: Schema, BOMFormat: "CycloneDX", SpecVersion: "1.5", SerialNumber: "urn:uuid:" + UUID(), Version: 1,
		Metadata: Metadata{
			Timestamp: ts.UTC().Format(time.RFC3339),
			Tools:     Tools{Components: []Component{{Type: "application", Name: tool, Version: toolVersion}}},
			Component: Component{BOMRef: subject, Type: "container", Name: subject},
		},
		Components: []Component{}, Vulnerabilities: []Vulnerability{},
	}
}

// ComponentOf is a package as a component: its purl, ecosystem, source package, layer and files as properties.
func ComponentOf(p inventory.Package) Component {
	ref := p.PURL
	if ref == "" {
		ref = p.Ecosystem + "/" + p.Name + "@" + p.Version
	}
	c := Component{BOMRef: ref, Type: "library", Name: p.Name, Version: p.Version, PURL: p.PURL}
	for _, prop := range []Property{{"myrmex:ecosystem", p.Ecosystem}, {"myrmex:source_package", p.SourceName}, {"myrmex:layer", p.Layer.DiffID},
		{"myrmex:locations", strings.Join(p.Locations, ",")}} {
		if prop.Value != "" {
			c.Properties = append(c.Properties, prop)
		}
	}
	return c
}

// SBOM is the software bill of materials of an image: every package found, once each, in a stable order.
func SBOM(subject string, ts time.Time, tool, toolVersion string, pkgs []inventory.Package) BOM {
	bom := New(subject, ts, tool, toolVersion)
	seen := map[string]bool{}
	for _, p := range pkgs {
		c := ComponentOf(p)
		if seen[c.BOMRef] {
			continue
		}
		seen[c.BOMRef] = true
		bom.Components = append(bom.Components, c)
	}
	slices.SortStableFunc(bom.Components, func(a, b Component) int { return strings.Compare(a.BOMRef, b.BOMRef) })
	return bom
}

// UUID is a random RFC 4122 version 4 UUID, for the BOM's serial number.
func UUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
