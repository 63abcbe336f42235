package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/codomyrmex/containerization/errdefs"
)

func listByLabel(k, v string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: k + "=" + v}
}

// Scale sets the replicas of the application's Deployment or StatefulSet. The change is a server-side apply of
// this client's own configuration of the object with the new count, so that later applies by Myrmex do not
// conflict with it; replicas owned by another manager (kubectl scale, an autoscaler) are taken over, since
// scaling was asked for explicitly.
func (c *Client) Scale(ctx context.Context, namespace, name string, replicas int32) (*Status, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	if replicas < 0 {
		return nil, fmt.Errorf("%w: replicas %d is negative", errdefs.ErrInvalidArgument, replicas)
	}
	obj, err := c.Primary(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	apps := c.typed.AppsV1()
	force := metav1.ApplyOptions{FieldManager: c.manager, Force: true}
	switch w := obj.(type) {
	case *appsv1.Deployment:
		ac, err := appsv1ac.ExtractDeployment(w, c.manager)
		if err != nil {
			return nil, fmt.Errorf("reading the fields %s owns on deployment %s: %w", c.manager, w.Name, err)
		}
		ac.WithSpec(specOr(ac.Spec).WithReplicas(replicas))
		if _, err := apps.Deployments(namespace).Apply(ctx, ac, force); err != nil {
			return nil, Classify(err, "deployment.apps/"+namespace+"/"+w.Name)
		}
		return c.statusOf(ctx, "Deployment", namespace, w.Name)
	case *appsv1.StatefulSet:
		ac, err := appsv1ac.ExtractStatefulSet(w, c.manager)
		if err != nil {
			return nil, fmt.Errorf("reading the fields %s owns on statefulset %s: %w", c.manager, w.Name, err)
		}
		if ac.Spec == nil {
			ac.WithSpec(appsv1ac.StatefulSetSpec())
		}
		ac.Spec.WithReplicas(replicas)
		if _, err := apps.StatefulSets(namespace).Apply(ctx, ac, force); err != nil {
			return nil, Classify(err, "statefulset.apps/"+namespace+"/"+w.Name)
		}
		return c.statusOf(ctx, "StatefulSet", namespace, w.Name)
	}
	if _, ok := obj.(*batchv1.Job); ok {
		return nil, fmt.Errorf("%w: %q is a Job, which has no replicas (its completions and parallelism are in its manifest)", errdefs.ErrInvalidArgument, name)
	}
	return nil, fmt.Errorf("%w: %q is a DaemonSet, which has no replicas (it runs one pod per node)", errdefs.ErrInvalidArgument, name)
}

func specOr(s *appsv1ac.DeploymentSpecApplyConfiguration) *appsv1ac.DeploymentSpecApplyConfiguration {
	if s == nil {
		return appsv1ac.DeploymentSpec()
	}
	return s
}

// Revision is one revision of a workload: the ReplicaSet (Deployments) or ControllerRevision (StatefulSets,
// DaemonSets) that keeps its pod template, and the template's images.
type Revision struct {
	Revision   int64             `json:"revision"`
	ReplicaSet string            `json:"replica_set,omitempty"`
	Controller string            `json:"controller_revision,omitempty"`
	Images     map[string]string `json:"images"`
	Created    time.Time         `json:"created"`
	Current    bool              `json:"current"`
}

// History lists the revisions of the application's Deployment, StatefulSet or DaemonSet, oldest first (as many
// as its revisionHistoryLimit keeps).
func (c *Client) History(ctx context.Context, namespace, name string) ([]Revision, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	h, err := c.revisions(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	out := make([]Revision, 0, len(h.revs))
	for _, r := range h.revs {
		out = append(out, r.Revision)
	}
	return out, nil
}

type templateRevision struct {
	Revision
	template corev1.PodTemplateSpec
}

// history is a workload with its revisions, sorted oldest first.
type history struct {
	kind    string
	name    string // the workload's (the application's may differ)
	current int64
	deploy  *appsv1.Deployment
	sts     *appsv1.StatefulSet
	ds      *appsv1.DaemonSet
	revs    []templateRevision
}

// template is the workload's pod template as it is now, without the label its controller adds to a
// Deployment's ReplicaSets (absent from the Deployment's own).
func (h *history) template() corev1.PodTemplateSpec {
	var t corev1.PodTemplateSpec
	switch {
	case h.deploy != nil:
		t = *h.deploy.Spec.Template.DeepCopy()
	case h.sts != nil:
		t = *h.sts.Spec.Template.DeepCopy()
	case h.ds != nil:
		t = *h.ds.Spec.Template.DeepCopy()
	}
	delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return t
}

func (c *Client) revisions(ctx context.Context, ns, name string) (*history, error) {
	apps := c.typed.AppsV1()
	h := &history{}
	var uid types.UID
	var selector *metav1.LabelSelector
	obj, err := c.Primary(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	switch w := obj.(type) {
	case *appsv1.Deployment:
		h.kind, h.deploy, uid, selector = "Deployment", w, w.UID, w.Spec.Selector
		h.current, _ = strconv.ParseInt(w.Annotations["deployment.kubernetes.io/revision"], 10, 64)
	case *appsv1.StatefulSet:
		h.kind, h.sts, uid, selector = "StatefulSet", w, w.UID, w.Spec.Selector
	case *appsv1.DaemonSet:
		h.kind, h.ds, uid, selector = "DaemonSet", w, w.UID, w.Spec.Selector
	case *batchv1.Job:
		return nil, fmt.Errorf("%w: %q is a Job, which keeps no revisions to roll back to (apply its manifest again)", errdefs.ErrInvalidArgument, name)
	}
	h.name = obj.(metav1.Object).GetName()
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: selector: %v", errdefs.ErrInvalidArgument, name, err)
	}
	images := func(t corev1.PodTemplateSpec) map[string]string {
		m := map[string]string{}
		for _, ctr := range t.Spec.Containers {
			m[ctr.Name] = ctr.Image
		}
		return m
	}
	if h.kind == "Deployment" {
		list, err := apps.ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, Classify(err, "replicasets of "+name)
		}
		for _, rs := range list.Items {
			n, err := strconv.ParseInt(rs.Annotations["deployment.kubernetes.io/revision"], 10, 64)
			if err != nil || !ownedBy(rs.OwnerReferences, uid) {
				continue
			}
			tpl := *rs.Spec.Template.DeepCopy()
			delete(tpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
			h.revs = append(h.revs, templateRevision{Revision: Revision{Revision: n, ReplicaSet: rs.Name, Images: images(tpl),
				Created: rs.CreationTimestamp.Time, Current: n == h.current}, template: tpl})
		}
	} else {
		// The StatefulSet and DaemonSet controllers keep each template in a ControllerRevision, as a patch of
		// the workload's spec; the one with the highest number is the current one (going back to an older
		// template renumbers its revision).
		list, err := apps.ControllerRevisions(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, Classify(err, "controllerrevisions of "+name)
		}
		for _, cr := range list.Items {
			if !ownedBy(cr.OwnerReferences, uid) {
				continue
			}
			var patch struct {
				Spec struct {
					Template json.RawMessage `json:"template"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(cr.Data.Raw, &patch); err != nil || len(patch.Spec.Template) == 0 {
				continue
			}
			var tpl corev1.PodTemplateSpec
			if err := json.Unmarshal(patch.Spec.Template, &tpl); err != nil { // "$patch": "replace" is ignored
				continue
			}
			h.revs = append(h.revs, templateRevision{Revision: Revision{Revision: cr.Revision, Controller: cr.Name,
				Images: images(tpl), Created: cr.CreationTimestamp.Time}, template: tpl})
			if cr.Revision > h.current {
				h.current = cr.Revision
			}
		}
		for i := range h.revs {
			h.revs[i].Current = h.revs[i].Revision.Revision == h.current
		}
	}
	sort.Slice(h.revs, func(i, j int) bool { return h.revs[i].Revision.Revision < h.revs[j].Revision.Revision })
	return h, nil
}

// Rollback puts the pod template of the application's Deployment, StatefulSet or DaemonSet back to an earlier
// revision: toRevision, or the one before the current when toRevision is 0 (kubectl rollout undo). Like Scale, it
// applies this client's own configuration of the object with the old template, taking over fields others own.
// The controller then rolls it out as a new revision.
func (c *Client) Rollback(ctx context.Context, namespace, name string, toRevision int64) (*Status, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	if toRevision < 0 {
		return nil, fmt.Errorf("%w: revision %d", errdefs.ErrInvalidArgument, toRevision)
	}
	h, err := c.revisions(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	name = h.name
	var target *templateRevision
	for i := range h.revs {
		r := &h.revs[i]
		switch {
		case toRevision == 0 && r.Revision.Revision < h.current:
			target = r // the highest below the current, as revs are sorted
		case toRevision != 0 && r.Revision.Revision == toRevision:
			target = r
		}
	}
	what := strings.ToLower(h.kind) + " " + name
	if target == nil {
		var have []string
		for _, r := range h.revs {
			have = append(have, strconv.FormatInt(r.Revision.Revision, 10))
		}
		if toRevision == 0 {
			return nil, fmt.Errorf("%w: %s has no revision before %d to roll back to (revisions: %s)", errdefs.ErrNotFound, what, h.current, strings.Join(have, ", "))
		}
		return nil, fmt.Errorf("%w: %s has no revision %d (revisions: %s)", errdefs.ErrNotFound, what, toRevision, strings.Join(have, ", "))
	}
	// Nothing to do when the workload's template is the target's already, as kubectl judges it: by the templates,
	// not the revision numbers, which the controller sets only once it has observed the last change (a rollback
	// right after another would otherwise be taken for a no-op, or the reverse).
	if equality.Semantic.DeepEqual(target.template, h.template()) {
		return c.statusOf(ctx, h.kind, namespace, name)
	}
	raw, err := json.Marshal(target.template)
	if err != nil {
		return nil, err
	}
	var tplAC corev1ac.PodTemplateSpecApplyConfiguration
	if err := json.Unmarshal(raw, &tplAC); err != nil {
		return nil, err
	}
	opts := metav1.ApplyOptions{FieldManager: c.manager, Force: true}
	apps := c.typed.AppsV1()
	owned := func(err error) error {
		return fmt.Errorf("reading the fields %s owns on %s: %w", c.manager, what, err)
	}
	switch h.kind {
	case "Deployment":
		ac, err := appsv1ac.ExtractDeployment(h.deploy, c.manager)
		if err != nil {
			return nil, owned(err)
		}
		ac.WithSpec(specOr(ac.Spec).WithTemplate(&tplAC))
		_, err = apps.Deployments(namespace).Apply(ctx, ac, opts)
		if err != nil {
			return nil, Classify(err, "deployment.apps/"+namespace+"/"+name)
		}
	case "StatefulSet":
		ac, err := appsv1ac.ExtractStatefulSet(h.sts, c.manager)
		if err != nil {
			return nil, owned(err)
		}
		if ac.Spec == nil {
			ac.WithSpec(appsv1ac.StatefulSetSpec())
		}
		ac.Spec.WithTemplate(&tplAC)
		if _, err := apps.StatefulSets(namespace).Apply(ctx, ac, opts); err != nil {
			return nil, Classify(err, "statefulset.apps/"+namespace+"/"+name)
		}
	case "DaemonSet":
		ac, err := appsv1ac.ExtractDaemonSet(h.ds, c.manager)
		if err != nil {
			return nil, owned(err)
		}
		if ac.Spec == nil {
			ac.WithSpec(appsv1ac.DaemonSetSpec())
		}
		ac.Spec.WithTemplate(&tplAC)
		if _, err := apps.DaemonSets(namespace).Apply(ctx, ac, opts); err != nil {
			return nil, Classify(err, "daemonset.apps/"+namespace+"/"+name)
		}
	}
	return c.statusOf(ctx, h.kind, namespace, name)
}

// DeleteOptions say how to delete an application.
type DeleteOptions struct {
	Wait     bool          // wait until the objects are gone
	Timeout  time.Duration // for Wait; default 2m
	Progress func(Event)
}

// Delete removes the application: every object of its inventory that still carries its annotation, workloads
// first, then the inventory. An application without an inventory (applied by another tool) has its workload of
// that name deleted. Deleting an application that does not exist is an ErrNotFound.
func (c *Client) Delete(ctx context.Context, namespace, name string, opts DeleteOptions) ([]Change, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	emit := c.emitter(opts.Progress)
	refs, err := c.readInventory(ctx, namespace, name, false)
	if err != nil {
		return nil, err
	}
	appID := namespace + "/" + name
	var deleted []Change
	if len(refs) == 0 {
		st, err := c.Status(ctx, namespace, name)
		if err != nil {
			return nil, err
		}
		r := ObjRef{Group: workloadGVK(st.Kind).Group, Kind: st.Kind, Namespace: namespace, Name: name}
		if _, err := c.deleteRef(ctx, r, func(*unstructured.Unstructured) bool { return true }); err != nil {
			return nil, err
		}
		emit(Event{Phase: "delete", Object: r.String(), Status: "deleted"})
		deleted = append(deleted, Change{Object: r.String(), Kind: r.Kind, Namespace: namespace, Name: name, Action: "deleted"})
		refs = []ObjRef{r}
	} else {
		deleted, err = c.prune(ctx, refs, appID, func(e Event) { e.Phase = "delete"; emit(e) })
		for i := range deleted {
			deleted[i].Action = "deleted"
		}
		if err != nil {
			return deleted, err
		}
		err = c.typed.CoreV1().ConfigMaps(namespace).Delete(ctx, InventoryName(name), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return deleted, Classify(err, "configmap/"+namespace+"/"+InventoryName(name))
		}
	}
	if !opts.Wait {
		return deleted, nil
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for _, ch := range deleted {
		r := ObjRef{Kind: ch.Kind, Namespace: ch.Namespace, Name: ch.Name}
		for _, rr := range refs {
			if rr.Kind == ch.Kind && rr.Namespace == ch.Namespace && rr.Name == ch.Name {
				r = rr
			}
		}
		for {
			_, err := c.getRef(ctx, r)
			if apierrors.IsNotFound(err) || isNoMatch(err) {
				break
			}
			if time.Now().After(deadline) {
				return deleted, &RolloutError{Object: r.String(), Reason: fmt.Sprintf("still present %s after the delete", timeout), TimedOut: true}
			}
			select {
			case <-ctx.Done():
				return deleted, ctx.Err()
			case <-time.After(PollInterval):
			}
		}
	}
	return deleted, nil
}
