package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/server/state"
)

// PolicyRefusals is GET /v1/policy/refusals's answer: the refusals kept, newest first (of a rule or an image when
// asked), and all of them counted by rule and by image.
type PolicyRefusals struct {
	Refusals []state.Refusal       `json:"refusals"`
	ByRule   []state.RuleRefusals  `json:"by_rule"`
	ByImage  []state.ImageRefusals `json:"by_image"`
}

// maxRuleName bounds a rule's name in a query (the policy's rules are short paths: images.tags.forbid_latest).
const maxRuleName = 200

func (s *Server) refusalsRoute() route {
	return route{method: "GET", path: "/v1/policy/refusals", scope: state.ScopeRead, id: "policyRefusals",
		summary: "The policy's refusals the server saw (requests, jobs, admission reviews), newest first, and all of them counted by rule and by image",
		query: []param{{"limit", "integer", "at most this many refusals (1 to 1000, default 100)"},
			{"rule", "string", "only the refusals that broke this rule (images.registries)"},
			{"image", "string", "only the refusals of this image, as it was named"}},
		out: &PolicyRefusals{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
			limit, err := intParam(c, "limit", 1, 1000)
			if err != nil {
				return 0, nil, err
			}
			q := state.RefusalQuery{Limit: limit, Rule: c.req.URL.Query().Get("rule"), Image: c.req.URL.Query().Get("image")}
			if len(q.Rule) > maxRuleName {
				return 0, nil, fmt.Errorf("%w: rule: %d characters, at most %d", errdefs.ErrInvalidArgument, len(q.Rule), maxRuleName)
			}
			if len(q.Image) > maxImageRef {
				return 0, nil, fmt.Errorf("%w: image: %d characters, at most %d", errdefs.ErrInvalidArgument, len(q.Image), maxImageRef)
			}
			list, err := s.cfg.State.Refusals(c.req.Context(), q)
			if err != nil {
				return 0, nil, err
			}
			byRule, byImage, err := s.cfg.State.RefusalCounts(c.req.Context())
			if err != nil {
				return 0, nil, err
			}
			return 200, PolicyRefusals{Refusals: list, ByRule: byRule, ByImage: byImage}, nil
		}}
}

// refusalOf is the refusal a verdict says, to be kept; nil when it refused nothing (it allowed, or only
// warned: a warning lets the request through).
func refusalOf(v *policy.Verdict, at time.Time, source, subject, token, job string) *state.Refusal {
	if v == nil || v.Allowed || v.Mode == policy.Warn || v.Mode == policy.Off {
		return nil
	}
	r := &state.Refusal{Time: at, Gate: v.Gate, Source: source, Subject: subject, Token: token, Job: job}
	// A verdict lists each finding of a rule (every vulnerability): the first of each rule and image is kept
	// first, so that the bound never hides a rule or an image behind the findings of another.
	type key struct{ rule, image, container string }
	seen := map[key]bool{}
	var rest []state.RefusalViolation
	for _, x := range v.Violations {
		rv := state.RefusalViolation{Rule: x.Rule, Image: x.Image, Digest: x.Digest, Container: x.Container, Finding: x.Finding}
		k := key{x.Rule, x.Image, x.Container}
		if seen[k] {
			rest = append(rest, rv)
			continue
		}
		seen[k] = true
		r.Violations = append(r.Violations, rv)
	}
	r.Violations = append(r.Violations, rest...)
	return r
}

// keepRefusal records r, if any; a failure to record is logged (the refusal itself stands).
func keepRefusal(ctx context.Context, st *state.Store, log *slog.Logger, r *state.Refusal) {
	if r == nil {
		return
	}
	if err := st.RecordRefusal(context.WithoutCancel(ctx), r); err != nil {
		log.Error("recording a refusal of the policy", "gate", r.Gate, "subject", r.Subject, "err", err)
	}
}
