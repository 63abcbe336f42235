package server

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/server/state"
)

// RegistryList is GET /v1/registries's answer: the saved registries, their logins masked.
type RegistryList struct {
	Registries []containerization.ContainerRegistry `json:"registries"`
}

// RegistryAdd is POST /v1/registries's body: the specification's ContainerRegistry (name, url, type, credentials,
// security_scan_enabled, retention_policy, ca_file: a path on the server's machine) and how to save it. The login
// is encrypted in the server's store and never answered: its password and token read "********" when set.
type RegistryAdd struct {
	containerization.ContainerRegistry
	// Replace replaces a registry saved under the same name.
	Replace bool `json:"replace,omitempty"`
	// NoCheck saves it without asking the registry whether it answers and accepts the login.
	NoCheck bool `json:"no_check,omitempty"`
}

// RegistryRemoved is DELETE /v1/registries/{name}'s answer.
type RegistryRemoved struct {
	Name    string `json:"name"`
	Removed bool   `json:"removed"`
}

// RetentionRun is POST /v1/registries/{name}/retention's body (optional): a plan of the registry's saved
// retention policy, or with apply its deletions too.
type RetentionRun struct {
	// Repositories limits the run to these (default: the registry's catalog).
	Repositories []string `json:"repositories,omitempty"`
	Apply        bool     `json:"apply,omitempty"`
}

// repositoryRE is a repository path as the distribution specification writes it.
var repositoryRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$`)

// tagDetailsTimeout bounds a listing of tags with their details: the tags not read by then have their error.
const tagDetailsTimeout = 30 * time.Second

// maxRepository bounds a repository path.
const maxRepository = 255

func (s *Server) registryRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/registries", scope: state.ScopeRead, id: "listRegistries",
			summary: "The saved registries (myrmex registry add), their logins masked",
			out:     &RegistryList{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				list, err := s.cfg.Client.Registries(c.req.Context())
				if err != nil {
					return 0, nil, err
				}
				return 200, RegistryList{Registries: list}, nil
			}},
		{method: "GET", path: "/v1/registries/{name}", scope: state.ScopeRead, id: "getRegistry",
			summary: "A saved registry, its login masked, with its repositories read from its catalog (catalog=false: not read)",
			query:   []param{{"catalog", "boolean", "read the repositories from the registry's catalog (default true)"}},
			out:     &containerization.ContainerRegistry{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				catalog := true
				if c.req.URL.Query().Get("catalog") != "" {
					var err error
					if catalog, err = boolParam(c, "catalog"); err != nil {
						return 0, nil, err
					}
				}
				reg, err := s.cfg.Client.Registry(c.req.Context(), chi.URLParam(c.req, "name"), catalog)
				if err != nil {
					return 0, nil, err
				}
				return 200, reg, nil
			}},
		{method: "POST", path: "/v1/registries", scope: state.ScopeAdmin, id: "addRegistry",
			summary: "Save a registry under a name with its login (encrypted in the server's store, never answered), after asking it whether it answers and accepts the login",
			in:      &RegistryAdd{}, out: &containerization.ContainerRegistry{}, status: 201, handle: func(s *Server, c *call) (int, any, error) {
				var req RegistryAdd
				if err := decode(c, &req); err != nil {
					return 0, nil, err
				}
				reg := req.ContainerRegistry
				name := reg.Name
				reg.Repositories = nil // never saved: read from the catalog
				out, err := s.cfg.Client.AddRegistry(c.req.Context(), name, reg, containerization.AddRegistryOptions{Replace: req.Replace, NoCheck: req.NoCheck})
				if err != nil {
					return 0, nil, err
				}
				return 201, out, nil
			}},
		{method: "DELETE", path: "/v1/registries/{name}", scope: state.ScopeAdmin, id: "removeRegistry",
			summary: "Forget a saved registry and its login (nothing in the registry is touched)",
			out:     &RegistryRemoved{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				name := chi.URLParam(c.req, "name")
				if err := s.cfg.Client.RemoveRegistry(c.req.Context(), name); err != nil {
					return 0, nil, err
				}
				return 200, RegistryRemoved{Name: name, Removed: true}, nil
			}},
		{method: "GET", path: "/v1/registries/{name}/repositories/{repository}/tags", pattern: "/v1/registries/{name}/repositories/*",
			scope: state.ScopeRead, id: "listRegistryTags",
			summary: "A repository's tags in a saved registry (the repository's slashes as they are: /repositories/team/app/tags); details=true: what each names, its digest and size",
			query: []param{{"details", "boolean", fmt.Sprintf("read each tag's manifest for its digest, media type and size (tag_details; the first %d tags, within %s)",
				registry.MaxTagDetails, tagDetailsTimeout)}},
			out: &containerization.RegistryResult{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				details, err := boolParam(c, "details")
				if err != nil {
					return 0, nil, err
				}
				repo, ok := strings.CutSuffix(chi.URLParam(c.req, "*"), "/tags")
				if !ok {
					return 0, nil, fmt.Errorf("%w: no route %s %s", errdefs.ErrNotFound, c.req.Method, c.req.URL.Path)
				}
				if len(repo) > maxRepository || !repositoryRE.MatchString(repo) {
					return 0, nil, fmt.Errorf("%w: repository %.300q: want a repository path (lowercase letters, digits, separators, slashes), at most %d characters",
						errdefs.ErrInvalidArgument, repo, maxRepository)
				}
				name := chi.URLParam(c.req, "name")
				if _, err := s.cfg.Client.Registry(c.req.Context(), name, false); err != nil {
					return 0, nil, err
				}
				ctx := c.req.Context()
				if details {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tagDetailsTimeout)
					defer cancel()
				}
				res, err := s.cfg.Client.ManageContainerRegistry(ctx, containerization.RegistryList, repo, name, containerization.RegistryOptions{TagDetails: details})
				if err != nil {
					return 0, nil, err
				}
				return 200, res, nil
			}},
		{method: "POST", path: "/v1/registries/{name}/retention", scope: state.ScopeOperate, id: "runRetention",
			summary: "Run the retention policy saved with a registry, as a job of kind retention: a plan, or with apply the deletions too",
			in:      &RetentionRun{}, out: &state.Job{}, status: 202, handle: func(s *Server, c *call) (int, any, error) {
				var req RetentionRun
				if err := decodeOptional(c, &req); err != nil {
					return 0, nil, err
				}
				name := chi.URLParam(c.req, "name")
				if len(req.Repositories) > MaxRetentionRepositories {
					return 0, nil, fmt.Errorf("%w: %d repositories: at most %d", errdefs.ErrInvalidArgument, len(req.Repositories), MaxRetentionRepositories)
				}
				for _, r := range req.Repositories {
					if len(r) > maxRepository || !repositoryRE.MatchString(r) {
						return 0, nil, fmt.Errorf("%w: repository %.300q: want a repository path", errdefs.ErrInvalidArgument, r)
					}
				}
				reg, err := s.cfg.Client.Registry(c.req.Context(), name, false)
				if err != nil {
					return 0, nil, err
				}
				if reg.RetentionPolicy == nil {
					return 0, nil, fmt.Errorf("%w: registry %s has no retention policy (add it again with one, replace: true)", errdefs.ErrInvalidArgument, name)
				}
				raw, err := json.Marshal(RetentionRequest{Registry: name, Repositories: req.Repositories, Apply: req.Apply})
				if err != nil {
					return 0, nil, err
				}
				return s.submitSpec(c, "retention", raw)
			}},
	}
}
