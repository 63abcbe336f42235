package inventory

import (
	"fmt"

	"github.com/codomyrmex/containerization/errdefs"
)

// ErrLimitExceeded means an image broke one of the bounds of [Options] (layer and image size, entries, layers)
// or of the package (MaxPathBytes and MaxPathComponents, as a [*NameError]; MaxHistoryEntries): the scan stopped
// rather than spend unbounded time, memory or disk on it. It wraps errdefs.ErrInvalidArgument.
var ErrLimitExceeded = fmt.Errorf("scan limit exceeded: %w", errdefs.ErrInvalidArgument)

// ErrDiffIDMismatch means a layer's content does not hash to the diff ID the image declares for it: the image
// lies about its layers (or was damaged), and its packages cannot be attributed. It wraps
// errdefs.ErrInvalidArgument.
var ErrDiffIDMismatch = fmt.Errorf("layer content does not match its diff ID: %w", errdefs.ErrInvalidArgument)

// NameError is a layer entry whose name or link target is longer than MaxPathBytes or deeper than
// MaxPathComponents. It wraps ErrLimitExceeded; Scan returns it in a *LayerError.
type NameError struct {
	Entry      string // the start of the entry's name, at most 64 bytes
	What       string // "name" or "link target"
	Bytes      int    // the length of the name or target
	Components int    // its number of components
}

func (e *NameError) Error() string {
	return fmt.Sprintf("%v: entry %q: its %s of %d bytes in %d components passes MaxPathBytes (%d) or MaxPathComponents (%d)",
		ErrLimitExceeded, e.Entry, e.What, e.Bytes, e.Components, MaxPathBytes, MaxPathComponents)
}

func (e *NameError) Unwrap() error { return ErrLimitExceeded }

// LayerError is a layer that could not be read: a tar stream that is not one, a limit the layer breaks, content
// that is not what its diff ID says, a read that failed. Err wraps ErrLimitExceeded, ErrDiffIDMismatch or
// errdefs.ErrInvalidArgument for a bad layer, or the cause of a failed read (a cancelled context, say).
type LayerError struct {
	Index  int    // position of the layer in the image, from 0
	DiffID string // the layer's diff ID, as the image declares it
	Err    error
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("reading layer %d (%s): %v", e.Index, e.DiffID, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }
