package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/codomyrmex/containerization/errdefs"
)

// Classify wraps an error from go-containerregistry with the errdefs sentinel of its category and a message that
// says what to do, keeping the original for errors.As. host is the registry; what names the object ("repository
// r", "tag t") for not-found errors.
func Classify(err error, host, what string) error {
	if err == nil {
		return nil
	}
	wrap := func(sentinel error, format string, args ...any) error {
		return &errdefs.Classified{Sentinel: sentinel, Msg: fmt.Sprintf(format, args...), Err: err}
	}
	var terr *transport.Error
	var dnsErr *net.DNSError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &terr):
		switch {
		case terr.StatusCode == http.StatusBadRequest && strings.Contains(terr.Error(), "HTTP request to an HTTPS server"):
			// go-containerregistry falls back to plain HTTP for loopback and private hosts when HTTPS fails: the
			// registry speaks TLS, and the HTTPS attempt failed on its certificate.
			return wrap(errdefs.ErrTLS, "%s speaks HTTPS, but its certificate could not be verified: add its CA (--ca-file) or install it in the system's roots", host)
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden || hasCode(terr, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			return wrap(errdefs.ErrUnauthorized, "%s refused the credentials for %s (HTTP %d): log in with `myrmex registry login %s`, or check the username and password",
				host, what, terr.StatusCode, host)
		case terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
			return wrap(errdefs.ErrNotFound, "%s not found in %s", what, host)
		case terr.StatusCode == http.StatusMethodNotAllowed || hasCode(terr, transport.UnsupportedErrorCode):
			return wrap(errdefs.ErrNotImplemented, "%s does not allow this on %s (HTTP %d): %s", host, what, terr.StatusCode, firstLine(terr.Error()))
		case terr.StatusCode == http.StatusTooManyRequests:
			return wrap(errdefs.ErrUnavailable, "%s is rate-limiting requests (HTTP 429) after retries: try later, or log in for a higher limit", host)
		case terr.StatusCode >= 500:
			return wrap(errdefs.ErrUnavailable, "%s failed (HTTP %d) after retries: %s", host, terr.StatusCode, firstLine(terr.Error()))
		}
		return wrap(errdefs.ErrInvalidArgument, "%s rejected the request on %s (HTTP %d): %s", host, what, terr.StatusCode, firstLine(terr.Error()))
	case errors.As(err, &dnsErr):
		return wrap(errdefs.ErrUnavailable, "registry host %s is unknown (%s): check the registry URL", host, dnsErr.Err)
	case errors.As(err, &unknownAuthority), errors.As(err, &certInvalid):
		return wrap(errdefs.ErrTLS, "%s presented a certificate this machine does not trust (%v): add its CA (--ca-file) or install it in the system's roots", host, rootCause(err))
	case errors.As(err, &hostnameErr):
		return wrap(errdefs.ErrTLS, "%s presented a certificate for another name (%v)", host, rootCause(err))
	case errors.As(err, &recordErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return wrap(errdefs.ErrTLS, "%s does not speak TLS: use http://%s for a plain-HTTP registry", host, host)
	case corruptRead(err):
		// go-containerregistry checks every blob it reads against its digest (its error type is internal).
		return wrap(errdefs.ErrUnavailable, "%s sent %s with bytes that do not match their digest (a corrupt blob in the registry, or on the way): %v", host, what, rootCause(err))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wrap(errdefs.ErrUnavailable, "%s cut its answer short while sending %s", host, what)
	case errors.Is(err, syscall.ECONNREFUSED):
		return wrap(errdefs.ErrUnavailable, "nothing answers at %s (connection refused)", host)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return wrap(errdefs.ErrUnavailable, "%s dropped the connection (after retries): %v", host, rootCause(err))
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return wrap(errdefs.ErrUnavailable, "%s did not answer in time", host)
	}
	return err
}

// corruptRead reports whether err is go-containerregistry's check of a blob against its digest failing (its
// error type is internal).
func corruptRead(err error) bool {
	return strings.Contains(err.Error(), "error verifying sha256 checksum") || strings.Contains(err.Error(), "error verifying sha512 checksum")
}

func hasCode(e *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range e.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
