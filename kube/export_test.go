package kube

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// WrapDynamic replaces the client's dynamic client by wrap's result, for tests that act between two of its calls.
func (c *Client) WrapDynamic(wrap func(dynamic.Interface) dynamic.Interface) {
	c.dynamic = wrap(c.dynamic)
}

// SetWatchTimeout bounds every watch of a wait by d until the test ends, so that a test sees the server end
// watches and the wait resume them.
func SetWatchTimeout(t testing.TB, d time.Duration) {
	old := watchTimeout
	watchTimeout = d
	t.Cleanup(func() { watchTimeout = old })
}

// Follow runs a wait's feed of a namespace's collection, watching from resourceVersion rv (empty: listing first),
// until it holds an object of that name or ctx ends; it returns how many lists the feed made.
func (c *Client) Follow(ctx context.Context, gvr schema.GroupVersionResource, ns, rv, name string) (int, error) {
	f := newFeed(c.dynamic.Resource(gvr).Namespace(ns), gvr.Resource+" in "+ns, "", keepObjects(map[string]bool{name: true}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := f.run(ctx, rv, func() {
		if f.get(name) != nil {
			cancel()
		}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && f.objs[name] == nil {
		err = ctx.Err()
	}
	return f.lists, err
}
