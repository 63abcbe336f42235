package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/errdefs"
)

// ManagedLabel marks every container, network and volume that Myrmex creates. Its value is "true".
const ManagedLabel = "io.codomyrmex.myrmex.managed"

// Options configures a [Client]. The zero value talks to the engine named by DOCKER_HOST, or to the default
// socket when that is unset.
type Options struct {
	// Host is the engine address (unix:///run/docker.sock, tcp://host:2375, …). Empty means DOCKER_HOST, else
	// the platform default. DOCKER_TLS_VERIFY and DOCKER_CERT_PATH are honoured for tcp hosts as the docker CLI does.
	Host string
	// Logger receives debug records. Nil discards them.
	Logger *slog.Logger
	// RequestHook, when set, sees every Engine API request before it is sent: for tracing, and for tests that
	// time a fault of the real engine.
	RequestHook client.RequestHook
}

// Client is a connection to one container engine. It is safe for concurrent use.
type Client struct {
	api  *client.Client
	host string
	tls  bool // the connection is TLS (DOCKER_CERT_PATH)
	log  *slog.Logger

	netMu sync.Mutex // serialises network creation: API 1.41 does not refuse duplicate network names

	cgroupOnce sync.Once // reads the host's cgroup mounts for metrics, once
	cgroupHost *cgroupHost
	cgroupErr  error
}

// New connects to the engine and checks that it answers, negotiating the API version. When no engine answers,
// the error wraps [errdefs.ErrUnavailable] and names the address tried and how to start an engine.
func New(ctx context.Context, opts Options) (*Client, error) {
	host := opts.Host
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = client.DefaultDockerHost
	}
	copts := []client.Opt{client.WithAPIVersionNegotiation(), client.WithHost(host)}
	if opts.RequestHook != nil {
		copts = append(copts, client.WithHTTPRequestHook(opts.RequestHook))
	}
	if os.Getenv("DOCKER_CERT_PATH") != "" {
		copts = append(copts, client.WithTLSClientConfigFromEnv())
	}
	api, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("engine address %q: %w: %v", host, errdefs.ErrInvalidArgument, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{api: api, host: host, log: log, tls: os.Getenv("DOCKER_CERT_PATH") != ""}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		api.Close()
		return nil, unavailable(host, err)
	}
	log.Debug("connected to engine", "host", host, "api", api.ClientVersion())
	return c, nil
}

func unavailable(host string, err error) error {
	return fmt.Errorf("no container engine answers at %s: %w; start one (dockerd, or `systemctl start docker`, "+
		"or `podman system service` for Podman's socket) or point DOCKER_HOST / --host at a running engine",
		host, &errdefs.Classified{Sentinel: errdefs.ErrUnavailable, Err: err})
}

// Host returns the engine address this client talks to.
func (c *Client) Host() string { return c.host }

// Private says whether what is sent to the engine stays between this process and it: a local socket (unix://,
// npipe://), or TLS. Credentials for the engine's own pull are sent only so.
func (c *Client) Private() bool {
	return strings.HasPrefix(c.host, "unix://") || strings.HasPrefix(c.host, "npipe://") || c.tls
}

// APIVersion returns the negotiated Engine API version.
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// API returns the underlying Engine API client, for packages (such as the BuildKit builder) that need calls
// this package does not wrap.
func (c *Client) API() *client.Client { return c.api }

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// classify wraps an Engine API error with the sentinel of its category, keeping the engine's message.
func (c *Client) classify(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case client.IsErrConnectionFailed(err):
		return unavailable(c.host, err)
	case cerrdefs.IsNotFound(err):
		sentinel = errdefs.ErrNotFound
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		sentinel = errdefs.ErrConflict
	case cerrdefs.IsInvalidArgument(err):
		sentinel = errdefs.ErrInvalidArgument
	case cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		sentinel = errdefs.ErrUnauthorized
	case cerrdefs.IsUnavailable(err):
		sentinel = errdefs.ErrUnavailable
	default:
		return err
	}
	return &errdefs.Classified{Sentinel: sentinel, Err: err}
}

func closeQuietly(c io.Closer) { _ = c.Close() }
