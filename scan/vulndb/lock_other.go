//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package vulndb

import "context"

// importing serializes the imports of this process where flock is not available; there, two processes must not
// import at the same time.
var importing = make(chan struct{}, 1)

func lock(ctx context.Context, _ string) (unlock func(), err error) {
	select {
	case importing <- struct{}{}:
		return func() { <-importing }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
