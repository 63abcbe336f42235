package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/codomyrmex/containerization/errdefs"
)

// ValidateNamespace checks a namespace's name: a DNS label (lowercase letters, digits and '-', at most 63), as
// Kubernetes requires.
func ValidateNamespace(namespace string) error {
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return fmt.Errorf("%w: namespace %q: %s", errdefs.ErrInvalidArgument, namespace, strings.Join(errs, "; "))
	}
	return nil
}

// MaxListed bounds the workloads of one kind that [Client.List] reads from a namespace.
const MaxListed = 2000

// List reads the Deployments, StatefulSets and DaemonSets of namespace (empty: the kubeconfig context's), each
// with its pods and services as [Client.Status] gives them, sorted by kind and name. The namespace's pods,
// ReplicaSets and Services are read once for all of them. A namespace holding more than [MaxListed] workloads of
// one kind is ErrInvalidArgument: ask for them by name.
func (c *Client) List(ctx context.Context, namespace string) ([]Status, error) {
	if namespace == "" {
		namespace = c.namespace
	}
	if err := ValidateNamespace(namespace); err != nil {
		return nil, err
	}
	apps := c.typed.AppsV1()
	lo := metav1.ListOptions{Limit: MaxListed + 1}
	var objs []runtime.Object
	tooMany := func(kind string, n int, cont string) error {
		if n > MaxListed || cont != "" {
			return fmt.Errorf("%w: namespace %s holds more than %d %ss: ask for them by name", errdefs.ErrInvalidArgument, namespace, MaxListed, kind)
		}
		return nil
	}
	deps, err := apps.Deployments(namespace).List(ctx, lo)
	if err != nil {
		return nil, Classify(err, "deployments of "+namespace)
	}
	if err := tooMany("Deployment", len(deps.Items), deps.Continue); err != nil {
		return nil, err
	}
	for i := range deps.Items {
		objs = append(objs, &deps.Items[i])
	}
	stss, err := apps.StatefulSets(namespace).List(ctx, lo)
	if err != nil {
		return nil, Classify(err, "statefulsets of "+namespace)
	}
	if err := tooMany("StatefulSet", len(stss.Items), stss.Continue); err != nil {
		return nil, err
	}
	for i := range stss.Items {
		objs = append(objs, &stss.Items[i])
	}
	dss, err := apps.DaemonSets(namespace).List(ctx, lo)
	if err != nil {
		return nil, Classify(err, "daemonsets of "+namespace)
	}
	if err := tooMany("DaemonSet", len(dss.Items), dss.Continue); err != nil {
		return nil, err
	}
	for i := range dss.Items {
		objs = append(objs, &dss.Items[i])
	}
	out := make([]Status, 0, len(objs))
	if len(objs) == 0 {
		return out, nil
	}
	pods, err := c.typed.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, Classify(err, "pods of "+namespace)
	}
	var rss []appsv1.ReplicaSet
	if len(deps.Items) > 0 {
		l, err := apps.ReplicaSets(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, Classify(err, "replicasets of "+namespace)
		}
		rss = l.Items
	}
	svcs, err := c.typed.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, Classify(err, "services of "+namespace)
	}
	for _, obj := range objs {
		w, err := workloadOf(obj)
		if err != nil {
			return nil, err
		}
		st, err := statusIn(w, pods.Items, rss, svcs.Items)
		if err != nil {
			return nil, err
		}
		out = append(out, *st)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return rankOfWorkload(out[i].Kind) < rankOfWorkload(out[j].Kind)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// NamespaceList is the cluster's namespaces.
type NamespaceList struct {
	// Namespaces are their names, sorted: at most [MaxListed], and Truncated when there are more.
	Namespaces []string `json:"namespaces"`
	Truncated  bool     `json:"truncated,omitempty"`
	// Current is the kubeconfig context's namespace, the one an empty namespace means.
	Current string `json:"current"`
}

// Namespaces lists the cluster's namespaces.
func (c *Client) Namespaces(ctx context.Context) (*NamespaceList, error) {
	l, err := c.typed.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: MaxListed})
	if err != nil {
		return nil, Classify(err, "namespaces")
	}
	out := &NamespaceList{Namespaces: make([]string, 0, len(l.Items)), Truncated: l.Continue != "", Current: c.namespace}
	for _, ns := range l.Items {
		out.Namespaces = append(out.Namespaces, ns.Name)
	}
	sort.Strings(out.Namespaces)
	return out, nil
}

func rankOfWorkload(kind string) int {
	switch kind {
	case "Deployment":
		return 0
	case "StatefulSet":
		return 1
	}
	return 2
}
