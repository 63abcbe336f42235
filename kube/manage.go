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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	apps := c.typed.AppsV1()
	force := metav1.ApplyOptions{FieldManager: c.manager, Force: true}
	d, err := apps.Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		ac, err := appsv1ac.ExtractDeployment(d, c.manager)
		if err != nil {
			return nil, fmt.Errorf("reading the fields %s owns on deployment %s: %w", c.manager, name, err)
		}
		ac.WithSpec(specOr(ac.Spec).WithReplicas(replicas))
		if _, err := apps.Deployments(namespace).Apply(ctx, ac, force); err != nil {
			return nil, Classify(err, "deployment.apps/"+namespace+"/"+name)
		}
		return c.statusOf(ctx, "Deployment", namespace, name)
	case !apierrors.IsNotFound(err):
		return nil, Classify(err, "deployment.apps/"+namespace+"/"+name)
	}
	s, err := apps.StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: no Deployment or StatefulSet %q in namespace %q to scale", errdefs.ErrNotFound, name, namespace)
		}
		return nil, Classify(err, "statefulset.apps/"+namespace+"/"+name)
	}
	ac, err := appsv1ac.ExtractStatefulSet(s, c.manager)
	if err != nil {
		return nil, fmt.Errorf("reading the fields %s owns on statefulset %s: %w", c.manager, name, err)
	}
	if ac.Spec == nil {
		ac.WithSpec(appsv1ac.StatefulSetSpec())
	}
	ac.Spec.WithReplicas(replicas)
	if _, err := apps.StatefulSets(namespace).Apply(ctx, ac, force); err != nil {
		return nil, Classify(err, "statefulset.apps/"+namespace+"/"+name)
	}
	return c.statusOf(ctx, "StatefulSet", namespace, name)
}

func specOr(s *appsv1ac.DeploymentSpecApplyConfiguration) *appsv1ac.DeploymentSpecApplyConfiguration {
	if s == nil {
		return appsv1ac.DeploymentSpec()
	}
	return s
}

// Revision is one revision of a Deployment: its ReplicaSet and the images of its pod template.
type Revision struct {
	Revision   int64             `json:"revision"`
	ReplicaSet string            `json:"replica_set"`
	Images     map[string]string `json:"images"`
	Created    time.Time         `json:"created"`
	Current    bool              `json:"current"`
}

// History lists a Deployment's revisions, oldest first (as many as its revisionHistoryLimit keeps).
func (c *Client) History(ctx context.Context, namespace, name string) ([]Revision, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	_, revs, err := c.revisions(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	out := make([]Revision, 0, len(revs))
	for _, r := range revs {
		out = append(out, r.Revision)
	}
	return out, nil
}

type rsRevision struct {
	Revision
	rs appsv1.ReplicaSet
}

func (c *Client) revisions(ctx context.Context, ns, name string) (*appsv1.Deployment, []rsRevision, error) {
	d, err := c.typed.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("%w: no Deployment %q in namespace %q (rollback works on Deployments)", errdefs.ErrNotFound, name, ns)
		}
		return nil, nil, Classify(err, "deployment.apps/"+ns+"/"+name)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: selector: %v", errdefs.ErrInvalidArgument, name, err)
	}
	list, err := c.typed.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, Classify(err, "replicasets of "+name)
	}
	cur := d.Annotations["deployment.kubernetes.io/revision"]
	var out []rsRevision
	for _, rs := range list.Items {
		if !ownedBy(rs.OwnerReferences, d.UID) {
			continue
		}
		n, err := strconv.ParseInt(rs.Annotations["deployment.kubernetes.io/revision"], 10, 64)
		if err != nil {
			continue
		}
		imgs := map[string]string{}
		for _, ctr := range rs.Spec.Template.Spec.Containers {
			imgs[ctr.Name] = ctr.Image
		}
		out = append(out, rsRevision{Revision: Revision{Revision: n, ReplicaSet: rs.Name, Images: imgs,
			Created: rs.CreationTimestamp.Time, Current: strconv.FormatInt(n, 10) == cur}, rs: rs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision.Revision < out[j].Revision.Revision })
	return d, out, nil
}

// Rollback puts a Deployment's pod template back to an earlier revision: toRevision, or the one before the
// current when toRevision is 0 (kubectl rollout undo). Like Scale, it applies this client's own configuration
// with the old template, taking over fields others own. The Deployment controller then makes a new revision.
func (c *Client) Rollback(ctx context.Context, namespace, name string, toRevision int64) (*Status, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	if toRevision < 0 {
		return nil, fmt.Errorf("%w: revision %d", errdefs.ErrInvalidArgument, toRevision)
	}
	d, revs, err := c.revisions(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	cur, _ := strconv.ParseInt(d.Annotations["deployment.kubernetes.io/revision"], 10, 64)
	var target *rsRevision
	for i := range revs {
		r := &revs[i]
		switch {
		case toRevision == 0 && r.Revision.Revision < cur:
			target = r // the highest below the current, as revs are sorted
		case toRevision != 0 && r.Revision.Revision == toRevision:
			target = r
		}
	}
	if target == nil {
		var have []string
		for _, r := range revs {
			have = append(have, strconv.FormatInt(r.Revision.Revision, 10))
		}
		if toRevision == 0 {
			return nil, fmt.Errorf("%w: deployment %s has no revision before %d to roll back to (revisions: %s)", errdefs.ErrNotFound, name, cur, strings.Join(have, ", "))
		}
		return nil, fmt.Errorf("%w: deployment %s has no revision %d (revisions: %s)", errdefs.ErrNotFound, name, toRevision, strings.Join(have, ", "))
	}
	if target.Revision.Revision == cur {
		return c.statusOf(ctx, "Deployment", namespace, name)
	}
	tpl := target.rs.Spec.Template.DeepCopy()
	delete(tpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	raw, err := json.Marshal(tpl)
	if err != nil {
		return nil, err
	}
	var tplAC corev1ac.PodTemplateSpecApplyConfiguration
	if err := json.Unmarshal(raw, &tplAC); err != nil {
		return nil, err
	}
	ac, err := appsv1ac.ExtractDeployment(d, c.manager)
	if err != nil {
		return nil, fmt.Errorf("reading the fields %s owns on deployment %s: %w", c.manager, name, err)
	}
	ac.WithSpec(specOr(ac.Spec).WithTemplate(&tplAC))
	if _, err := c.typed.AppsV1().Deployments(namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: c.manager, Force: true}); err != nil {
		return nil, Classify(err, "deployment.apps/"+namespace+"/"+name)
	}
	return c.statusOf(ctx, "Deployment", namespace, name)
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
		r := ObjRef{Group: "apps", Kind: st.Kind, Namespace: namespace, Name: name}
		if err := c.deleteRef(ctx, r); err != nil {
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
