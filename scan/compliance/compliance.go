package compliance

import (
	"context"
	"fmt"
	"math"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/errdefs"
)

// Level is how serious a failed check is, as Dockle grades it.
type Level string

// The levels, from the most serious.
const (
	Fatal Level = "FATAL"
	Warn  Level = "WARN"
	Info  Level = "INFO"
)

// Weight is the level's weight in the score: 10 for FATAL, 5 for WARN, 1 for INFO.
func (l Level) Weight() float64 {
	switch l {
	case Fatal:
		return 10
	case Warn:
		return 5
	case Info:
		return 1
	}
	return 0
}

// ScoreFormula says how [Score] computes the compliance score, for reports that show it.
//
// Each check weighs as much as its level: FATAL 10, WARN 5, INFO 1. The score is the share of the weight held
// by the checks that passed, among the checks that were not ignored, on a scale of 0 to 100, rounded to one
// decimal. An image that passes every check scores 100, one that fails every check 0; a failed FATAL check costs
// ten times what a failed INFO check costs. When every check is ignored there is nothing to fail and the score
// is 100.
const ScoreFormula = "score = 100 × Σ weight(passed) / Σ weight(not ignored), weights FATAL=10 WARN=5 INFO=1, one decimal"

// DefaultMaxFileSize is the number of bytes read from a file whose content a check needs, when
// [Options.MaxFileSize] is zero.
const DefaultMaxFileSize = 1 << 20

// Options tunes [Check]. The zero value runs every check and reads at most [DefaultMaxFileSize] bytes of a file.
type Options struct {
	// Ignore lists check ids (CIS-DI-0001, DKL-LI-0003…) to leave out of the score. Ignored checks still run
	// and are reported, with Ignored set. Ids that name no check are left alone, so one ignore list can hold
	// vulnerability ids as well.
	Ignore []string
	// MaxFileSize bounds how much of a file is read to check its content (/etc/passwd, /etc/shadow, /etc/group,
	// candidate secret files). A longer file is checked on its first MaxFileSize bytes. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
}

// Report is the outcome of [Check].
type Report struct {
	// Checks holds one result per check, in the order of the package documentation.
	Checks []Result `json:"checks"`
	// Score is the compliance score, 0 to 100; see ScoreFormula.
	Score float64 `json:"score"`
}

// Failed returns the results of the checks that failed and are not ignored.
func (r *Report) Failed() []Result {
	var failed []Result
	for _, c := range r.Checks {
		if !c.Passed && !c.Ignored {
			failed = append(failed, c)
		}
	}
	return failed
}

// Result is the outcome of one check.
type Result struct {
	// ID is the check's id, as Dockle names it: CIS-DI-0001, DKL-DI-0005…
	ID    string `json:"id"`
	Level Level  `json:"level"`
	Title string `json:"title"`
	// Passed is false when the check found something; Details then says what and where.
	Passed bool `json:"passed"`
	// Ignored is true when Options.Ignore named the check; it does not count in the score.
	Ignored bool `json:"ignored,omitempty"`
	// Details lists the offending paths, history entries or values (secret values are never shown), or, for a
	// check that passed for want of anything to look at, why.
	Details []string `json:"details,omitempty"`
	// Remediation says what to change in the image or its Dockerfile to pass.
	Remediation string `json:"remediation"`
}

// Check runs every check on img and scores the result. ref is the image reference as the user gave it
// ("nginx", "registry.example/app:1.2"), for the latest-tag check; it is empty for an image that has no
// reference (a tarball, an OCI layout), which passes that check.
//
// The content-trust check (CIS-DI-0005) passes when the scanning process has DOCKER_CONTENT_TRUST=1 in its
// environment, as with Dockle.
func Check(ctx context.Context, img v1.Image, ref string, opts Options) (*Report, error) {
	if img == nil {
		return nil, fmt.Errorf("compliance check: no image: %w", errdefs.ErrInvalidArgument)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	if cf == nil {
		cf = &v1.ConfigFile{}
	}
	max := opts.MaxFileSize
	if max <= 0 {
		max = DefaultMaxFileSize
	}
	files, err := walk(ctx, img, max)
	if err != nil {
		return nil, err
	}
	in := &input{
		config:       cf,
		ref:          ref,
		contentTrust: os.Getenv("DOCKER_CONTENT_TRUST") == "1",
		files:        files,
	}

	ignored := make(map[string]bool, len(opts.Ignore))
	for _, id := range opts.Ignore {
		ignored[id] = true
	}
	r := &Report{Checks: make([]Result, 0, len(checks))}
	for _, c := range checks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		details, failed := c.run(in)
		r.Checks = append(r.Checks, Result{
			ID:          c.id,
			Level:       c.level,
			Title:       c.title,
			Passed:      !failed,
			Ignored:     ignored[c.id],
			Details:     capDetails(details),
			Remediation: c.remediation,
		})
	}
	r.Score = Score(r.Checks)
	return r, nil
}

// Score computes the compliance score of results as ScoreFormula says.
func Score(results []Result) float64 {
	var passed, total float64
	for _, r := range results {
		if r.Ignored {
			continue
		}
		w := r.Level.Weight()
		total += w
		if r.Passed {
			passed += w
		}
	}
	if total == 0 {
		return 100
	}
	return math.Round(1000*passed/total) / 10
}

// maxDetails bounds the details of one check, so that an image with thousands of offending files still gives a
// report a person can read.
const maxDetails = 50

func capDetails(d []string) []string {
	if len(d) <= maxDetails {
		return d
	}
	return append(d[:maxDetails:maxDetails], fmt.Sprintf("… and %d more", len(d)-maxDetails))
}
