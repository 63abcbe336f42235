//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package vulndb

// lock is a no-op where flock is not available: there, two imports must not run at the same time.
func lock(string) (func(), error) { return func() {}, nil }
