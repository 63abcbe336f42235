package retention

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/errdefs"
)

// Policy is a set of retention rules, OR-ed: an artifact is kept if any enabled rule keeps it.
type Policy struct {
	Rules []Rule `json:"rules"`
	// Schedule runs the policy (applied, not planned) from `myrmex serve` on a cron schedule: five fields
	// ("0 3 * * *": 03:00 every day) or a descriptor (@daily, @hourly, @every 6h), in UTC; once per time across
	// the server's replicas. Empty: run only when asked.
	Schedule string `json:"schedule,omitempty"`
}

// ParseSchedule reads a policy's schedule (see [Policy.Schedule]).
func ParseSchedule(spec string) (cron.Schedule, error) {
	if len(spec) > 100 {
		return nil, fmt.Errorf("%w: schedule: longer than 100 characters", errdefs.ErrInvalidArgument)
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: schedule %q: %v (want five fields, \"0 3 * * *\", or @daily, @every 6h)", errdefs.ErrInvalidArgument, spec, err)
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("%w: schedule %q: schedules are in UTC; no time zone", errdefs.ErrInvalidArgument, spec)
	}
	return s, nil
}

// Rule keeps some artifacts of the repositories it applies to. Its number in reasons and errors is its
// position in [Policy.Rules], from 1, disabled rules included.
type Rule struct {
	// Repositories selects the repositories the rule applies to, by repository path ("team-a/app").
	Repositories Selector `json:"repositories"`
	// Tags selects, among the artifacts of those repositories, the ones the retention template ranks.
	Tags Selector `json:"tags"`
	// Untagged makes the rule select untagged artifacts too; see the package doc for which ones are known.
	Untagged bool `json:"untagged,omitempty"`
	// Retain is the retention template: exactly one of its fields is set.
	Retain Retain `json:"retain"`
	// Disabled rules are ignored, as if absent.
	Disabled bool `json:"disabled,omitempty"`
}

// Decoration says whether a [Selector] keeps what its pattern matches or what it does not match.
type Decoration string

// The decorations, named as Harbor names them.
const (
	Matches  Decoration = "matches"
	Excludes Decoration = "excludes"
)

// Selector is a doublestar pattern with a decoration. An empty decoration means [Matches]. The pattern supports
// "*", "**", "?", "[a-z]" and "{a,b}"; a comma outside braces is Harbor's list notation, so "a,b" means "{a,b}".
type Selector struct {
	Decoration Decoration `json:"decoration,omitempty"`
	Pattern    string     `json:"pattern"`
}

// Retain is a retention template, Harbor's "By artifact count or number of days". Zero means unset.
type Retain struct {
	// MostRecentlyPushed keeps the N most recently pushed of the selected artifacts in each repository.
	MostRecentlyPushed int `json:"most_recently_pushed,omitempty"`
	// PushedWithinDays keeps the selected artifacts pushed within the last N days: N calendar days back from
	// [Options.Now], in its location. Any N of at least 1 is valid; one too large to count back from now
	// (millions of years) keeps every artifact of known push time, as "forever" should.
	PushedWithinDays int `json:"pushed_within_days,omitempty"`
	// Always keeps every selected artifact.
	Always bool `json:"always,omitempty"`
}

// PolicyError lists every problem found in a policy. It wraps [errdefs.ErrInvalidArgument].
type PolicyError struct {
	Problems []string
}

func (e *PolicyError) Error() string {
	return "invalid retention policy: " + strings.Join(e.Problems, "; ")
}

// Unwrap returns [errdefs.ErrInvalidArgument].
func (e *PolicyError) Unwrap() error { return errdefs.ErrInvalidArgument }

// ParsePolicy reads a policy written in YAML or JSON and validates it. Unknown fields are errors, since a
// misspelt field in a deletion policy would otherwise be silently ignored. Every error wraps
// [errdefs.ErrInvalidArgument]; a policy that parses but is not valid gives a [*PolicyError].
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return Policy{}, fmt.Errorf("%w: reading retention policy: %w", errdefs.ErrInvalidArgument, err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Validate checks every rule and returns a [*PolicyError] listing all the problems, or nil. A policy without
// rules is valid and keeps everything.
func (p Policy) Validate() error {
	var problems []string
	if p.Schedule != "" {
		if _, err := ParseSchedule(p.Schedule); err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), errdefs.ErrInvalidArgument.Error()+": "))
		}
	}
	for i, r := range p.Rules {
		at := fmt.Sprintf("rule %d: ", i+1)
		for _, s := range []struct {
			field string
			sel   Selector
		}{{"repositories", r.Repositories}, {"tags", r.Tags}} {
			if d := s.sel.Decoration; d != "" && d != Matches && d != Excludes {
				problems = append(problems, fmt.Sprintf("%s%s.decoration %q: want matches or excludes", at, s.field, d))
			}
			switch {
			case s.sel.Pattern == "":
				problems = append(problems, fmt.Sprintf("%s%s.pattern is empty: write \"**\" for all", at, s.field))
			case !doublestar.ValidatePattern(s.sel.pattern()):
				problems = append(problems, fmt.Sprintf("%s%s.pattern %q is not a valid pattern", at, s.field, s.sel.Pattern))
			}
		}
		set := 0
		if n := r.Retain.MostRecentlyPushed; n != 0 {
			set++
			if n < 1 {
				problems = append(problems, fmt.Sprintf("%sretain.most_recently_pushed is %d, want at least 1", at, n))
			}
		}
		if n := r.Retain.PushedWithinDays; n != 0 {
			set++
			if n < 1 {
				problems = append(problems, fmt.Sprintf("%sretain.pushed_within_days is %d, want at least 1", at, n))
			}
		}
		if r.Retain.Always {
			set++
		}
		switch {
		case set == 0:
			problems = append(problems, at+"retain: no template: set most_recently_pushed, pushed_within_days (at least 1) or always: true")
		case set > 1:
			problems = append(problems, at+"retain: several templates: set only one of most_recently_pushed, pushed_within_days and always")
		}
	}
	if len(problems) > 0 {
		return &PolicyError{Problems: problems}
	}
	return nil
}

// String describes the rule as Harbor's rule list does.
func (r Rule) String() string {
	var retain string
	switch {
	case r.Retain.MostRecentlyPushed > 0:
		retain = fmt.Sprintf("retain the most recently pushed %d artifacts", r.Retain.MostRecentlyPushed)
	case r.Retain.PushedWithinDays > 0:
		retain = fmt.Sprintf("retain the artifacts pushed within the last %d days", r.Retain.PushedWithinDays)
	case r.Retain.Always:
		retain = "retain always"
	default:
		retain = "retain nothing"
	}
	s := fmt.Sprintf("%s, repositories %s, tags %s", retain, r.Repositories, r.Tags)
	if r.Untagged {
		s += " and untagged artifacts"
	}
	if r.Disabled {
		s += " (disabled)"
	}
	return s
}

// String reads "matching team-a/**" or "excluding *-dev", as Harbor's rule list does.
func (s Selector) String() string {
	if s.Decoration == Excludes {
		return "excluding " + s.Pattern
	}
	return "matching " + s.Pattern
}

// pattern is the doublestar pattern: Harbor's "a,b" list notation becomes "{a,b}".
func (s Selector) pattern() string {
	depth := 0
	for _, c := range s.Pattern {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				return "{" + s.Pattern + "}"
			}
		}
	}
	return s.Pattern
}

// match tells whether the pattern matches value, ignoring the decoration. The pattern was validated.
func (s Selector) match(value string) bool {
	ok, _ := doublestar.Match(s.pattern(), value)
	return ok
}

// appliesTo tells whether the rule's repository selector selects repo.
func (r Rule) appliesTo(repo string) bool {
	return r.Repositories.match(repo) != (r.Repositories.Decoration == Excludes)
}

// selects tells whether the rule's tag selector selects an artifact with these tags: "matches" selects it if one
// tag matches, "excludes" if one tag does not match, and an untagged artifact is selected if the rule says so.
func (r Rule) selects(tags []string) bool {
	if len(tags) == 0 {
		return r.Untagged
	}
	for _, t := range tags {
		if r.Tags.match(t) != (r.Tags.Decoration == Excludes) {
			return true
		}
	}
	return false
}
