//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package vulndb

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often lock tries again while another import holds the lock.
const lockPoll = 20 * time.Millisecond

// lock takes an exclusive lock on path, waiting for another process's (or goroutine's) import to finish
// installing, or for ctx to be done.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			break
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
