package yamlout_test

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/internal/yamlout"
)

// Strings that sigs.k8s.io/yaml refuses or changes come back whole, as keys and as values, and ordinary output
// is what sigs.k8s.io/yaml writes.
func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"x\x7fy", "x\x1by", "x\u0085y", "x\u009fy", "x\ufeffy", "x\uffffy", "x\ufffey", "a\u2028b\u2029c", "tab\tnew\nline", "plain"} {
		for _, m := range []map[string]string{{"k": s}, {s: "v"}} {
			b, err := yamlout.Marshal(m)
			if err != nil {
				t.Fatalf("Marshal(%q) = %v", m, err)
			}
			var back map[string]string
			if err := yaml.UnmarshalStrict(b, &back); err != nil || len(back) != 1 || back["k"] != m["k"] || back[s] != m[s] {
				t.Errorf("%q as %q read back as %q (%v)", m, b, back, err)
			}
		}
	}
	// Keys longer than YAML's 1024 characters for an implicit key (here in their JSON form, escapes included) come
	// back whole too, beside ordinary keys and numbers.
	long := strings.Repeat("k", 1500)
	ctl := "te" + strings.Repeat("\x19", 300) + "\x00\x04"
	for _, k := range []string{long, ctl} {
		m := map[string]any{k: "v", "n": 12345678901, "f": 0.5, "list": []any{1, "x"}}
		b, err := yamlout.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal of a %d-byte key = %v", len(k), err)
		}
		var back map[string]any
		if err := yaml.UnmarshalStrict(b, &back); err != nil || back[k] != "v" || back["n"] != float64(12345678901) || back["f"] != 0.5 || len(back) != 4 {
			t.Errorf("a %d-byte key, as\n%s\nread back as %v (%v)", len(k), b, back, err)
		}
	}
	type ordered struct {
		B string `json:"b"`
		A int    `json:"a"`
	}
	ours, err := yamlout.Marshal(ordered{"x", 1})
	theirs, _ := yaml.Marshal(ordered{"x", 1})
	if err != nil || string(ours) != string(theirs) || string(ours) != "a: 1\nb: x\n" {
		t.Errorf("Marshal = %q, %v; sigs.k8s.io/yaml %q", ours, err, theirs)
	}
}
