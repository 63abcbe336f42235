package server

import (
	"encoding/json"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/server/state"
)

// OptimizationList is GET /v1/optimizations's answer: the optimization jobs, newest first.
type OptimizationList struct {
	Optimizations []OptimizationSummary `json:"optimizations"`
}

// OptimizationSummary is one optimization job (without its result) and, once it has one, what its result says
// in brief; the whole result is the job's (GET /v1/jobs/{id}).
type OptimizationSummary struct {
	Job    state.Job          `json:"job"`
	Result *OptimizationBrief `json:"result,omitempty"`
}

// OptimizationBrief is an optimization's result in brief: the images, their sizes (bytes, as the engine counts
// an image) and layers before and after, and whether the optimized image passed its verification. A result is
// kept when the verification failed, too.
type OptimizationBrief struct {
	OriginalImage    string  `json:"original_image"`
	OptimizedImage   string  `json:"optimized_image"`
	OptimizationType string  `json:"optimization_type"`
	SizeReductionMB  float64 `json:"size_reduction_mb"`
	SizeBefore       int64   `json:"size_before"`
	SizeAfter        int64   `json:"size_after"`
	LayersBefore     int     `json:"layers_before"`
	LayersAfter      int     `json:"layers_after"`
	Verified         bool    `json:"verified"`
	// ProbePassed is the probe's verdict on the optimized image; absent when no probe ran on it.
	ProbePassed *bool `json:"probe_passed,omitempty"`
}

func (s *Server) optimizationRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/optimizations", scope: state.ScopeRead, id: "listOptimizations",
			summary: "The optimization jobs, newest first, each with its result in brief: sizes and layers before and after, the verification",
			query:   []param{{"limit", "integer", "at most this many (1 to 200, default 50)"}},
			out:     &OptimizationList{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				limit, err := intParam(c, "limit", 1, 200)
				if err != nil {
					return 0, nil, err
				}
				if limit == 0 {
					limit = 50
				}
				jobs, err := s.cfg.State.JobsOfKind(c.req.Context(), "optimize", limit)
				if err != nil {
					return 0, nil, err
				}
				out := OptimizationList{Optimizations: make([]OptimizationSummary, 0, len(jobs))}
				for _, j := range jobs {
					out.Optimizations = append(out.Optimizations, OptimizationSummary{Result: briefOf(j.Result), Job: j})
					out.Optimizations[len(out.Optimizations)-1].Job.Result = nil
				}
				return 200, out, nil
			}},
	}
}

// briefOf reads an optimization's result in brief; nil when there is none (the job has not ended, or failed
// before it had one).
func briefOf(raw json.RawMessage) *OptimizationBrief {
	if len(raw) == 0 {
		return nil
	}
	var r containerization.OptimizationResult
	if err := json.Unmarshal(raw, &r); err != nil || r.Result == nil {
		return nil
	}
	b := &OptimizationBrief{OriginalImage: r.OriginalImage, OptimizedImage: r.OptimizedImage, OptimizationType: r.OptimizationType,
		SizeReductionMB: r.SizeReductionMB, SizeBefore: r.SizeBefore, SizeAfter: r.SizeAfter, LayersBefore: r.LayersBefore,
		LayersAfter: r.LayersAfter, Verified: r.Verified}
	if r.ProbeOptimized != nil {
		b.ProbePassed = &r.ProbeOptimized.Passed
	}
	return b
}
