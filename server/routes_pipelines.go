package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/pipeline"
	"github.com/codomyrmex/containerization/server/state"
)

// PipelineRequest is POST /v1/pipelines's and POST /v1/pipelines/check's body: a pipeline file on the server's
// machine, or a pipeline document given inline (docs/pipelines.md), one or the other.
type PipelineRequest struct {
	// File is the absolute path of a pipeline file on the server's machine; its relative paths are read from its
	// directory.
	File string `json:"file,omitempty"`
	// Pipeline is a pipeline document (YAML, or JSON), at most 256 KiB; its relative paths (build context,
	// manifests, keys, policy) are read from Dir.
	Pipeline string `json:"pipeline,omitempty"`
	// Dir is the absolute path of a directory on the server's machine, for an inline pipeline (required with it).
	Dir string `json:"dir,omitempty"`
	// Skip are stages not to run this time: test, optimize, push, sign or deploy.
	Skip []string `json:"skip,omitempty"`
}

// PipelineCheck is POST /v1/pipelines/check's answer: the pipeline as it was read, and what a run of it would do.
type PipelineCheck struct {
	Valid bool   `json:"valid"`
	Name  string `json:"name"`
	Image string `json:"image"`
	// Stages are the stages in the order they run, each run or skipped (and why).
	Stages   []StagePlan        `json:"stages"`
	Pipeline *pipeline.Pipeline `json:"pipeline"`
}

// StagePlan is what a run would do of one stage.
type StagePlan struct {
	Stage string `json:"stage"`
	Run   bool   `json:"run"`
	Why   string `json:"why,omitempty"` // why it is skipped
}

func (s *Server) pipelineRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/pipelines", scope: state.ScopeOperate, id: "runPipeline",
			summary: "Run a pipeline (build, test, scan, optimize, push, sign, deploy), as a job of kind pipeline; its paths are on the server's machine",
			in:      &PipelineRequest{}, out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				return s.submit(c, "pipeline")
			}},
		{method: "POST", path: "/v1/pipelines/check", scope: state.ScopeOperate, id: "checkPipeline",
			summary: "Check a pipeline (its fields, values, stages and skips) without running anything",
			in:      &PipelineRequest{}, out: &PipelineCheck{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				var req PipelineRequest
				if err := decode(c, &req); err != nil {
					return 0, nil, err
				}
				p, err := req.load()
				if err != nil {
					return 0, nil, err
				}
				return 200, checkPipeline(p, req.Skip), nil
			}},
	}
}

// load reads and checks the pipeline of the request, and the stages it skips.
func (req PipelineRequest) load() (*pipeline.Pipeline, error) {
	var p *pipeline.Pipeline
	var err error
	switch {
	case req.File != "" && req.Pipeline != "":
		return nil, fmt.Errorf("%w: give file or pipeline, not both", errdefs.ErrInvalidArgument)
	case req.File != "":
		if req.Dir != "" {
			return nil, fmt.Errorf("%w: dir goes with an inline pipeline; a file's relative paths are read from its directory", errdefs.ErrInvalidArgument)
		}
		if !filepath.IsAbs(req.File) {
			return nil, fmt.Errorf("%w: file %q: want an absolute path on the server's machine", errdefs.ErrInvalidArgument, req.File)
		}
		if p, err = pipeline.Load(req.File); err != nil {
			return nil, err
		}
	case req.Pipeline != "":
		if len(req.Pipeline) > pipeline.MaxFileSize {
			return nil, fmt.Errorf("%w: the pipeline is %d bytes, at most %d", errdefs.ErrInvalidArgument, len(req.Pipeline), pipeline.MaxFileSize)
		}
		if req.Dir == "" || !filepath.IsAbs(req.Dir) {
			return nil, fmt.Errorf("%w: dir %q: an inline pipeline needs the absolute path of the directory its relative paths are read from", errdefs.ErrInvalidArgument, req.Dir)
		}
		st, err := os.Stat(req.Dir)
		if err != nil {
			return nil, fmt.Errorf("%w: dir %s: %v", errdefs.ErrNotFound, req.Dir, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%w: dir %s is not a directory", errdefs.ErrInvalidArgument, req.Dir)
		}
		if p, err = pipeline.Parse([]byte(req.Pipeline), "pipeline"); err != nil {
			return nil, err
		}
		p.Dir = filepath.Clean(req.Dir)
	default:
		return nil, fmt.Errorf("%w: give file (a pipeline file on the server's machine) or pipeline (the document)", errdefs.ErrInvalidArgument)
	}
	if err := p.CheckSkip(req.Skip); err != nil {
		return nil, err
	}
	return p, nil
}

// checkPipeline says what a run of p, skipping skip, would do.
func checkPipeline(p *pipeline.Pipeline, skip []string) PipelineCheck {
	out := PipelineCheck{Valid: true, Name: p.Name, Image: p.Image, Pipeline: p}
	in := map[string]bool{pipeline.StageBuild: true, pipeline.StageScan: true, pipeline.StageTest: p.Test != nil,
		pipeline.StageOptimize: p.Optimize != nil, pipeline.StagePush: p.Push != nil, pipeline.StageSign: p.Sign != nil,
		pipeline.StageDeploy: p.Deploy != nil}
	for _, st := range pipeline.Stages {
		plan := StagePlan{Stage: st, Run: in[st]}
		switch {
		case !in[st]:
			plan.Why = "no " + st + " in the pipeline"
		case slices.Contains(skip, st):
			plan.Run, plan.Why = false, "skipped by the caller"
		}
		out.Stages = append(out.Stages, plan)
	}
	return out
}

// preparePipeline prepares a pipeline run: the pipeline read and checked (the file read again when a server
// claims the job). The sign stage's key is decrypted with the server's MYRMEX_KEY_PASSWORD (else
// COSIGN_PASSWORD): a password never travels through the API, nor is kept with the job.
func (s *Server) preparePipeline(spec json.RawMessage) (string, work, error) {
	var req PipelineRequest
	if err := decodeSpec(spec, &req); err != nil {
		return "", nil, err
	}
	p, err := req.load()
	if err != nil {
		return "", nil, err
	}
	return p.Name, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
		opts := containerization.PipelineOptions{Skip: req.Skip, Progress: progress}
		for _, env := range []string{"MYRMEX_KEY_PASSWORD", "COSIGN_PASSWORD"} {
			if v, ok := os.LookupEnv(env); ok {
				opts.KeyPassword = []byte(v)
				break
			}
		}
		return s.cfg.Client.RunPipeline(ctx, p, opts)
	}, nil
}
