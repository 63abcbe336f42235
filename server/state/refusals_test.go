package state_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/server/state"
)

// The policy's refusals: recorded with their violations (bounded in number and length), listed newest first and
// by rule or image, counted by rule (once per refusal) and by image (with its rules), pruned by count and age
// with their violations.
func TestRefusals(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := open(t, where)
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		record := func(at time.Duration, r state.Refusal) string {
			t.Helper()
			r.Time = now.Add(at)
			if err := st.RecordRefusal(ctx, &r); err != nil || r.ID == "" {
				t.Fatalf("RecordRefusal = %v (%q)", err, r.ID)
			}
			return r.ID
		}
		reg := func(img string) state.RefusalViolation {
			return state.RefusalViolation{Rule: "images.registries", Image: img, Finding: img + " is not from an allowed registry"}
		}
		many := make([]state.RefusalViolation, 0, 70)
		for range 70 {
			many = append(many, state.RefusalViolation{Rule: "images.vulnerabilities", Image: "x/app:1", Finding: "CVE " + strings.Repeat("é", 800)})
		}
		first := record(0, state.Refusal{Gate: "create", Source: state.RefusalRequest, Subject: "POST /v1/containers", Token: "ci",
			Violations: []state.RefusalViolation{reg("x/app:1"), {Rule: "images.tags.forbid_latest", Image: "x/app:1", Finding: "latest"}}})
		second := record(time.Second, state.Refusal{Gate: "push", Source: state.RefusalJob, Subject: "push x/app:1", Token: "ci", Job: "job1",
			Violations: append([]state.RefusalViolation{reg("x/app:1")}, many...)})
		third := record(2*time.Second, state.Refusal{Gate: "create", Source: state.RefusalRequest, Subject: "POST /v1/containers", Token: "dev",
			Violations: []state.RefusalViolation{reg("y/web:2"), {Rule: "runtime.no_privileged", Container: "web", Finding: "privileged"}}})

		list, err := st.Refusals(ctx, state.RefusalQuery{})
		if err != nil || len(list) != 3 || list[0].ID != third || list[1].ID != second || list[2].ID != first {
			t.Fatalf("Refusals = %+v, %v; want the three, newest first", list, err)
		}
		if r := list[2]; r.Gate != "create" || r.Token != "ci" || r.Subject != "POST /v1/containers" || !r.Time.Equal(now) ||
			len(r.Violations) != 2 || r.Violations[1].Rule != "images.tags.forbid_latest" {
			t.Errorf("the first refusal = %+v", r)
		}
		if r := list[1]; r.Job != "job1" || len(r.Violations) != state.MaxRefusalViolations {
			t.Errorf("the refusal of many violations keeps %d of them, want %d", len(r.Violations), state.MaxRefusalViolations)
		} else if f := r.Violations[1].Finding; len(f) > 1024 || !strings.HasSuffix(f, "…") || !strings.HasPrefix(f, "CVE éé") || strings.ContainsRune(f, '\uFFFD') {
			t.Errorf("a long finding kept as %d bytes: %.40q…", len(f), f)
		}
		if l, err := st.Refusals(ctx, state.RefusalQuery{Rule: "images.tags.forbid_latest"}); err != nil || len(l) != 1 || l[0].ID != first {
			t.Errorf("Refusals(rule) = %+v, %v", l, err)
		}
		if l, err := st.Refusals(ctx, state.RefusalQuery{Image: "x/app:1", Limit: 1}); err != nil || len(l) != 1 || l[0].ID != second {
			t.Errorf("Refusals(image, limit 1) = %+v, %v", l, err)
		}
		if l, err := st.Refusals(ctx, state.RefusalQuery{Image: "x/app:1", Rule: "runtime.no_privileged"}); err != nil || len(l) != 0 {
			t.Errorf("Refusals(image and another's rule) = %+v, %v", l, err)
		}

		byRule, byImage, err := st.RefusalCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rules := map[string]int{}
		for _, c := range byRule {
			rules[c.Rule] = c.Refusals
		}
		if len(byRule) != 4 || byRule[0].Rule != "images.registries" || rules["images.registries"] != 3 || rules["images.vulnerabilities"] != 1 ||
			rules["images.tags.forbid_latest"] != 1 || rules["runtime.no_privileged"] != 1 || !byRule[0].Last.Equal(now.Add(2*time.Second)) {
			t.Errorf("by rule = %+v", byRule)
		}
		if len(byImage) != 2 || byImage[0].Image != "x/app:1" || byImage[0].Refusals != 2 || byImage[1].Image != "y/web:2" || byImage[1].Refusals != 1 ||
			len(byImage[0].Rules) != 3 || byImage[0].Rules[0].Rule != "images.registries" || byImage[0].Rules[0].Refusals != 2 {
			t.Errorf("by image = %+v", byImage)
		}

		// Pruned by count (the newest two kept), then by age.
		if n, err := st.PruneRefusals(ctx, 2, now.Add(-time.Hour)); err != nil || n != 1 {
			t.Fatalf("PruneRefusals(keep 2) = %d, %v", n, err)
		}
		if l, _ := st.Refusals(ctx, state.RefusalQuery{}); len(l) != 2 || l[1].ID != second {
			t.Errorf("after pruning to two: %+v", l)
		}
		if byRule, _, _ := st.RefusalCounts(ctx); len(byRule) != 3 {
			t.Errorf("after pruning, the first refusal's violations are still counted: %+v", byRule)
		}
		if n, err := st.PruneRefusals(ctx, 100, now.Add(1500*time.Millisecond)); err != nil || n != 1 {
			t.Fatalf("PruneRefusals(by age) = %d, %v", n, err)
		}
		if l, _ := st.Refusals(ctx, state.RefusalQuery{Image: "x/app:1"}); len(l) != 0 {
			t.Errorf("after pruning by age: %+v", l)
		}
	})
}
