package inventory

import (
	"fmt"

	"github.com/codomyrmex/containerization/errdefs"
)

// ErrLimitExceeded means an image broke one of the bounds of [Options] (layer size, entries per layer): the scan
// stopped rather than spend unbounded time, memory or disk on it. It wraps errdefs.ErrInvalidArgument.
var ErrLimitExceeded = fmt.Errorf("scan limit exceeded: %w", errdefs.ErrInvalidArgument)

// LayerError is a layer that could not be read: a tar stream that is not one, a limit the layer breaks, a read
// that failed. Err wraps ErrLimitExceeded or errdefs.ErrInvalidArgument for a bad layer, or the cause of a failed
// read (a cancelled context, say).
type LayerError struct {
	Index  int    // position of the layer in the image, from 0
	DiffID string // the layer's diff ID
	Err    error
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("reading layer %d (%s): %v", e.Index, e.DiffID, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }
