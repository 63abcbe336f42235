package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The inventory of an application is a ConfigMap in its namespace, named InventoryName(app), listing every
// object the application applied (group, kind, namespace, name), so that a later apply can prune what the
// manifests dropped and delete can remove the whole application. Like kapp's app ConfigMap, not an ApplySet:
// the inventory survives objects across namespaces and cluster-scoped ones.

// InventoryName is the ConfigMap that holds an application's inventory.
func InventoryName(app string) string { return "myrmex-app." + app }

func (c *Client) readInventory(ctx context.Context, ns, app string, nsMissing bool) ([]ObjRef, error) {
	if nsMissing {
		return nil, nil
	}
	cm, err := c.typed.CoreV1().ConfigMaps(ns).Get(ctx, InventoryName(app), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, Classify(err, "inventory configmap/"+ns+"/"+InventoryName(app))
	}
	var refs []ObjRef
	if err := json.Unmarshal([]byte(cm.Data["objects"]), &refs); err != nil {
		return nil, fmt.Errorf("inventory configmap/%s/%s is not readable (%v): delete it to start a new inventory", ns, InventoryName(app), err)
	}
	return refs, nil
}

func (c *Client) writeInventory(ctx context.Context, ns, app string, refs []ObjRef) error {
	refs = append([]ObjRef(nil), refs...)
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	data, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":      InventoryName(app),
			"namespace": ns,
			"labels":    map[string]any{InventoryLabel: app, managedByLabel: "myrmex"},
		},
		"data": map[string]any{
			"objects":    string(data),
			"updated-at": time.Now().UTC().Format(time.RFC3339),
		},
	}}
	ri := c.dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns)
	_, err = c.applyOne(ctx, ri, cm, false, true)
	return err
}

func inventoryMinus(inv, current []ObjRef) []ObjRef {
	keep := make(map[ObjRef]bool, len(current))
	for _, r := range current {
		keep[r] = true
	}
	var out []ObjRef
	for _, r := range inv {
		if !keep[r] {
			out = append(out, r)
		}
	}
	return out
}

func unionRefs(a, b []ObjRef) []ObjRef {
	seen := map[ObjRef]bool{}
	var out []ObjRef
	for _, s := range [][]ObjRef{a, b} {
		for _, r := range s {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// getRef reads an object by group, kind, namespace and name, in the API server's preferred version.
func (c *Client) getRef(ctx context.Context, r ObjRef) (*unstructured.Unstructured, error) {
	m, err := c.mapper.RESTMapping(schema.GroupKind{Group: r.Group, Kind: r.Kind})
	if err != nil {
		return nil, err
	}
	return c.resource(m, r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
}

// prunable: the object exists and carries this application's annotation (another tool or application may have
// taken it over since: then it is left alone).
func (c *Client) prunable(ctx context.Context, r ObjRef, appID string) (bool, error) {
	u, err := c.getRef(ctx, r)
	if err != nil {
		if apierrors.IsNotFound(err) || isNoMatch(err) {
			return false, nil
		}
		return false, Classify(err, r.String())
	}
	return u.GetAnnotations()[AppAnnotation] == appID && u.GetDeletionTimestamp() == nil, nil
}

// prune deletes the objects of the set that still carry the application's annotation, workloads before what
// they use, namespaces last. Each delete has the UID and resourceVersion prune read as preconditions (see
// [Client.deleteRef]).
func (c *Client) prune(ctx context.Context, refs []ObjRef, appID string, emit func(Event)) ([]Change, error) {
	refs = append([]ObjRef(nil), refs...)
	sort.SliceStable(refs, func(i, j int) bool { return rankOf(refs[i].Kind) > rankOf(refs[j].Kind) })
	owned := func(u *unstructured.Unstructured) bool { return u.GetAnnotations()[AppAnnotation] == appID }
	var done []Change
	for _, r := range refs {
		ok, err := c.deleteRef(ctx, r, owned)
		if err != nil {
			return done, err
		}
		if !ok {
			continue
		}
		done = append(done, Change{Object: r.String(), Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Action: "pruned"})
		emit(Event{Phase: "prune", Object: r.String(), Status: "deleted"})
	}
	return done, nil
}

// deleteAttempts bounds how often deleteRef reads an object again when it changed between its read and its delete.
const deleteAttempts = 10

// deleteRef deletes the object if it exists, is not being deleted, and owned says it may go; it tells whether it
// deleted it. The delete carries the UID and resourceVersion of the object owned saw as preconditions, so that
// neither another object of the same name made since, nor the same object changed since (its annotation removed,
// say), is deleted on the strength of an older read: when the API server refuses for that reason, the object is
// read and judged again.
func (c *Client) deleteRef(ctx context.Context, r ObjRef, owned func(*unstructured.Unstructured) bool) (bool, error) {
	m, err := c.mapper.RESTMapping(schema.GroupKind{Group: r.Group, Kind: r.Kind})
	if err != nil {
		if isNoMatch(err) {
			return false, nil
		}
		return false, Classify(err, r.String())
	}
	ri := c.resource(m, r.Namespace)
	for attempt := 1; ; attempt++ {
		u, err := ri.Get(ctx, r.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, Classify(err, r.String())
		}
		if u.GetDeletionTimestamp() != nil || !owned(u) {
			return false, nil
		}
		uid, rv := u.GetUID(), u.GetResourceVersion()
		bg := metav1.DeletePropagationBackground
		err = ri.Delete(ctx, r.Name, metav1.DeleteOptions{PropagationPolicy: &bg,
			Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		case apierrors.IsConflict(err) && attempt < deleteAttempts:
			// A precondition failed: the object changed, or is another one, since the read.
		default:
			return false, Classify(err, r.String())
		}
	}
}
