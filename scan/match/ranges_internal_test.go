package match

import (
	"testing"

	"github.com/google/osv-scalibr/semantic"
	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/codomyrmex/containerization/scan/inventory"
)

func ev(kind, v string) *osvschema.Event {
	switch kind {
	case "introduced":
		return &osvschema.Event{Introduced: v}
	case "fixed":
		return &osvschema.Event{Fixed: v}
	case "last_affected":
		return &osvschema.Event{LastAffected: v}
	}
	return &osvschema.Event{Limit: v}
}

func TestInRange(t *testing.T) {
	tests := []struct {
		name    string
		eco     string
		events  []*osvschema.Event
		version string
		want    bool
		fixed   string
	}{
		{"from the start, before the fix", "npm", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "4.17.21")}, "4.17.20", true, "4.17.21"},
		{"at the fix", "npm", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "4.17.21")}, "4.17.21", false, ""},
		{"before introduced", "PyPI", []*osvschema.Event{ev("introduced", "2.3.0"), ev("fixed", "2.31.0")}, "2.2.1", false, ""},
		{"at introduced", "PyPI", []*osvschema.Event{ev("introduced", "2.3"), ev("fixed", "2.31.0")}, "2.3.0", true, "2.31.0"},
		{"last_affected is affected", "npm", []*osvschema.Event{ev("introduced", "0"), ev("last_affected", "2.0.1")}, "2.0.1", true, ""},
		{"after last_affected", "npm", []*osvschema.Event{ev("introduced", "0"), ev("last_affected", "2.0.1")}, "2.0.2", false, ""},
		{"events out of order", "Go", []*osvschema.Event{ev("fixed", "0.3.7"), ev("introduced", "0.3.0"), ev("fixed", "0.4.1"), ev("introduced", "0.4.0")}, "0.4.0", true, "0.4.1"},
		{"between two affected spans", "Go", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "1.5.0"), ev("introduced", "2.0.0"), ev("fixed", "2.3.0")}, "1.9.0", false, ""},
		{"second span picks its own fix", "Go", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "1.5.0"), ev("introduced", "2.0.0"), ev("fixed", "2.3.0")}, "2.1.0", true, "2.3.0"},
		{"reintroduced without a fix", "Go", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "1.5.0"), ev("introduced", "2.0.0")}, "3.0.0", true, ""},
		{"below the limit", "Go", []*osvschema.Event{ev("introduced", "0"), ev("limit", "2.0.0")}, "1.0.0", true, ""},
		{"at the limit", "Go", []*osvschema.Event{ev("introduced", "0"), ev("limit", "2.0.0")}, "2.0.0", false, ""},
		{"Debian epoch", "Debian:12", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "1:1.2.13.dfsg-1")}, "1:1.2.11.dfsg-4.1", true, "1:1.2.13.dfsg-1"},
		{"Debian tilde sorts before", "Debian:12", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "3.0.11-1")}, "3.0.11-1~deb12u2", true, "3.0.11-1"},
		{"Debian backport revision", "Debian:11", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "1.1.1k-1+deb11u2")}, "1.1.1k-1+deb11u2", false, ""},
		{"PyPI pre-release", "PyPI", []*osvschema.Event{ev("introduced", "0"), ev("fixed", "2.31.0")}, "2.31.0rc1", true, "2.31.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := semantic.Parse(tt.version, tt.eco)
			if err != nil {
				t.Fatal(err)
			}
			got, fix, err := inRange(&osvschema.Range{Type: osvschema.Range_ECOSYSTEM, Events: tt.events}, tt.eco, v)
			fixed := ""
			if fix != nil {
				fixed = fix.raw
			}
			if err != nil || got != tt.want || fixed != tt.fixed {
				t.Errorf("inRange(%s) = %v, fixed %q, %v; want %v, fixed %q", tt.version, got, fixed, err, tt.want, tt.fixed)
			}
		})
	}
}

func TestAffectsVersionsListAndUnparseableRanges(t *testing.T) {
	rec := &osvschema.Vulnerability{Id: "X-1", Affected: []*osvschema.Affected{
		{Package: &osvschema.Package{Ecosystem: "Debian:12", Name: "zlib"}, Versions: []string{"1:1.2.13.dfsg-1"}},
		{Package: &osvschema.Package{Ecosystem: "Debian:12", Name: "zlib"}, Ranges: []*osvschema.Range{{
			Type: osvschema.Range_ECOSYSTEM, Events: []*osvschema.Event{ev("introduced", "0"), ev("fixed", "x:1.2.13")}}}},
		{Package: &osvschema.Package{Ecosystem: "Debian:12", Name: "zlib"}, Ranges: []*osvschema.Range{{
			Type: osvschema.Range_GIT, Events: []*osvschema.Event{ev("introduced", "0"), ev("fixed", "6f70")}}}},
	}}
	v, _ := semantic.Parse("1:1.2.13.dfsg-1", "Debian:12")
	h, ok, err := affects(rec, "Debian:12", "zlib", "1:1.2.13.dfsg-1", v)
	if !ok || h.fixed != "" || err == nil {
		t.Errorf("affects(listed version) = %v, fixed %q, err %v; want affected, no fix, and the bad range reported", ok, h.fixed, err)
	}
	v, _ = semantic.Parse("1:1.2.12.dfsg-1", "Debian:12")
	if _, ok, _ := affects(rec, "Debian:12", "zlib", "1:1.2.12.dfsg-1", v); ok {
		t.Errorf("affects(unlisted version, only a bad range and a GIT range) = true, want false")
	}
	if _, ok, _ := affects(rec, "Debian:11", "zlib", "1:1.2.13.dfsg-1", v); ok {
		t.Errorf("affects(another release) = true, want false")
	}
}

func TestSeverityOf(t *testing.T) {
	sev := func(typ osvschema.Severity_Type, score string) *osvschema.Severity {
		return &osvschema.Severity{Type: typ, Score: score}
	}
	st := func(m map[string]any) *structpb.Struct {
		s, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const v31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"                    // 9.8
	const v40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N" // 6.9
	tests := []struct {
		name  string
		rec   *osvschema.Vulnerability
		aff   *osvschema.Affected
		want  Severity
		score float64
	}{
		{"v3 before v4", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V4, v40), sev(osvschema.Severity_CVSS_V3, v31)}}, nil, SeverityCritical, 9.8},
		{"v4 alone", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V4, v40)}}, nil, SeverityMedium, 6.9},
		{"v3.0", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V3, "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N")}}, nil, SeverityLow, 3.3},
		{"v2", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V2, "AV:N/AC:L/Au:N/C:P/I:P/A:P")}}, nil, SeverityHigh, 7.5},
		{"no impact is low", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N")}}, nil, SeverityLow, 0},
		{"the affected entry's vector first", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V3, v31)}},
			&osvschema.Affected{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V3, "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N")}}, SeverityMedium, 6.1},
		{"a broken vector falls through", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_CVSS_V3, "CVSS:3.1/AV:X")},
			DatabaseSpecific: st(map[string]any{"severity": "MODERATE"})}, nil, SeverityMedium, 0},
		{"Debian urgency high", &osvschema.Vulnerability{}, &osvschema.Affected{EcosystemSpecific: st(map[string]any{"urgency": "high"})}, SeverityHigh, 0},
		{"Debian urgency with asterisks", &osvschema.Vulnerability{}, &osvschema.Affected{EcosystemSpecific: st(map[string]any{"urgency": "medium**"})}, SeverityMedium, 0},
		{"Debian unimportant", &osvschema.Vulnerability{}, &osvschema.Affected{EcosystemSpecific: st(map[string]any{"urgency": "unimportant"})}, SeverityLow, 0},
		{"Debian not yet assigned", &osvschema.Vulnerability{}, &osvschema.Affected{EcosystemSpecific: st(map[string]any{"urgency": "not yet assigned"})}, SeverityUnknown, 0},
		{"GHSA critical", &osvschema.Vulnerability{DatabaseSpecific: st(map[string]any{"severity": "CRITICAL"})}, nil, SeverityCritical, 0},
		{"Ubuntu negligible", &osvschema.Vulnerability{Severity: []*osvschema.Severity{sev(osvschema.Severity_Ubuntu, "negligible")}}, nil, SeverityLow, 0},
		{"nothing", &osvschema.Vulnerability{}, nil, SeverityUnknown, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := severityOf(tt.rec, tt.aff); got.severity != tt.want || got.score != tt.score {
				t.Errorf("severityOf = %s %.1f, want %s %.1f", got.severity, got.score, tt.want, tt.score)
			}
		})
	}
}

func TestGroupKeepsAnUncoveredBundle(t *testing.T) {
	bundle := &osvschema.Vulnerability{Id: "DSA-5103-1", Upstream: []string{"CVE-2021-4160", "CVE-2022-0778"}}
	p := inventory.Package{Name: "libssl1.1", Version: "1.1.1k-1+deb11u1", Ecosystem: "Debian:11"}
	got := group(p, []hit{{rec: bundle, fixed: "1.1.1k-1+deb11u2"}})
	if len(got) != 1 || got[0].ID != "DSA-5103-1" || got[0].CVEID != "DSA-5103-1" || len(got[0].Aliases) != 2 {
		t.Errorf("group(bundle alone) = %+v, want DSA-5103-1 with its two CVEs as aliases", got)
	}
}

func TestPURLCovers(t *testing.T) {
	for _, tt := range []struct {
		rule, pkg string
		want      bool
	}{
		{"pkg:deb/debian/libssl1.1", "pkg:deb/debian/libssl1.1@1.1.1k-1%2Bdeb11u1?arch=amd64&distro=debian-11", true},
		{"pkg:deb/debian/libssl1.1@1.1.1k-1+deb11u1", "pkg:deb/debian/libssl1.1@1.1.1k-1%2Bdeb11u1?arch=amd64", true},
		{"pkg:deb/debian/libssl1.1@1.1.1k-1+deb11u2", "pkg:deb/debian/libssl1.1@1.1.1k-1%2Bdeb11u1?arch=amd64", false},
		{"pkg:deb/debian/libssl1.1?arch=arm64", "pkg:deb/debian/libssl1.1@1.1.1k-1?arch=amd64", false},
		{"pkg:npm/%40babel/core", "pkg:npm/%40babel/core@7.0.0", true},
		{"pkg:npm/lodash", "pkg:npm/lodash-es@4.17.20", false},
		{"lodash", "pkg:npm/lodash@4.17.20", false},
	} {
		rule, ok := parsePURL(tt.rule)
		pkg, _ := parsePURL(tt.pkg)
		if got := ok && rule.covers(pkg); got != tt.want {
			t.Errorf("purl %q covers %q = %v, want %v", tt.rule, tt.pkg, got, tt.want)
		}
	}
}
