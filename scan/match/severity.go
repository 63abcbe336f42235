package match

import (
	"fmt"
	"strings"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/codomyrmex/containerization/errdefs"
)

// Severity is how bad a finding is: critical, high, medium, low or unknown.
type Severity string

// The severities, most severe first.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
	SeverityUnknown  Severity = "unknown"
)

// ParseSeverity reads a severity, in any case; "moderate" (GitHub's word) is medium.
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return SeverityCritical, nil
	case "high":
		return SeverityHigh, nil
	case "medium", "moderate":
		return SeverityMedium, nil
	case "low":
		return SeverityLow, nil
	case "unknown":
		return SeverityUnknown, nil
	}
	return "", fmt.Errorf("%w: severity %q: want critical, high, medium, low or unknown", errdefs.ErrInvalidArgument, s)
}

func (s Severity) rank() int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// AtLeast reports whether s is as severe as threshold or more; unknown ranks below low.
func (s Severity) AtLeast(threshold Severity) bool { return s.rank() >= threshold.rank() }

// FromScore maps a CVSS base score to a severity: critical ≥ 9.0, high ≥ 7.0, medium ≥ 4.0, low below.
func FromScore(score float64) Severity {
	switch {
	case score >= 9.0:
		return SeverityCritical
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	}
	return SeverityLow
}

// rating is a severity and where it came from.
type rating struct {
	severity Severity
	score    float64
	vector   string
}

// severityOf rates a record for the affected entry that matched, as the package documentation describes.
func severityOf(v *osvschema.Vulnerability, a *osvschema.Affected) rating {
	sevs := append(append([]*osvschema.Severity{}, a.GetSeverity()...), v.GetSeverity()...)
	for _, pass := range []func(*osvschema.Severity) (float64, bool){cvss3, cvss4, cvss2} {
		for _, s := range sevs {
			if score, ok := pass(s); ok {
				return rating{severity: FromScore(score), score: score, vector: s.GetScore()}
			}
		}
	}
	for _, st := range []*structpb.Struct{a.GetEcosystemSpecific(), a.GetDatabaseSpecific(), v.GetDatabaseSpecific()} {
		if u := st.GetFields()["urgency"].GetStringValue(); u != "" {
			if s, ok := debianUrgency(u); ok {
				return rating{severity: s}
			}
		}
	}
	for _, st := range []*structpb.Struct{a.GetDatabaseSpecific(), v.GetDatabaseSpecific()} {
		if w := st.GetFields()["severity"].GetStringValue(); w != "" {
			if s, err := ParseSeverity(w); err == nil {
				return rating{severity: s}
			}
		}
	}
	for _, s := range sevs {
		if s.GetType() == osvschema.Severity_Ubuntu {
			if sev, ok := ubuntuPriority(s.GetScore()); ok {
				return rating{severity: sev}
			}
		}
	}
	return rating{severity: SeverityUnknown}
}

func cvss3(s *osvschema.Severity) (float64, bool) {
	vec := s.GetScore()
	switch {
	case strings.HasPrefix(vec, "CVSS:3.1/"):
		if c, err := gocvss31.ParseVector(vec); err == nil {
			return c.BaseScore(), true
		}
	case strings.HasPrefix(vec, "CVSS:3.0/"):
		if c, err := gocvss30.ParseVector(vec); err == nil {
			return c.BaseScore(), true
		}
	}
	return 0, false
}

func cvss4(s *osvschema.Severity) (float64, bool) {
	if vec := s.GetScore(); strings.HasPrefix(vec, "CVSS:4.0/") {
		if c, err := gocvss40.ParseVector(vec); err == nil {
			return c.Score(), true
		}
	}
	return 0, false
}

func cvss2(s *osvschema.Severity) (float64, bool) {
	if s.GetType() != osvschema.Severity_CVSS_V2 {
		return 0, false
	}
	vec := strings.TrimPrefix(strings.Trim(s.GetScore(), "()"), "CVSS:2.0/")
	if c, err := gocvss20.ParseVector(vec); err == nil {
		return c.BaseScore(), true
	}
	return 0, false
}

// debianUrgency maps the security tracker's urgency; the tracker marks some with trailing asterisks.
func debianUrgency(u string) (Severity, bool) {
	switch strings.TrimRight(strings.ToLower(strings.TrimSpace(u)), "*") {
	case "high":
		return SeverityHigh, true
	case "medium":
		return SeverityMedium, true
	case "low", "unimportant":
		return SeverityLow, true
	}
	return "", false
}

func ubuntuPriority(p string) (Severity, bool) {
	switch strings.ToLower(p) {
	case "critical":
		return SeverityCritical, true
	case "high":
		return SeverityHigh, true
	case "medium":
		return SeverityMedium, true
	case "low", "negligible":
		return SeverityLow, true
	}
	return "", false
}
