package containerization

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/optimize"
)

// AnalyzeOptions are the parameters of [Client.AnalyzeImage].
type AnalyzeOptions struct {
	// Gate holds the analysis to dive's CI rules; a rule failed makes the call an OptimizationError wrapping
	// ErrPolicyViolation, with the whole analysis returned too.
	Gate optimize.Gate
	// Limits bound what an image may make the analysis read and hold; zero fields are package optimize's
	// defaults.
	Limits optimize.AnalyzeOptions
	// Registry options for an image read from a registry (credentials, CA, platform).
	Registry RegistryOptions
	// Progress receives the phases: the image opened ("open"), then analysed ("analyze").
	Progress func(Event)
	// Engine reuses a connected engine client; else the client's.
	Engine *engine.Client
	Host   string
	Logger *slog.Logger
}

// ImageAnalysis is an image's layers and waste (optimize.Analysis), with the gate's verdict.
type ImageAnalysis struct {
	Image string `json:"image"`
	*optimize.Analysis
	// Passed is false when a rule of the gate failed; Violations name each.
	Passed     bool                 `json:"passed"`
	Violations []optimize.Violation `json:"violations,omitempty"`
	Duration   float64              `json:"duration"` // seconds
}

// AnalyzeImage reads an image's layers and reports, per layer, its size, the instruction that made it and its
// waste; dive's efficiency figures; and the bytes a rewrite could drop (overwritten, deleted, package caches,
// temporary files, duplicates). imageName is read as ScanContainerSecurity reads it: from the engine, a registry
// (docker://REF), a docker save tarball (docker-archive:FILE) or an OCI layout (oci:DIR[:TAG]).
//
// Errors are *[OptimizationError] (Op "analyze"): ErrInvalidArgument for bad input (a hostile layer included),
// ErrNotFound for a missing image, ErrPolicyViolation when the gate fails — then the analysis is returned too.
func (c *Client) AnalyzeImage(ctx context.Context, imageName string, opts AnalyzeOptions) (*ImageAnalysis, error) {
	fail := func(err error) (*ImageAnalysis, error) {
		return nil, &OptimizationError{Op: "analyze", Image: imageName, Err: err}
	}
	if strings.TrimSpace(imageName) == "" {
		return fail(fmt.Errorf("%w: an image name is required", ErrInvalidArgument))
	}
	if err := opts.Gate.Validate(); err != nil {
		return fail(err)
	}
	phase := func(name, status, msg string) {
		if opts.Progress != nil {
			opts.Progress(Event{Time: time.Now(), Op: "analyze", Phase: name, Subject: imageName, Status: status, Message: msg})
		}
	}
	start := time.Now()
	phase("open", "started", "")
	img, cleanup, err := c.openImage(ctx, imageName, opts.Engine, opts.Registry)
	if err != nil {
		phase("open", "failed", err.Error())
		return fail(err)
	}
	defer cleanup()
	phase("open", "done", "")
	phase("analyze", "started", "")
	a, err := optimize.Analyze(ctx, img, opts.Limits)
	if err != nil {
		phase("analyze", "failed", err.Error())
		return fail(err)
	}
	phase("analyze", "done", "")
	res := &ImageAnalysis{Image: imageName, Analysis: a, Violations: opts.Gate.Check(a), Duration: time.Since(start).Seconds()}
	res.Passed = len(res.Violations) == 0
	if !res.Passed {
		var msgs []string
		for _, v := range res.Violations {
			msgs = append(msgs, v.Rule+": "+v.Message)
		}
		return res, &OptimizationError{Op: "analyze", Image: imageName,
			Err: fmt.Errorf("%w: %s", ErrPolicyViolation, strings.Join(msgs, "; "))}
	}
	return res, nil
}
