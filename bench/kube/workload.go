package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/kube"
)

type bench struct {
	cfg   config
	c     *kube.Client // the benchmark's own client: namespaces, verification, cleanup
	tmp   string
	runID string
	order *benchkit.Order // the contenders' order in every round

	manifests string   // directory of the N manifests, one file each
	names     []string // the Deployments' names
}

// manifestTemplate is one Deployment of the workload: one replica of a tiny container, no namespace (each
// contender deploys to its own). %[1]s is the name, %[2]s the run id, %[3]s the image.
const manifestTemplate = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels:
    app.kubernetes.io/name: %[1]s
    app.kubernetes.io/part-of: bench-kube
    io.codomyrmex.bench.run: "%[2]s"
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: %[1]s
  template:
    metadata:
      labels:
        app.kubernetes.io/name: %[1]s
        app.kubernetes.io/part-of: bench-kube
    spec:
      containers:
      - name: app
        image: %[3]s
        command: ["sleep", "3600"]
        resources:
          requests:
            cpu: 10m
            memory: 16Mi
`

// setup writes the manifests: one file per Deployment in one directory, as kubectl apply -f DIR and
// kube.ReadManifests(DIR) both read them.
func (b *bench) setup(rep *report) error {
	t := time.Now()
	b.manifests = filepath.Join(b.tmp, "manifests")
	if err := os.MkdirAll(b.manifests, 0o755); err != nil {
		return err
	}
	for i := 1; i <= b.cfg.n; i++ {
		name := fmt.Sprintf("web-%03d", i)
		b.names = append(b.names, name)
		if err := os.WriteFile(filepath.Join(b.manifests, name+".yaml"), []byte(b.manifest(name)), 0o644); err != nil {
			return err
		}
	}
	rep.Manifest = b.manifest("web-001")
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: fmt.Sprintf("%d manifests written", b.cfg.n), Seconds: time.Since(t).Seconds()})
	return nil
}

func (b *bench) manifest(name string) string {
	return fmt.Sprintf(manifestTemplate, name, b.runID, b.cfg.image)
}

// namespace is a contender's namespace for one round.
func (b *bench) namespace(key, round string) string {
	return "bench-kube-" + b.runID + "-" + round + "-" + key
}

// createNamespace makes a namespace labelled with the run and waits for its default service account, without
// which the ReplicaSet controller cannot create pods: the contenders start from a namespace that is ready.
func (b *bench) createNamespace(ctx context.Context, name string) error {
	_, err := b.c.Typed().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{runLabel: b.runID}}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := b.c.Typed().CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s: no default service account after 30s", name)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// deleteNamespace deletes a namespace and waits until it is gone, with everything in it (the Deployments, their
// ReplicaSets and pods), so that the next contender does not share the control plane with a cascade of deletes.
func (b *bench) deleteNamespace(ctx context.Context, name string) error {
	err := b.c.Typed().CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		_, err := b.c.Typed().CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s still exists 3 minutes after its deletion", name)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// deleteRunNamespaces deletes every namespace of this run that is left (after a failure or an interrupt) and
// waits for them to go.
func (b *bench) deleteRunNamespaces(ctx context.Context) (int, error) {
	l, err := b.c.Typed().CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: runLabel + "=" + b.runID})
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, ns := range l.Items {
		if err := b.deleteNamespace(ctx, ns.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return len(l.Items), fmt.Errorf("cleanup: %v", errs)
	}
	return len(l.Items), nil
}

// otherNamespaces lists the namespaces that are not the control plane's own nor this run's: someone else's work
// on the same API server (a test run, say), which the report mentions.
func (b *bench) otherNamespaces(ctx context.Context) ([]string, error) {
	l, err := b.c.Typed().CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var others []string
	for _, ns := range l.Items {
		switch {
		case ns.Name == "default", ns.Name == "kube-system", ns.Name == "kube-public", ns.Name == "kube-node-lease":
		case ns.Labels[runLabel] == b.runID:
		default:
			others = append(others, ns.Name)
		}
	}
	slices.Sort(others)
	return others, nil
}

// verify reads the namespace's Deployments and checks that they are exactly the N of the workload, each with its
// one replica updated, ready and available, its spec observed by the controller, and applied by manager.
func (b *bench) verify(ctx context.Context, ns, manager string) error {
	l, err := b.c.Typed().AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("verification: listing Deployments: %w", err)
	}
	if len(l.Items) != len(b.names) {
		return fmt.Errorf("verification: %d Deployments in %s, want %d", len(l.Items), ns, len(b.names))
	}
	var bad []string
	for i := range l.Items {
		d := &l.Items[i]
		if !slices.Contains(b.names, d.Name) {
			bad = append(bad, d.Name+": not a Deployment of the workload")
			continue
		}
		if p := problem(d, manager); p != "" {
			bad = append(bad, d.Name+": "+p)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("verification: %d of %d Deployments in %s are not rolled out: %s", len(bad), len(b.names), ns,
			strings.Join(bad[:min(5, len(bad))], "; "))
	}
	return nil
}

// problem says what is wrong with a Deployment that should be rolled out, or "".
func problem(d *appsv1.Deployment, manager string) string {
	if p := rollout(d); p != "" {
		return p
	}
	for _, mf := range d.ManagedFields {
		// Server-side apply records an Apply; kubectl's client-side apply an Update by its own manager.
		if mf.Manager == manager && (mf.Operation == metav1.ManagedFieldsOperationApply || manager == kubectlCSAManager) {
			return ""
		}
	}
	var ms []string
	for _, mf := range d.ManagedFields {
		ms = append(ms, mf.Manager+" ("+string(mf.Operation)+")")
	}
	return fmt.Sprintf("not applied by field manager %q (managers: %s)", manager, strings.Join(ms, ", "))
}

// rollout says why a Deployment is not rolled out (its one replica updated, ready and available, its spec
// observed), or "" when it is.
func rollout(d *appsv1.Deployment) string {
	s := d.Status
	switch {
	case d.Spec.Replicas == nil || *d.Spec.Replicas != 1:
		return "spec.replicas is not 1"
	case s.ObservedGeneration < d.Generation:
		return fmt.Sprintf("generation %d not observed (observed %d)", d.Generation, s.ObservedGeneration)
	case s.ReadyReplicas != 1 || s.AvailableReplicas != 1 || s.UpdatedReplicas != 1:
		return fmt.Sprintf("ready %d, available %d, updated %d replicas, want 1 each", s.ReadyReplicas, s.AvailableReplicas, s.UpdatedReplicas)
	}
	return ""
}

// observer watches a namespace's Deployments during a run and notes when each is first rolled out: when the
// last one was, the control plane had done the work, and what a contender takes beyond is its own latency in
// noticing. One watch of the benchmark's own, opened before the timer starts.
type observer struct {
	mu     sync.Mutex
	seen   map[string]time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

func (b *bench) observe(ctx context.Context, ns string) (*observer, error) {
	wctx, cancel := context.WithCancel(ctx)
	w, err := b.c.Typed().AppsV1().Deployments(ns).Watch(wctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watching Deployments in %s: %w", ns, err)
	}
	o := &observer{seen: map[string]time.Time{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		defer w.Stop()
		for ev := range w.ResultChan() {
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || rollout(d) != "" {
				continue
			}
			o.mu.Lock()
			if _, dup := o.seen[d.Name]; !dup {
				o.seen[d.Name] = time.Now()
			}
			o.mu.Unlock()
		}
	}()
	return o, nil
}

// stop ends the watch and returns when the last Deployment was first seen rolled out, and how many were.
func (o *observer) stop() (time.Time, int) {
	o.cancel()
	<-o.done
	var last time.Time
	for _, t := range o.seen {
		if t.After(last) {
			last = t
		}
	}
	return last, len(o.seen)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
