package retention

import (
	"errors"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/codomyrmex/containerization/registry"
)

// classify wraps a go-containerregistry error with the sentinel of its category, as the registry package does.
func classify(err error, host, what string) error { return registry.Classify(err, host, what) }

// isNotFound tells whether the registry answered 404: a manifest, tag or repository that is not there.
func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
