package containerization

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/scan"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// Config configures a [Client]. The zero value talks to the engine at DOCKER_HOST (else the default socket) and
// to the cluster that KUBECONFIG, ~/.kube/config or the pod's service account names.
type Config struct {
	// Host is the engine's address ("unix:///…", "tcp://…"); empty means DOCKER_HOST, else the default socket.
	Host string
	// Engine is a connected engine client to use instead of opening one; the Client does not close it.
	Engine *engine.Client
	// Kubeconfig, KubeContext and FieldManager are the default cluster of the Kubernetes methods; a call's
	// [KubernetesOptions] naming another kubeconfig or context gets a cluster client of its own, kept too.
	Kubeconfig, KubeContext, FieldManager string
	// Keychain resolves registry credentials for calls whose options carry none (before the Docker config and
	// its helpers); nil means none of its own.
	Keychain authn.Keychain
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
	// Policy is held at every gate of the client's calls: a build, a push, a container's create and start (a
	// call's options may name another). Nil: no policy. See package policy and docs/policy.md.
	Policy *policy.Policy
	// Secrets resolves environment values written "secret:NAME" at create (see [SecretPrefix]); nil: such
	// values are refused.
	Secrets SecretSource
	// Registries keeps the saved registries (myrmex registry add) that operations may name in place of a URL;
	// nil: none are.
	Registries RegistryStore
	// PolicyScan is how the gates scan an image the policy needs a scan of (the advisory database, the layer
	// cache); the zero value is the defaults of [ScanOptions].
	PolicyScan ScanOptions
}

// Client is Myrmex: the specification's six functions as methods, over connections opened once and shared by
// every call — the engine client, the Kubernetes clients (with their discovery) per kubeconfig and context, the
// registry HTTP transport per CA file (its connections kept alive between calls), and the advisory database
// per directory (its indexes read once; opened again when an import replaces it).
// Connections are opened on first use, so a client that only deploys to Kubernetes needs no engine. A Client is
// safe for concurrent use; Close releases what it opened.
//
// The package-level functions ([ManageContainers], [BuildContainers], …) are the same methods on a client made
// for the one call, for callers that follow the specification's function signatures. The connection fields of a
// call's options (Engine, Host, Logger) are what the package-level functions make that client from; a Client's
// methods use an options' Engine when it is set, and otherwise the Client's own connection (the options' Host and
// Logger are not read).
type Client struct {
	cfg Config

	mu    sync.Mutex
	eng   *engine.Client // opened on first use, unless cfg.Engine
	kubes map[kubeKey]*kube.Client
	// transports are the registry transports by CA file ("": the system's roots).
	transports map[string]*http.Transport
	// dbs are the open advisory databases by directory; retired ones were replaced by an import while a scan
	// may still read them, and are closed with the client.
	dbs     map[string]*vulndb.DB
	retired []*vulndb.DB
	closed  bool
}

type kubeKey struct{ kubeconfig, context, manager string }

// New returns a client for cfg. It opens nothing yet: each connection is opened when a call first needs it, and
// a connection that failed is tried again by the next call.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newClient(cfg), nil
}

func newClient(cfg Config) *Client {
	return &Client{cfg: cfg, kubes: map[kubeKey]*kube.Client{}, transports: map[string]*http.Transport{}, dbs: map[string]*vulndb.DB{}}
}

// Close closes the connections the client opened (not a Config.Engine it was given). Calls after Close fail
// with ErrInvalidArgument.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.eng != nil {
		err = c.eng.Close()
		c.eng = nil
	}
	c.kubes = nil
	for _, t := range c.transports {
		t.CloseIdleConnections()
	}
	c.transports = nil
	for _, db := range c.dbs {
		c.retired = append(c.retired, db)
	}
	for _, db := range c.retired {
		_ = db.Close()
	}
	c.dbs, c.retired = nil, nil
	return err
}

var errClosed = fmt.Errorf("%w: the client is closed", ErrInvalidArgument)

// Engine returns the engine client every call of c shares, opening it on first use. It belongs to c: do not
// close it.
func (c *Client) Engine(ctx context.Context) (*engine.Client, error) { return c.engine(ctx) }

// engine returns the shared engine client, opening it on first use.
func (c *Client) engine(ctx context.Context) (*engine.Client, error) {
	if c.cfg.Engine != nil {
		return c.cfg.Engine, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if c.eng != nil {
		return c.eng, nil
	}
	eng, err := engine.New(ctx, engine.Options{Host: c.cfg.Host, Logger: c.cfg.Logger})
	if err != nil {
		return nil, err
	}
	c.eng = eng
	return eng, nil
}

// engineFor is the engine a call uses: the one its options carry, else the client's.
func (c *Client) engineFor(ctx context.Context, own *engine.Client) (*engine.Client, error) {
	if own != nil {
		return own, nil
	}
	return c.engine(ctx)
}

// kube returns the cluster client for the kubeconfig, context and field manager of opts (the client's defaults
// where they are empty), opening it on first use.
func (c *Client) kube(opts KubernetesOptions) (*kube.Client, error) {
	k := kubeKey{kubeconfig: opts.Kubeconfig, context: opts.Context, manager: opts.FieldManager}
	if k.kubeconfig == "" {
		k.kubeconfig = c.cfg.Kubeconfig
	}
	if k.context == "" {
		k.context = c.cfg.KubeContext
	}
	if k.manager == "" {
		k.manager = c.cfg.FieldManager
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if kc, ok := c.kubes[k]; ok {
		return kc, nil
	}
	kc, err := kube.New(kube.Config{Kubeconfig: k.kubeconfig, Context: k.context, FieldManager: k.manager})
	if err != nil {
		return nil, err
	}
	c.kubes[k] = kc
	return kc, nil
}

// transport returns the registry transport for a CA file ("" for the system's roots), made on first use.
func (c *Client) transport(caFile string) (http.RoundTripper, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if t, ok := c.transports[caFile]; ok {
		return t, nil
	}
	var roots *x509.CertPool
	if caFile != "" {
		var err error
		if roots, err = registry.LoadCAFile(caFile); err != nil {
			return nil, err
		}
	}
	t := registry.NewTransport(roots)
	c.transports[caFile] = t
	return t, nil
}

// advisoryDB returns the advisory database in dir (empty: the default), opened on first use and again when an
// import or update has replaced it since.
func (c *Client) advisoryDB(dir string) (*vulndb.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if db, ok := c.dbs[dir]; ok {
		if db.Current() {
			return db, nil
		}
		c.retired = append(c.retired, db)
		delete(c.dbs, dir)
	}
	db, err := scan.OpenDB(dir)
	if err != nil {
		return nil, err
	}
	c.dbs[dir] = db
	return db, nil
}

// callClient is the client a package-level function makes for one call, from the connection options the call
// carries; the function closes it when the call returns.
func callClient(eng *engine.Client, host string, log *slog.Logger) *Client {
	return newClient(Config{Engine: eng, Host: host, Logger: log})
}
