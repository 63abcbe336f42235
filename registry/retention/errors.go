package retention

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/codomyrmex/containerization/errdefs"
)

// classify wraps a go-containerregistry error with the errdefs sentinel of its category, keeping the original
// for errors.As.
func classify(err error) error {
	var sentinel error
	var te *transport.Error
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			sentinel = errdefs.ErrUnauthorized
		case http.StatusNotFound:
			sentinel = errdefs.ErrNotFound
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			sentinel = errdefs.ErrUnavailable
		}
	case errors.As(err, &ue), errors.As(err, &he):
		sentinel = errdefs.ErrTLS
	case errors.As(err, &ne):
		sentinel = errdefs.ErrUnavailable
	}
	if sentinel == nil || errors.Is(err, sentinel) {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// isNotFound tells whether the registry answered 404: a manifest, tag or repository that is not there.
func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
