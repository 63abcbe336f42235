package errdefs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
)

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		err        error
		code       string
		exit, http int
	}{
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), "invalid_argument", 2, 400},
		{fmt.Errorf("x: %w", errdefs.ErrNotFound), "not_found", 3, 404},
		{fmt.Errorf("x: %w", errdefs.ErrAlreadyExists), "already_exists", 4, 409},
		{fmt.Errorf("x: %w", errdefs.ErrConflict), "conflict", 4, 409},
		{fmt.Errorf("x: %w", errdefs.ErrUnavailable), "unavailable", 5, 503},
		{fmt.Errorf("x: %w", errdefs.ErrTLS), "tls", 5, 502},
		{fmt.Errorf("x: %w", errdefs.ErrUnauthorized), "unauthorized", 6, 401},
		{fmt.Errorf("x: %w", errdefs.ErrPolicyViolation), "policy_violation", 7, 422},
		{fmt.Errorf("x: %w", errdefs.ErrNotImplemented), "not_implemented", 8, 501},
		{fmt.Errorf("x: %w", errdefs.ErrRolloutFailed), "rollout_failed", 9, 500},
		{fmt.Errorf("x: %w", context.Canceled), "canceled", 130, 499},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "deadline_exceeded", 1, 504},
		{errors.New("boom"), "internal", 1, 500},
		// Precedence: the first row that matches.
		{fmt.Errorf("%w: %w", errdefs.ErrNotFound, errdefs.ErrInvalidArgument), "invalid_argument", 2, 400},
		{fmt.Errorf("%w: %w", errdefs.ErrRolloutFailed, context.DeadlineExceeded), "rollout_failed", 9, 500},
		{fmt.Errorf("%w: %w", context.Canceled, errdefs.ErrUnavailable), "canceled", 130, 499},
		{&errdefs.Classified{Sentinel: errdefs.ErrUnauthorized, Err: errors.New("denied")}, "unauthorized", 6, 401},
	} {
		k := errdefs.KindOf(tc.err)
		if k.Code != tc.code || k.ExitCode != tc.exit || k.HTTPStatus != tc.http {
			t.Errorf("KindOf(%v) = %+v, want %s, exit %d, HTTP %d", tc.err, k, tc.code, tc.exit, tc.http)
		}
	}
	if k := errdefs.KindOf(nil); k != (errdefs.Kind{}) {
		t.Errorf("KindOf(nil) = %+v, want the zero Kind", k)
	}
}

// Every sentinel has a row, and codes are unique: a caller can switch on them.
func TestKindsTable(t *testing.T) {
	seen := map[string]bool{errdefs.Internal.Code: true}
	for _, k := range errdefs.Kinds {
		if k.Sentinel == nil || k.Code == "" || k.ExitCode == 0 || k.HTTPStatus < 400 {
			t.Errorf("row %+v is incomplete", k)
		}
		if seen[k.Code] {
			t.Errorf("code %q appears twice", k.Code)
		}
		seen[k.Code] = true
	}
	for _, s := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
		errdefs.ErrUnauthorized, errdefs.ErrUnavailable, errdefs.ErrTLS, errdefs.ErrPolicyViolation,
		errdefs.ErrConflict, errdefs.ErrRolloutFailed, errdefs.ErrNotImplemented} {
		if k := errdefs.KindOf(s); k.Sentinel != s {
			t.Errorf("%v has no row of its own (KindOf = %+v)", s, k)
		}
	}
}
