package registry

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/codomyrmex/containerization/errdefs"
)

// The statuses a real registry answers with on demand are covered against distribution; these are the ones it
// cannot be made to answer (rate limits, methods it always allows).
func TestClassifyStatuses(t *testing.T) {
	tests := []struct {
		status int
		code   transport.ErrorCode
		want   error
	}{
		{http.StatusTooManyRequests, transport.TooManyRequestsErrorCode, errdefs.ErrUnavailable},
		{http.StatusBadGateway, "", errdefs.ErrUnavailable},
		{http.StatusForbidden, transport.DeniedErrorCode, errdefs.ErrUnauthorized},
		{http.StatusMethodNotAllowed, transport.UnsupportedErrorCode, errdefs.ErrNotImplemented},
		{http.StatusNotFound, transport.NameUnknownErrorCode, errdefs.ErrNotFound},
		{http.StatusBadRequest, transport.DigestInvalidErrorCode, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		terr := &transport.Error{StatusCode: tt.status}
		if tt.code != "" {
			terr.Errors = []transport.Diagnostic{{Code: tt.code}}
		}
		got := Classify(terr, "registry.example.com", "tag app:1")
		if !errors.Is(got, tt.want) {
			t.Errorf("Classify(HTTP %d %s) = %v, want %v", tt.status, tt.code, got, tt.want)
		}
		var back *transport.Error
		if !errors.As(got, &back) {
			t.Errorf("Classify(HTTP %d) lost the transport error", tt.status)
		}
	}
}
