package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/server/state"
)

// route is one operation of the API: what it needs, what it takes and answers (for the OpenAPI document), and
// its handler.
type route struct {
	method, path string
	scope        state.Scope // "" for the public health check
	id, summary  string
	in           any // the request body's type (a pointer to its zero value), nil for none
	out          any // the answer's type
	status       int // the status of success
	query        []param
	stream       bool  // answers text/event-stream
	text         bool  // answers text/plain (the Prometheus text format)
	document     bool  // answers a report: text/html, application/pdf or application/json (out), by its format
	maxBody      int64 // a bound of its own on the request body; 0: Config.MaxBody
	handle       func(s *Server, c *call) (int, any, error)

	// pattern is the router's pattern when path's parameters cannot say it (one that holds slashes: chi's
	// wildcard); empty: path.
	pattern string
}

// param is a query parameter.
type param struct {
	name, typ, doc string
}

// Health is GET /v1/health's answer.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// ContainerCreate is POST /v1/containers's body: the container's name and the specification's ContainerConfig.
type ContainerCreate struct {
	Name   string                           `json:"name"`
	Config containerization.ContainerConfig `json:"config"`
}

// ScanRequest is POST /v1/scans's body: scan_container_security's parameters.
type ScanRequest struct {
	ImageName string `json:"image_name"`
	// ScanType is full (the default), quick or compliance.
	ScanType string `json:"scan_type,omitempty"`
	// SeverityThreshold fails the scan (policy_violation, the result kept) at findings this severe or worse.
	SeverityThreshold string   `json:"severity_threshold,omitempty"`
	IgnoreRules       []string `json:"ignore_rules,omitempty"`
}

// BuildRequest is POST /v1/builds's body: build_containers's parameters. Paths are on the server's machine.
type BuildRequest struct {
	ImageName      string            `json:"image_name"`
	DockerfilePath string            `json:"dockerfile_path,omitempty"`
	ContextPath    string            `json:"context_path,omitempty"`
	BuildArgs      map[string]string `json:"build_args,omitempty"`
	Target         string            `json:"target,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Tags           []string          `json:"tags,omitempty"`
	NoCache        bool              `json:"no_cache,omitempty"`
	// Scan is quick (the default), full, compliance or off; ScanThreshold gates the image.
	Scan           string `json:"scan,omitempty"`
	ScanThreshold  string `json:"scan_threshold,omitempty"`
	PushToRegistry bool   `json:"push_to_registry,omitempty"`
	Registry       string `json:"registry,omitempty"`
}

// OptimizeRequest is POST /v1/optimizations's body: optimize_containers's parameters.
type OptimizeRequest struct {
	ImageName        string   `json:"image_name"`
	OptimizationType string   `json:"optimization_type,omitempty"` // size (the default), security, performance, multi
	TargetSizeMB     float64  `json:"target_size,omitempty"`
	LayersToRemove   []string `json:"layers_to_remove,omitempty"`
	// Probe proves the optimized image works (HTTP and exec checks, a run, the HEALTHCHECK).
	Probe          optimize.Probe `json:"probe,omitzero"`
	NoUpgrade      bool           `json:"no_upgrade,omitempty"`
	OptimizedImage string         `json:"optimized_image,omitempty"`
}

// KubernetesRequest is POST /v1/kubernetes/deployments's body: orchestrate_kubernetes's parameters. The
// manifest path is on the server's machine.
type KubernetesRequest struct {
	DeploymentName  string            `json:"deployment_name"`
	ManifestPath    string            `json:"manifest_path"`
	Namespace       string            `json:"namespace,omitempty"`
	Replicas        *int              `json:"replicas,omitempty"`
	Image           string            `json:"image,omitempty"`
	Images          map[string]string `json:"images,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
	Environment     map[string]string `json:"environment,omitempty"`
	CreateNamespace bool              `json:"create_namespace,omitempty"`
	DryRun          bool              `json:"dry_run,omitempty"`
	Prune           bool              `json:"prune,omitempty"`
	Wait            bool              `json:"wait,omitempty"`
	// Timeout bounds the wait ("3m"; default 5m).
	Timeout string `json:"timeout,omitempty"`
}

// RegistryRequest is POST /v1/registry's body: one operation of manage_container_registry. The server's own
// stored logins are used (myrmex registry login on the server's machine); credentials are never sent here.
type RegistryRequest struct {
	Operation   string   `json:"operation"`
	ImageName   string   `json:"image_name,omitempty"`
	RegistryURL string   `json:"registry_url,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Destination string   `json:"destination,omitempty"`
}

// JobList is GET /v1/jobs's answer.
type JobList struct {
	Jobs []state.Job `json:"jobs"`
}

// AuditLog is GET /v1/audit's answer.
type AuditLog struct {
	Entries []state.AuditEntry `json:"entries"`
}

// Metrics is GET /v1/containers/{name}/metrics's answer.
type Metrics struct {
	Metrics []containerization.ContainerMetrics `json:"metrics"`
}

func (s *Server) table() []route {
	return slices.Concat([]route{
		{method: "GET", path: "/v1/health", id: "health", summary: "Whether the server answers (no token needed)",
			out: &Health{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				return 200, Health{Status: "ok", Version: containerization.Version()}, nil
			}},
		{method: "GET", path: "/openapi.json", scope: state.ScopeRead, id: "openapi", summary: "This API's OpenAPI 3.1 document",
			out: &map[string]any{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				return 200, s.OpenAPI(), nil
			}},

		// Containers: manage_containers and ContainerMetrics.
		{method: "GET", path: "/v1/containers", scope: state.ScopeRead, id: "listContainers", summary: "List Myrmex's containers (all=true: every container)",
			query: []param{{"all", "boolean", "every container of the engine, not only Myrmex's"}},
			out:   &containerization.ContainerResult{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				all, err := boolParam(c, "all")
				if err != nil {
					return 0, nil, err
				}
				return s.manage(c, containerization.OpList, "", nil, containerization.ManageOptions{Foreign: all})
			}},
		{method: "POST", path: "/v1/containers", scope: state.ScopeOperate, id: "createContainer", summary: "Create a container from a ContainerConfig",
			in: &ContainerCreate{}, out: &containerization.ContainerResult{}, status: 201, handle: func(s *Server, c *call) (int, any, error) {
				var req ContainerCreate
				if err := decode(c, &req); err != nil {
					return 0, nil, err
				}
				st, out, err := s.manage(c, containerization.OpCreate, req.Name, &req.Config, containerization.ManageOptions{})
				if err == nil {
					st = 201
				}
				return st, out, err
			}},
		{method: "GET", path: "/v1/containers/{name}", scope: state.ScopeRead, id: "inspectContainer", summary: "A container's configuration, state, resources, ports, networks and mounts",
			out: &containerization.ContainerResult{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				return s.manage(c, containerization.OpInspect, chi.URLParam(c.req, "name"), nil, containerization.ManageOptions{})
			}},
		{method: "DELETE", path: "/v1/containers/{name}", scope: state.ScopeOperate, id: "removeContainer", summary: "Remove a container (force=true: a running one too)",
			query: []param{{"force", "boolean", "remove a running container"}, {"volumes", "boolean", "remove its anonymous volumes"}},
			out:   &containerization.ContainerResult{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				force, err := boolParam(c, "force")
				if err != nil {
					return 0, nil, err
				}
				volumes, err := boolParam(c, "volumes")
				if err != nil {
					return 0, nil, err
				}
				return s.manage(c, containerization.OpRemove, chi.URLParam(c.req, "name"), nil, containerization.ManageOptions{Force: force, RemoveVolumes: volumes})
			}},
		s.lifecycle(containerization.OpStart, "startContainer", "Start a container"),
		s.lifecycle(containerization.OpStop, "stopContainer", "Stop a container"),
		s.lifecycle(containerization.OpRestart, "restartContainer", "Restart a container"),
		{method: "GET", path: "/v1/containers/{name}/logs", scope: state.ScopeRead, id: "containerLogs", summary: "A container's output (tail: the last N lines)",
			query: []param{{"tail", "integer", "the last N lines"}, {"since", "string", "from this time (RFC 3339, Unix seconds, or a duration back: 10m)"}},
			out:   &containerization.ContainerResult{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				tail, err := intParam(c, "tail", 0, 1<<20)
				if err != nil {
					return 0, nil, err
				}
				return s.manage(c, containerization.OpLogs, chi.URLParam(c.req, "name"), nil,
					containerization.ManageOptions{Logs: containerization.LogOptions{Tail: tail, Since: c.req.URL.Query().Get("since")}})
			}},
		{method: "GET", path: "/v1/containers/{name}/metrics", scope: state.ScopeRead, id: "containerMetrics", summary: "A container's ContainerMetrics (one sample)",
			query: []param{{"via", "string", "where the readings come from: cgroups or engine (default: the cgroups when the server can read them)"}},
			out:   &Metrics{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				m, err := s.cfg.Client.GetContainerMetrics(c.req.Context(), chi.URLParam(c.req, "name"),
					containerization.MetricsOptions{Via: c.req.URL.Query().Get("via")})
				if err != nil {
					return 0, nil, err
				}
				return 200, Metrics{Metrics: m}, nil
			}},

		// Scans and registries: jobs.
		{method: "POST", path: "/v1/scans", scope: state.ScopeOperate, id: "scan", summary: "Scan an image (scan_container_security), as a job",
			in: &ScanRequest{}, out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				return s.submit(c, "scan")
			}},
		{method: "POST", path: "/v1/builds", scope: state.ScopeOperate, id: "build", summary: "Build an image (build_containers), as a job; its paths are on the server's machine",
			in: &BuildRequest{}, out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				return s.submit(c, "build")
			}},
		{method: "POST", path: "/v1/optimizations", scope: state.ScopeOperate, id: "optimize", summary: "Optimize an image (optimize_containers), as a job",
			in: &OptimizeRequest{}, out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				return s.submit(c, "optimize")
			}},
		{method: "POST", path: "/v1/kubernetes/deployments", scope: state.ScopeOperate, id: "orchestrateKubernetes", summary: "Apply manifests (orchestrate_kubernetes), as a job; the manifest path is on the server's machine",
			in: &KubernetesRequest{}, out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				return s.submit(c, "apply")
			}},
		{method: "GET", path: "/v1/kubernetes/deployments/{namespace}/{name}", scope: state.ScopeRead, id: "getDeployment", summary: "A deployment's status, pods and services",
			out: &containerization.KubernetesDeployment{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				d, err := s.cfg.Client.GetKubernetesDeployment(c.req.Context(), chi.URLParam(c.req, "name"), chi.URLParam(c.req, "namespace"), containerization.KubernetesOptions{})
				if err != nil {
					return 0, nil, err
				}
				return 200, d, nil
			}},
		{method: "DELETE", path: "/v1/kubernetes/deployments/{namespace}/{name}", scope: state.ScopeOperate, id: "deleteDeployment", summary: "Delete what a deployment applied",
			out: &[]containerization.KubernetesChange{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				ch, err := s.cfg.Client.DeleteKubernetesDeployment(c.req.Context(), chi.URLParam(c.req, "name"), chi.URLParam(c.req, "namespace"), containerization.KubernetesOptions{})
				if err != nil {
					return 0, nil, err
				}
				return 200, ch, nil
			}},
		{method: "POST", path: "/v1/registry", scope: state.ScopeOperate, id: "registry", summary: "A registry operation (manage_container_registry): push, pull and copy as jobs (202), tag, list and delete at once (200)",
			in: &RegistryRequest{}, out: &containerization.RegistryResult{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				raw, err := readBody(c)
				if err != nil {
					return 0, nil, err
				}
				var req RegistryRequest
				if err := decodeSpec(raw, &req); err != nil {
					return 0, nil, err
				}
				switch req.Operation {
				case containerization.RegistryPush, containerization.RegistryPull, containerization.RegistryCopy:
					return s.submitSpec(c, req.Operation, raw)
				}
				_, run, err := s.prepareRegistry(req.Operation)(raw)
				if err != nil {
					return 0, nil, err
				}
				res, err := run(c.req.Context(), nil)
				if err != nil {
					return 0, nil, err
				}
				return 200, res, nil
			}},

		// Jobs.
		{method: "GET", path: "/v1/jobs", scope: state.ScopeRead, id: "listJobs", summary: "The newest jobs (limit: at most N, default 100), of a kind and subject when given",
			query: []param{{"limit", "integer", "at most this many (1 to 1000)"}, {"kind", "string", "only jobs of this kind (scan, retention, apply…)"},
				{"subject", "string", "only jobs of this subject (the image, deployment or registry), exactly"}},
			out: &JobList{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				limit, err := intParam(c, "limit", 1, 1000)
				if err != nil {
					return 0, nil, err
				}
				q := state.JobQuery{Limit: limit, Kind: c.req.URL.Query().Get("kind"), Subject: c.req.URL.Query().Get("subject")}
				if _, ok := s.jobKinds()[q.Kind]; q.Kind != "" && !ok {
					return 0, nil, fmt.Errorf("%w: kind %.40q: not a kind of job", errdefs.ErrInvalidArgument, q.Kind)
				}
				if len(q.Subject) > maxJobSubject {
					return 0, nil, fmt.Errorf("%w: subject: longer than %d bytes", errdefs.ErrInvalidArgument, maxJobSubject)
				}
				list, err := s.cfg.State.Jobs(c.req.Context(), q)
				if err != nil {
					return 0, nil, err
				}
				return 200, JobList{Jobs: list}, nil
			}},
		{method: "GET", path: "/v1/jobs/{id}", scope: state.ScopeRead, id: "getJob", summary: "A job: its state, and its result or error once it has ended",
			out: &state.Job{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				j, err := s.cfg.State.GetJob(c.req.Context(), chi.URLParam(c.req, "id"))
				if err != nil {
					return 0, nil, err
				}
				return 200, j, nil
			}},
		{method: "DELETE", path: "/v1/jobs/{id}", scope: state.ScopeOperate, id: "cancelJob", summary: "Cancel a running job",
			out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				j, err := s.jobs.cancelJob(c.req.Context(), chi.URLParam(c.req, "id"))
				if err != nil {
					return 0, nil, err
				}
				return 202, j, nil
			}},
		{method: "GET", path: "/v1/jobs/{id}/events", scope: state.ScopeRead, id: "jobEvents", summary: "A job's progress events as Server-Sent Events (progress, then end with the job); Last-Event-ID resumes",
			out: &containerization.Event{}, status: 200, stream: true, handle: func(s *Server, c *call) (int, any, error) {
				w := c.req.Context().Value(writerKey{}).(http.ResponseWriter)
				if err := s.jobs.stream(w, c.req, chi.URLParam(c.req, "id")); err != nil {
					return 0, nil, err
				}
				return 200, nil, nil
			}},

		// Metrics.
		{method: "GET", path: "/metrics", scope: state.ScopeRead, id: "metrics", summary: "Metrics in the Prometheus text format: the running containers' ContainerMetrics (from a sample taken in the background), jobs, scan findings, policy refusals",
			status: 200, text: true, handle: func(s *Server, c *call) (int, any, error) {
				s.metrics.handler.ServeHTTP(c.req.Context().Value(writerKey{}).(http.ResponseWriter), c.req)
				return 200, nil, nil
			}},

		// Administration.
		{method: "GET", path: "/v1/audit", scope: state.ScopeAdmin, id: "audit", summary: "The audit log: every change made through the API, newest first",
			query: []param{{"limit", "integer", "at most this many (1 to 1000)"}, {"before", "integer", "entries older than this id"}},
			out:   &AuditLog{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				limit, err := intParam(c, "limit", 1, 1000)
				if err != nil {
					return 0, nil, err
				}
				before, err := intParam(c, "before", 1, 1<<62)
				if err != nil {
					return 0, nil, err
				}
				log, err := s.cfg.State.AuditLog(c.req.Context(), limit, int64(before))
				if err != nil {
					return 0, nil, err
				}
				return 200, AuditLog{Entries: log}, nil
			}},

		// Kubernetes admission: kube-apiserver's calls, no token.
		s.admissionRoute(),
	}, s.kubernetesRoutes(), s.registryRoutes(), s.scanRoutes(), s.optimizationRoutes(), s.pipelineRoutes(), s.policyRoutes(),
		s.sessionRoutes(), s.liveRoutes(), s.reportRoutes())
}

// maxJobSubject bounds GET /v1/jobs's subject: an image reference, a deployment's or registry's name.
const maxJobSubject = 1024

// writerKey carries the response writer to the handlers that stream.
type writerKey struct{}

func (s *Server) lifecycle(op, id, summary string) route {
	return route{method: "POST", path: "/v1/containers/{name}/" + op, scope: state.ScopeOperate, id: id, summary: summary,
		query: []param{{"timeout", "string", "how long a stop waits before it kills (a duration: 10s)"}},
		out:   &containerization.ContainerResult{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
			opts := containerization.ManageOptions{}
			if v := c.req.URL.Query().Get("timeout"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 || d > time.Hour {
					return 0, nil, fmt.Errorf("%w: timeout %q: want a duration from 0 to 1h", errdefs.ErrInvalidArgument, v)
				}
				opts.StopTimeout = &d
			}
			return s.manage(c, op, chi.URLParam(c.req, "name"), nil, opts)
		}}
}

// manage runs one manage_containers operation; a failure keeps its result in the error's answer.
func (s *Server) manage(c *call, op, name string, config *containerization.ContainerConfig, opts containerization.ManageOptions) (int, any, error) {
	res, err := s.cfg.Client.ManageContainers(c.req.Context(), op, name, config, opts)
	if err != nil {
		return 0, nil, err
	}
	return 200, res, nil
}

// submit queues a job of kind from the request's body and answers 202 with it.
func (s *Server) submit(c *call, kind string) (int, any, error) {
	raw, err := readBody(c)
	if err != nil {
		return 0, nil, err
	}
	return s.submitSpec(c, kind, raw)
}

func (s *Server) submitSpec(c *call, kind string, raw json.RawMessage) (int, any, error) {
	j, err := s.jobs.submit(c.req.Context(), kind, c.token.Name, raw)
	if err != nil {
		return 0, nil, err
	}
	return 202, j, nil
}

func boolParam(c *call, name string) (bool, error) {
	v := c.req.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: %s=%q: want true or false", errdefs.ErrInvalidArgument, name, v)
	}
	return b, nil
}

func intParam(c *call, name string, lo, hi int) (int, error) {
	v := c.req.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s=%q: want a whole number from %d to %d", errdefs.ErrInvalidArgument, name, v, lo, hi)
	}
	return n, nil
}
