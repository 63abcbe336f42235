package kube

import (
	"encoding/base64"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A Secret whose values change is reported configured with the keys that change, never their values (old or new,
// in base64 as the API server returns them); other objects' values are still shown.
func TestReview4SecretChangesHideValues(t *testing.T) {
	secret := func(v string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": "s"},
			"data":     map[string]any{"pw": base64.StdEncoding.EncodeToString([]byte(v)), "added": "eA=="}}}
	}
	live := secret("old-canary")
	delete(live.Object["data"].(map[string]any), "added")
	action, fields := describeChange(live, secret("new-canary"))
	joined := strings.Join(fields, "; ")
	if action != "configured" || !strings.Contains(joined, "data.pw: (hidden) → (hidden)") || !strings.Contains(joined, "+data.added: (hidden)") {
		t.Errorf("describeChange = %s %q", action, fields)
	}
	for _, v := range []string{"old-canary", "new-canary"} {
		if strings.Contains(joined, base64.StdEncoding.EncodeToString([]byte(v))) {
			t.Errorf("the change shows %s: %s", v, joined)
		}
	}
	cm := func(v string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "c"}, "data": map[string]any{"k": v}}}
	}
	if _, fields := describeChange(cm("a"), cm("b")); strings.Join(fields, "") != `data.k: "a" → "b"` {
		t.Errorf("a ConfigMap's change = %q", fields)
	}
}
