package kube

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/codomyrmex/containerization/errdefs"
)

// Classify puts an error of client-go into a Myrmex category: refused credentials → ErrUnauthorized, missing
// object or namespace → ErrNotFound, exists → ErrAlreadyExists, field-manager conflicts and stale writes →
// ErrConflict, rejected objects → ErrInvalidArgument, no answer → ErrUnavailable, untrusted certificate → ErrTLS.
// what names the object or operation for the message.
func Classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var already *errdefs.Classified
	if errors.As(err, &already) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	wrap := func(sentinel error, format string, args ...any) error {
		return &errdefs.Classified{Sentinel: sentinel, Msg: fmt.Sprintf(format, args...), Err: err}
	}
	var status apierrors.APIStatus
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	var netErr net.Error
	switch {
	case meta.IsNoMatchError(err):
		return wrap(errdefs.ErrInvalidArgument, "%s: the cluster does not know this kind: %v (is its CRD installed, and the apiVersion right?)", what, err)
	case errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr), errors.As(err, &certInvalid):
		return wrap(errdefs.ErrTLS, "%s: the API server's certificate is not trusted: %v", what, err)
	case errors.As(err, &status):
		s := status.Status()
		msg := s.Message
		switch {
		case strings.Contains(msg, "field not declared in schema") || strings.Contains(msg, "failed to create typed patch object"):
			// Server-side apply reports fields the schema does not know as an internal error.
			return wrap(errdefs.ErrInvalidArgument, "%s: the API server refused it: %s", what, msg)
		case apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err):
			return wrap(errdefs.ErrUnauthorized, "%s: %s", what, msg)
		case apierrors.IsNotFound(err):
			return wrap(errdefs.ErrNotFound, "%s: %s", what, msg)
		case apierrors.IsAlreadyExists(err):
			return wrap(errdefs.ErrAlreadyExists, "%s: %s", what, msg)
		case apierrors.IsConflict(err):
			if conflicts := fieldConflicts(s); conflicts != "" {
				return wrap(errdefs.ErrConflict, "%s: fields are owned by another field manager: %s; take them over with --force-conflicts (ForceConflicts), or drop them from the manifests", what, conflicts)
			}
			return wrap(errdefs.ErrConflict, "%s: %s", what, msg)
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsUnsupportedMediaType(err) || apierrors.IsRequestEntityTooLargeError(err):
			return wrap(errdefs.ErrInvalidArgument, "%s: the API server refused it: %s", what, msg)
		case apierrors.IsMethodNotSupported(err):
			return wrap(errdefs.ErrNotImplemented, "%s: %s", what, msg)
		case apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
			apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || s.Code >= 500:
			return wrap(errdefs.ErrUnavailable, "%s: the API server could not answer: %s", what, msg)
		}
		return wrap(errdefs.ErrInvalidArgument, "%s: %s", what, msg)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.As(err, &netErr),
		strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "no such host"):
		return wrap(errdefs.ErrUnavailable, "%s: the API server does not answer: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// fieldConflicts lists the conflicting fields of a server-side apply conflict as "manager: field, …".
func fieldConflicts(s metav1.Status) string {
	if s.Details == nil {
		return ""
	}
	var parts []string
	for _, c := range s.Details.Causes {
		if c.Type == metav1.CauseTypeFieldManagerConflict {
			parts = append(parts, c.Message+" on "+c.Field)
		}
	}
	return strings.Join(parts, "; ")
}

func schemaGK(group, kind string) schema.GroupKind { return schema.GroupKind{Group: group, Kind: kind} }

func isNoMatch(err error) bool { return meta.IsNoMatchError(err) }

// ObjectError is the failure of one object of the manifests: Object names it (kind.group/namespace/name), Source
// is where it came from (file:line).
type ObjectError struct {
	Object string
	Source string
	Err    error
}

func (e *ObjectError) Error() string {
	if e.Source == "" {
		return e.Err.Error()
	}
	return e.Source + ": " + e.Err.Error()
}

// Unwrap returns the API server's error, classified.
func (e *ObjectError) Unwrap() error { return e.Err }
