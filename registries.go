package containerization

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/registry/credstore"
	"github.com/codomyrmex/containerization/registry/retention"
)

// RegistryStore keeps saved registries (the specification's ContainerRegistry, by name): Myrmex's encrypted
// store (*credstore.Store), where a saved registry's login is encrypted as a login is, or another.
type RegistryStore interface {
	PutRegistryRecord(name string, r credstore.Record, replace bool) error
	RegistryRecord(name string) (credstore.Record, bool, error)
	DeleteRegistryRecord(name string) (bool, error)
	RegistryRecordNames() ([]string, error)
}

// savedRegistry is what a record keeps besides the login.
type savedRegistry struct {
	URL                 string         `json:"url"`
	Type                string         `json:"type"`
	SecurityScanEnabled bool           `json:"security_scan_enabled,omitempty"`
	RetentionPolicy     map[string]any `json:"retention_policy,omitempty"`
	CAFile              string         `json:"ca_file,omitempty"`
}

// AddRegistryOptions tune [Client.AddRegistry]. The zero value checks the registry and refuses a name saved
// already.
type AddRegistryOptions struct {
	// Replace a registry saved under the same name.
	Replace bool
	// NoCheck saves the registry without asking it whether it answers and accepts the login.
	NoCheck bool
	// Transport is the base HTTP transport of the check (tests put a proxy here).
	Transport http.RoundTripper
}

// AddRegistry saves reg under name (myrmex registry add): its URL normalised, its type told from the URL when
// empty, its login encrypted as a login is, its retention policy checked as retention plan checks one. Unless
// opts.NoCheck, the registry is asked first whether it answers and accepts the login, as docker login asks, and
// Repositories is filled from its catalog where it serves one (they are never saved: the registry is asked
// again each time). Nothing is saved when anything fails. Errors are *[RegistryError] (Op "add").
func (c *Client) AddRegistry(ctx context.Context, name string, reg ContainerRegistry, opts AddRegistryOptions) (*ContainerRegistry, error) {
	fail := func(err error) (*ContainerRegistry, error) {
		return nil, &RegistryError{Op: "add", Registry: name, Err: err}
	}
	store, err := c.registryStore()
	if err != nil {
		return fail(err)
	}
	if err := credstore.CheckRecordName(name); err != nil {
		return fail(err)
	}
	if reg.URL == "" {
		return fail(fmt.Errorf("%w: registry %s needs a URL", ErrInvalidArgument, name))
	}
	kind, err := registry.ParseKind(reg.Type)
	if err != nil {
		return fail(err)
	}
	ep, err := registry.ParseEndpoint(reg.URL, kind)
	if err != nil {
		return fail(err)
	}
	if reg.RetentionPolicy != nil {
		if _, err := retentionPolicy(reg.RetentionPolicy); err != nil {
			return fail(err)
		}
	}
	if reg.Credentials.Username == "" && (reg.Credentials.Password != "" || reg.Credentials.Token != "") {
		return fail(fmt.Errorf("%w: registry %s: a password or token needs a username", ErrInvalidArgument, name))
	}
	saved := savedRegistry{URL: ep.String(), Type: string(ep.Kind), SecurityScanEnabled: reg.SecurityScanEnabled,
		RetentionPolicy: reg.RetentionPolicy, CAFile: reg.CAFile}
	out := saved.registry(name, reg.Credentials)
	if !opts.NoCheck {
		ro := RegistryOptions{Credentials: reg.Credentials, CAFile: reg.CAFile, Transport: opts.Transport}
		ropts, err := c.registryOptions(ro, ep.Kind, reg.Credentials, nil)
		if err != nil {
			return fail(err)
		}
		if err := registry.Ping(ctx, ep, ropts); err != nil {
			return fail(err)
		}
		if out.Repositories, err = catalog(ctx, ep, ropts); err != nil {
			return fail(err)
		}
	}
	data, err := json.Marshal(saved)
	if err != nil {
		return fail(err)
	}
	rec := credstore.Record{Credentials: credstore.Credentials{Username: reg.Credentials.Username,
		Password: string(reg.Credentials.Password), Token: string(reg.Credentials.Token)}, Data: data}
	if err := store.PutRegistryRecord(name, rec, opts.Replace); err != nil {
		return fail(err)
	}
	return out, nil
}

// Registry returns the registry saved under name (myrmex registry show), its login masked; with catalog, its
// Repositories are read from the registry's catalog where it serves one (a registry that does not, such as
// Docker Hub, leaves them empty). A name not saved is ErrNotFound.
func (c *Client) Registry(ctx context.Context, name string, catalogToo bool) (*ContainerRegistry, error) {
	fail := func(err error) (*ContainerRegistry, error) {
		return nil, &RegistryError{Op: "show", Registry: name, Err: err}
	}
	saved, creds, err := c.loadRegistry(name)
	if err != nil {
		return fail(err)
	}
	out := saved.registry(name, creds)
	if catalogToo {
		ep, ropts, err := c.savedEndpoint(saved, creds, nil)
		if err != nil {
			return fail(err)
		}
		if out.Repositories, err = catalog(ctx, ep, ropts); err != nil {
			return fail(err)
		}
	}
	return out, nil
}

// Registries lists the saved registries by name, their logins masked and their repositories not read.
func (c *Client) Registries(ctx context.Context) ([]ContainerRegistry, error) {
	store, err := c.registryStore()
	if err != nil {
		return nil, &RegistryError{Op: "ls", Err: err}
	}
	names, err := store.RegistryRecordNames()
	if err != nil {
		return nil, &RegistryError{Op: "ls", Err: err}
	}
	out := []ContainerRegistry{}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, &RegistryError{Op: "ls", Err: err}
		}
		saved, creds, err := c.loadRegistry(n)
		if err != nil {
			return nil, &RegistryError{Op: "ls", Registry: n, Err: err}
		}
		out = append(out, *saved.registry(n, creds))
	}
	return out, nil
}

// RemoveRegistry forgets the registry saved under name, and its login; a name not saved is ErrNotFound.
func (c *Client) RemoveRegistry(ctx context.Context, name string) error {
	store, err := c.registryStore()
	if err == nil {
		var found bool
		if found, err = store.DeleteRegistryRecord(name); err == nil && !found {
			err = fmt.Errorf("%w: no registry is saved as %s (myrmex registry ls)", ErrNotFound, name)
		}
	}
	if err != nil {
		return &RegistryError{Op: "rm", Registry: name, Err: err}
	}
	return nil
}

// RunRetention plans the retention policy saved with the registry name over its repositories (repos, else the
// registry's catalog) and, with apply, deletes what it does not keep (see package retention). The plan alone
// is a dry run. A registry saved without a retention policy is ErrInvalidArgument.
func (c *Client) RunRetention(ctx context.Context, name string, repos []string, apply bool, jobs int) (*retention.Report, error) {
	fail := func(err error) (*retention.Report, error) {
		return nil, &RegistryError{Op: "retention run", Registry: name, Err: err}
	}
	saved, creds, err := c.loadRegistry(name)
	if err != nil {
		return fail(err)
	}
	if saved.RetentionPolicy == nil {
		return fail(fmt.Errorf("%w: registry %s has no retention policy (myrmex registry add %s --retention FILE --replace)", ErrInvalidArgument, name, name))
	}
	pol, err := retentionPolicy(saved.RetentionPolicy)
	if err != nil {
		return fail(err)
	}
	ep, ropts, err := c.savedEndpoint(saved, creds, nil)
	if err != nil {
		return fail(err)
	}
	ropts.Jobs = jobs
	ro := retention.Options{Registry: ep.Host, Insecure: ep.PlainHTTP, Repositories: repos,
		Remote: ropts.RemoteOptions(ctx, ep), Concurrency: jobs}
	report, err := retention.Plan(ctx, pol, ro)
	if err == nil && apply {
		report, err = retention.Apply(ctx, report, ro)
	}
	if err != nil {
		return report, &RegistryError{Op: "retention run", Registry: name, Err: err}
	}
	return report, nil
}

// registry is the saved registry as the specification's ContainerRegistry.
func (s savedRegistry) registry(name string, creds RegistryCredentials) *ContainerRegistry {
	return &ContainerRegistry{Name: name, URL: s.URL, Type: s.Type, Credentials: creds, Repositories: []string{},
		SecurityScanEnabled: s.SecurityScanEnabled, RetentionPolicy: s.RetentionPolicy, CAFile: s.CAFile}
}

func (c *Client) registryStore() (RegistryStore, error) {
	if c.cfg.Registries == nil {
		return nil, fmt.Errorf("%w: no registry store is set (Config.Registries)", ErrInvalidArgument)
	}
	return c.cfg.Registries, nil
}

// loadRegistry reads the registry saved under name; one not saved is ErrNotFound.
func (c *Client) loadRegistry(name string) (savedRegistry, RegistryCredentials, error) {
	store, err := c.registryStore()
	if err != nil {
		return savedRegistry{}, RegistryCredentials{}, err
	}
	rec, ok, err := store.RegistryRecord(name)
	if err != nil {
		return savedRegistry{}, RegistryCredentials{}, err
	}
	if !ok {
		return savedRegistry{}, RegistryCredentials{}, fmt.Errorf("%w: no registry is saved as %s (myrmex registry ls)", ErrNotFound, name)
	}
	var s savedRegistry
	if err := json.Unmarshal(rec.Data, &s); err != nil || s.URL == "" {
		return savedRegistry{}, RegistryCredentials{}, fmt.Errorf("%w: the saved registry %s is damaged (remove it and add it again)", ErrInvalidArgument, name)
	}
	return s, RegistryCredentials{Username: rec.Username, Password: Secret(rec.Password), Token: Secret(rec.Token)}, nil
}

// savedEndpoint is the saved registry's endpoint and the options that reach it with its login.
func (c *Client) savedEndpoint(s savedRegistry, creds RegistryCredentials, tr http.RoundTripper) (registry.Endpoint, registry.Options, error) {
	kind, err := registry.ParseKind(s.Type)
	if err != nil {
		return registry.Endpoint{}, registry.Options{}, err
	}
	ep, err := registry.ParseEndpoint(s.URL, kind)
	if err != nil {
		return ep, registry.Options{}, err
	}
	ropts, err := c.registryOptions(RegistryOptions{CAFile: s.CAFile, Transport: tr}, ep.Kind, creds, nil)
	return ep, ropts, err
}

// namedRegistry applies the registry saved as registryURL, when registryURL is the name of one, to opts: its
// URL, its type and its login where opts give none, and its scan-on-push. ok is false when registryURL cannot be
// a name (it has a dot, a port or a scheme, or is localhost: it is then a host, as before), or when no store is
// set. With a store, a name that is not saved is ErrNotFound: it is never read as a host of that name (a typo, or
// a pipeline run where the registry was never added, would send the image to whatever "prod" resolves to).
func (c *Client) namedRegistry(registryURL string, opts *RegistryOptions) (url string, scanOnPush, ok bool, err error) {
	if c.cfg.Registries == nil || credstore.CheckRecordName(registryURL) != nil {
		return registryURL, false, false, nil
	}
	saved, creds, err := c.loadRegistry(registryURL)
	if errors.Is(err, ErrNotFound) {
		return registryURL, false, false, fmt.Errorf("%w (a host without a dot or a port is written https://%s)", err, registryURL)
	}
	if err != nil {
		return registryURL, false, false, err
	}
	if opts.Type == "" {
		opts.Type = saved.Type
	}
	if opts.Credentials == (RegistryCredentials{}) {
		opts.Credentials = creds
	}
	if opts.CAFile == "" {
		opts.CAFile = saved.CAFile
	}
	return saved.URL, saved.SecurityScanEnabled, true, nil
}

// catalog lists the registry's repositories; a registry that serves no catalog (404, or 401/403 for a login
// that may push and pull but not list, as Docker Hub does) gives none.
func catalog(ctx context.Context, ep registry.Endpoint, ropts registry.Options) ([]string, error) {
	res, err := registry.Catalog(ctx, ep, ropts)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotImplemented) || errors.Is(err, ErrUnauthorized) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	if res.Repositories == nil {
		return []string{}, nil
	}
	return res.Repositories, nil
}

// retentionPolicy reads a saved retention policy as retention plan reads a file.
func retentionPolicy(m map[string]any) (retention.Policy, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return retention.Policy{}, fmt.Errorf("%w: retention policy: %v", ErrInvalidArgument, err)
	}
	p, err := retention.ParsePolicy(b)
	if err != nil && !strings.Contains(err.Error(), "retention") {
		err = fmt.Errorf("retention policy: %w", err)
	}
	return p, err
}
