package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/codomyrmex/containerization/errdefs"
)

// PollInterval is how often a wait reads the objects' state.
var PollInterval = 250 * time.Millisecond

// Wait waits until every object of the application (its inventory; else its primary workload) is ready, as
// kstatus computes readiness (Deployments, StatefulSets and DaemonSets rolled out and available, Jobs complete,
// Services with their addresses, anything with a Ready condition), for at most timeout. It fails at once, with a
// [*RolloutError] naming the pod, the container and the reason, when a pod of the current revision cannot pull
// its image, crash-loops, cannot be configured or scheduled, or a Deployment passed its progress deadline.
func (c *Client) Wait(ctx context.Context, namespace, name string, timeout time.Duration, progress func(Event)) (*Status, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	refs, err := c.readInventory(ctx, namespace, name, false)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		st, err := c.Status(ctx, namespace, name)
		if err != nil {
			return nil, err
		}
		refs = []ObjRef{{Group: workloadGVK(st.Kind).Group, Kind: st.Kind, Namespace: namespace, Name: name}}
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	werr := c.waitRefs(wctx, refs, timeout, c.emitter(progress))
	st, err := c.Status(ctx, namespace, name)
	if werr != nil {
		return st, werr
	}
	return st, err
}

type objState struct {
	status  string
	message string
}

// waitRefs polls the objects until all are Current, one fails, or ctx ends.
func (c *Client) waitRefs(ctx context.Context, refs []ObjRef, timeout time.Duration, emit func(Event)) error {
	last := map[ObjRef]objState{}
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		pending, err := c.checkOnce(ctx, refs, last, emit)
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) || deadlineWouldPass(err) {
				return c.timeoutError(refs, last, timeout)
			}
			return err
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return c.timeoutError(refs, last, timeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// deadlineWouldPass: client-go's rate limiter refuses, before the deadline has passed, a request it could only
// send after it ("rate: Wait(n=1) would exceed context deadline", from golang.org/x/time/rate, not wrapped as
// context.DeadlineExceeded). For a wait, that is its timeout.
func deadlineWouldPass(err error) bool {
	return strings.Contains(err.Error(), "would exceed context deadline")
}

func (c *Client) timeoutError(refs []ObjRef, last map[ObjRef]objState, timeout time.Duration) error {
	var waiting []string
	for _, r := range refs {
		if s := last[r]; s.status != string(kstatus.CurrentStatus) {
			msg := r.String() + " " + s.status
			if s.message != "" {
				msg += " (" + s.message + ")"
			}
			waiting = append(waiting, msg)
		}
	}
	sort.Strings(waiting)
	return &timeoutErr{RolloutError{Object: strings.Join(waiting, ", "), Reason: fmt.Sprintf("not ready after %s", timeout), TimedOut: true}}
}

// timeoutErr is a RolloutError that is also a context.DeadlineExceeded.
type timeoutErr struct{ RolloutError }

func (e *timeoutErr) Error() string {
	return fmt.Sprintf("timed out after waiting: still not ready: %s", e.Object)
}
func (e *timeoutErr) Unwrap() []error {
	return []error{errdefs.ErrRolloutFailed, context.DeadlineExceeded}
}

// As lets errors.As find the *RolloutError inside.
func (e *timeoutErr) As(target any) bool {
	if t, ok := target.(**RolloutError); ok {
		*t = &e.RolloutError
		return true
	}
	return false
}

// checkOnce reads every object once; it returns how many are not ready yet, or the first failure. The reads are
// lists, one per kind and namespace (and one of the pods, ReplicaSets and Services of each namespace with
// workloads), not one request per object: a poll costs the same for 5 objects as for 500.
func (c *Client) checkOnce(ctx context.Context, refs []ObjRef, last map[ObjRef]objState, emit func(Event)) (int, error) {
	snap, err := c.snapshot(ctx, refs)
	if err != nil {
		return 0, err
	}
	pending := 0
	for _, r := range refs {
		st, failure, err := c.refState(ctx, snap, r)
		if err != nil {
			return 0, err
		}
		if prev, ok := last[r]; !ok || prev != st {
			last[r] = st
			emit(Event{Phase: "wait", Object: r.String(), Status: st.status, Message: st.message})
		}
		if failure != nil {
			return 0, failure
		}
		if st.status == string(kstatus.FailedStatus) {
			return 0, &RolloutError{Object: r.String(), Reason: "Failed", Message: st.message}
		}
		if st.status != string(kstatus.CurrentStatus) {
			pending++
		}
	}
	return pending, nil
}

// snapshot is one poll's view of the objects waited for.
type snapshot struct {
	objs map[ObjRef]*unstructured.Unstructured // nil value: not found
	pods map[string][]corev1.Pod               // by namespace, where workloads are
	rss  map[string][]appsv1.ReplicaSet
	svcs map[string][]corev1.Service
}

func isWorkloadRef(r ObjRef) bool {
	return r.Group == "apps" && (r.Kind == "Deployment" || r.Kind == "StatefulSet" || r.Kind == "DaemonSet")
}

// snapshot lists what the refs need: per kind and namespace the objects (a GET when there are only one or two),
// and per namespace with workloads its pods, ReplicaSets and Services.
func (c *Client) snapshot(ctx context.Context, refs []ObjRef) (*snapshot, error) {
	type group struct {
		gk schema.GroupKind
		ns string
	}
	groups := map[group][]ObjRef{}
	workloadNS := map[string]bool{}
	for _, r := range refs {
		g := group{schema.GroupKind{Group: r.Group, Kind: r.Kind}, r.Namespace}
		groups[g] = append(groups[g], r)
		if isWorkloadRef(r) {
			workloadNS[r.Namespace] = true
		}
	}
	snap := &snapshot{objs: map[ObjRef]*unstructured.Unstructured{}, pods: map[string][]corev1.Pod{},
		rss: map[string][]appsv1.ReplicaSet{}, svcs: map[string][]corev1.Service{}}
	var mu sync.Mutex
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	for g, rs := range groups {
		eg.Go(func() error {
			m, err := c.mapper.RESTMapping(g.gk)
			if err != nil {
				if isNoMatch(err) { // the kind is gone (its CRD deleted): its objects are not found
					return nil
				}
				return Classify(err, g.gk.String())
			}
			ri := c.resource(m, g.ns)
			found := map[ObjRef]*unstructured.Unstructured{}
			if len(rs) <= 2 {
				for _, r := range rs {
					u, err := ri.Get(ectx, r.Name, metav1.GetOptions{})
					if err != nil && !apierrors.IsNotFound(err) {
						return Classify(err, r.String())
					}
					if err == nil {
						found[r] = u
					}
				}
			} else {
				list, err := ri.List(ectx, metav1.ListOptions{})
				if err != nil {
					return Classify(err, "list "+g.gk.String())
				}
				want := map[string]ObjRef{}
				for _, r := range rs {
					want[r.Name] = r
				}
				for i := range list.Items {
					if r, ok := want[list.Items[i].GetName()]; ok {
						found[r] = &list.Items[i]
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rs {
				snap.objs[r] = found[r]
			}
			return nil
		})
	}
	for ns := range workloadNS {
		eg.Go(func() error {
			l, err := c.typed.CoreV1().Pods(ns).List(ectx, metav1.ListOptions{})
			if err != nil {
				return Classify(err, "pods of "+ns)
			}
			mu.Lock()
			defer mu.Unlock()
			snap.pods[ns] = l.Items
			return nil
		})
		eg.Go(func() error {
			l, err := c.typed.AppsV1().ReplicaSets(ns).List(ectx, metav1.ListOptions{})
			if err != nil {
				return Classify(err, "replicasets of "+ns)
			}
			mu.Lock()
			defer mu.Unlock()
			snap.rss[ns] = l.Items
			return nil
		})
		eg.Go(func() error {
			l, err := c.typed.CoreV1().Services(ns).List(ectx, metav1.ListOptions{})
			if err != nil {
				return Classify(err, "services of "+ns)
			}
			mu.Lock()
			defer mu.Unlock()
			snap.svcs[ns] = l.Items
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return snap, nil
}

// refState is one object's kstatus, and for workloads the diagnosis of their pods.
func (c *Client) refState(ctx context.Context, snap *snapshot, r ObjRef) (objState, *RolloutError, error) {
	u := snap.objs[r]
	if u == nil {
		return objState{status: string(kstatus.NotFoundStatus)}, nil, nil
	}
	if isWorkloadRef(r) {
		w, err := workloadFromUnstructured(u)
		if err != nil {
			return objState{}, nil, err
		}
		st, err := statusIn(w, snap.pods[r.Namespace], snap.rss[r.Namespace], snap.svcs[r.Namespace])
		if err != nil {
			return objState{}, nil, err
		}
		s := objState{status: string(kstatus.InProgressStatus), message: st.Message}
		switch st.Status {
		case "running", "succeeded":
			s.status = string(kstatus.CurrentStatus)
		case "failed":
			s.status = string(kstatus.FailedStatus)
		}
		return s, st.Failure, nil
	}
	res, err := kstatus.Compute(u)
	if err != nil {
		return objState{status: string(kstatus.UnknownStatus), message: err.Error()}, nil, nil
	}
	s := objState{status: string(res.Status), message: res.Message}
	if r.Group == "" && r.Kind == "Service" && s.status == string(kstatus.CurrentStatus) {
		// kstatus takes a LoadBalancer Service with a cluster IP as ready; as kapp does, wait for its address.
		typ, _, _ := unstructured.NestedString(u.Object, "spec", "type")
		ingress, _, _ := unstructured.NestedSlice(u.Object, "status", "loadBalancer", "ingress")
		if typ == "LoadBalancer" && len(ingress) == 0 {
			s = objState{status: string(kstatus.InProgressStatus), message: "waiting for the load balancer's address"}
		}
	}
	if r.Group == "batch" && r.Kind == "Job" {
		// kstatus takes a started Job as current; as kapp does, a Job is ready when it completed.
		switch {
		case conditionTrue(u, "Complete"):
			s = objState{status: string(kstatus.CurrentStatus), message: "Job completed"}
		case conditionTrue(u, "Failed"):
			s = objState{status: string(kstatus.FailedStatus), message: "Job failed: " + conditionMessage(u, "Failed")}
		default:
			if s.status == string(kstatus.CurrentStatus) {
				s = objState{status: string(kstatus.InProgressStatus), message: "Job running"}
			}
			if f := c.jobFailure(ctx, u); f != nil {
				return s, f, nil
			}
		}
	}
	return s, nil, nil
}

// jobFailure diagnoses the pods of a Job that is not complete.
func (c *Client) jobFailure(ctx context.Context, job *unstructured.Unstructured) *RolloutError {
	if conditionTrue(job, "Complete") {
		return nil
	}
	uid := job.GetUID()
	pods, err := c.typed.CoreV1().Pods(job.GetNamespace()).List(ctx, listByLabel("batch.kubernetes.io/controller-uid", string(uid)))
	if err != nil {
		return nil
	}
	for i := range pods.Items {
		if v, failed := podView(&pods.Items[i]); failed {
			return &RolloutError{Object: refOf(job.GroupVersionKind(), job.GetNamespace(), job.GetName()),
				Pod: v.Name, Container: v.Container, Reason: v.Reason, Message: v.Message}
		}
	}
	return nil
}

func conditionMessage(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return strings.TrimSpace(r + " " + msg)
		}
	}
	return ""
}
