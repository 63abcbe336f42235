package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/codomyrmex/containerization/errdefs"
)

// Status is an application's primary workload as the cluster sees it now.
type Status struct {
	Kind            string            `json:"kind"`
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	Replicas        int               `json:"replicas"`
	ReadyReplicas   int               `json:"ready_replicas"`
	UpdatedReplicas int               `json:"updated_replicas"`
	Image           string            `json:"image"`
	Images          map[string]string `json:"images"` // container → image
	Ports           []int             `json:"ports"`
	Environment     map[string]string `json:"environment"`
	Requests        map[string]string `json:"requests"`
	Limits          map[string]string `json:"limits"`
	Status          string            `json:"status"` // pending, running, failed, succeeded
	Message         string            `json:"message,omitempty"`
	Pods            []Pod             `json:"pods"`
	Services        []string          `json:"services"`
	Revision        int64             `json:"revision,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
	LastUpdated     time.Time         `json:"last_updated"`
	Failure         *RolloutError     `json:"failure,omitempty"`
}

// Pod is one pod of a workload.
type Pod struct {
	Name      string `json:"name"`
	Phase     string `json:"phase"`
	Ready     bool   `json:"ready"`
	Restarts  int    `json:"restarts"`
	Reason    string `json:"reason"`
	Message   string `json:"message,omitempty"`
	Container string `json:"container,omitempty"` // the container the reason is about
	Node      string `json:"node,omitempty"`
}

// RolloutError is a workload that cannot become ready: a pod that cannot pull its image, crashes, cannot be
// configured or scheduled, a Deployment past its progress deadline, a failed Job; or a wait that timed out.
// It wraps [errdefs.ErrRolloutFailed].
type RolloutError struct {
	Object    string `json:"object"`
	Pod       string `json:"pod,omitempty"`
	Container string `json:"container,omitempty"`
	Reason    string `json:"reason"`
	Message   string `json:"message,omitempty"`
	TimedOut  bool   `json:"timed_out,omitempty"`
}

func (e *RolloutError) Error() string {
	var b strings.Builder
	b.WriteString(e.Object)
	if e.Pod != "" {
		fmt.Fprintf(&b, ": pod %s", e.Pod)
	}
	if e.Container != "" {
		fmt.Fprintf(&b, ", container %s", e.Container)
	}
	fmt.Fprintf(&b, ": %s", e.Reason)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, errdefs.ErrRolloutFailed) true.
func (e *RolloutError) Unwrap() error { return errdefs.ErrRolloutFailed }

// failFastReasons are container waiting reasons that will not resolve by waiting.
var failFastReasons = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "CreateContainerError": true,
	"RunContainerError": true,
}

// UnschedulableGrace is how long a pod must have been unschedulable before a wait takes it for a failure that
// waiting will not cure. The scheduler says so of a pod whose claim the volume controller is about to bind, or
// while a node is being added, and tries again: its messages cannot tell those from a selector no node matches.
var UnschedulableGrace = 20 * time.Second

// unschedulable is the pod's PodScheduled condition when the scheduler found no node for it.
func unschedulable(p *corev1.Pod) (corev1.PodCondition, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c, true
		}
	}
	return corev1.PodCondition{}, false
}

// failsAt is when an unschedulable pod's condition c becomes a failure: UnschedulableGrace after it was set.
func failsAt(c corev1.PodCondition) time.Time { return c.LastTransitionTime.Add(UnschedulableGrace) }

// unschedulableUntil is the earliest time one of pods, not terminating and unschedulable, becomes a failure by
// the passing of time alone (see UnschedulableGrace); zero when none will.
func unschedulableUntil(pods []corev1.Pod) time.Time {
	var first time.Time
	for i := range pods {
		if pods[i].DeletionTimestamp != nil {
			continue
		}
		if c, ok := unschedulable(&pods[i]); ok {
			at := failsAt(c)
			if time.Until(at) > 0 && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
	}
	return first
}

// podView describes a pod, and says whether it shows a failure that waiting will not cure.
func podView(p *corev1.Pod) (Pod, bool) {
	v := Pod{Name: p.Name, Phase: string(p.Status.Phase), Node: p.Spec.NodeName, Reason: p.Status.Reason, Message: p.Status.Message}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			v.Ready = true
		}
	}
	failed := false
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		v.Restarts += int(cs.RestartCount)
	}
	for _, cs := range statuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing" && cs.State.Waiting.Reason != "ContainerCreating":
			if v.Container == "" || failFastReasons[cs.State.Waiting.Reason] && !failed {
				v.Container, v.Reason, v.Message = cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message
				failed = failFastReasons[cs.State.Waiting.Reason]
			}
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0 && v.Container == "":
			v.Container, v.Reason = cs.Name, cs.State.Terminated.Reason
			v.Message = fmt.Sprintf("exit code %d %s", cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
			v.Message = strings.TrimSpace(v.Message)
		}
	}
	if p.DeletionTimestamp != nil {
		v.Reason, v.Message = "Terminating", ""
		return v, false
	}
	if c, ok := unschedulable(p); ok {
		v.Reason, v.Message, v.Container = c.Reason, c.Message, ""
		failed = !time.Now().Before(failsAt(c))
	}
	if v.Reason == "" && !v.Ready && p.Status.Phase == corev1.PodRunning {
		v.Reason = "NotReady"
	}
	return v, failed
}

// Status reads the application's primary workload (see [Client.Primary]) with its pods and services.
func (c *Client) Status(ctx context.Context, namespace, name string) (*Status, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	obj, err := c.Primary(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	w, err := workloadOf(obj)
	if err != nil {
		return nil, err
	}
	return c.statusWithPods(ctx, w)
}

// Primary finds an application's primary workload as Apply picks it: the Deployment, StatefulSet, DaemonSet or
// Job named after the application, else the only one its inventory lists (an application "shop" whose
// manifests hold the Deployment "shop-web"). It returns an *appsv1.Deployment, *appsv1.StatefulSet,
// *appsv1.DaemonSet or *batchv1.Job.
func (c *Client) Primary(ctx context.Context, namespace, app string) (runtime.Object, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	for _, kind := range primaryKinds {
		obj, err := c.getWorkload(ctx, kind, namespace, app)
		if err == nil {
			return obj, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, Classify(err, refOf(workloadGVK(kind), namespace, app))
		}
	}
	refs, err := c.readInventory(ctx, namespace, app, false)
	if err != nil {
		return nil, err
	}
	var found []ObjRef
	for _, r := range refs {
		if isPrimaryKind(r.Group, r.Kind) && r.Namespace == namespace {
			found = append(found, r)
		}
	}
	if len(found) == 1 {
		obj, err := c.getWorkload(ctx, found[0].Kind, namespace, found[0].Name)
		if err == nil {
			return obj, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, Classify(err, found[0].String())
		}
	}
	return nil, fmt.Errorf("%w: no Deployment, StatefulSet, DaemonSet or Job %q in namespace %q, nor an application of that name with one", errdefs.ErrNotFound, app, namespace)
}

// primaryKinds are the kinds an application's status is read from, in the order Primary looks for them.
var primaryKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "Job"}

// workload is what status needs of a Deployment, StatefulSet, DaemonSet or Job.
type workload struct {
	obj       *unstructured.Unstructured
	meta      metav1.ObjectMeta
	kind      string
	selector  *metav1.LabelSelector
	template  corev1.PodTemplateSpec
	replicas  int
	ready     int
	updated   int
	revision  int64
	conds     []metav1.Time
	current   func(p *corev1.Pod, rs []appsv1.ReplicaSet) bool
	deadline  bool // a Deployment past its progress deadline
	deadlineM string
	// finished says a Job is over: "Complete" or "Failed", with its condition's message.
	finished, finishedM string
}

// getWorkload reads a Deployment, StatefulSet, DaemonSet or Job.
func (c *Client) getWorkload(ctx context.Context, kind, ns, name string) (runtime.Object, error) {
	apps := c.typed.AppsV1()
	switch kind {
	case "Deployment":
		return nilIfErr(apps.Deployments(ns).Get(ctx, name, metav1.GetOptions{}))
	case "StatefulSet":
		return nilIfErr(apps.StatefulSets(ns).Get(ctx, name, metav1.GetOptions{}))
	case "DaemonSet":
		return nilIfErr(apps.DaemonSets(ns).Get(ctx, name, metav1.GetOptions{}))
	case "Job":
		return nilIfErr(c.typed.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}))
	}
	return nil, fmt.Errorf("%w: status of a %s", errdefs.ErrNotImplemented, kind)
}

// nilIfErr keeps a typed nil pointer out of the runtime.Object interface.
func nilIfErr[T runtime.Object](obj T, err error) (runtime.Object, error) {
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// workloadOf reads what status needs of a Deployment, StatefulSet, DaemonSet or Job.
func workloadOf(obj runtime.Object) (*workload, error) {
	w := &workload{}
	switch d := obj.(type) {
	case *appsv1.Deployment:
		w.kind = "Deployment"
		w.meta, w.selector, w.template = d.ObjectMeta, d.Spec.Selector, d.Spec.Template
		w.replicas = orOne(d.Spec.Replicas)
		w.ready, w.updated = int(d.Status.ReadyReplicas), int(d.Status.UpdatedReplicas)
		w.revision, _ = strconv.ParseInt(d.Annotations["deployment.kubernetes.io/revision"], 10, 64)
		for _, cond := range d.Status.Conditions {
			w.conds = append(w.conds, cond.LastUpdateTime)
			if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded" {
				w.deadline, w.deadlineM = true, cond.Message
			}
		}
		rev := d.Annotations["deployment.kubernetes.io/revision"]
		uid := d.UID
		w.current = func(p *corev1.Pod, rss []appsv1.ReplicaSet) bool {
			for _, rs := range rss {
				if rs.Annotations["deployment.kubernetes.io/revision"] != rev || !ownedBy(rs.OwnerReferences, uid) {
					continue
				}
				return ownedBy(p.OwnerReferences, rs.UID)
			}
			return false
		}
	case *appsv1.StatefulSet:
		w.kind = "StatefulSet"
		w.meta, w.selector, w.template = d.ObjectMeta, d.Spec.Selector, d.Spec.Template
		w.replicas = orOne(d.Spec.Replicas)
		w.ready, w.updated = int(d.Status.ReadyReplicas), int(d.Status.UpdatedReplicas)
		upd, uid := d.Status.UpdateRevision, d.UID
		w.current = func(p *corev1.Pod, _ []appsv1.ReplicaSet) bool {
			return ownedBy(p.OwnerReferences, uid) && (upd == "" || p.Labels["controller-revision-hash"] == upd)
		}
	case *appsv1.DaemonSet:
		w.kind = "DaemonSet"
		w.meta, w.selector, w.template = d.ObjectMeta, d.Spec.Selector, d.Spec.Template
		w.replicas = int(d.Status.DesiredNumberScheduled)
		w.ready, w.updated = int(d.Status.NumberReady), int(d.Status.UpdatedNumberScheduled)
		uid := d.UID
		w.current = func(p *corev1.Pod, _ []appsv1.ReplicaSet) bool { return ownedBy(p.OwnerReferences, uid) }
	case *batchv1.Job:
		// A Job's replicas are its completions; its ready ones, the pods that succeeded.
		w.kind = "Job"
		w.meta, w.selector, w.template = d.ObjectMeta, d.Spec.Selector, d.Spec.Template
		w.replicas = orOne(d.Spec.Completions)
		w.ready, w.updated = int(d.Status.Succeeded), int(d.Status.Succeeded)
		for _, cond := range d.Status.Conditions {
			w.conds = append(w.conds, cond.LastTransitionTime)
			if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
				w.finished, w.finishedM = string(cond.Type), cond.Message
			}
		}
		uid := d.UID
		w.current = func(p *corev1.Pod, _ []appsv1.ReplicaSet) bool { return ownedBy(p.OwnerReferences, uid) }
	default:
		return nil, fmt.Errorf("%w: status of a %T", errdefs.ErrNotImplemented, obj)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	w.obj = &unstructured.Unstructured{Object: m}
	w.obj.SetAPIVersion(workloadGVK(w.kind).GroupVersion().String())
	w.obj.SetKind(w.kind)
	return w, nil
}

// workloadFromUnstructured reads a Deployment, StatefulSet, DaemonSet or Job given as an unstructured object.
func workloadFromUnstructured(u *unstructured.Unstructured) (*workload, error) {
	var typed runtime.Object
	switch u.GetKind() {
	case "Deployment":
		typed = &appsv1.Deployment{}
	case "StatefulSet":
		typed = &appsv1.StatefulSet{}
	case "DaemonSet":
		typed = &appsv1.DaemonSet{}
	case "Job":
		typed = &batchv1.Job{}
	default:
		return nil, fmt.Errorf("%w: status of a %s", errdefs.ErrNotImplemented, u.GetKind())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return workloadOf(typed)
}

// orOne is a count the API server defaults to 1 when it is unset (replicas, completions).
func orOne(n *int32) int {
	if n == nil {
		return 1
	}
	return int(*n)
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

func (c *Client) statusOf(ctx context.Context, kind, ns, name string) (*Status, error) {
	obj, err := c.getWorkload(ctx, kind, ns, name)
	if err != nil {
		return nil, Classify(err, refOf(workloadGVK(kind), ns, name))
	}
	w, err := workloadOf(obj)
	if err != nil {
		return nil, err
	}
	return c.statusWithPods(ctx, w)
}

// statusWithPods reads a workload's pods, ReplicaSets and its namespace's Services, and puts them together.
func (c *Client) statusWithPods(ctx context.Context, w *workload) (*Status, error) {
	ns, name, kind := w.meta.Namespace, w.meta.Name, w.kind
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: selector: %v", errdefs.ErrInvalidArgument, name, err)
	}
	pods, err := c.typed.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, Classify(err, "pods of "+name)
	}
	var rss []appsv1.ReplicaSet
	if kind == "Deployment" {
		l, err := c.typed.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, Classify(err, "replicasets of "+name)
		}
		rss = l.Items
	}
	svcs, err := c.typed.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, Classify(err, "services of "+ns)
	}
	return buildStatus(w, pods.Items, rss, svcs.Items), nil
}

// statusIn builds a workload's status from lists of its namespace's pods, ReplicaSets and Services (a wait's
// snapshot), filtering them by its selector.
func statusIn(w *workload, pods []corev1.Pod, rss []appsv1.ReplicaSet, svcs []corev1.Service) (*Status, error) {
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: selector: %v", errdefs.ErrInvalidArgument, w.meta.Name, err)
	}
	var mine []corev1.Pod
	for _, p := range pods {
		if sel.Matches(labels.Set(p.Labels)) {
			mine = append(mine, p)
		}
	}
	var myRS []appsv1.ReplicaSet
	for _, rs := range rss {
		if sel.Matches(labels.Set(rs.Labels)) {
			myRS = append(myRS, rs)
		}
	}
	return buildStatus(w, mine, myRS, svcs), nil
}

// workloadGVK is the group, version and kind of a workload kind: batch/v1 for a Job, apps/v1 for the rest.
func workloadGVK(kind string) schema.GroupVersionKind {
	if kind == "Job" {
		return batchv1.SchemeGroupVersion.WithKind(kind)
	}
	return appsv1.SchemeGroupVersion.WithKind(kind)
}

// buildStatus puts a workload, its pods and the namespace's services together.
func buildStatus(w *workload, pods []corev1.Pod, rss []appsv1.ReplicaSet, svcs []corev1.Service) *Status {
	st := &Status{
		Kind: w.kind, Name: w.meta.Name, Namespace: w.meta.Namespace,
		Replicas: w.replicas, ReadyReplicas: w.ready, UpdatedReplicas: w.updated, Revision: w.revision,
		Images: map[string]string{}, Environment: map[string]string{}, Requests: map[string]string{}, Limits: map[string]string{},
		Ports: []int{}, Pods: []Pod{}, Services: []string{},
		CreatedAt: w.meta.CreationTimestamp.Time, LastUpdated: w.meta.CreationTimestamp.Time,
	}
	for i, ctr := range w.template.Spec.Containers {
		if i == 0 {
			st.Image = ctr.Image
			for k, q := range ctr.Resources.Requests {
				st.Requests[string(k)] = q.String()
			}
			for k, q := range ctr.Resources.Limits {
				st.Limits[string(k)] = q.String()
			}
		}
		st.Images[ctr.Name] = ctr.Image
		for _, p := range ctr.Ports {
			st.Ports = append(st.Ports, int(p.ContainerPort))
		}
		for _, e := range ctr.Env {
			switch {
			case e.ValueFrom == nil:
				st.Environment[e.Name] = e.Value
			case e.ValueFrom.SecretKeyRef != nil:
				st.Environment[e.Name] = fmt.Sprintf("(from secret %s, key %s)", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
			case e.ValueFrom.ConfigMapKeyRef != nil:
				st.Environment[e.Name] = fmt.Sprintf("(from configmap %s, key %s)", e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key)
			case e.ValueFrom.FieldRef != nil:
				st.Environment[e.Name] = "(from field " + e.ValueFrom.FieldRef.FieldPath + ")"
			default:
				st.Environment[e.Name] = "(from a reference)"
			}
		}
	}
	for _, t := range w.conds {
		if t.After(st.LastUpdated) {
			st.LastUpdated = t.Time
		}
	}
	for _, mf := range w.meta.ManagedFields {
		if mf.Time != nil && mf.Time.After(st.LastUpdated) {
			st.LastUpdated = mf.Time.Time
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	for i := range pods {
		p := &pods[i]
		v, failed := podView(p)
		st.Pods = append(st.Pods, v)
		if failed && st.Failure == nil && w.current(p, rss) {
			st.Failure = &RolloutError{Object: refOf(workloadGVK(w.kind), w.meta.Namespace, w.meta.Name),
				Pod: p.Name, Container: v.Container, Reason: v.Reason, Message: v.Message}
		}
	}
	if st.Failure == nil && w.deadline {
		st.Failure = &RolloutError{Object: refOf(workloadGVK(w.kind), w.meta.Namespace, w.meta.Name),
			Reason: "ProgressDeadlineExceeded", Message: w.deadlineM}
	}
	tplLabels := labels.Set(w.template.Labels)
	for _, s := range svcs {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(tplLabels) {
			st.Services = append(st.Services, s.Name)
		}
	}
	res, err := kstatus.Compute(w.obj)
	switch {
	case w.finished == string(batchv1.JobComplete):
		// A Job that completed is the specification's "succeeded"; its pods stay, done.
		st.Status, st.Message = "succeeded", fmt.Sprintf("Job completed: %d of %d succeeded", w.ready, w.replicas)
	case w.finished == string(batchv1.JobFailed):
		st.Status, st.Message = "failed", strings.TrimSpace("Job failed: "+w.finishedM)
		if st.Failure == nil {
			st.Failure = &RolloutError{Object: refOf(workloadGVK(w.kind), w.meta.Namespace, w.meta.Name), Reason: "JobFailed", Message: w.finishedM}
		}
	case st.Failure != nil:
		st.Status, st.Message = "failed", st.Failure.Error()
	case err != nil:
		st.Status, st.Message = "pending", err.Error()
	case res.Status == kstatus.CurrentStatus && w.kind == "Job":
		// kstatus takes a started Job as current; it is running until it completes.
		st.Status, st.Message = "running", fmt.Sprintf("Job running: %d of %d succeeded", w.ready, w.replicas)
	case res.Status == kstatus.CurrentStatus && w.kind != "DaemonSet" && st.Replicas == 0 && len(st.Pods) == 0:
		// Scaled to zero and done: nothing runs, nothing is left to do (the specification's "succeeded").
		st.Status, st.Message = "succeeded", "scaled to zero: no pods run"
	case res.Status == kstatus.CurrentStatus:
		st.Status, st.Message = "running", res.Message
	case res.Status == kstatus.FailedStatus:
		st.Status, st.Message = "failed", res.Message
	default:
		st.Status, st.Message = "pending", res.Message
	}
	return st
}

// plannedStatus is the status of a workload not applied (a dry run): the live one when it exists, with the
// template of the manifests, else the manifests' alone.
func (c *Client) plannedStatus(ctx context.Context, obj *Object) *Status {
	w, err := workloadFromUnstructured(obj.Unstructured)
	if err != nil {
		return nil
	}
	st := buildStatus(w, nil, nil, nil)
	st.Status, st.Message, st.Failure = "pending", "dry run: nothing was applied", nil
	// What runs now, beside what the manifests would make: the live pods and services, the ready count.
	if live, err := c.statusOf(ctx, obj.GetKind(), obj.GetNamespace(), obj.GetName()); err == nil {
		st.CreatedAt, st.ReadyReplicas, st.UpdatedReplicas, st.Revision = live.CreatedAt, live.ReadyReplicas, live.UpdatedReplicas, live.Revision
		st.Pods, st.Services = live.Pods, live.Services
		st.Message = "dry run: nothing was applied; pods, services and ready replicas are the live ones"
	}
	return st
}
