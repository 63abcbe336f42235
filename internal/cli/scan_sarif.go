package cli

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/codomyrmex/containerization"
)

// SARIF 2.1.0 (OASIS), the subset GitHub code scanning reads: a run whose driver lists a rule per vulnerability
// or check, and a result per finding. GitHub ranks security alerts by the rule's properties.security-severity
// (a CVSS score as a string) when a rule has one, else by the result's level.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool    sarifTool     `json:"tool"`
		Results []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		Version        string      `json:"version,omitempty"`
		InformationURI string      `json:"informationUri"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string             `json:"id"`
		Name                 string             `json:"name"`
		ShortDescription     sarifMessage       `json:"shortDescription"`
		FullDescription      sarifMessage       `json:"fullDescription"`
		HelpURI              string             `json:"helpUri,omitempty"`
		Help                 *sarifMessage      `json:"help,omitempty"`
		DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
		Properties           sarifRuleProps     `json:"properties"`
	}
	sarifConfiguration struct {
		Level string `json:"level"`
	}
	sarifRuleProps struct {
		Tags             []string `json:"tags"`
		Precision        string   `json:"precision,omitempty"`
		SecuritySeverity string   `json:"security-severity,omitempty"`
	}
	sarifMessage struct {
		Text string `json:"text"`
	}
	sarifResult struct {
		RuleID    string          `json:"ruleId"`
		RuleIndex int             `json:"ruleIndex"`
		Level     string          `json:"level"`
		Message   sarifMessage    `json:"message"`
		Locations []sarifLocation `json:"locations"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysicalLocation  `json:"physicalLocation"`
		LogicalLocations []sarifLogicalLocation `json:"logicalLocations,omitempty"`
	}
	sarifPhysicalLocation struct {
		ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
		Region           sarifRegion           `json:"region"`
	}
	sarifArtifactLocation struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine int `json:"startLine"`
	}
	sarifLogicalLocation struct {
		Name               string `json:"name"`
		FullyQualifiedName string `json:"fullyQualifiedName,omitempty"`
		Kind               string `json:"kind"`
	}
)

const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	myrmexSource = "https://github.com/codomyrmex/containerization"
)

// sarifLevel is a finding's SARIF level: error for critical and high, warning for medium, note for the rest.
func sarifLevel(severity string) string {
	switch severity {
	case "critical", "high":
		return "error"
	case "medium":
		return "warning"
	}
	return "note"
}

// checkLevel is a failed compliance check's SARIF level, from Dockle's FATAL, WARN and INFO.
func checkLevel(level string) string {
	switch level {
	case "FATAL":
		return "error"
	case "WARN":
		return "warning"
	}
	return "note"
}

// sarifOf turns a scan result into a SARIF log: a rule per vulnerability id and per failed check, a result per
// finding, located at the image (a scan has no source file to point at).
func sarifOf(res *containerization.SecurityScanResult) sarifLog {
	driver := sarifDriver{Name: "myrmex", Version: buildVersion().Version, InformationURI: myrmexSource, Rules: []sarifRule{}}
	results := []sarifResult{}
	index := map[string]int{}
	rule := func(r sarifRule) int {
		i, ok := index[r.ID]
		if !ok {
			i = len(driver.Rules)
			index[r.ID] = i
			driver.Rules = append(driver.Rules, r)
		}
		return i
	}
	at := func(logical ...sarifLogicalLocation) []sarifLocation {
		return []sarifLocation{{
			PhysicalLocation: sarifPhysicalLocation{
				ArtifactLocation: sarifArtifactLocation{URI: res.ImageName}, Region: sarifRegion{StartLine: 1},
			},
			LogicalLocations: logical,
		}}
	}

	for _, v := range sortedFindings(res.Vulnerabilities) {
		level := sarifLevel(v.Severity)
		r := sarifRule{
			ID: v.CVEID, Name: "PackageVulnerability",
			ShortDescription:     sarifMessage{cmp.Or(title(v.Description, 120), v.CVEID)},
			FullDescription:      sarifMessage{cmp.Or(strings.TrimSpace(v.Description), v.CVEID)},
			HelpURI:              v.URL,
			DefaultConfiguration: sarifConfiguration{level},
			Properties:           sarifRuleProps{Tags: []string{"vulnerability", "security", v.Severity}, Precision: "very-high"},
		}
		if v.URL != "" {
			r.Help = &sarifMessage{fmt.Sprintf("%s: %s", v.CVEID, v.URL)}
		}
		if v.Score > 0 {
			r.Properties.SecuritySeverity = fmt.Sprintf("%.1f", v.Score)
		}
		fix := "no fixed version yet"
		if v.FixedVersion != "" {
			fix = "fixed in " + v.FixedVersion
		}
		results = append(results, sarifResult{
			RuleID: v.CVEID, RuleIndex: rule(r), Level: level,
			Message: sarifMessage{fmt.Sprintf("Package %s %s is affected by %s (%s severity); %s.",
				v.Package, v.Version, v.CVEID, v.Severity, fix)},
			Locations: at(sarifLogicalLocation{
				Name: v.Package + "@" + v.Version, FullyQualifiedName: v.Ecosystem + "/" + v.Package + "@" + v.Version, Kind: "package",
			}),
		})
	}
	for _, c := range failedChecks(res) {
		level := checkLevel(c.Level)
		r := sarifRule{
			ID: c.ID, Name: "ComplianceCheck",
			ShortDescription:     sarifMessage{c.Title},
			FullDescription:      sarifMessage{cmp.Or(c.Remediation, c.Title)},
			DefaultConfiguration: sarifConfiguration{level},
			Properties:           sarifRuleProps{Tags: []string{"compliance", strings.ToLower(c.Level)}},
		}
		if c.Remediation != "" {
			r.Help = &sarifMessage{c.Remediation}
		}
		msg := c.Title
		if n := len(c.Details); n > 0 {
			// A check can list every file it found (DKL-DI-0005: each cached .deb); a few say enough.
			msg += ": " + strings.Join(c.Details[:min(n, 3)], "; ")
			if n > 3 {
				msg += fmt.Sprintf("; and %d more", n-3)
			}
		}
		results = append(results, sarifResult{
			RuleID: c.ID, RuleIndex: rule(r), Level: level, Message: sarifMessage{msg}, Locations: at(),
		})
	}
	return sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{{Tool: sarifTool{driver}, Results: results}}}
}
