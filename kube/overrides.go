package kube

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/codomyrmex/containerization/errdefs"
)

// Overrides change the objects read from the manifests before they are sent; the files are never edited.
type Overrides struct {
	// Replicas sets spec.replicas of the primary workload (the Deployment, StatefulSet or ReplicaSet named after
	// the application).
	Replicas *int32
	// Image sets the image of every container of the primary workload.
	Image string
	// Images sets, per container name, the image of that container (and init container) in every workload.
	Images map[string]string
	// Resources sets requests and limits ("cpu", "memory", …) on every container of the primary workload.
	Requests, Limits map[string]string
	// Labels and Annotations are added to every object and to the pod templates of workloads (never to
	// selectors, which are immutable).
	Labels, Annotations map[string]string
	// Env sets environment variables on every container of the primary workload (replacing ones of that name).
	Env map[string]string
	// SecretEnv sets environment variables from Secrets on the same containers: name → the Secret's name and key
	// (valueFrom.secretKeyRef), so that no value is written into the pod spec.
	SecretEnv map[string]SecretKey
}

// SecretKey names one key of a Secret.
type SecretKey struct{ Name, Key string }

func (o Overrides) validate() error {
	if o.Replicas != nil && *o.Replicas < 0 {
		return fmt.Errorf("%w: replicas %d is negative", errdefs.ErrInvalidArgument, *o.Replicas)
	}
	for name, q := range o.Requests {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("%w: resource request %s=%q: %v", errdefs.ErrInvalidArgument, name, q, err)
		}
	}
	for name, q := range o.Limits {
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("%w: resource limit %s=%q: %v", errdefs.ErrInvalidArgument, name, q, err)
		}
	}
	for k := range o.Labels {
		if k == "" {
			return fmt.Errorf("%w: empty label key", errdefs.ErrInvalidArgument)
		}
	}
	for k, v := range o.Env {
		if k == "" || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return fmt.Errorf("%w: environment override %q: a name is required, and neither name nor value may hold a NUL byte", errdefs.ErrInvalidArgument, k)
		}
	}
	for c, img := range o.Images {
		if c == "" || img == "" {
			return fmt.Errorf("%w: image override %q=%q: give container=image", errdefs.ErrInvalidArgument, c, img)
		}
	}
	return nil
}

func (o Overrides) empty() bool {
	return o.Replicas == nil && o.Image == "" && len(o.Images) == 0 && len(o.Requests) == 0 && len(o.Limits) == 0 &&
		len(o.Labels) == 0 && len(o.Annotations) == 0 && len(o.Env) == 0 && len(o.SecretEnv) == 0
}

// podTemplatePath is where a workload kind keeps its pod template.
func podTemplatePath(kind string) []string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
		return []string{"spec", "template"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}
	}
	return nil
}

// isPrimaryKind: the kinds an application's status is read from (see primaryKinds).
func isPrimaryKind(group, kind string) bool {
	return group == "apps" && (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet") ||
		group == "batch" && kind == "Job"
}

// apply changes the objects in place. primary is the application's workload, or nil.
func (o Overrides) apply(objs []*Object, primary *Object) error {
	if o.Replicas != nil || o.Image != "" || len(o.Requests) > 0 || len(o.Limits) > 0 || len(o.Env) > 0 || len(o.SecretEnv) > 0 {
		if primary == nil {
			return fmt.Errorf("%w: replicas, image, resources and environment overrides apply to the application's Deployment, StatefulSet, DaemonSet or Job, and the manifests have none", errdefs.ErrInvalidArgument)
		}
	}
	usedImages := map[string]bool{}
	for _, obj := range objs {
		if len(o.Labels) > 0 {
			obj.SetLabels(merged(obj.GetLabels(), o.Labels))
		}
		if len(o.Annotations) > 0 {
			obj.SetAnnotations(merged(obj.GetAnnotations(), o.Annotations))
		}
		tpl := podTemplatePath(obj.GetKind())
		if tpl == nil {
			continue
		}
		if len(o.Labels) > 0 {
			if err := mergeMap(obj.Object, append(append([]string{}, tpl...), "metadata", "labels"), o.Labels); err != nil {
				return fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, obj.Ref(), err)
			}
		}
		if len(o.Annotations) > 0 {
			if err := mergeMap(obj.Object, append(append([]string{}, tpl...), "metadata", "annotations"), o.Annotations); err != nil {
				return fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, obj.Ref(), err)
			}
		}
		isPrimary := obj == primary
		for _, field := range []string{"containers", "initContainers"} {
			path := append(append([]string{}, tpl...), "spec", field)
			list, found, err := unstructured.NestedSlice(obj.Object, path...)
			if err != nil {
				return fmt.Errorf("%w: %s: %s: %v", errdefs.ErrInvalidArgument, obj.Ref(), strings.Join(path, "."), err)
			}
			if !found {
				continue
			}
			for i, item := range list {
				c, ok := item.(map[string]any)
				if !ok {
					continue
				}
				name, _ := c["name"].(string)
				if img, ok := o.Images[name]; ok {
					c["image"] = img
					usedImages[name] = true
				}
				if isPrimary && field == "containers" {
					if o.Image != "" {
						c["image"] = o.Image
					}
					if len(o.Requests) > 0 || len(o.Limits) > 0 {
						res, _ := c["resources"].(map[string]any)
						if res == nil {
							res = map[string]any{}
						}
						setQuantities(res, "requests", o.Requests)
						setQuantities(res, "limits", o.Limits)
						c["resources"] = res
					}
					if len(o.Env) > 0 || len(o.SecretEnv) > 0 {
						c["env"] = mergeEnv(c["env"], o.Env, o.SecretEnv)
					}
				}
				list[i] = c
			}
			if err := unstructured.SetNestedSlice(obj.Object, list, path...); err != nil {
				return fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, obj.Ref(), err)
			}
		}
		if isPrimary && o.Replicas != nil {
			switch obj.GetKind() {
			case "DaemonSet":
				return fmt.Errorf("%w: %s: a DaemonSet has no replicas (it runs one pod per node)", errdefs.ErrInvalidArgument, obj.Ref())
			case "Job":
				return fmt.Errorf("%w: %s: a Job has no replicas (set its completions and parallelism in the manifest)", errdefs.ErrInvalidArgument, obj.Ref())
			}
			if err := unstructured.SetNestedField(obj.Object, int64(*o.Replicas), "spec", "replicas"); err != nil {
				return fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, obj.Ref(), err)
			}
		}
	}
	var missing []string
	for name := range o.Images {
		if !usedImages[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: image override for container %s: no workload in the manifests has a container of that name", errdefs.ErrInvalidArgument, strings.Join(missing, ", "))
	}
	return nil
}

func merged(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func mergeMap(obj map[string]any, path []string, add map[string]string) error {
	cur, _, err := unstructured.NestedStringMap(obj, path...)
	if err != nil {
		return err
	}
	m := map[string]any{}
	for k, v := range merged(cur, add) {
		m[k] = v
	}
	return unstructured.SetNestedMap(obj, m, path...)
}

func setQuantities(res map[string]any, key string, q map[string]string) {
	if len(q) == 0 {
		return
	}
	cur, _ := res[key].(map[string]any)
	if cur == nil {
		cur = map[string]any{}
	}
	for k, v := range q {
		cur[k] = v
	}
	res[key] = cur
}

// mergeEnv sets the variables on a container's env list (env's as values, secrets' as references to Secret
// keys), replacing entries of the same name and keeping order.
func mergeEnv(existing any, env map[string]string, secrets map[string]SecretKey) []any {
	entry := func(name string) (map[string]any, bool) {
		if v, ok := env[name]; ok {
			return map[string]any{"name": name, "value": v}, true
		}
		if ref, ok := secrets[name]; ok {
			return map[string]any{"name": name, "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": ref.Name, "key": ref.Key}}}, true
		}
		return nil, false
	}
	list, _ := existing.([]any)
	done := map[string]bool{}
	out := make([]any, 0, len(list)+len(env)+len(secrets))
	for _, item := range list {
		e, ok := item.(map[string]any)
		if !ok {
			continue
		}
		name, _ := e["name"].(string)
		if set, ok := entry(name); ok {
			e = set
			done[name] = true
		}
		out = append(out, e)
	}
	names := make([]string, 0, len(env)+len(secrets))
	for k := range env {
		if !done[k] {
			names = append(names, k)
		}
	}
	for k := range secrets {
		if _, plain := env[k]; !done[k] && !plain {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		e, _ := entry(k)
		out = append(out, e)
	}
	return out
}
