package containerization_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	containerization "github.com/codomyrmex/containerization"
)

func TestNewErrorObject(t *testing.T) {
	wrapped := func(e error) error { return fmt.Errorf("while deploying: %w", e) }
	for _, tc := range []struct {
		err  error
		want containerization.ErrorObject
	}{
		{&containerization.ContainerBuildError{Op: "scan", Image: "app:1", Err: containerization.ErrPolicyViolation},
			containerization.ErrorObject{Class: "ContainerBuildError", Code: "policy_violation", Op: "scan", Subject: "app:1"}},
		{&containerization.ContainerManagementError{Op: "start", Container: "web", Err: containerization.ErrNotFound},
			containerization.ErrorObject{Class: "ContainerManagementError", Code: "not_found", Op: "start", Subject: "web"}},
		{wrapped(&containerization.KubernetesError{Op: "wait", Object: "Deployment/ns/web", Err: containerization.ErrRolloutFailed}),
			containerization.ErrorObject{Class: "KubernetesError", Code: "rollout_failed", Op: "wait", Subject: "Deployment/ns/web"}},
		{&containerization.SecurityScanError{Op: "scan", Image: "app:1", Err: containerization.ErrUnavailable},
			containerization.ErrorObject{Class: "SecurityScanError", Code: "unavailable", Op: "scan", Subject: "app:1"}},
		{&containerization.RegistryError{Op: "pull", Image: "r/x:1", Registry: "r", Err: containerization.ErrTLS},
			containerization.ErrorObject{Class: "RegistryError", Code: "tls", Op: "pull", Subject: "r/x:1"}},
		{&containerization.RegistryError{Op: "list", Registry: "r", Err: containerization.ErrUnauthorized},
			containerization.ErrorObject{Class: "RegistryError", Code: "unauthorized", Op: "list", Subject: "r"}},
		{&containerization.OptimizationError{Op: "size", Image: "app:1", Err: containerization.ErrNotImplemented},
			containerization.ErrorObject{Class: "OptimizationError", Code: "not_implemented", Op: "size", Subject: "app:1"}},
		{errors.New("boom"), containerization.ErrorObject{Class: "Error", Code: "internal"}},
	} {
		got := containerization.NewErrorObject(tc.err)
		tc.want.Message = tc.err.Error()
		if got != tc.want {
			t.Errorf("NewErrorObject(%v) = %+v, want %+v", tc.err, got, tc.want)
		}
	}
	if got := containerization.NewErrorObject(nil); got != (containerization.ErrorObject{}) {
		t.Errorf("NewErrorObject(nil) = %+v", got)
	}
	b, err := json.Marshal(containerization.NewErrorObject(&containerization.RegistryError{Op: "pull", Image: "r/x:1", Err: containerization.ErrNotFound}))
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]string
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"class", "code", "message", "op", "subject"} {
		if fields[f] == "" {
			t.Errorf("JSON %s has no %q", b, f)
		}
	}
}
