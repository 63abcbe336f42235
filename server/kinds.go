package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
)

// The kinds of job, each prepared from its request as stored: the same check at submission and when a server
// claims the job, so that what runs is what was accepted.
func (s *Server) jobKinds() map[string]prepare {
	return map[string]prepare{
		"scan":                        s.prepareScan,
		"build":                       s.prepareBuild,
		"optimize":                    s.prepareOptimize,
		"apply":                       s.prepareApply,
		"retention":                   s.prepareRetention,
		"pipeline":                    s.preparePipeline,
		reportJobKind:                 s.prepareReport,
		containerization.RegistryPush: s.prepareRegistry(containerization.RegistryPush),
		containerization.RegistryPull: s.prepareRegistry(containerization.RegistryPull),
		containerization.RegistryCopy: s.prepareRegistry(containerization.RegistryCopy),
	}
}

func (s *Server) prepareScan(spec json.RawMessage) (string, work, error) {
	var req ScanRequest
	if err := decodeSpec(spec, &req); err != nil {
		return "", nil, err
	}
	if req.ImageName == "" {
		return "", nil, fmt.Errorf("%w: image_name is required", errdefs.ErrInvalidArgument)
	}
	scanType := req.ScanType
	if scanType == "" {
		scanType = "full"
	}
	if !slices.Contains([]string{"full", "quick", "compliance"}, scanType) {
		return "", nil, fmt.Errorf("%w: scan_type %q: want full, quick or compliance", errdefs.ErrInvalidArgument, scanType)
	}
	return req.ImageName, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
		return s.cfg.Client.ScanContainerSecurity(ctx, req.ImageName, scanType, containerization.ScanOptions{Progress: progress,
			SeverityThreshold: req.SeverityThreshold, IgnoreRules: req.IgnoreRules})
	}, nil
}

func (s *Server) prepareBuild(spec json.RawMessage) (string, work, error) {
	var req BuildRequest
	if err := decodeSpec(spec, &req); err != nil {
		return "", nil, err
	}
	if req.ImageName == "" {
		return "", nil, fmt.Errorf("%w: image_name is required", errdefs.ErrInvalidArgument)
	}
	opts := containerization.BuildOptions{Scan: req.Scan, ScanThreshold: req.ScanThreshold, PushToRegistry: req.PushToRegistry, Registry: req.Registry}
	opts.DockerfilePath, opts.ContextPath, opts.BuildArgs, opts.Target = req.DockerfilePath, req.ContextPath, req.BuildArgs, req.Target
	opts.Labels, opts.Tags, opts.NoCache = req.Labels, req.Tags, req.NoCache
	return req.ImageName, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
		opts.Progress = progress
		return s.cfg.Client.BuildContainers(ctx, req.ImageName, opts)
	}, nil
}

func (s *Server) prepareOptimize(spec json.RawMessage) (string, work, error) {
	var req OptimizeRequest
	if err := decodeSpec(spec, &req); err != nil {
		return "", nil, err
	}
	if req.ImageName == "" {
		return "", nil, fmt.Errorf("%w: image_name is required", errdefs.ErrInvalidArgument)
	}
	if err := req.Probe.Validate(); err != nil {
		return "", nil, err
	}
	typ := req.OptimizationType
	if typ == "" {
		typ = "size"
	}
	opts := containerization.OptimizeOptions{TargetSizeMB: req.TargetSizeMB, LayersToRemove: req.LayersToRemove, Probe: req.Probe,
		NoUpgrade: req.NoUpgrade, OptimizedImage: req.OptimizedImage}
	return req.ImageName, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
		opts.Progress = progress
		return s.cfg.Client.OptimizeContainers(ctx, req.ImageName, typ, opts)
	}, nil
}

func (s *Server) prepareApply(spec json.RawMessage) (string, work, error) {
	var req KubernetesRequest
	if err := decodeSpec(spec, &req); err != nil {
		return "", nil, err
	}
	if req.DeploymentName == "" || req.ManifestPath == "" {
		return "", nil, fmt.Errorf("%w: deployment_name and manifest_path are required", errdefs.ErrInvalidArgument)
	}
	opts := containerization.KubernetesOptions{Replicas: req.Replicas, Image: req.Image, Images: req.Images, Labels: req.Labels,
		Annotations: req.Annotations, Environment: req.Environment, CreateNamespace: req.CreateNamespace, DryRun: req.DryRun,
		Prune: req.Prune, Wait: req.Wait}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			return "", nil, fmt.Errorf("%w: timeout %q: want a duration (3m)", errdefs.ErrInvalidArgument, req.Timeout)
		}
		opts.Timeout = d
	}
	return req.DeploymentName, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
		opts.Progress = progress
		return s.cfg.Client.OrchestrateKubernetes(ctx, req.DeploymentName, req.ManifestPath, req.Namespace, opts)
	}, nil
}

// prepareRegistry prepares a registry operation; a job of kind op runs that operation only.
func (s *Server) prepareRegistry(op string) prepare {
	return func(spec json.RawMessage) (string, work, error) {
		var req RegistryRequest
		if err := decodeSpec(spec, &req); err != nil {
			return "", nil, err
		}
		if !slices.Contains(containerization.RegistryOperations, req.Operation) {
			return "", nil, fmt.Errorf("%w: operation %q: want one of %v", errdefs.ErrInvalidArgument, req.Operation, containerization.RegistryOperations)
		}
		if req.Operation != op {
			return "", nil, fmt.Errorf("%w: a %s job holds a %s request", errdefs.ErrInvalidArgument, op, req.Operation)
		}
		opts := containerization.RegistryOptions{Destination: req.Destination}
		opts.Tags = req.Tags
		return req.ImageName, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
			opts.Progress = progress
			return s.cfg.Client.ManageContainerRegistry(ctx, req.Operation, req.ImageName, req.RegistryURL, opts)
		}, nil
	}
}

// readBody reads the request's body, within the server's size bound.
func readBody(c *call) (json.RawMessage, error) {
	b, err := io.ReadAll(c.req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: the request body is larger than %d bytes", errdefs.ErrInvalidArgument, mbe.Limit)
		}
		return nil, fmt.Errorf("%w: the request body: %v", errdefs.ErrInvalidArgument, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: the request needs a JSON body", errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// decodeSpec reads a JSON request into v: one value, no unknown field.
func decodeSpec(spec json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the request needs a JSON body", errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("%w: the request body: %v", errdefs.ErrInvalidArgument, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: the request body holds more than one JSON value", errdefs.ErrInvalidArgument)
	}
	return nil
}
