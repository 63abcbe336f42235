package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/codomyrmex/containerization/errdefs"
)

// Options configures every operation of this package. The zero value talks HTTPS with the system's roots,
// resolves credentials from the Docker config and its helpers, and retries as described on [Options.Retries].
type Options struct {
	// Kind is the registry's kind; empty detects it from the host (see [DetectKind]).
	Kind Kind
	// Auth, when set, is used for every registry of the call instead of the keychain (the specification's
	// credentials: username and password, or a token).
	Auth *authn.AuthConfig
	// Keychain, when set, is asked for credentials first (Myrmex's own store, say); then the Docker config
	// (DOCKER_CONFIG or ~/.docker/config.json, with its credential helpers), then the cloud's helper for ECR, ACR
	// and GCR hosts.
	Keychain authn.Keychain
	// RootCAs are the certificate authorities trusted for TLS; nil means the system's.
	RootCAs *x509.CertPool
	// Transport is the base HTTP transport; nil means one built from RootCAs. Tests put a proxy here.
	Transport http.RoundTripper
	// Jobs is the number of blobs moved at once; zero means 4.
	Jobs int
	// Retries is how many times a request that failed with a 5xx, 408, 429 or a dropped connection is tried
	// again, with exponential backoff from 250ms; zero means 4, negative means none.
	Retries int
	// PageSize is the number of tags or repositories asked for per page when listing; zero means 1000.
	PageSize int
	// Platform selects the image of a multi-platform index to pull; nil means linux/amd64.
	Platform *v1.Platform
	// PullVia says how [Pull] lands an image in the engine: the engine's own pull when it can (the default), or
	// only it, or Myrmex's fetch and load; see [PullVia].
	PullVia PullVia
	// TagDetails makes [ListTags] read what each tag names (see [Result.Details]).
	TagDetails bool
	// Progress, when set, receives the byte counts of a push, pull or copy as they move, then a last report
	// (Finished) when the transfer succeeded. It is called on one goroutine, and never after the operation
	// returns.
	Progress func(Transfer)
	// LayerProgress, when set, is called as each layer of a pushed image is sent (not for indexes, nor for copy,
	// which mounts and streams blobs registry to registry). It may be called from several goroutines at once.
	LayerProgress func(LayerProgress)
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
}

// ParsePlatform reads a platform as docker does: OS/ARCH[/VARIANT] ("linux/arm64", "linux/arm/v7").
func ParsePlatform(s string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err == nil && (p.OS == "" || p.Architecture == "") {
		err = fmt.Errorf("want OS/ARCH[/VARIANT]")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: platform %q: %v", errdefs.ErrInvalidArgument, s, err)
	}
	return p, nil
}

// LoadCAFile reads a PEM bundle of certificate authorities and returns the system's roots with them added.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: CA file: %v", errdefs.ErrInvalidArgument, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", errdefs.ErrInvalidArgument, path)
	}
	return pool, nil
}

// Ping checks that the registry answers and accepts the credentials opts resolves for it, as docker login does:
// GET /v2/ after the token exchange when the registry uses bearer tokens. A refusal wraps ErrUnauthorized.
func Ping(ctx context.Context, ep Endpoint, opts Options) error {
	reg, err := name.NewRegistry(ep.Host, ep.nameOptions()...)
	if err != nil {
		return fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	var auth authn.Authenticator
	if opts.Auth != nil {
		auth = authn.FromConfig(*opts.Auth)
	} else if auth, err = opts.keychain(ep.Kind).Resolve(reg); err != nil {
		return err
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, opts.transport(), nil)
	if err != nil {
		return Classify(err, ep.Host, "the registry")
	}
	// The transport sets the scheme the registry answered on (http for a plain-HTTP one).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ep.Host+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return Classify(err, ep.Host, "the registry")
	}
	defer resp.Body.Close()
	return Classify(transport.CheckError(resp, http.StatusOK), ep.Host, "the registry")
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) transport() http.RoundTripper {
	if o.Transport != nil {
		return o.Transport
	}
	return NewTransport(o.RootCAs)
}

// NewTransport returns an HTTP transport for registries, trusting roots (nil: the system's); a holder of one
// transport keeps its connections alive from call to call.
func NewTransport(roots *x509.CertPool) *http.Transport {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if roots != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return t
}

func (o Options) keychain(kind Kind) authn.Keychain {
	var chain []authn.Keychain
	if o.Keychain != nil {
		chain = append(chain, o.Keychain)
	}
	chain = append(chain, authn.DefaultKeychain)
	if k := cloudKeychain(kind); k != nil {
		chain = append(chain, k)
	}
	return authn.NewMultiKeychain(chain...)
}

// RemoteOptions returns go-containerregistry's options for calls on ep: transport, credentials, retries, jobs,
// page size and platform. Progress is left out: the operations that report it add it.
func (o Options) RemoteOptions(ctx context.Context, ep Endpoint) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(o.transport()),
		remote.WithUserAgent("myrmex"),
	}
	if o.Auth != nil {
		opts = append(opts, remote.WithAuth(authn.FromConfig(*o.Auth)))
	} else {
		opts = append(opts, remote.WithAuthFromKeychain(o.keychain(ep.Kind)))
	}
	if o.Jobs > 0 {
		opts = append(opts, remote.WithJobs(o.Jobs))
	}
	if o.PageSize > 0 {
		opts = append(opts, remote.WithPageSize(o.PageSize))
	}
	if o.Platform != nil {
		opts = append(opts, remote.WithPlatform(*o.Platform))
	}
	retries := o.Retries
	if retries == 0 {
		retries = 4
	}
	if retries > 0 {
		opts = append(opts, remote.WithRetryBackoff(remote.Backoff{
			Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: retries + 1,
		}))
	} else {
		opts = append(opts, remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
	}
	return opts
}
