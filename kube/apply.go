package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/codomyrmex/containerization/errdefs"
)

// Annotation keys and labels of Myrmex on the objects it applies.
const (
	// AppAnnotation marks every object an application owns (it created it, or the object already carried the
	// annotation) with "namespace/name" of the application; prune and delete remove only objects that carry it
	// with the same value. An object that existed without it is applied without it: see [Change].Unowned.
	AppAnnotation = "myrmex.codomyrmex.dev/app"
	// InventoryLabel marks the ConfigMap that lists what an application applied.
	InventoryLabel = "myrmex.codomyrmex.dev/inventory"
	managedByLabel = "app.kubernetes.io/managed-by"
)

// ApplyOptions say how to apply an application's manifests.
type ApplyOptions struct {
	// Name is the application's name: its primary workload (the Deployment, StatefulSet or DaemonSet of that
	// name, or the only one in the manifests) and the name its inventory is kept under, for prune.
	Name string
	// Namespace of the namespaced objects that name none; empty: the kubeconfig context's namespace, else
	// "default". An object naming another namespace is refused.
	Namespace string
	// CreateNamespace creates the namespace when it does not exist (else that is an ErrNotFound, before anything
	// is applied).
	CreateNamespace bool
	Overrides       Overrides
	// Gate, when set, judges the containers the objects run before anything is applied (a policy), and may pin
	// their images to digests.
	Gate Gate
	// DryRun applies nothing: the API server validates and defaults every object (server-side dry run), and
	// the result says what would change, and what prune would delete.
	DryRun bool
	// ForceConflicts takes over fields another field manager owns, instead of failing with ErrConflict.
	ForceConflicts bool
	// Prune deletes the objects this application applied before that the manifests no longer hold.
	Prune bool
	// Wait waits until every applied object is ready (see [Client.Wait]), for at most Timeout (default 5m).
	Wait    bool
	Timeout time.Duration
	// Progress receives the events of the apply, prune and wait, in order, from one goroutine at a time.
	Progress func(Event)
	// Concurrency bounds the objects applied at once (default 8).
	Concurrency int
}

// Event is one step of an apply, prune, wait or delete.
type Event struct {
	Time    time.Time `json:"time"`
	Phase   string    `json:"phase"`  // apply, prune, wait, delete, scale, rollback
	Object  string    `json:"object"` // kind.group/namespace/name
	Status  string    `json:"status"` // created, configured, unchanged, deleted, InProgress, Current, Failed, …
	Message string    `json:"message,omitempty"`
}

// Change is what an apply did, or would do, to one object.
type Change struct {
	Object    string   `json:"object"`
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace,omitempty"`
	Name      string   `json:"name"`
	Action    string   `json:"action"`           // created, configured, unchanged, pruned
	Fields    []string `json:"fields,omitempty"` // what changed: "spec.replicas: 2 → 3"
	// Unowned: the object existed before without [AppAnnotation] (made by hand or by another tool, such as a
	// namespace made beforehand). It is applied but not adopted: prune and delete never remove it.
	Unowned bool `json:"unowned,omitempty"`
}

// unownedNote is the event message of an object applied but not adopted.
const unownedNote = "existed before without annotation " + AppAnnotation + ": applied, not owned; prune and delete leave it"

// message is the event message of a change: the fields it changes, and whether the object is not owned.
func (ch Change) message() string {
	msg := strings.Join(ch.Fields, "; ")
	if ch.Unowned {
		msg = strings.TrimPrefix(msg+"; "+unownedNote, "; ")
	}
	return msg
}

// ApplyResult is the outcome of [Client.Apply].
type ApplyResult struct {
	Namespace string   `json:"namespace"`
	DryRun    bool     `json:"dry_run"`
	Changes   []Change `json:"changes"`
	Pruned    []Change `json:"pruned,omitempty"`
	Status    *Status  `json:"status,omitempty"` // the primary workload, when there is one (after the wait, if asked)
	Applied   []ObjRef `json:"-"`
}

// ObjRef identifies an object across API versions.
type ObjRef struct {
	Group     string `json:"group"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r ObjRef) String() string {
	return refOf(schema.GroupVersionKind{Group: r.Group, Kind: r.Kind}, r.Namespace, r.Name)
}

// item is an object on its way to the API server.
type item struct {
	obj     *Object
	mapping *meta.RESTMapping // nil until its CRD is applied
	ref     ObjRef
	rank    int
	live    *unstructured.Unstructured // before the apply (nil: absent)
	change  Change
	checked bool // the server validated it in a dry run
	fromCRD bool // its kind is defined by a CRD in the same manifests
}

// applyRank orders kinds so that what others need exists first: namespaces and CRDs, then policies, accounts,
// configuration and storage, then services, then workloads, then what routes to them; kinds unknown here last.
var applyRank = func() map[string]int {
	order := []string{
		"Namespace", "CustomResourceDefinition", "PriorityClass", "NetworkPolicy", "ResourceQuota", "LimitRange",
		"PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "StorageClass", "PersistentVolume",
		"PersistentVolumeClaim", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
		"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
		"StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
	}
	m := make(map[string]int, len(order))
	for i, k := range order {
		m[k] = i
	}
	return m
}()

func rankOf(kind string) int {
	if r, ok := applyRank[kind]; ok {
		return r
	}
	return len(applyRank)
}

// ValidateName checks an application name: a DNS subdomain (lowercase letters, digits, '-' and '.', starting and
// ending with a letter or digit), as Kubernetes requires of a Deployment's name, short enough that its inventory
// ConfigMap's name ([InventoryName]) is one too.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: no application (deployment) name given", errdefs.ErrInvalidArgument)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("%w: name %q: %s", errdefs.ErrInvalidArgument, name, strings.Join(errs, "; "))
	}
	if inv := InventoryName(name); len(inv) > validation.DNS1123SubdomainMaxLength {
		return fmt.Errorf("%w: name %q is %d characters, at most %d: its inventory ConfigMap %s<name> must be a DNS subdomain too",
			errdefs.ErrInvalidArgument, name, len(name), validation.DNS1123SubdomainMaxLength-len(InventoryName("")), InventoryName(""))
	}
	return nil
}

// Apply sends the objects with server-side apply, as this client's field manager, after the overrides; every
// object is first checked by the API server in a dry run, so that a bad object or a conflict stops the apply
// before anything is changed. See [ApplyOptions].
func (c *Client) Apply(ctx context.Context, objs []*Object, opts ApplyOptions) (*ApplyResult, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, err
	}
	if err := opts.Overrides.validate(); err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: no objects to apply", errdefs.ErrInvalidArgument)
	}
	ns := opts.Namespace
	if ns == "" {
		ns = c.namespace
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, fmt.Errorf("%w: namespace %q: %s", errdefs.ErrInvalidArgument, ns, strings.Join(errs, "; "))
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	emit := c.emitter(opts.Progress)
	res := &ApplyResult{Namespace: ns, DryRun: opts.DryRun}

	// Copies: the overrides and namespace change the objects, not the caller's.
	work := make([]*Object, len(objs))
	for i, o := range objs {
		work[i] = &Object{Unstructured: o.DeepCopy(), Source: o.Source}
	}

	items, err := c.mapItems(work, ns)
	if err != nil {
		return nil, err
	}
	primary := findPrimary(work, opts.Name)
	if err := opts.Overrides.apply(work, primary); err != nil {
		return nil, err
	}
	appID := ns + "/" + opts.Name
	seen := map[ObjRef]string{}
	for _, it := range items {
		if prev, dup := seen[it.ref]; dup {
			return nil, fmt.Errorf("%w: %s is defined twice (%s and %s)", errdefs.ErrInvalidArgument, it.ref, prev, it.obj.Source)
		}
		seen[it.ref] = it.obj.Source
		ann := it.obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AppAnnotation] = appID
		it.obj.SetAnnotations(ann)
		it.obj.SetManagedFields(nil)
		it.obj.SetResourceVersion("")
		it.obj.SetUID("")
	}

	// The gate: every container the objects will run, before anything reaches the cluster.
	if opts.Gate != nil {
		pins, err := opts.Gate(ctx, PodContainers(work))
		if err != nil {
			return nil, err
		}
		pinImages(work, pins)
	}

	// Namespaces the objects need: in the manifests, existing, or created on request.
	inBatch := map[string]bool{}
	for _, it := range items {
		if it.ref.Group == "" && it.ref.Kind == "Namespace" {
			inBatch[it.ref.Name] = true
		}
	}
	missingNS := map[string]bool{}
	needed := map[string]bool{ns: true}
	for _, it := range items {
		if it.ref.Namespace != "" {
			needed[it.ref.Namespace] = true
		}
	}
	for n := range needed {
		_, err := c.typed.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if inBatch[n] {
				missingNS[n] = true // made by this apply, before the objects in it
				continue
			}
			if !opts.CreateNamespace || n != ns {
				return nil, fmt.Errorf("%w: namespace %q does not exist: create it in the manifests, or ask for it to be created (--create-namespace)", errdefs.ErrNotFound, n)
			}
			missingNS[n] = true
		case err != nil:
			return nil, Classify(err, "namespace/"+n)
		}
	}

	// Preflight: the API server validates, defaults and checks field ownership of every object it can see now.
	if err := c.preflight(ctx, items, missingNS, opts); err != nil {
		return nil, err
	}
	inv, err := c.readInventory(ctx, ns, opts.Name, missingNS[ns])
	if err != nil {
		return nil, err
	}
	current := make([]ObjRef, 0, len(items))
	for _, it := range items {
		current = append(current, it.ref)
	}
	pruneSet := inventoryMinus(inv, current)

	if opts.DryRun {
		for _, it := range items {
			res.Changes = append(res.Changes, it.change)
			emit(Event{Phase: "apply", Object: it.ref.String(), Status: it.change.Action + " (dry run)", Message: it.change.message()})
		}
		if opts.Prune {
			for _, r := range pruneSet {
				ok, err := c.prunable(ctx, r, appID)
				if err != nil {
					return nil, err
				}
				if ok {
					res.Pruned = append(res.Pruned, Change{Object: r.String(), Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Action: "pruned"})
					emit(Event{Phase: "prune", Object: r.String(), Status: "pruned (dry run)"})
				}
			}
		}
		res.Applied = current
		if primary != nil {
			res.Status = c.plannedStatus(ctx, primary)
		}
		return res, nil
	}

	if opts.CreateNamespace && missingNS[ns] && !inBatch[ns] {
		nsObj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": ns, "labels": map[string]any{managedByLabel: "myrmex"}},
		}}
		if _, err := c.applyOne(ctx, c.dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}), nsObj, false, false); err != nil {
			return nil, err
		}
		emit(Event{Phase: "apply", Object: "namespace/" + ns, Status: "created"})
	}

	// Apply rank by rank; objects of one rank at once.
	sort.SliceStable(items, func(i, j int) bool { return items[i].rank < items[j].rank })
	inventoryWritten := false
	for start := 0; start < len(items); {
		end := start
		for end < len(items) && items[end].rank == items[start].rank {
			end++
		}
		group := items[start:end]
		if !inventoryWritten && group[0].rank > applyRank["CustomResourceDefinition"] {
			// Before the first object that is not a namespace or CRD: the inventory holds the old and the new
			// objects, so that a failure part-way leaves nothing untracked.
			if err := c.writeInventory(ctx, ns, opts.Name, unionRefs(inv, current)); err != nil {
				return nil, err
			}
			inventoryWritten = true
		}
		if err := c.applyGroup(ctx, group, opts, emit); err != nil {
			return nil, err
		}
		if group[0].ref.Kind == "CustomResourceDefinition" {
			if err := c.waitCRDs(ctx, group); err != nil {
				return nil, err
			}
			for _, it := range items[end:] {
				if it.mapping == nil {
					m, err := c.mapServedKind(ctx, it)
					if err != nil {
						return nil, Classify(err, it.obj.Source+": "+it.ref.String())
					}
					it.mapping = m
				}
			}
		}
		start = end
	}
	if !inventoryWritten {
		if err := c.writeInventory(ctx, ns, opts.Name, unionRefs(inv, current)); err != nil {
			return nil, err
		}
	}
	for _, it := range items {
		res.Changes = append(res.Changes, it.change)
	}
	sortChanges(res.Changes)
	res.Applied = current

	if opts.Prune {
		pruned, err := c.prune(ctx, pruneSet, appID, emit)
		res.Pruned = pruned
		if err != nil {
			return res, err
		}
		if err := c.writeInventory(ctx, ns, opts.Name, current); err != nil {
			return res, err
		}
	}

	if opts.Wait {
		wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		if err := c.waitRefs(wctx, current, opts.Timeout, emit); err != nil {
			if primary != nil {
				res.Status, _ = c.Status(ctx, ns, opts.Name)
			}
			return res, err
		}
	}
	if primary != nil {
		st, err := c.statusOf(ctx, primary.GetKind(), ns, primary.GetName())
		if err != nil {
			return res, err
		}
		res.Status = st
	}
	return res, nil
}

func sortChanges(ch []Change) {
	sort.SliceStable(ch, func(i, j int) bool { return rankOf(ch[i].Kind) < rankOf(ch[j].Kind) })
}

// mapItems finds each object's resource, sets the namespace of namespaced ones, and refuses unknown kinds.
func (c *Client) mapItems(objs []*Object, ns string) ([]*item, error) {
	crdKinds := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			crdKinds[schema.GroupKind{Group: g, Kind: k}] = true
		}
	}
	var errs []error
	items := make([]*item, 0, len(objs))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		it := &item{obj: o, rank: rankOf(gvk.Kind)}
		m, err := c.restMapping(gvk.Group, gvk.Version, gvk.Kind)
		switch {
		case err != nil && meta.IsNoMatchError(err) && crdKinds[gvk.GroupKind()]:
			it.fromCRD = true
			if o.GetNamespace() == "" {
				// Scope unknown until the CRD exists: namespaced CRs are the common case.
				if scope := crdScope(objs, gvk.GroupKind()); scope != "Cluster" {
					o.SetNamespace(ns)
				}
			}
		case err != nil && meta.IsNoMatchError(err):
			errs = append(errs, fmt.Errorf("%w: %s: unknown kind %q in apiVersion %q: the cluster serves no such resource (is its CRD installed, and the apiVersion right?)",
				errdefs.ErrInvalidArgument, o.Source, gvk.Kind, gvk.GroupVersion().String()))
			continue
		case err != nil:
			return nil, Classify(err, "discovery of "+gvk.Kind)
		default:
			it.mapping = m
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				switch o.GetNamespace() {
				case "":
					o.SetNamespace(ns)
				case ns:
				default:
					errs = append(errs, fmt.Errorf("%w: %s: %s %q names namespace %q, not %q: drop metadata.namespace or deploy to %q",
						errdefs.ErrInvalidArgument, o.Source, gvk.Kind, o.GetName(), o.GetNamespace(), ns, o.GetNamespace()))
					continue
				}
			} else {
				o.SetNamespace("")
			}
		}
		it.ref = ObjRef{Group: gvk.Group, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
		it.change = Change{Object: it.ref.String(), Kind: gvk.Kind, Namespace: it.ref.Namespace, Name: it.ref.Name, Action: "created"}
		items = append(items, it)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return items, nil
}

func crdScope(objs []*Object, gk schema.GroupKind) string {
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		if g == gk.Group && k == gk.Kind {
			s, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			return s
		}
	}
	return ""
}

// findPrimary is the workload named after the application, or the only Deployment, StatefulSet, DaemonSet or Job.
func findPrimary(objs []*Object, name string) *Object {
	var only []*Object
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if !isPrimaryKind(gvk.Group, gvk.Kind) {
			continue
		}
		if o.GetName() == name {
			return o
		}
		only = append(only, o)
	}
	if len(only) == 1 {
		return only[0]
	}
	return nil
}

func (c *Client) resource(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	r := c.dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return r.Namespace(namespace)
	}
	return r
}

// applyOne is one server-side apply.
func (c *Client) applyOne(ctx context.Context, ri dynamic.ResourceInterface, obj *unstructured.Unstructured, dryRun, force bool) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	po := metav1.PatchOptions{FieldManager: c.manager, FieldValidation: "Strict"}
	if force {
		po.Force = &force
	}
	if dryRun {
		po.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, po)
	if err != nil {
		return nil, Classify(err, refOf(obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName()))
	}
	return out, nil
}

// preflight reads each object's live state and has the API server dry-run the apply: validation, defaults,
// admission and field ownership are checked for every object before any is applied. Objects that cannot be
// checked yet (their namespace or CRD is in the same manifests) are checked when applied.
func (c *Client) preflight(ctx context.Context, items []*item, missingNS map[string]bool, opts ApplyOptions) error {
	var check []*item
	for _, it := range items {
		if it.mapping != nil && (it.ref.Namespace == "" || !missingNS[it.ref.Namespace]) {
			check = append(check, it)
		}
	}
	listed := c.listLive(ctx, check)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	var mu sync.Mutex
	var errs []error
	for _, it := range check {
		g.Go(func() error {
			ri := c.resource(it.mapping, it.ref.Namespace)
			live, known := listed[it]
			if !known {
				var err error
				live, err = ri.Get(gctx, it.ref.Name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					live = nil
				case err != nil:
					mu.Lock()
					errs = append(errs, Classify(err, it.obj.Source+": "+it.ref.String()))
					mu.Unlock()
					return nil
				}
			}
			// Before the dry run, which must see the object as it will be sent: without the annotation if not owned.
			if err := ownership(live, it, opts); err != nil {
				mu.Lock()
				errs = append(errs, &ObjectError{Object: it.ref.String(), Err: err})
				mu.Unlock()
				return nil
			}
			out, err := c.applyOne(gctx, ri, it.obj.Unstructured, true, opts.ForceConflicts)
			if err != nil {
				mu.Lock()
				errs = append(errs, &ObjectError{Object: it.ref.String(), Source: it.obj.Source, Err: err})
				mu.Unlock()
				return nil
			}
			it.live = live
			it.checked = true
			it.change.Action, it.change.Fields = describeChange(live, out)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return errors.Join(errs...)
	}
	return ctx.Err()
}

// listLive reads the live state of objects, per resource and namespace with more than two of them, with one
// LIST (in pages of listPage, keeping only the objects named) instead of a GET each: the result holds every item
// the lists answered for, nil when it does not exist. A list that would take as many pages as its objects would
// take GETs stops there, and one the server refuses (RBAC without the list verb) is not made: the items left out
// are read with a GET each, as before.
func (c *Client) listLive(ctx context.Context, items []*item) map[*item]*unstructured.Unstructured {
	type group struct {
		gvr schema.GroupVersionResource
		ns  string
	}
	groups := map[group][]*item{}
	var order []group
	for _, it := range items {
		g := group{it.mapping.Resource, it.ref.Namespace}
		if groups[g] == nil {
			order = append(order, g)
		}
		groups[g] = append(groups[g], it)
	}
	out := map[*item]*unstructured.Unstructured{}
	for _, g := range order {
		its := groups[g]
		if len(its) <= 2 {
			continue
		}
		byName := make(map[string]*item, len(its))
		for _, it := range its {
			byName[it.ref.Name] = it
		}
		found := map[*item]*unstructured.Unstructured{}
		ri := c.resource(its[0].mapping, g.ns)
		opts := metav1.ListOptions{Limit: listPage}
		complete := false
		for pages := 0; pages < len(its); pages++ {
			l, err := ri.List(ctx, opts)
			if err != nil {
				break
			}
			for i := range l.Items {
				if it := byName[l.Items[i].GetName()]; it != nil {
					found[it] = &l.Items[i]
				}
			}
			if opts.Continue = l.GetContinue(); opts.Continue == "" {
				complete = true
				break
			}
		}
		for _, it := range its {
			if live, ok := found[it]; ok || complete {
				out[it] = live
			}
		}
	}
	return out
}

func (c *Client) applyGroup(ctx context.Context, group []*item, opts ApplyOptions, emit func(Event)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for _, it := range group {
		g.Go(func() error {
			if it.mapping == nil {
				return fmt.Errorf("%w: %s: %s: kind %s is still unknown to the API server", errdefs.ErrInvalidArgument, it.obj.Source, it.ref, it.ref.Kind)
			}
			ri := c.resource(it.mapping, it.ref.Namespace)
			if it.checked && it.change.Action == "unchanged" {
				emit(Event{Phase: "apply", Object: it.ref.String(), Status: "unchanged", Message: it.change.message()})
				return nil
			}
			if !it.checked {
				live, err := ri.Get(gctx, it.ref.Name, metav1.GetOptions{})
				if err == nil {
					if err := ownership(live, it, opts); err != nil {
						return &ObjectError{Object: it.ref.String(), Err: err}
					}
					it.live = live
				} else if !apierrors.IsNotFound(err) {
					return Classify(err, it.obj.Source+": "+it.ref.String())
				}
			}
			out, err := c.applyOne(gctx, ri, it.obj.Unstructured, false, opts.ForceConflicts)
			if err != nil {
				return &ObjectError{Object: it.ref.String(), Source: it.obj.Source, Err: err}
			}
			if !it.checked {
				it.change.Action, it.change.Fields = describeChange(it.live, out)
			}
			emit(Event{Phase: "apply", Object: it.ref.String(), Status: it.change.Action, Message: it.change.message()})
			return nil
		})
	}
	return g.Wait()
}

// ownership decides, before an object that exists is applied, whether the application may own it.
//
// An object that another application applied (its AppAnnotation names another application) is refused unless
// ForceConflicts: else one application's apply would take over, and its delete remove, what the other still uses.
//
// An object without the annotation (made by hand or by another tool, such as a namespace made beforehand and
// listed in the manifests) is applied without it, and its change says Unowned: prune and delete, which remove only
// objects that carry the application's annotation, never remove it, so that listing a user's namespace cannot make
// the application's delete remove it with everything inside. kapp adopts such objects silently and deletes them
// with the application (carvel-dev/kapp#99); ForceConflicts does not adopt them either. To hand such an object
// to the application, annotate it with the application's "namespace/name" first.
func ownership(live *unstructured.Unstructured, it *item, opts ApplyOptions) error {
	if live == nil {
		return nil
	}
	owner := live.GetAnnotations()[AppAnnotation]
	mine := it.obj.GetAnnotations()[AppAnnotation]
	switch {
	case owner == "":
		ann := it.obj.GetAnnotations()
		delete(ann, AppAnnotation)
		it.obj.SetAnnotations(ann)
		it.change.Unowned = true
		return nil
	case owner == mine || opts.ForceConflicts:
		return nil
	}
	return fmt.Errorf("%w: %s: %s belongs to application %q (annotation %s); give it another name, or take it over with --force-conflicts (ForceConflicts)",
		errdefs.ErrConflict, it.obj.Source, it.ref, owner, AppAnnotation)
}

// mapServedKind maps the kind of a custom resource whose CRD was just applied and established: discovery may
// serve the new kind a moment after the CRD says Established, so discovery is read again until it does (for at
// most 30 seconds).
func (c *Client) mapServedKind(ctx context.Context, it *item) (*meta.RESTMapping, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.resetMapper()
		m, err := c.restMapping(it.ref.Group, it.obj.GroupVersionKind().Version, it.ref.Kind)
		if err == nil || !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitCRDs waits until the API server serves the CRDs just applied (condition Established).
func (c *Client) waitCRDs(ctx context.Context, group []*item) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, it := range group {
		ri := c.resource(it.mapping, "")
		for {
			u, err := ri.Get(ctx, it.ref.Name, metav1.GetOptions{})
			if err != nil {
				return Classify(err, it.ref.String())
			}
			if conditionTrue(u, "Established") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: %s was applied but is not established after 60s", errdefs.ErrUnavailable, it.ref)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

func (c *Client) emitter(fn func(Event)) func(Event) {
	if fn == nil {
		return func(Event) {}
	}
	var mu sync.Mutex
	return func(e Event) {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		mu.Lock()
		defer mu.Unlock()
		fn(e)
	}
}
