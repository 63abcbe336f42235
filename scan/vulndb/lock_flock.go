//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package vulndb

import (
	"os"
	"syscall"
)

// lock takes an exclusive lock on path, waiting for another process's import to finish installing.
func lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
