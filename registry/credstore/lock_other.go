//go:build !unix

package credstore

import (
	"fmt"
	"runtime"

	"github.com/codomyrmex/containerization/errdefs"
)

// lockFile refuses: without a lock across processes two logins could lose one another's write, and a store
// that loses credentials silently is worse than one that says it cannot write here.
func lockFile(path string) (unlock func(), err error) {
	return nil, fmt.Errorf("%w: locking %s across processes on %s", errdefs.ErrNotImplemented, path, runtime.GOOS)
}
