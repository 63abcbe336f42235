package kube

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// maxFields bounds the changed fields listed per object.
const maxFields = 25

// hiddenValue stands for a Secret's value in a change.
const hiddenValue = "(hidden)"

// describeChange compares an object's live state with what the API server made (or would make) of the apply:
// created when there was none, unchanged when nothing but bookkeeping differs, else configured with the fields
// that change ("spec.replicas: 2 → 3"; "+" added, "-" removed).
func describeChange(live, next *unstructured.Unstructured) (string, []string) {
	if live == nil {
		return "created", nil
	}
	if next == nil {
		return "configured", nil
	}
	a, b := map[string]string{}, map[string]string{}
	flatten("", comparable(live.Object), a)
	flatten("", comparable(next.Object), b)
	// A Secret's values are said to change, never shown (base64 is not a cipher).
	secret := next.GetAPIVersion() == "v1" && next.GetKind() == "Secret"
	show := func(k, v string) string {
		if secret && (strings.HasPrefix(k, "data.") || strings.HasPrefix(k, "stringData.") ||
			k == "metadata.annotations.kubectl.kubernetes.io/last-applied-configuration") {
			return hiddenValue
		}
		return v
	}
	var fields []string
	for k, v := range b {
		if old, ok := a[k]; !ok {
			fields = append(fields, fmt.Sprintf("+%s: %s", k, show(k, v)))
		} else if old != v {
			fields = append(fields, fmt.Sprintf("%s: %s → %s", k, show(k, old), show(k, v)))
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			fields = append(fields, fmt.Sprintf("-%s: %s", k, show(k, v)))
		}
	}
	if len(fields) == 0 {
		return "unchanged", nil
	}
	sort.Slice(fields, func(i, j int) bool { return strings.TrimLeft(fields[i], "+-") < strings.TrimLeft(fields[j], "+-") })
	if len(fields) > maxFields {
		n := len(fields) - maxFields
		fields = append(fields[:maxFields], fmt.Sprintf("… and %d more", n))
	}
	return "configured", fields
}

// comparable drops what changes on every write: status, resourceVersion, generation, managedFields, timestamps.
func comparable(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if k == "status" {
			continue
		}
		out[k] = v
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(md))
		for k, v := range md {
			switch k {
			case "managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink":
				continue
			}
			m[k] = v
		}
		if ann, ok := m["annotations"].(map[string]any); ok {
			a := make(map[string]any, len(ann))
			for k, v := range ann {
				// Bumped by the Deployment controller, not by the apply.
				if k == "deployment.kubernetes.io/revision" {
					continue
				}
				a[k] = v
			}
			m["annotations"] = a
		}
		out["metadata"] = m
	}
	return out
}

// flatten writes leaf values by path: a.b[0].c → JSON value. Lists of named items use the name as the index.
func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			return
		}
		for k, vv := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, vv, out)
		}
	case []any:
		for i, vv := range t {
			idx := fmt.Sprint(i)
			if m, ok := vv.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					idx = n
				}
			}
			flatten(fmt.Sprintf("%s[%s]", prefix, idx), vv, out)
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
}
