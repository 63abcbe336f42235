// Package errdefs holds the small set of sentinel errors that every Myrmex package wraps, so that callers test
// the category of a failure with errors.Is whatever capability it came from. The root package re-exports them.
package errdefs

import "errors"

var (
	// ErrNotFound means the object named (container, image, network, tag, deployment…) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means an object with that name exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument means the input was rejected before anything was touched.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnauthorized means the credentials were missing or refused.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable means the engine, registry or API server did not answer.
	ErrUnavailable = errors.New("unavailable")
	// ErrTLS means the peer's certificate is not trusted, or the peer does not speak TLS where TLS was expected.
	ErrTLS = errors.New("tls verification failed")
	// ErrPolicyViolation means the operation ran but its result breaks a policy the caller set (a scan gate, say).
	ErrPolicyViolation = errors.New("policy violation")
	// ErrConflict means the object is in a state that forbids the operation (removing a running container
	// without force, say).
	ErrConflict = errors.New("conflict")
	// ErrRolloutFailed means the objects were applied but a workload cannot become ready: its pods cannot pull
	// their image, crash, cannot be configured or scheduled, it passed its progress deadline, or the wait for it
	// timed out.
	ErrRolloutFailed = errors.New("rollout failed")
	// ErrNotImplemented means the capability is part of the specification but not built yet.
	ErrNotImplemented = errors.New("not implemented")
)

// Classified is an error of an underlying library put into a Myrmex category: errors.Is matches Sentinel,
// errors.As still finds the original error. Its message is Msg, or the original's when Msg is empty.
type Classified struct {
	Sentinel error
	Msg      string
	Err      error
}

func (e *Classified) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return e.Err.Error()
}

// Unwrap returns the sentinel and the original error.
func (e *Classified) Unwrap() []error { return []error{e.Sentinel, e.Err} }
