package server

import (
	"encoding/json"
	"fmt"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/server/state"
)

// PolicyInForce is GET /v1/policy's answer: the policy the server holds at its gates (myrmex serve --policy).
type PolicyInForce struct {
	// Set is false when the server holds no policy: every gate is then off.
	Set  bool   `json:"set"`
	File string `json:"file,omitempty"`
	// Gates says what each gate does with a refusal: enforce, warn or off.
	Gates map[string]policy.Mode `json:"gates"`
	// Rules are the rules the policy writes, in words, as myrmex policy check lists them; Problems what makes it
	// refuse every image.
	Rules    []policy.Rule `json:"rules"`
	Problems []string      `json:"problems"`
	// Policy is the policy as its file writes it (docs/policy.md; its schema: myrmex policy schema).
	Policy map[string]any `json:"policy,omitempty"`
}

// PolicyEvaluate is POST /v1/policy/evaluate's body: an image to hold to the server's policy at a gate, changing
// nothing.
type PolicyEvaluate struct {
	ImageName string `json:"image_name"`
	// Gate is build, push, create, apply (the default: the image read from its registry) or pipeline (the
	// others: the engine's image).
	Gate string `json:"gate,omitempty"`
}

func (s *Server) policyRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/policy", scope: state.ScopeRead, id: "getPolicy",
			summary: "The policy the server holds at its gates: its rules, and what each gate does with a refusal",
			out:     &PolicyInForce{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				return policyInForce(s.cfg.Client.Policy())
			}},
		// Operate, though it changes nothing: a check may scan the image, and reads registries with the server's
		// logins, as POST /v1/scans does.
		{method: "POST", path: "/v1/policy/evaluate", scope: state.ScopeOperate, id: "evaluatePolicy",
			summary: "Hold an image to the server's policy at a gate, as the gate would, changing nothing: the verdict (allowed, violations by rule, warnings)",
			in:      &PolicyEvaluate{}, out: &policy.Verdict{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				var req PolicyEvaluate
				if err := decode(c, &req); err != nil {
					return 0, nil, err
				}
				if req.ImageName == "" {
					return 0, nil, fmt.Errorf("%w: image_name is required", errdefs.ErrInvalidArgument)
				}
				if len(req.ImageName) > maxImageRef {
					return 0, nil, fmt.Errorf("%w: image_name: %d characters, at most %d", errdefs.ErrInvalidArgument, len(req.ImageName), maxImageRef)
				}
				v, err := s.cfg.Client.CheckPolicy(c.req.Context(), req.ImageName, containerization.CheckPolicyOptions{Gate: req.Gate})
				if err != nil {
					return 0, nil, err
				}
				return 200, v, nil
			}},
		s.refusalsRoute(),
	}
}

func policyInForce(p *policy.Policy) (int, any, error) {
	out := PolicyInForce{Gates: map[string]policy.Mode{}, Rules: []policy.Rule{}, Problems: []string{}}
	for _, g := range containerization.PolicyGates {
		out.Gates[g] = p.Mode(g)
	}
	if p == nil {
		return 200, out, nil
	}
	out.Set, out.File = true, p.File
	if r := p.Rules(); r != nil {
		out.Rules = r
	}
	if pr := p.Problems(); pr != nil {
		out.Problems = pr
	}
	b, err := json.Marshal(p)
	if err != nil {
		return 0, nil, err
	}
	if err := json.Unmarshal(b, &out.Policy); err != nil {
		return 0, nil, err
	}
	return 200, out, nil
}
