// Package kube applies manifests to a Kubernetes cluster with server-side apply, with overrides, in an order a
// user need not think about, tracks what it applied so that later applies can prune what the manifests dropped,
// and waits for the result with kstatus, failing fast on pods that cannot become ready. It also scales, rolls
// back and deletes what it deployed.
package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/homedir"

	"github.com/codomyrmex/containerization/errdefs"
)

// DefaultFieldManager is the server-side apply field manager of Myrmex.
const DefaultFieldManager = "myrmex"

// Config says which cluster to talk to, resolved as kubectl does: an explicit kubeconfig file, else the files
// in KUBECONFIG, else ~/.kube/config, else the in-cluster configuration of a pod.
type Config struct {
	Kubeconfig   string // a kubeconfig file; empty: KUBECONFIG, then ~/.kube/config, then in-cluster
	Context      string // a context of the kubeconfig; empty: its current context
	FieldManager string // the server-side apply field manager; empty: [DefaultFieldManager]
	// QPS and Burst bound the requests per second to the API server (client-go's defaults are 5 and 10, too slow
	// for applying and watching many objects); zero means 100 and 300 (kubectl allows 50 and 300).
	QPS   float32
	Burst int
}

// Client talks to one cluster.
type Client struct {
	rest      *rest.Config
	typed     kubernetes.Interface
	dynamic   dynamic.Interface
	discovery discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
	manager   string
	namespace string // the kubeconfig context's namespace, or "default"
	server    string

	mu sync.Mutex
}

// New resolves the configuration and makes a client. It does not contact the API server.
func New(cfg Config) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		// client-go fixes ~/.kube/config at its init, from the HOME the process started with: read the HOME of now.
		dir := filepath.Join(homedir.HomeDir(), clientcmd.RecommendedHomeDir)
		rules.Precedence = []string{filepath.Join(dir, clientcmd.RecommendedFileName)}
		rules.MigrationRules = nil // client-go's copy of a legacy ~/.kube/.kubeconfig, to the first HOME's config too
	}
	if cfg.Kubeconfig != "" {
		if _, err := os.Stat(cfg.Kubeconfig); err != nil {
			return nil, fmt.Errorf("%w: kubeconfig %s: %v", errdefs.ErrInvalidArgument, cfg.Kubeconfig, err)
		}
		rules.ExplicitPath = cfg.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	rc, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("%w: no Kubernetes cluster is configured: set KUBECONFIG or --kubeconfig, write ~/.kube/config, or run in a pod", errdefs.ErrUnavailable)
		}
		if cfg.Context != "" && (clientcmd.IsContextNotFound(err) || strings.Contains(err.Error(), "context \""+cfg.Context+"\" does not exist")) {
			return nil, fmt.Errorf("%w: context %q is not in the kubeconfig: %v", errdefs.ErrNotFound, cfg.Context, err)
		}
		return nil, fmt.Errorf("%w: kubeconfig: %v", errdefs.ErrInvalidArgument, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return NewForConfig(rc, ns, cfg)
}

// NewForConfig makes a client from a client-go REST configuration; namespace is the default one.
func NewForConfig(rc *rest.Config, namespace string, cfg Config) (*Client, error) {
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst = cfg.QPS, cfg.Burst
	if rc.QPS == 0 {
		rc.QPS = 100
	}
	if rc.Burst == 0 {
		rc.Burst = 300
	}
	if rc.UserAgent == "" {
		rc.UserAgent = "myrmex"
	}
	typed, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	disc := memory.NewMemCacheClient(typed.Discovery())
	c := &Client{
		rest:      rc,
		typed:     typed,
		dynamic:   dyn,
		discovery: disc,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(disc),
		manager:   cfg.FieldManager,
		namespace: namespace,
		server:    rc.Host,
	}
	if c.manager == "" {
		c.manager = DefaultFieldManager
	}
	return c, nil
}

// DefaultNamespace is the namespace of the kubeconfig's context, or "default".
func (c *Client) DefaultNamespace() string { return c.namespace }

// Server is the API server's address.
func (c *Client) Server() string { return c.server }

// FieldManager is the server-side apply field manager this client applies as.
func (c *Client) FieldManager() string { return c.manager }

// Typed is the client-go clientset, for callers that need more than this package offers.
func (c *Client) Typed() kubernetes.Interface { return c.typed }

// Dynamic is the client-go dynamic client.
func (c *Client) Dynamic() dynamic.Interface { return c.dynamic }

// Ping checks that the API server answers and accepts the credentials.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := c.typed.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return Classify(err, "the API server at "+c.server)
	}
	return nil
}

// resetMapper forgets discovery, after CRDs were applied, say.
func (c *Client) resetMapper() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mapper.Reset()
}

func (c *Client) restMapping(gvkGroup, gvkVersion, kind string) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(schemaGK(gvkGroup, kind), gvkVersion)
	if err != nil {
		return nil, err
	}
	return m, nil
}
