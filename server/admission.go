package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsjson "sigs.k8s.io/json"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/server/state"
)

// AdmissionConfig configures POST /v1/admission, the validating admission webhook that holds Pods and workloads
// applied by anyone (kubectl included) to the policy at the apply gate.
type AdmissionConfig struct {
	// Enabled serves the webhook; off, the route answers 404. The route needs no token: kube-apiserver calls
	// webhooks without one (docs/server.md says why that is the choice, and what it exposes).
	Enabled bool
	// Timeout bounds one review, the registry lookups of the gate included: default 8s, below the 10s the API
	// server waits by default (timeoutSeconds). A review that cannot finish in time is denied, with the reason.
	Timeout time.Duration
}

// DefaultAdmissionTimeout is AdmissionConfig.Timeout's default.
const DefaultAdmissionTimeout = 8 * time.Second

// maxAdmissionReviews bounds the reviews evaluated at once (each may look images up in registries); a review
// waits for its turn within its own deadline.
const maxAdmissionReviews = 32

// Bounds on the warnings of an answer: the API server may truncate a warning longer than 256 characters, and
// kubectl prints each on a line of its own.
const (
	maxWarnings     = 20
	maxWarningChars = 256
)

// admittedKinds are the kinds whose pods the webhook holds to the policy; any other kind is allowed.
var admittedKinds = map[schema.GroupKind]bool{
	{Group: "", Kind: "Pod"}: true, {Group: "", Kind: "ReplicationController"}: true,
	{Group: "apps", Kind: "Deployment"}: true, {Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}: true, {Group: "apps", Kind: "ReplicaSet"}: true,
	{Group: "batch", Kind: "Job"}: true, {Group: "batch", Kind: "CronJob"}: true,
}

func (s *Server) admissionRoute() route {
	turns := make(chan struct{}, maxAdmissionReviews)
	return route{method: "POST", path: "/v1/admission", id: "admissionReview",
		summary: "The validating admission webhook (kube-apiserver calls it; no token): an admission.k8s.io/v1 AdmissionReview of a Pod or workload, answered with the policy's decision at the apply gate",
		in:      &admissionv1.AdmissionReview{}, out: &admissionv1.AdmissionReview{}, status: 200,
		handle: func(s *Server, c *call) (int, any, error) {
			if !s.cfg.Admission.Enabled {
				return 0, nil, fmt.Errorf("%w: the admission webhook is off (myrmex serve --admission turns it on)", errdefs.ErrNotFound)
			}
			review, err := decodeReview(c)
			if err != nil {
				return 0, nil, err
			}
			ctx, cancel := context.WithTimeout(c.req.Context(), s.cfg.Admission.Timeout)
			defer cancel()
			resp, err := s.admit(ctx, turns, review.Request)
			if err != nil {
				return 0, nil, err
			}
			resp.UID = review.Request.UID
			return 200, admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}, nil
		}}
}

// decodeReview reads an AdmissionReview: within the server's body bound, one JSON value, field names as
// Kubernetes writes them (case-sensitive, no field twice), admission.k8s.io/v1, with a request and its uid.
// Fields this server does not know are let through, as the API server's newer versions may add some.
func decodeReview(c *call) (*admissionv1.AdmissionReview, error) {
	data, err := io.ReadAll(c.req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: the request body is larger than %d bytes", errdefs.ErrInvalidArgument, mbe.Limit)
		}
		return nil, fmt.Errorf("%w: reading the request body: %v", errdefs.ErrInvalidArgument, err)
	}
	var review admissionv1.AdmissionReview
	if err := strictJSON(data, &review); err != nil {
		return nil, fmt.Errorf("%w: the AdmissionReview: %v", errdefs.ErrInvalidArgument, err)
	}
	if gv := admissionv1.SchemeGroupVersion.String(); review.APIVersion != gv || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("%w: want an AdmissionReview of %s, got kind %q of %q", errdefs.ErrInvalidArgument, gv, review.Kind, review.APIVersion)
	}
	if review.Request == nil || review.Request.UID == "" {
		return nil, fmt.Errorf("%w: the AdmissionReview has no request, or its request no uid", errdefs.ErrInvalidArgument)
	}
	if review.Request.Kind.Kind == "" || review.Request.Operation == "" {
		return nil, fmt.Errorf("%w: the AdmissionReview's request names no kind or no operation", errdefs.ErrInvalidArgument)
	}
	return &review, nil
}

// strictJSON decodes data into v as the API server reads JSON: case-sensitive field names, integers kept as
// integers; a field written twice is refused (two readers could each take a different one).
func strictJSON(data []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(data, v, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return strict[0]
	}
	return nil
}

// admit decides one request. An error is the request's fault (a malformed object: 400); a decision the policy
// could not make (a registry that did not answer in time) is a denial that says why.
func (s *Server) admit(ctx context.Context, turns chan struct{}, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	if (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" || !admittedKinds[gk] {
		return allow, nil
	}
	obj, err := reviewObject(req, req.Object.Raw, "object")
	if err != nil {
		return nil, err
	}
	if req.Operation == admissionv1.Update {
		if obj.GetDeletionTimestamp() != nil {
			return allow, nil // on its way out (a finalizer removed, say): it runs nothing new
		}
		old, err := reviewObject(req, req.OldObject.Raw, "oldObject")
		if err != nil {
			return nil, err
		}
		// An update that leaves unchanged everything the policy reads of the pods (labels, annotations, replicas,
		// status) starts nothing the policy has not seen, and must not be refused: controllers update the objects
		// they own all the time, and the policy may have changed since the object was admitted.
		if reflect.DeepEqual(kube.PodContainers([]*kube.Object{{Unstructured: old}}), kube.PodContainers([]*kube.Object{{Unstructured: obj}})) {
			return allow, nil
		}
	}
	select {
	case turns <- struct{}{}:
		defer func() { <-turns }()
	case <-ctx.Done():
		return deny(fmt.Errorf("the server is busy with other reviews: %w", context.Cause(ctx)), s.cfg.Admission.Timeout), nil
	}
	v, err := s.cfg.Client.CheckKubernetesPolicy(ctx, []*unstructured.Unstructured{obj}, containerization.KubernetesOptions{})
	if err != nil {
		s.log.Info("admission denied", "uid", req.UID, "object", objectRef(obj), "operation", req.Operation, "user", req.UserInfo.Username, "err", err)
		keepRefusal(ctx, s.cfg.State, s.log, refusalOf(containerization.PolicyVerdict(err), s.cfg.Now(), state.RefusalAdmission,
			string(req.Operation)+" "+objectRef(obj), req.UserInfo.Username, ""))
		return deny(err, s.cfg.Admission.Timeout), nil
	}
	allow.Warnings = warnings(v)
	return allow, nil
}

// reviewObject reads the object (or old object) of a request: a JSON object of the request's kind, named as
// the request names it. A Pod made by a controller has no name yet; its generateName stands for it.
func reviewObject(req *admissionv1.AdmissionRequest, raw []byte, field string) (*unstructured.Unstructured, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: the %s of %s has no %s", errdefs.ErrInvalidArgument, req.Operation, req.Kind.Kind, field)
	}
	var m map[string]any
	if err := strictJSON(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: the request's %s is not a JSON object: %v", errdefs.ErrInvalidArgument, field, err)
	}
	obj := &unstructured.Unstructured{Object: m}
	if k := obj.GetKind(); k != "" && k != req.Kind.Kind {
		return nil, fmt.Errorf("%w: the request is for a %s, its %s is a %s", errdefs.ErrInvalidArgument, req.Kind.Kind, field, k)
	}
	obj.SetGroupVersionKind(schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind})
	if obj.GetNamespace() == "" {
		obj.SetNamespace(req.Namespace)
	}
	if obj.GetName() == "" {
		name := req.Name
		if name == "" && obj.GetGenerateName() != "" {
			name = obj.GetGenerateName() + "*"
		}
		obj.SetName(name)
	}
	return obj, nil
}

func objectRef(obj *unstructured.Unstructured) string {
	return (&kube.Object{Unstructured: obj}).Ref()
}

// deny is the answer to a request the policy refused, or could not decide: 403, or 504 when the check ran out of
// time; the API server shows the message (the rules broken, or why the check did not finish) to whoever made the
// request.
func deny(err error, timeout time.Duration) *admissionv1.AdmissionResponse {
	st := &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden}
	var pe *policy.Error
	switch {
	case errors.As(err, &pe):
		st.Message = pe.Error()
	case errors.Is(err, context.DeadlineExceeded):
		st.Code, st.Reason = http.StatusGatewayTimeout, metav1.StatusReasonTimeout
		st.Message = fmt.Sprintf("the policy could not be checked within %s, and what cannot be checked is denied: %v", timeout, err)
	default: // a registry that refused or failed: the request is forbidden for want of a check, and says why
		st.Message = "the policy could not be checked, and what cannot be checked is denied: " + err.Error()
	}
	return &admissionv1.AdmissionResponse{Allowed: false, Result: st}
}

// warnings are what an allowed request is told: the violations of a gate that only warns, and the verdict's own
// warnings (an ignore that expired), each on one line, at most maxWarnings.
func warnings(v *policy.Verdict) []string {
	if v == nil {
		return nil
	}
	var out []string
	if !v.Allowed {
		for _, vi := range v.Violations {
			out = append(out, "policy ("+string(v.Mode)+"): "+vi.String())
		}
	}
	out = append(out, v.Warnings...)
	if len(out) > maxWarnings {
		out = append(out[:maxWarnings-1], fmt.Sprintf("and %d more", len(out)-maxWarnings+1))
	}
	for i, w := range out {
		w = strings.Join(strings.Fields(w), " ")
		if r := []rune(w); len(r) > maxWarningChars {
			w = string(r[:maxWarningChars-1]) + "…"
		}
		out[i] = w
	}
	return out
}
