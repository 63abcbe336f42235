package containerization

import (
	"errors"
	"fmt"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
)

// The sentinels that every error of this module wraps; see package errdefs.
var (
	ErrNotFound        = errdefs.ErrNotFound
	ErrAlreadyExists   = errdefs.ErrAlreadyExists
	ErrInvalidArgument = errdefs.ErrInvalidArgument
	ErrUnauthorized    = errdefs.ErrUnauthorized
	ErrUnavailable     = errdefs.ErrUnavailable
	ErrTLS             = errdefs.ErrTLS
	ErrPolicyViolation = errdefs.ErrPolicyViolation
	ErrConflict        = errdefs.ErrConflict
	ErrNotImplemented  = errdefs.ErrNotImplemented
	ErrRolloutFailed   = errdefs.ErrRolloutFailed
)

func describe(fn, op, kind, subject string, err error) string {
	if subject == "" {
		return fmt.Sprintf("%s %s: %v", fn, op, err)
	}
	return fmt.Sprintf("%s %s %s %q: %v", fn, op, kind, subject, err)
}

// ContainerBuildError reports a failed build_containers: a Dockerfile or build context problem, a failing step,
// or a security gate the image did not pass.
type ContainerBuildError struct {
	Op    string // build, lint, optimize, scan, policy, push
	Image string
	Err   error
}

func (e *ContainerBuildError) Error() string {
	return describe("build_containers", e.Op, "image", e.Image, e.Err)
}
func (e *ContainerBuildError) Unwrap() error { return e.Err }

// ContainerManagementError reports a failed manage_containers operation.
type ContainerManagementError struct {
	Op        string // create, start, stop, remove, restart, logs, list, inspect, stats
	Container string
	Err       error
}

func (e *ContainerManagementError) Error() string {
	return describe("manage_containers", e.Op, "container", e.Container, e.Err)
}
func (e *ContainerManagementError) Unwrap() error { return e.Err }

// KubernetesError reports a failed orchestrate_kubernetes operation on an object of the cluster.
type KubernetesError struct {
	Op     string // apply, wait, scale, rollback, delete, prune, status
	Object string // kind/namespace/name
	Err    error
}

func (e *KubernetesError) Error() string {
	return describe("orchestrate_kubernetes", e.Op, "object", e.Object, e.Err)
}
func (e *KubernetesError) Unwrap() error { return e.Err }

// SecurityScanError reports a scan that could not run. Findings above a threshold are a distinct outcome that
// wraps [ErrPolicyViolation].
type SecurityScanError struct {
	Op    string // scan (the scan could not run), policy (findings at or above the threshold)
	Image string
	Err   error
}

func (e *SecurityScanError) Error() string {
	return describe("scan_container_security", e.Op, "image", e.Image, e.Err)
}
func (e *SecurityScanError) Unwrap() error { return e.Err }

// RegistryError reports a failed manage_container_registry operation.
type RegistryError struct {
	Op       string // push, pull, tag, list, delete, copy, login, scans, sign, verify
	Image    string
	Registry string
	Err      error
}

func (e *RegistryError) Error() string {
	if e.Image == "" {
		return describe("manage_container_registry", e.Op, "registry", e.Registry, e.Err)
	}
	return describe("manage_container_registry", e.Op, "image", e.Image, e.Err)
}
func (e *RegistryError) Unwrap() error { return e.Err }

// OptimizationError reports a failed optimize_containers.
type OptimizationError struct {
	Op    string // size, performance, security, multi, verify
	Image string
	Err   error
}

func (e *OptimizationError) Error() string {
	return describe("optimize_containers", e.Op, "image", e.Image, e.Err)
}
func (e *OptimizationError) Unwrap() error { return e.Err }

// notImplemented names the area of the specification that a later piece of work fills.
func notImplemented(area string) error {
	return fmt.Errorf("%s is specified but not built yet (see the %s issue): %w", area, area, ErrNotImplemented)
}

// ErrorObject is an error as a caller outside Go receives it (myrmex's stderr with -o json, the HTTP API's error
// bodies): the specification's error class, a stable code from the table in package errdefs, the message and what
// the error names, so that a Python caller raises the right exception without parsing prose.
type ErrorObject struct {
	// Class is the specification's error class: ContainerBuildError, ContainerManagementError, KubernetesError,
	// SecurityScanError, RegistryError or OptimizationError; "Error" for a failure outside the six functions.
	Class string `json:"class"`
	// Code is the failure's category: canceled, invalid_argument, not_found, already_exists, conflict,
	// unavailable, tls, unauthorized, policy_violation, not_implemented, rollout_failed, deadline_exceeded or
	// internal.
	Code    string `json:"code"`
	Message string `json:"message"`
	// Op is the operation that failed (push, create, apply…), as the error type's Op field says.
	Op string `json:"op,omitempty"`
	// Subject is what the operation acted on: the image, container, object (kind/namespace/name) or registry.
	Subject string `json:"subject,omitempty"`
	// Verdict is the policy's whole verdict when the policy refused (code policy_violation at a gate).
	Verdict *policy.Verdict `json:"verdict,omitempty"`
}

// NewErrorObject describes err as an [ErrorObject]; nil gives the zero value.
func NewErrorObject(err error) ErrorObject {
	if err == nil {
		return ErrorObject{}
	}
	o := ErrorObject{Class: "Error", Code: errdefs.KindOf(err).Code, Message: err.Error(), Verdict: PolicyVerdict(err)}
	var (
		build   *ContainerBuildError
		manage  *ContainerManagementError
		kube    *KubernetesError
		scan    *SecurityScanError
		reg     *RegistryError
		optimum *OptimizationError
		pipe    *PipelineError
	)
	switch {
	case errors.As(err, &pipe):
		o.Class, o.Op, o.Subject = "PipelineError", pipe.Stage, pipe.Pipeline
	case errors.As(err, &build):
		o.Class, o.Op, o.Subject = "ContainerBuildError", build.Op, build.Image
	case errors.As(err, &manage):
		o.Class, o.Op, o.Subject = "ContainerManagementError", manage.Op, manage.Container
	case errors.As(err, &kube):
		o.Class, o.Op, o.Subject = "KubernetesError", kube.Op, kube.Object
	case errors.As(err, &scan):
		o.Class, o.Op, o.Subject = "SecurityScanError", scan.Op, scan.Image
	case errors.As(err, &reg):
		o.Class, o.Op, o.Subject = "RegistryError", reg.Op, reg.Image
		if o.Subject == "" {
			o.Subject = reg.Registry
		}
	case errors.As(err, &optimum):
		o.Class, o.Op, o.Subject = "OptimizationError", optimum.Op, optimum.Image
	}
	return o
}
