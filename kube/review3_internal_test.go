package kube

import (
	"strings"
	"testing"
)

// A limit counts only when it limits: Kubernetes reads a zero (or null) cpu or memory limit as none (the
// container is BestEffort, its cgroup unbounded), so require_limits must not see it as set.
func TestReview3ZeroLimitsAreNoLimits(t *testing.T) {
	doc := func(limits string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
      - name: web
        image: registry.example.com/web:1
        resources:
          limits: ` + limits + "\n"
	}
	for limits, want := range map[string][2]bool{
		`{cpu: "500m", memory: 64Mi}`:  {true, true},
		`{cpu: 1, memory: 1e9}`:        {true, true},
		`{cpu: 0, memory: "0"}`:        {false, false},
		`{cpu: "0m", memory: "0Gi"}`:   {false, false},
		`{cpu: 0.0, memory: null}`:     {false, false},
		`{cpu: [1], memory: {a: b}}`:   {false, false},
		`{cpu: "bogus", memory: "1x"}`: {false, false},
	} {
		objs, err := ParseManifests(strings.NewReader(doc(limits)), "m.yaml")
		if err != nil {
			t.Fatalf("%s: %v", limits, err)
		}
		pcs := PodContainers(objs)
		if len(pcs) != 1 {
			t.Fatalf("%s: %d containers", limits, len(pcs))
		}
		if got := [2]bool{pcs[0].CPULimit, pcs[0].MemoryLimit}; got != want {
			t.Errorf("limits %s: cpu, memory set = %v, want %v", limits, got, want)
		}
	}
}
