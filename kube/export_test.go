package kube

import "k8s.io/client-go/dynamic"

// WrapDynamic replaces the client's dynamic client by wrap's result, for tests that act between two of its calls.
func (c *Client) WrapDynamic(wrap func(dynamic.Interface) dynamic.Interface) {
	c.dynamic = wrap(c.dynamic)
}
