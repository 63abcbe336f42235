package report

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/browser"
	"github.com/codomyrmex/containerization/internal/human"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/policy"
)

// Formats a report renders to.
const (
	FormatHTML = "html"
	FormatPDF  = "pdf"
	FormatJSON = "json"
)

// Formats are the formats of [Render], the default first.
var Formats = []string{FormatHTML, FormatPDF, FormatJSON}

//go:embed report.css
var css string

//go:embed report.html.tmpl
var page string

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") },
	"bytes": humanBytes,
	"short": shortDigest,
	"title": title,
	"join":  strings.Join,
}).Parse(page))

// ContentSecurityPolicy is the policy the HTML report holds in a meta element, and that a server should send with
// it: no scripts, nothing loaded from anywhere (images are data: URLs or inline SVG), no form, no base, only the
// report's own style sheet (by its hash).
var ContentSecurityPolicy = func() string {
	h := sha256.Sum256([]byte(css))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'; img-src data:; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// ContentType is the media type of a format's document.
func ContentType(format string) string {
	switch format {
	case FormatPDF:
		return "application/pdf"
	case FormatJSON:
		return "application/json"
	}
	return "text/html; charset=utf-8"
}

// CheckFormat refuses a format that is not one of [Formats] (ErrInvalidArgument); empty is html.
func CheckFormat(format string) (string, error) {
	f := cmp.Or(format, FormatHTML)
	if !slices.Contains(Formats, f) {
		return "", fmt.Errorf("%w: report format %q: want html, pdf or json", errdefs.ErrInvalidArgument, format)
	}
	return f, nil
}

// Render renders r in format (html, pdf or json).
func Render(ctx context.Context, r *Report, format string) ([]byte, error) {
	f, err := CheckFormat(format)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatPDF:
		return PDF(ctx, r)
	case FormatJSON:
		return JSON(r)
	}
	return HTML(r)
}

// JSON is the report as indented JSON, its field names the specification's.
func JSON(r *Report) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encoding the report: %w", err)
	}
	return b.Bytes(), nil
}

// HTML is the report as one self-contained HTML document: every value escaped, the style inline, the chart
// inline SVG, and a Content-Security-Policy meta element that forbids scripts and every load.
func HTML(r *Report) ([]byte, error) {
	if r == nil || r.ScanResult == nil {
		return nil, fmt.Errorf("%w: a report needs a scan result", errdefs.ErrInvalidArgument)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, viewOf(r)); err != nil {
		return nil, fmt.Errorf("rendering the report: %w", err)
	}
	return b.Bytes(), nil
}

// PDF is the HTML report printed by headless Chromium (Debian's chromium, see internal/browser), offline, on A4
// with the report's own @page rules. Without a browser the error is ErrUnavailable.
func PDF(ctx context.Context, r *Report) ([]byte, error) {
	doc, err := HTML(r)
	if err != nil {
		return nil, err
	}
	return browser.PrintPDF(ctx, doc, browser.PDFOptions{})
}

// view is what the template reads: the report, and what it shows computed beforehand.
type view struct {
	*Report
	CSS            template.CSS
	CSP            string
	Scan           *containerization.SecurityScanResult
	VerdictText    string
	ComplianceText string
	Chart          chart
	Groups         []group
	Failed         []containerization.ComplianceCheck
	Passed, Checks int
	Ecosystems     []ecosystem
	DBAge          string
	OptRows        []beforeAfter
	Violations     []policy.Violation
}

// chart is the bar chart of the counts by severity, in SVG user units.
type chart struct {
	Width, Height, LabelW int
	Bars                  []bar
}

type bar struct {
	Severity     string
	Count        int
	Y, W, TextX  int
	Color, Label string
}

type group struct {
	Severity string
	Findings []containerization.Vulnerability
}

type ecosystem struct {
	Name  string
	Count int
}

type beforeAfter struct {
	What, Before, After, Change string
}

// The severities' colours (dark enough for white text, and distinct in grey when printed without colour).
var colors = map[string]string{"critical": "#8b0000", "high": "#c43e00", "medium": "#8a6100", "low": "#1f5f99", "unknown": "#555555"}

func viewOf(r *Report) view {
	s := r.ScanResult
	v := view{Report: r, CSS: template.CSS(css), CSP: ContentSecurityPolicy, Scan: s}
	switch r.Verdict {
	case VerdictPassed:
		v.VerdictText = "Passed: " + judges(r) + " allowed the image"
	case VerdictFailed:
		v.VerdictText = "Failed: " + failures(r)
	case VerdictWarned:
		v.VerdictText = "Warned: the policy refuses the image, at a gate that only warns"
	default:
		v.VerdictText = "Not judged: no policy, severity threshold or signature key was given"
	}
	v.ComplianceText = "not checked (" + s.ScanType + " scan)"
	if s.ComplianceScore != nil {
		v.ComplianceText = fmt.Sprintf("%.0f / 100", *s.ComplianceScore)
	}
	counts := map[string]int{"critical": s.CriticalCount, "high": s.HighCount, "medium": s.MediumCount, "low": s.LowCount, "unknown": s.UnknownCount}
	most := 1
	for _, n := range counts {
		most = max(most, n)
	}
	const labelW, barW, rowH = 70, 180, 26
	v.Chart = chart{Width: labelW + barW + 50, Height: rowH * len(Severities), LabelW: labelW}
	for i, sev := range Severities {
		w := counts[sev] * barW / most
		if counts[sev] > 0 {
			w = max(w, 2)
		}
		v.Chart.Bars = append(v.Chart.Bars, bar{Severity: sev, Count: counts[sev], Y: i * rowH, W: w, TextX: labelW + w + 6,
			Color: colors[sev], Label: strings.ToUpper(sev[:1]) + sev[1:]})
	}
	for _, sev := range Severities {
		var list []containerization.Vulnerability
		for _, f := range s.Vulnerabilities {
			if f.Severity == sev {
				list = append(list, f)
			}
		}
		slices.SortStableFunc(list, func(a, b containerization.Vulnerability) int {
			return cmp.Or(cmp.Compare(b.Score, a.Score), strings.Compare(a.Package, b.Package), strings.Compare(a.CVEID, b.CVEID))
		})
		if len(list) > 0 {
			v.Groups = append(v.Groups, group{Severity: sev, Findings: list})
		}
	}
	rank := map[string]int{"FATAL": 0, "WARN": 1, "INFO": 2}
	for _, c := range s.Compliance {
		if c.Ignored {
			continue
		}
		v.Checks++
		if c.Passed {
			v.Passed++
		} else {
			v.Failed = append(v.Failed, c)
		}
	}
	slices.SortStableFunc(v.Failed, func(a, b containerization.ComplianceCheck) int { return cmp.Compare(rank[a.Level], rank[b.Level]) })
	for _, name := range slices.Sorted(maps.Keys(s.PackageEcosystems)) {
		v.Ecosystems = append(v.Ecosystems, ecosystem{Name: name, Count: s.PackageEcosystems[name]})
	}
	slices.SortStableFunc(v.Ecosystems, func(a, b ecosystem) int { return cmp.Compare(b.Count, a.Count) })
	if d := s.Database; d != nil {
		v.DBAge = human.Age(time.Duration(d.AgeHours * float64(time.Hour)))
	}
	if o := r.Optimization; o != nil {
		v.OptRows = optimizationRows(o)
	}
	if pv := r.PolicyVerdict; pv != nil {
		v.Violations = pv.Violations
	}
	return v
}

// judges names what judged the image.
func judges(r *Report) string {
	var who []string
	if r.PolicyVerdict != nil && r.PolicyVerdict.Mode != policy.Off {
		who = append(who, "the policy ("+r.PolicyVerdict.Gate+" gate)")
	}
	if r.Signatures != nil {
		who = append(who, "the signature check")
	}
	if len(who) == 0 {
		return "the scan's severity threshold"
	}
	return strings.Join(who, " and ")
}

// failures says what failed.
func failures(r *Report) string {
	var why []string
	if pv := r.PolicyVerdict; pv != nil && !pv.Allowed && pv.Mode == policy.Enforce {
		n := fmt.Sprintf("%d violations", len(pv.Violations))
		if len(pv.Violations) == 1 {
			n = "1 violation"
		}
		why = append(why, fmt.Sprintf("the policy refuses the image at the %s gate (%s)", pv.Gate, n))
	}
	if !r.ScanResult.PolicyPassed {
		why = append(why, "findings reach the scan's severity threshold")
	}
	if r.Signatures != nil && !r.Signatures.Verified {
		why = append(why, "no signature verifies with the keys given")
	}
	return strings.Join(why, "; ")
}

func optimizationRows(o *optimize.Record) []beforeAfter {
	change := func(before, after int64) string {
		if before == 0 {
			return ""
		}
		return fmt.Sprintf("%+.0f%%", float64(after-before)*100/float64(before))
	}
	return []beforeAfter{
		{"Content (bytes of files)", humanBytes(o.ContentBefore), humanBytes(o.ContentAfter), change(o.ContentBefore, o.ContentAfter)},
		{"Files", fmt.Sprint(o.FilesBefore), fmt.Sprint(o.FilesAfter), change(int64(o.FilesBefore), int64(o.FilesAfter))},
		{"Layers", fmt.Sprint(o.LayersBefore), fmt.Sprint(o.LayersAfter), change(int64(o.LayersBefore), int64(o.LayersAfter))},
	}
}

// humanBytes is a size in bytes as a person reads it (powers of 1000, as the engine's sizes are shown).
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// shortDigest is a digest's algorithm and first 12 hex digits.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// title is the first line of a description, cut to n characters.
func title(description string, n int) string {
	line, _, _ := strings.Cut(strings.TrimSpace(description), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return line
}

// CheckPDF reports whether a PDF can be printed here: ErrUnavailable, saying what to install, without a headless
// browser. Callers check it before the work whose report they would print.
func CheckPDF() error {
	_, err := browser.Find()
	return err
}
