// Package errdefs holds the small set of sentinel errors that every Myrmex package wraps, so that callers test
// the category of a failure with errors.Is whatever capability it came from. The root package re-exports them.
package errdefs

import (
	"context"
	"errors"
)

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

// Kind is a category of failure and what it becomes outside Go: a stable machine-readable code, myrmex's exit
// code and the HTTP API's status.
type Kind struct {
	Code       string // stable: not_found, unauthorized, …
	Sentinel   error  // what errors.Is matches; nil for [Internal]
	ExitCode   int
	HTTPStatus int
}

// Kinds is the one table from a failure to its category, in precedence order: an error that matches several rows
// takes the first. myrmex's exit codes and the HTTP API's statuses both come from it.
var Kinds = []Kind{
	{"canceled", context.Canceled, 130, 499},
	{"invalid_argument", ErrInvalidArgument, 2, 400},
	{"not_found", ErrNotFound, 3, 404},
	{"already_exists", ErrAlreadyExists, 4, 409},
	{"conflict", ErrConflict, 4, 409},
	{"unavailable", ErrUnavailable, 5, 503},
	{"tls", ErrTLS, 5, 502},
	{"unauthorized", ErrUnauthorized, 6, 401},
	{"policy_violation", ErrPolicyViolation, 7, 422},
	{"not_implemented", ErrNotImplemented, 8, 501},
	{"rollout_failed", ErrRolloutFailed, 9, 500},
	{"deadline_exceeded", context.DeadlineExceeded, 1, 504},
}

// Internal is the kind of an error that no row of [Kinds] matches.
var Internal = Kind{Code: "internal", ExitCode: 1, HTTPStatus: 500}

// KindOf returns the first row of [Kinds] that err matches, or [Internal]; nil has no kind (the zero Kind).
func KindOf(err error) Kind {
	if err == nil {
		return Kind{}
	}
	for _, k := range Kinds {
		if errors.Is(err, k.Sentinel) {
			return k
		}
	}
	return Internal
}
