package kube

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// PodContainer is one container (or init container) the manifests run, with what a policy reads of it.
type PodContainer struct {
	// Object is the workload ("Deployment/shop/web"), Container the container's name.
	Object    string
	Container string
	Init      bool
	Image     string
	// The container's security context over the pod's.
	Privileged   bool
	RunAsUser    *int64
	RunAsNonRoot *bool
	// CPULimit and MemoryLimit say which limits are set.
	CPULimit, MemoryLimit bool
	HostNetwork           bool
	// HostPaths are the pod's hostPath volumes the container mounts.
	HostPaths []string
}

// Gate is called by Apply with every container the objects will run (after the overrides), before anything
// reaches the cluster; its error stops the apply. The pins it returns replace images (an image as written →
// the reference it is applied as, a tag by the digest it was checked at).
type Gate func(ctx context.Context, containers []PodContainer) (pins map[string]string, err error)

// podSpecPath is where a kind keeps its pod spec; ok is false for kinds that run no pods.
func podSpecPath(kind string) ([]string, bool) {
	if kind == "Pod" {
		return []string{"spec"}, true
	}
	if tpl := podTemplatePath(kind); tpl != nil {
		return append(append([]string{}, tpl...), "spec"), true
	}
	return nil, false
}

// PodContainers lists the containers and init containers of every object that runs pods.
func PodContainers(objs []*Object) []PodContainer {
	var out []PodContainer
	for _, obj := range objs {
		path, ok := podSpecPath(obj.GetKind())
		if !ok {
			continue
		}
		spec, found, _ := unstructured.NestedMap(obj.Object, path...)
		if !found {
			continue
		}
		ref := obj.GetKind() + "/" + obj.GetName()
		if ns := obj.GetNamespace(); ns != "" {
			ref = obj.GetKind() + "/" + ns + "/" + obj.GetName()
		}
		hostNet, _ := spec["hostNetwork"].(bool)
		podSC, _ := spec["securityContext"].(map[string]any)
		hostVolumes := map[string]string{}
		if vols, ok := spec["volumes"].([]any); ok {
			for _, v := range vols {
				vm, _ := v.(map[string]any)
				hp, _ := vm["hostPath"].(map[string]any)
				name, _ := vm["name"].(string)
				if p, _ := hp["path"].(string); p != "" {
					hostVolumes[name] = p
				}
			}
		}
		for _, field := range []string{"initContainers", "containers"} {
			list, _ := spec[field].([]any)
			for _, item := range list {
				c, ok := item.(map[string]any)
				if !ok {
					continue
				}
				pc := PodContainer{Object: ref, Init: field == "initContainers", HostNetwork: hostNet}
				pc.Container, _ = c["name"].(string)
				pc.Image, _ = c["image"].(string)
				sc, _ := c["securityContext"].(map[string]any)
				pc.Privileged, _ = sc["privileged"].(bool)
				pc.RunAsUser = firstInt(sc["runAsUser"], podSC["runAsUser"])
				pc.RunAsNonRoot = firstBool(sc["runAsNonRoot"], podSC["runAsNonRoot"])
				res, _ := c["resources"].(map[string]any)
				limits, _ := res["limits"].(map[string]any)
				pc.CPULimit, pc.MemoryLimit = limitSet(limits["cpu"]), limitSet(limits["memory"])
				if mounts, ok := c["volumeMounts"].([]any); ok {
					for _, m := range mounts {
						mm, _ := m.(map[string]any)
						name, _ := mm["name"].(string)
						if p, ok := hostVolumes[name]; ok {
							pc.HostPaths = append(pc.HostPaths, p)
						}
					}
				}
				out = append(out, pc)
			}
		}
	}
	return out
}

// limitSet reports whether a limit's value limits: a quantity above zero. Kubernetes reads a zero limit as
// none (and null as zero); anything else the API server would refuse.
func limitSet(v any) bool {
	switch n := v.(type) {
	case int64:
		return n > 0
	case float64:
		return n > 0
	case int:
		return n > 0
	case string:
		q, err := resource.ParseQuantity(n)
		return err == nil && q.Sign() > 0
	}
	return false
}

func firstInt(vs ...any) *int64 {
	for _, v := range vs {
		switch n := v.(type) {
		case int64:
			return &n
		case float64:
			i := int64(n)
			return &i
		case int:
			i := int64(n)
			return &i
		}
	}
	return nil
}

func firstBool(vs ...any) *bool {
	for _, v := range vs {
		if b, ok := v.(bool); ok {
			return &b
		}
	}
	return nil
}

// pinImages replaces each container's image by its pin.
func pinImages(objs []*Object, pins map[string]string) {
	if len(pins) == 0 {
		return
	}
	for _, obj := range objs {
		path, ok := podSpecPath(obj.GetKind())
		if !ok {
			continue
		}
		for _, field := range []string{"initContainers", "containers"} {
			p := append(append([]string{}, path...), field)
			list, found, err := unstructured.NestedSlice(obj.Object, p...)
			if err != nil || !found {
				continue
			}
			for i, item := range list {
				c, ok := item.(map[string]any)
				if !ok {
					continue
				}
				if img, _ := c["image"].(string); pins[strings.TrimSpace(img)] != "" {
					c["image"] = pins[strings.TrimSpace(img)]
					list[i] = c
				}
			}
			_ = unstructured.SetNestedSlice(obj.Object, list, p...)
		}
	}
}
