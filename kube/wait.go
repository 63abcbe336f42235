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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/codomyrmex/containerization/errdefs"
)

// PollInterval is how often a wait reads the objects' state when it cannot watch them (its credentials may not
// list or watch them), and how often a delete that waits looks whether its objects are gone.
var PollInterval = 250 * time.Millisecond

// Wait waits until every object of the application (its inventory; else its primary workload) is ready, as
// kstatus computes readiness (Deployments, StatefulSets and DaemonSets rolled out and available, Jobs complete,
// Services with their addresses, anything with a Ready condition), for at most timeout. It fails at once, with a
// [*RolloutError] naming the pod, the container and the reason, when a pod of the current revision cannot pull
// its image, crash-loops, cannot be configured, has not been schedulable for [UnschedulableGrace], or a
// Deployment passed its progress deadline.
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
	fromInventory := len(refs) > 0
	if !fromInventory {
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
	if errors.Is(err, errdefs.ErrNotFound) && fromInventory {
		// An application without a workload (Services, ConfigMaps, …): ready is all there is to say.
		return &Status{Name: name, Namespace: namespace, Status: "running", Message: fmt.Sprintf("no workload; its %d objects are ready", len(refs)),
			Images: map[string]string{}, Environment: map[string]string{}, Requests: map[string]string{}, Limits: map[string]string{},
			Ports: []int{}, Pods: []Pod{}, Services: []string{}}, nil
	}
	return st, err
}

type objState struct {
	status  string
	message string
}

// waitRefs waits until all objects are Current, one fails, or ctx ends: it watches them (see watchRefs), and polls
// them (see pollRefs) when it cannot.
func (c *Client) waitRefs(ctx context.Context, refs []ObjRef, timeout time.Duration, emit func(Event)) error {
	last := map[ObjRef]objState{}
	cache := &waitCache{}
	err := c.watchRefs(ctx, refs, last, cache, emit)
	if errors.Is(err, errNoWatch) {
		err = c.pollRefs(ctx, refs, last, cache, emit)
	}
	if err != nil && (errors.Is(ctx.Err(), context.DeadlineExceeded) || deadlineWouldPass(err)) {
		return c.timeoutError(refs, last, timeout)
	}
	return err
}

// watchRefs follows the objects with feeds (a LIST, then a WATCH, per collection: see feed) and judges them
// after every change: the end of a rollout is noticed as soon as the API server says it. The feeds are, per kind
// and namespace, the objects waited for (one feed per object when there are one or two, else the collection),
// and the pods of each namespace where a workload or Job is not ready yet (their failures come from the pods).
// It returns an error wrapping errNoWatch when the API server refuses a list or a watch.
func (c *Client) watchRefs(ctx context.Context, refs []ObjRef, last map[ObjRef]objState, cache *waitCache, emit func(Event)) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	errc := make(chan error, 1)
	start := func(f *feed) context.CancelFunc {
		fctx, stop := context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.run(fctx, "", notify); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
		return stop
	}

	objFeeds, err := c.objectFeeds(refs)
	if err != nil {
		return err
	}
	started := map[*feed]bool{}
	for _, f := range objFeeds {
		if !started[f] {
			started[f] = true
			start(f)
		}
	}
	type podFeed struct {
		*feed
		stop context.CancelFunc
	}
	podFeeds := map[string]podFeed{}
	var recheck *time.Timer
	defer func() {
		if recheck != nil {
			recheck.Stop()
		}
	}()
	notify() // a first judgement, even with no feed (every kind gone)
	for {
		need := podNamespaces(refs, last)
		for ns := range need {
			if _, ok := podFeeds[ns]; !ok {
				f := newFeed(c.dynamic.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace(ns), "pods in "+ns, "", keepPod)
				podFeeds[ns] = podFeed{f, start(f)}
			}
		}
		for ns, f := range podFeeds {
			if !need[ns] {
				f.stop()
				delete(podFeeds, ns)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-changed:
		}
		// Changes come in bursts (a rollout moves the workload and its pods at once): judge them together.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		synced := true
		snap := &snapshot{objs: map[ObjRef]*unstructured.Unstructured{}, pods: map[string][]corev1.Pod{}}
		for _, r := range refs {
			f := objFeeds[r]
			if f == nil {
				continue // its kind is gone: not found
			}
			synced = synced && f.isSynced()
			snap.objs[r], _ = f.get(r.Name).(*unstructured.Unstructured)
		}
		for ns, f := range podFeeds {
			synced = synced && f.isSynced()
			snap.pods[ns] = []corev1.Pod{}
			for _, p := range f.all() {
				snap.pods[ns] = append(snap.pods[ns], *p.(*corev1.Pod))
			}
		}
		if !synced {
			continue
		}
		pending, err := c.judge(ctx, snap, refs, last, cache, emit)
		if err != nil || pending == 0 {
			return err
		}
		// A pod unschedulable for less than UnschedulableGrace fails when the grace ends, with no change to say so.
		var at time.Time
		for _, pods := range snap.pods {
			if t := unschedulableUntil(pods); !t.IsZero() && (at.IsZero() || t.Before(at)) {
				at = t
			}
		}
		if !at.IsZero() {
			if recheck != nil {
				recheck.Stop()
			}
			recheck = time.AfterFunc(time.Until(at)+10*time.Millisecond, notify)
		}
	}
}

// objectFeeds are the feeds of the objects waited for, by object (objects may share one): per kind and namespace,
// one feed of each object when there are one or two (a LIST and WATCH of that name), else one of the collection
// that keeps only them. An object whose kind the API server no longer serves (its CRD deleted) has none: it is
// not found.
func (c *Client) objectFeeds(refs []ObjRef) (map[ObjRef]*feed, error) {
	type group struct {
		gk schema.GroupKind
		ns string
	}
	groups := map[group][]ObjRef{}
	for _, r := range refs {
		g := group{schema.GroupKind{Group: r.Group, Kind: r.Kind}, r.Namespace}
		groups[g] = append(groups[g], r)
	}
	feeds := map[ObjRef]*feed{}
	for g, rs := range groups {
		m, err := c.mapper.RESTMapping(g.gk)
		if err != nil {
			if isNoMatch(err) {
				continue
			}
			return nil, Classify(err, g.gk.String())
		}
		ri := c.resource(m, g.ns)
		what := m.Resource.GroupResource().String()
		if g.ns != "" {
			what += " in " + g.ns
		}
		if len(rs) <= 2 {
			for _, r := range rs {
				feeds[r] = newFeed(ri, r.String(), "metadata.name="+r.Name, keepObjects(map[string]bool{r.Name: true}))
			}
			continue
		}
		names := map[string]bool{}
		for _, r := range rs {
			names[r.Name] = true
		}
		f := newFeed(ri, what, "", keepObjects(names))
		for _, r := range rs {
			feeds[r] = f
		}
	}
	return feeds, nil
}

// podNamespaces are the namespaces whose pods a wait needs now: those with a workload or Job not yet Current.
func podNamespaces(refs []ObjRef, last map[ObjRef]objState) map[string]bool {
	need := map[string]bool{}
	for _, r := range refs {
		if runsPods(r) && last[r].status != string(kstatus.CurrentStatus) {
			need[r.Namespace] = true
		}
	}
	return need
}

// pollRefs reads the objects every PollInterval until all are Current, one fails, or ctx ends.
func (c *Client) pollRefs(ctx context.Context, refs []ObjRef, last map[ObjRef]objState, cache *waitCache, emit func(Event)) error {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		snap, err := c.snapshot(ctx, refs, podNamespaces(refs, last))
		if err != nil {
			return err
		}
		pending, err := c.judge(ctx, snap, refs, last, cache, emit)
		if err != nil || pending == 0 {
			return err
		}
		select {
		case <-ctx.Done():
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

// judge computes every object's state from a snapshot, and emits those that changed; it returns how many are
// not ready yet, or the first failure.
func (c *Client) judge(ctx context.Context, snap *snapshot, refs []ObjRef, last map[ObjRef]objState, cache *waitCache, emit func(Event)) (int, error) {
	pending := 0
	for _, r := range refs {
		st, failure, err := c.refState(ctx, snap, r, cache)
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

// snapshot is a view of the objects waited for, from a poll or from the feeds.
type snapshot struct {
	objs map[ObjRef]*unstructured.Unstructured // nil value: not found
	pods map[string][]corev1.Pod               // by namespace, where workloads or Jobs are not ready yet (else absent)
}

// runsPods says whether an object's readiness is judged with its pods: workloads and Jobs.
func runsPods(r ObjRef) bool {
	return isWorkloadRef(r) || r.Group == "batch" && r.Kind == "Job"
}

func isWorkloadRef(r ObjRef) bool {
	return r.Group == "apps" && (r.Kind == "Deployment" || r.Kind == "StatefulSet" || r.Kind == "DaemonSet")
}

// snapshot is one poll: per kind and namespace the objects (a GET when there are only one or two, else a list),
// and the pods of podNS. The reads are lists, not one request per object: a poll costs the same for 5 objects as
// for 500.
func (c *Client) snapshot(ctx context.Context, refs []ObjRef, podNS map[string]bool) (*snapshot, error) {
	type group struct {
		gk schema.GroupKind
		ns string
	}
	groups := map[group][]ObjRef{}
	for _, r := range refs {
		g := group{schema.GroupKind{Group: r.Group, Kind: r.Kind}, r.Namespace}
		groups[g] = append(groups[g], r)
	}
	snap := &snapshot{objs: map[ObjRef]*unstructured.Unstructured{}, pods: map[string][]corev1.Pod{}}
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
				want := map[string]ObjRef{}
				for _, r := range rs {
					want[r.Name] = r
				}
				opts := metav1.ListOptions{Limit: listPage}
				for {
					list, err := ri.List(ectx, opts)
					if err != nil {
						return Classify(err, "list "+g.gk.String())
					}
					for i := range list.Items {
						if r, ok := want[list.Items[i].GetName()]; ok {
							found[r] = &list.Items[i]
						}
					}
					if opts.Continue = list.GetContinue(); opts.Continue == "" {
						break
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
	for ns := range podNS {
		eg.Go(func() error {
			var pods []corev1.Pod
			opts := metav1.ListOptions{Limit: listPage}
			for {
				l, err := c.typed.CoreV1().Pods(ns).List(ectx, opts)
				if err != nil {
					return Classify(err, "pods of "+ns)
				}
				for i := range l.Items {
					pods = append(pods, *trimPod(&l.Items[i]))
				}
				if opts.Continue = l.Continue; opts.Continue == "" {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			snap.pods[ns] = pods
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return snap, nil
}

// refState is one object's kstatus, and for workloads and Jobs the diagnosis of their pods.
func (c *Client) refState(ctx context.Context, snap *snapshot, r ObjRef, cache *waitCache) (objState, *RolloutError, error) {
	u := snap.objs[r]
	if u == nil {
		return objState{status: string(kstatus.NotFoundStatus)}, nil, nil
	}
	if isWorkloadRef(r) {
		w, err := cache.workload(r, u)
		if err != nil {
			return objState{}, nil, err
		}
		pods := snap.pods[r.Namespace]
		rss, err := c.owners(ctx, cache, w, pods)
		if err != nil {
			return objState{}, nil, err
		}
		// The Services are left out: readiness does not depend on them.
		st, err := statusIn(w, pods, rss, nil)
		if err != nil {
			return objState{}, nil, err
		}
		s := objState{status: string(kstatus.InProgressStatus), message: st.Message}
		switch st.Status {
		case "running", "succeeded":
			s.status = string(kstatus.CurrentStatus)
			if _, read := snap.pods[r.Namespace]; read && w.kind == "StatefulSet" {
				if msg := statefulSetPodsBehind(w, u, pods); msg != "" {
					s.message = msg
					s.status = string(kstatus.InProgressStatus)
				}
			}
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
			if f := jobFailure(u, snap.pods[r.Namespace]); f != nil {
				return s, f, nil
			}
		}
	}
	return s, nil, nil
}

// statefulSetPodsBehind says what is missing when a StatefulSet's status says it rolled out but its pods do not
// (yet): fewer ready pods of the update revision, not terminating, than its replicas (less the partition). Its
// controller can count a pod replaced under the same name as ready and updated for a moment, and a wait that
// judges every change would take that moment for the end.
func statefulSetPodsBehind(w *workload, u *unstructured.Unstructured, pods []corev1.Pod) string {
	want := int64(w.replicas)
	if p, ok, _ := unstructured.NestedInt64(u.Object, "spec", "updateStrategy", "rollingUpdate", "partition"); ok && p > 0 {
		want -= p
	}
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	if err != nil {
		return ""
	}
	var ready int64
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && sel.Matches(labels.Set(p.Labels)) && w.current(p, nil) {
			if v, _ := podView(p); v.Ready {
				ready++
			}
		}
	}
	if ready >= want {
		return ""
	}
	return fmt.Sprintf("%d of %d pods of the update revision ready", ready, want)
}

// jobFailure diagnoses the pods of a Job that is not complete.
func jobFailure(job *unstructured.Unstructured, pods []corev1.Pod) *RolloutError {
	uid := string(job.GetUID())
	for i := range pods {
		if pods[i].Labels["batch.kubernetes.io/controller-uid"] != uid {
			continue
		}
		if v, failed := podView(&pods[i]); failed {
			return &RolloutError{Object: refOf(job.GroupVersionKind(), job.GetNamespace(), job.GetName()),
				Pod: v.Name, Container: v.Container, Reason: v.Reason, Message: v.Message}
		}
	}
	return nil
}

// waitCache is what a wait keeps between two judgements.
//
// The ReplicaSets that own its failing pods, with the revision of their Deployment when they were read: a wait
// reads them only when a pod fails (whether the pod is of the current revision decides whether the rollout
// failed), rather than watching every ReplicaSet of the namespace for a rare case.
//
// Its workloads as status reads them, by resourceVersion: a wait that judges every change would otherwise convert
// every workload anew for every event of any of them.
type waitCache struct {
	mu        sync.Mutex
	rss       map[string]ownerEntry // namespace/name
	workloads map[ObjRef]cachedWorkload
}

type cachedWorkload struct {
	rv string
	w  *workload
}

// workload is the workload u, from the cache when it holds u's resourceVersion.
func (cache *waitCache) workload(r ObjRef, u *unstructured.Unstructured) (*workload, error) {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if cw, ok := cache.workloads[r]; ok && cw.rv == u.GetResourceVersion() && cw.rv != "" {
		return cw.w, nil
	}
	w, err := workloadFromUnstructured(u)
	if err != nil {
		return nil, err
	}
	if cache.workloads == nil {
		cache.workloads = map[ObjRef]cachedWorkload{}
	}
	cache.workloads[r] = cachedWorkload{rv: u.GetResourceVersion(), w: w}
	return w, nil
}

type ownerEntry struct {
	rs  *appsv1.ReplicaSet // nil: not found
	rev int64              // the Deployment's revision when it was read
}

// owners are the ReplicaSets owning the failing pods of a Deployment among pods, from the cache when they were
// read at the Deployment's current revision (a rollback changes an old ReplicaSet's revision), else read now.
func (c *Client) owners(ctx context.Context, cache *waitCache, w *workload, pods []corev1.Pod) ([]appsv1.ReplicaSet, error) {
	if w.kind != "Deployment" {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	if err != nil {
		return nil, nil // statusIn says so
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if cache.rss == nil {
		cache.rss = map[string]ownerEntry{}
	}
	var out []appsv1.ReplicaSet
	seen := map[string]bool{}
	for i := range pods {
		p := &pods[i]
		ctl := metav1.GetControllerOf(p)
		if ctl == nil || ctl.Kind != "ReplicaSet" || seen[ctl.Name] || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		if _, failed := podView(p); !failed {
			continue
		}
		seen[ctl.Name] = true
		key := p.Namespace + "/" + ctl.Name
		e, ok := cache.rss[key]
		if !ok || e.rev != w.revision {
			rs, err := c.typed.AppsV1().ReplicaSets(p.Namespace).Get(ctx, ctl.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				rs = nil
			case err != nil:
				return nil, Classify(err, "replicaset/"+key)
			}
			e = ownerEntry{rs: rs, rev: w.revision}
			cache.rss[key] = e
		}
		if e.rs != nil {
			out = append(out, *e.rs)
		}
	}
	return out, nil
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
