package vulndb

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
)

// DefaultBaseURL is where osv.dev publishes its exports: <DefaultBaseURL>/<ecosystem>/all.zip.
const DefaultBaseURL = "https://osv-vulnerabilities.storage.googleapis.com"

// Options configures every function of this package. The zero value uses the default directory and osv.dev.
type Options struct {
	// Dir is the database directory; empty means $MYRMEX_CACHE_DIR/osv, else $XDG_CACHE_HOME/myrmex/osv, else
	// ~/.cache/myrmex/osv.
	Dir string
	// BaseURL is where Update downloads exports from; empty means DefaultBaseURL.
	BaseURL string
	// HTTPClient is used by Update; nil means a client that gives up on a connection after 10 seconds, so that a
	// machine without a network fails at once rather than hanging.
	HTTPClient *http.Client
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
}

// DefaultDir is the directory the zero Options use.
func DefaultDir() (string, error) {
	if d := os.Getenv("MYRMEX_CACHE_DIR"); d != "" {
		return filepath.Join(d, "osv"), nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "myrmex", "osv"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: no directory for the advisory database: set MYRMEX_CACHE_DIR (%v)",
			errdefs.ErrInvalidArgument, err)
	}
	return filepath.Join(home, ".cache", "myrmex", "osv"), nil
}

func (o Options) dir() (string, error) {
	if o.Dir != "" {
		return o.Dir, nil
	}
	return DefaultDir()
}

func (o Options) baseURL() string {
	if o.BaseURL != "" {
		return o.BaseURL
	}
	return DefaultBaseURL
}

func (o Options) httpClient() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
