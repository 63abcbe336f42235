package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// DeploymentList is GET /v1/kubernetes/deployments's answer.
type DeploymentList struct {
	Deployments []containerization.KubernetesDeployment `json:"deployments"`
}

// ScaleRequest is POST /v1/kubernetes/deployments/{namespace}/{name}/scale's body.
type ScaleRequest struct {
	Replicas *int `json:"replicas" jsonschema:"required"`
}

// RollbackRequest is POST /v1/kubernetes/deployments/{namespace}/{name}/rollback's body (optional).
type RollbackRequest struct {
	// ToRevision is the revision to go back to; 0 (the default) is the one before the current (kubectl rollout
	// undo).
	ToRevision int64 `json:"to_revision,omitempty"`
}

// DeploymentHistory is GET /v1/kubernetes/deployments/{namespace}/{name}/history's answer.
type DeploymentHistory struct {
	Name      string                                `json:"name"`
	Namespace string                                `json:"namespace"`
	Revisions []containerization.KubernetesRevision `json:"revisions"`
}

func (s *Server) kubernetesRoutes() []route {
	const deployment = "/v1/kubernetes/deployments/{namespace}/{name}"
	return []route{
		{method: "GET", path: "/v1/kubernetes/deployments", scope: state.ScopeRead, id: "listDeployments",
			summary: "The Deployments, StatefulSets and DaemonSets of a namespace, with their pods and services",
			query:   []param{{"namespace", "string", "the namespace (default: the server's kubeconfig context's)"}},
			out:     &DeploymentList{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				ns := c.req.URL.Query().Get("namespace")
				list, err := s.cfg.Client.KubernetesDeployments(c.req.Context(), ns, containerization.KubernetesOptions{})
				if err != nil {
					return 0, nil, err
				}
				return 200, DeploymentList{Deployments: list}, nil
			}},
		{method: "GET", path: "/v1/kubernetes/namespaces", scope: state.ScopeRead, id: "listNamespaces",
			summary: "The cluster's namespaces, sorted, and the one the server's kubeconfig context names (the default of the other routes)",
			out:     &containerization.KubernetesNamespaceList{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				l, err := s.cfg.Client.KubernetesNamespaces(c.req.Context(), containerization.KubernetesOptions{})
				if err != nil {
					return 0, nil, err
				}
				return 200, l, nil
			}},
		{method: "POST", path: deployment + "/scale", scope: state.ScopeOperate, id: "scaleDeployment",
			summary: "Set a Deployment's or StatefulSet's replicas",
			in:      &ScaleRequest{}, out: &containerization.KubernetesDeployment{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				var req ScaleRequest
				if err := decode(c, &req); err != nil {
					return 0, nil, err
				}
				if req.Replicas == nil {
					return 0, nil, fmt.Errorf("%w: replicas is required", errdefs.ErrInvalidArgument)
				}
				d, err := s.cfg.Client.ScaleKubernetesDeployment(c.req.Context(), chi.URLParam(c.req, "name"), chi.URLParam(c.req, "namespace"),
					*req.Replicas, containerization.KubernetesOptions{})
				if err != nil {
					return 0, nil, err
				}
				return 200, d, nil
			}},
		{method: "POST", path: deployment + "/rollback", scope: state.ScopeOperate, id: "rollbackDeployment",
			summary: "Put a deployment's pod template back to a revision (to_revision; 0 or none: the previous one)",
			in:      &RollbackRequest{}, out: &containerization.KubernetesDeployment{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				var req RollbackRequest
				if err := decodeOptional(c, &req); err != nil {
					return 0, nil, err
				}
				d, err := s.cfg.Client.RollbackKubernetesDeployment(c.req.Context(), chi.URLParam(c.req, "name"), chi.URLParam(c.req, "namespace"),
					req.ToRevision, containerization.KubernetesOptions{})
				if err != nil {
					return 0, nil, err
				}
				return 200, d, nil
			}},
		{method: "GET", path: deployment + "/history", scope: state.ScopeRead, id: "deploymentHistory",
			summary: "A deployment's revisions, oldest first, as kubectl rollout history lists them, with each one's images",
			out:     &DeploymentHistory{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				name, ns := chi.URLParam(c.req, "name"), chi.URLParam(c.req, "namespace")
				revs, err := s.cfg.Client.KubernetesDeploymentHistory(c.req.Context(), name, ns, containerization.KubernetesOptions{})
				if err != nil {
					return 0, nil, err
				}
				if revs == nil {
					revs = []containerization.KubernetesRevision{}
				}
				return 200, DeploymentHistory{Name: name, Namespace: ns, Revisions: revs}, nil
			}},
	}
}

// decodeOptional reads a JSON body into v as decode does; an empty body leaves v as it is (every field has its
// default).
func decodeOptional(c *call, v any) error {
	b, err := io.ReadAll(c.req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: the request body is larger than %d bytes", errdefs.ErrInvalidArgument, mbe.Limit)
		}
		return fmt.Errorf("%w: the request body: %v", errdefs.ErrInvalidArgument, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return decodeSpec(b, v)
}
