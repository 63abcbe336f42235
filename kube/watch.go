package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/codomyrmex/containerization/errdefs"
)

// watchTimeout bounds each watch request of a wait (the API server's own default is 30 to 60 minutes): a watch
// that a proxy or load balancer silently dropped is noticed, and opened anew, within it.
var watchTimeout = 5 * time.Minute

// listPage is the page size of a feed's and the preflight's lists: no answer holds more objects than this.
const listPage = 500

// errNoWatch says a feed could not list or watch its collection (RBAC without those verbs, or an API that
// serves no watch): the wait polls instead.
var errNoWatch = errors.New("cannot watch")

// feed keeps one collection of the API server current for a wait: a LIST (in pages), then a WATCH from the
// list's resourceVersion, with bookmarks, for at most watchTimeout; resumed from the last version seen when the
// server (or the timeout) ends it, and listed anew when the server has forgotten that version (410 Gone).
type feed struct {
	ri       dynamic.ResourceInterface
	what     string // for errors: "deployments.apps in shop"
	selector string // a field selector ("metadata.name=web"), or empty for the whole collection
	// keep is what the wait keeps of an object (a trimmed copy, or a typed one); nil: nothing, the wait does not
	// need the object (a feed of a whole collection keeps only the objects waited for).
	keep func(*unstructured.Unstructured) (any, error)

	mu     sync.Mutex
	objs   map[string]any // by name
	synced bool           // listed at least once
	lists  int            // lists made (the first and every re-list): for tests
}

func newFeed(ri dynamic.ResourceInterface, what, selector string, keep func(*unstructured.Unstructured) (any, error)) *feed {
	return &feed{ri: ri, what: what, selector: selector, keep: keep, objs: map[string]any{}}
}

// isSynced says the feed has listed its collection: its objects are the server's.
func (f *feed) isSynced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

// get is one object of the feed, or nil.
func (f *feed) get(name string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objs[name]
}

// all is every object of the feed, in no order.
func (f *feed) all() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]any, 0, len(f.objs))
	for _, o := range f.objs {
		out = append(out, o)
	}
	return out
}

// run keeps the feed current until ctx ends (then it returns nil) or it fails: errNoWatch (wrapped) when the
// server refuses the list or the watch, else the classified error. It watches from rv, or lists first when rv is
// empty. changed is called after every change.
func (f *feed) run(ctx context.Context, rv string, changed func()) error {
	failures := 0 // consecutive failures to open a watch or list, or watches ended at once with nothing
	for ctx.Err() == nil {
		var err error
		if rv == "" {
			if rv, err = f.list(ctx); err == nil {
				changed()
			}
		} else {
			var progressed bool
			began := time.Now()
			rv, progressed, err = f.watch(ctx, rv, changed)
			if err == nil && !progressed && time.Since(began) < watchTimeout/2 {
				err = errQuickClose
			}
		}
		switch {
		case err == nil:
			failures = 0
			continue
		case ctx.Err() != nil:
			return nil
		case apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) || apierrors.IsBadRequest(err):
			// RBAC without list or watch, an API without watch, or one that cannot select by name.
			return fmt.Errorf("%w: %s: %w", errNoWatch, f.what, err)
		case deadlineWouldPass(err):
			return err
		}
		// The server restarting, a proxy dropping the connection, a watch ended before it began: tries for about
		// ten seconds, with a pause that grows, before giving up.
		if failures++; failures > 8 {
			return Classify(err, f.what)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(failures)*250*time.Millisecond, 2*time.Second)):
		}
	}
	return nil
}

// errQuickClose is a watch that ended without any event or bookmark long before its timeout: retried after a
// pause, like a failure, so that a server that ends every watch at once is not asked again and again.
var errQuickClose = errors.New("the watch ended at once")

// list reads the whole collection, page by page, and replaces the feed's objects; it returns the list's
// resourceVersion, from which the watch starts.
func (f *feed) list(ctx context.Context) (string, error) {
	objs := map[string]any{}
	opts := metav1.ListOptions{FieldSelector: f.selector, Limit: listPage}
	for {
		l, err := f.ri.List(ctx, opts)
		if apierrors.IsResourceExpired(err) && opts.Continue != "" {
			// The continue token outlived its snapshot: start the list again.
			objs, opts.Continue = map[string]any{}, ""
			continue
		}
		if err != nil {
			return "", err
		}
		for i := range l.Items {
			k, err := f.keep(&l.Items[i])
			if err != nil {
				return "", err
			}
			if k != nil {
				objs[l.Items[i].GetName()] = k
			}
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			f.mu.Lock()
			f.objs, f.synced = objs, true
			f.lists++
			f.mu.Unlock()
			return l.GetResourceVersion(), nil
		}
	}
}

// watch follows the collection from rv until the watch ends: it returns the resourceVersion to resume from ("":
// list again), and whether the watch brought anything (an event or a bookmark).
func (f *feed) watch(ctx context.Context, rv string, changed func()) (string, bool, error) {
	secs := int64(watchTimeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	w, err := f.ri.Watch(ctx, metav1.ListOptions{FieldSelector: f.selector, ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &secs})
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return "", true, nil
	}
	if err != nil {
		return rv, false, err
	}
	defer w.Stop()
	progressed := false
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, progressed, nil
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			return rv, progressed, nil
		}
		progressed = true
		if ev.Type == watch.Error {
			err := apierrors.FromObject(ev.Object)
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				return "", true, nil // the server forgot rv: list again
			}
			return rv, true, err
		}
		u, isU := ev.Object.(*unstructured.Unstructured)
		if !isU {
			return rv, true, fmt.Errorf("%w: %s: a watch event of %T", errdefs.ErrUnavailable, f.what, ev.Object)
		}
		rv = u.GetResourceVersion()
		switch ev.Type {
		case watch.Added, watch.Modified:
			k, err := f.keep(u)
			if err != nil {
				return rv, true, err
			}
			if k == nil {
				continue
			}
			f.mu.Lock()
			f.objs[u.GetName()] = k
			f.mu.Unlock()
			changed()
		case watch.Deleted:
			f.mu.Lock()
			_, had := f.objs[u.GetName()]
			delete(f.objs, u.GetName())
			f.mu.Unlock()
			if had {
				changed()
			}
		}
	}
}

// keepObjects keeps, of the objects of a collection, those named, without their managed fields.
func keepObjects(names map[string]bool) func(*unstructured.Unstructured) (any, error) {
	return func(u *unstructured.Unstructured) (any, error) {
		if !names[u.GetName()] {
			return nil, nil
		}
		u.SetManagedFields(nil)
		return u, nil
	}
}

// keepPod is what a wait keeps of a pod: what says which workload it belongs to and how it fares.
func keepPod(u *unstructured.Unstructured) (any, error) {
	var p corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
		return nil, fmt.Errorf("%w: pod %s: %v", errdefs.ErrUnavailable, u.GetName(), err)
	}
	return trimPod(&p), nil
}

// trimPod is a pod with only what a wait reads of it: its name, labels, owners and deletion, its node and status.
func trimPod(p *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, Labels: p.Labels,
			OwnerReferences: p.OwnerReferences, DeletionTimestamp: p.DeletionTimestamp},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status: p.Status,
	}
}
