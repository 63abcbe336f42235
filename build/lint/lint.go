package lint

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/codomyrmex/containerization/errdefs"
)

// Severity is how serious a finding is, with hadolint's four levels. The zero value is no severity: as a
// FailureThreshold it means that no finding fails the lint.
type Severity int

// The severities, from the least to the most serious.
const (
	SeverityNone Severity = iota
	SeverityStyle
	SeverityInfo
	SeverityWarning
	SeverityError
)

var severityNames = [...]string{"none", "style", "info", "warning", "error"}

// String is the lowercase name hadolint prints: "error", "warning", "info", "style" (or "none").
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("Severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the severity by name, so JSON and YAML carry "warning" rather than a number.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity by name, case-insensitively; the empty string is SeverityNone.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads "error", "warning", "info", "style" or "none" (or ""), case-insensitively. Any
// other name is an error wrapping errdefs.ErrInvalidArgument.
func ParseSeverity(name string) (Severity, error) {
	if name == "" {
		return SeverityNone, nil
	}
	if i := slices.Index(severityNames[:], strings.ToLower(name)); i >= 0 {
		return Severity(i), nil
	}
	return SeverityNone, fmt.Errorf("severity %q (want error, warning, info, style or none): %w", name, errdefs.ErrInvalidArgument)
}

// Options configures Lint. The zero value runs every rule and never fails.
type Options struct {
	// Ignore lists rule ids (DL3008…) that are not reported.
	Ignore []string
	// FailureThreshold makes Report.Failed true when a finding is at least this severe. SeverityNone, the
	// zero value, never fails.
	FailureThreshold Severity
}

// Finding is one rule broken by one instruction.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Line is the 1-based line where the instruction starts.
	Line    int    `json:"line"`
	Message string `json:"message"`
	// Instruction is the instruction's source text, continuation lines joined.
	Instruction string `json:"instruction"`
}

// Report is the outcome of Lint: the findings in line order, and whether one reached the threshold.
type Report struct {
	Findings []Finding `json:"findings"`
	Failed   bool      `json:"failed"`
}

// Lint checks a Dockerfile against the rules listed in the package documentation. It parses with
// BuildKit's parser, so a Dockerfile that BuildKit would refuse is an error wrapping
// errdefs.ErrInvalidArgument that names the line; a Dockerfile that lints badly is a Report, not an error.
func Lint(dockerfile []byte, opts Options) (*Report, error) {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, parseError(err, 0)
	}
	lines := strings.Split(string(dockerfile), "\n")

	ignored := map[string]bool{}
	for _, id := range opts.Ignore {
		ignored[strings.ToUpper(strings.TrimSpace(id))] = true
	}
	for _, l := range lines {
		if ids, ok := pragma(l, globalIgnoreRE); ok {
			for _, id := range ids {
				ignored[id] = true
			}
		}
	}

	c := &checker{}
	lnt := linter.New(&linter.Config{})
	for _, node := range res.AST.Children {
		inst, err := instructions.ParseInstructionWithLinter(node, lnt)
		if err != nil {
			return nil, parseError(err, node.StartLine)
		}
		c.node = node
		c.check(inst)
	}
	c.finish()

	rep := &Report{Findings: []Finding{}}
	for _, f := range c.findings {
		if ignored[f.Rule] || inlineIgnored(lines, f.Line, f.Rule) {
			continue
		}
		rep.Findings = append(rep.Findings, f)
		if opts.FailureThreshold != SeverityNone && f.Severity >= opts.FailureThreshold {
			rep.Failed = true
		}
	}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return rep, nil
}

// parseError wraps a BuildKit parse error with ErrInvalidArgument and the line it reports (or line, when
// it reports none).
func parseError(err error, line int) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line = le.Locations[0][0].Start.Line
	}
	msg := err.Error()
	if le != nil {
		msg = le.Unwrap().Error()
	}
	return fmt.Errorf("parsing dockerfile: line %d: %s: %w", line, msg, errdefs.ErrInvalidArgument)
}

var (
	ignoreRE       = regexp.MustCompile(`^\s*#\s*hadolint\s+ignore\s*=\s*([A-Za-z0-9, ]+)`)
	globalIgnoreRE = regexp.MustCompile(`^\s*#\s*hadolint\s+global\s+ignore\s*=\s*([A-Za-z0-9, ]+)`)
)

// pragma reads the rule ids of a "# hadolint ignore=DL3008,DL3015" style comment.
func pragma(line string, re *regexp.Regexp) ([]string, bool) {
	m := re.FindStringSubmatch(line)
	if m == nil {
		return nil, false
	}
	var ids []string
	for _, id := range strings.Split(m[1], ",") {
		if id = strings.ToUpper(strings.TrimSpace(id)); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, true
}

// inlineIgnored reports whether the comment block directly above line (1-based) holds a hadolint ignore
// pragma naming rule, as hadolint reads them.
func inlineIgnored(lines []string, line int, rule string) bool {
	for i := line - 2; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "#") {
			return false
		}
		if ids, ok := pragma(l, ignoreRE); ok && slices.Contains(ids, rule) {
			return true
		}
	}
	return false
}
