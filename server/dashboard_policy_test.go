package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// refusing is a server whose policy allows images from myrmex.local only, refuses the tag latest and privileged
// containers, and has refused four things: two containers (a request each: an image from elsewhere, a latest
// tag), a push to another registry (a job), and a privileged Deployment of an image from that registry (an
// admission review, by alice).
type refusing struct {
	*env
	elsewhere, latest, pushed, deployed string
	push                                state.Job
}

func newRefusing(t *testing.T, b backend) *refusing {
	eng := testenv.Engine(t)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	reg := testenv.InProcess(t)
	r := &refusing{deployed: pushUser(t, reg, "shop/app:1", "1000")}
	r.env = newEnvOn(t, containerization.Config{Engine: eng, Policy: mustPolicy(t,
		"version: 1\nimages: {registries: [myrmex.local], tags: {forbid_latest: true}}\nruntime: {no_privileged: true}\n")}, b)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	r.elsewhere, r.latest = "elsewhere.example/busybox:dash-"+suffix, "myrmex.local/dash-policy-"+suffix+":latest"
	for _, ref := range []string{r.elsewhere, r.latest} {
		if _, err := eng.API().ImageTag(t.Context(), client.ImageTagOptions{Source: testimages.Busybox, Target: ref}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = eng.API().ImageRemove(context.Background(), ref, client.ImageRemoveOptions{}) })
	}
	for _, ref := range []string{r.elsewhere, r.latest} {
		st, body := r.do(state.ScopeOperate, "POST", "/v1/containers", map[string]any{"name": "dash-policy-" + suffix,
			"config": map[string]any{"image": ref, "command": []string{"true"}}})
		if st != 422 || !strings.Contains(string(body), "policy_violation") {
			t.Fatalf("create a container of %s = %d %s, want 422 policy_violation", ref, st, body)
		}
	}
	st, body := r.do(state.ScopeOperate, "POST", "/v1/registry", map[string]any{"operation": "push", "image_name": testimages.Busybox,
		"registry_url": "http://" + reg.Host, "destination": "dash/busybox:1"})
	var job state.Job
	if err := json.Unmarshal(body, &job); st != 202 || err != nil {
		t.Fatalf("push = %d %s", st, body)
	}
	r.push = r.wait(job.ID, 2*time.Minute)
	r.pushed = reg.Host + "/dash/busybox:1"
	if r.push.State != state.JobFailed || !strings.Contains(string(r.push.Error), "policy_violation") {
		t.Fatalf("the push to %s = %+v %s, want it refused", reg.Host, r.push, r.push.Error)
	}
	if st, resp, body := r.admission(reviewOf("d", "CREATE", workload("apps/v1", "Deployment", podSpec(r.deployed, true)), nil)); st != 200 || resp.Allowed {
		t.Fatalf("a privileged Deployment = %d %s, want it denied", st, body)
	}
	return r
}

// refusals reads GET /v1/policy/refusals with query, checked against the OpenAPI document.
func (r *refusing) refusals(query string) server.PolicyRefusals {
	r.t.Helper()
	st, body := r.do(state.ScopeRead, "GET", "/v1/policy/refusals"+query, nil)
	var out server.PolicyRefusals
	if err := json.Unmarshal(body, &out); st != 200 || err != nil {
		r.t.Fatalf("GET /v1/policy/refusals%s = %d %s", query, st, body)
	}
	r.valid("/v1/policy/refusals", "GET", 200, body)
	return out
}

func rulesOf(rf state.Refusal) []string {
	var out []string
	for _, v := range rf.Violations {
		if !slices.Contains(out, v.Rule) {
			out = append(out, v.Rule)
		}
	}
	sort.Strings(out)
	return out
}

// The policy's refusals over HTTP, on both states: a refused request, job and admission review each recorded with
// its gate, what was refused, who asked and the rules it broke; newest first, by rule and by image; the counts
// agree with the refusals; a policy evaluation and a gate that warns record nothing; bad queries are 400.
func TestPolicyRefusalsOverHTTP(t *testing.T) { onBoth(t, testPolicyRefusalsOverHTTP) }

func testPolicyRefusalsOverHTTP(t *testing.T, b backend) {
	r := newRefusing(t, b)
	// Evaluating changes nothing, and refuses nothing.
	if st, body := r.do(state.ScopeOperate, "POST", "/v1/policy/evaluate", map[string]any{"image_name": r.elsewhere, "gate": "create"}); st != 200 {
		t.Fatalf("evaluate = %d %s", st, body)
	}
	all := r.refusals("")
	if len(all.Refusals) != 4 {
		t.Fatalf("%d refusals kept, want 4: %+v", len(all.Refusals), all.Refusals)
	}
	type seen struct{ gate, source, subject, token, job string }
	var got []seen
	for _, rf := range all.Refusals {
		got = append(got, seen{rf.Gate, rf.Source, rf.Subject, rf.Token, rf.Job})
	}
	want := []seen{
		{"apply", state.RefusalAdmission, "CREATE deployment.apps/shop/web", "alice", ""},
		{"push", state.RefusalJob, "push " + testimages.Busybox, "t-operate", r.push.ID},
		{"create", state.RefusalRequest, "POST /v1/containers", "t-operate", ""},
		{"create", state.RefusalRequest, "POST /v1/containers", "t-operate", ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("the refusals, newest first = %+v\nwant %+v", got, want)
	}
	has := func(rf state.Refusal, rule, image string) bool {
		return slices.ContainsFunc(rf.Violations, func(v state.RefusalViolation) bool { return v.Rule == rule && (image == "" || v.Image == image) })
	}
	if rf := all.Refusals[3]; !has(rf, "images.registries", r.elsewhere) {
		t.Errorf("the first refusal's violations = %+v", rf.Violations)
	}
	if rf := all.Refusals[2]; !has(rf, "images.tags.forbid_latest", r.latest) {
		t.Errorf("the second refusal's violations = %+v", rf.Violations)
	}
	if rf := all.Refusals[1]; !has(rf, "images.registries", "") {
		t.Errorf("the push's violations = %+v", rf.Violations)
	}
	if rf := all.Refusals[0]; !has(rf, "runtime.no_privileged", "") || !has(rf, "images.registries", r.deployed) {
		t.Errorf("the admission's violations = %+v", rf.Violations)
	}
	// The counts agree with the refusals: by rule, each refusal once per rule; by image, with the rules.
	byRule := map[string]int{}
	byImage := map[string]map[string]bool{}
	for _, rf := range all.Refusals {
		for _, rule := range rulesOf(rf) {
			byRule[rule]++
		}
		for _, v := range rf.Violations {
			if v.Image != "" {
				if byImage[v.Image] == nil {
					byImage[v.Image] = map[string]bool{}
				}
				byImage[v.Image][rf.ID] = true
			}
		}
	}
	if len(all.ByRule) != len(byRule) || all.ByRule[0].Rule != "images.registries" {
		t.Errorf("by rule = %+v, want %v", all.ByRule, byRule)
	}
	for _, c := range all.ByRule {
		if c.Refusals != byRule[c.Rule] {
			t.Errorf("by rule: %s counts %d, the refusals say %d", c.Rule, c.Refusals, byRule[c.Rule])
		}
	}
	if len(all.ByImage) != len(byImage) {
		t.Errorf("by image = %+v, want %v", all.ByImage, byImage)
	}
	for _, c := range all.ByImage {
		if c.Refusals != len(byImage[c.Image]) || len(c.Rules) == 0 {
			t.Errorf("by image: %s counts %d (%+v), the refusals say %d", c.Image, c.Refusals, c.Rules, len(byImage[c.Image]))
		}
	}
	// Filtered.
	if l := r.refusals("?rule=images.tags.forbid_latest"); len(l.Refusals) != 1 || l.Refusals[0].ID != all.Refusals[2].ID || len(l.ByRule) != len(all.ByRule) {
		t.Errorf("?rule=images.tags.forbid_latest = %+v", l.Refusals)
	}
	if l := r.refusals("?image=" + url.QueryEscape(r.elsewhere)); len(l.Refusals) != 1 || l.Refusals[0].ID != all.Refusals[3].ID {
		t.Errorf("?image=%s = %+v", r.elsewhere, l.Refusals)
	}
	if l := r.refusals("?limit=1"); len(l.Refusals) != 1 || l.Refusals[0].ID != all.Refusals[0].ID {
		t.Errorf("?limit=1 = %+v", l.Refusals)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?rule=" + strings.Repeat("r", 201), "?image=" + strings.Repeat("i", 1025)} {
		if st, body := r.do(state.ScopeRead, "GET", "/v1/policy/refusals"+q, nil); st != 400 {
			t.Errorf("GET /v1/policy/refusals%.40s = %d %s, want 400", q, st, body)
		}
	}
	// Pruned with the jobs' bounds.
	if n, err := r.st.PruneRefusals(context.Background(), 1, time.Now().Add(-time.Hour)); err != nil || n != 3 {
		t.Errorf("PruneRefusals(keep 1) = %d, %v", n, err)
	}
	if l := r.refusals(""); len(l.Refusals) != 1 {
		t.Errorf("after pruning: %+v", l.Refusals)
	}
}

// The policy in a real Chromium: the gates and rules in force as GET /v1/policy has them; the refusals counted by
// rule as a chart, by image as a table, the latest as a table, as GET /v1/policy/refusals has them; filtering by
// rule and by image (a click on the image) shows the refusals the API gives for them.
func TestDashboardPolicy(t *testing.T) {
	r := newRefusing(t, sqlite)
	all := r.refusals("")
	p := r.tab(t, 1280, 900)
	p.signIn(r.tokens[state.ScopeRead])
	p.open("#/policy", "#refusals tbody tr[data-refusal]")

	if got := js[string](p, `document.querySelector('#gates tr[data-gate="push"]').innerText`); !strings.Contains(got, "enforce") {
		t.Errorf("the push gate shows %q", got)
	}
	if got := js[[]string](p, `[...document.querySelectorAll('#rules tr[data-rule]')].map((tr) => tr.dataset.rule)`); !slices.Equal(got,
		[]string{"images.registries", "images.tags.forbid_latest", "runtime.no_privileged"}) {
		t.Errorf("the rules shown = %q", got)
	}
	label := js[string](p, `document.querySelector('#by-rule svg').getAttribute('aria-label')`)
	for _, c := range all.ByRule {
		if !strings.Contains(label, fmt.Sprintf("%s %d", c.Rule, c.Refusals)) {
			t.Errorf("the chart by rule says %q; want %s %d", label, c.Rule, c.Refusals)
		}
	}
	if n := js[int](p, `document.querySelectorAll('#by-rule svg rect').length`); n != len(all.ByRule) {
		t.Errorf("the chart by rule has %d bars, want %d", n, len(all.ByRule))
	}
	var images []string
	for _, c := range all.ByImage {
		images = append(images, c.Image+" "+fmt.Sprint(c.Refusals))
	}
	if got := js[[]string](p, `[...document.querySelectorAll('#by-image tbody tr[data-image]')].map((tr) => tr.dataset.image + ' ' + tr.children[1].innerText)`); !slices.Equal(got, images) {
		t.Errorf("by image = %q, want %q", got, images)
	}
	ids := func() []string {
		return js[[]string](p, `[...document.querySelectorAll('#refusals tbody tr[data-refusal]')].map((tr) => tr.dataset.refusal)`)
	}
	idsOf := func(l []state.Refusal) []string {
		var out []string
		for _, rf := range l {
			out = append(out, rf.ID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, idsOf(all.Refusals)) {
		t.Errorf("the latest refusals shown = %q, want %q", got, idsOf(all.Refusals))
	}
	if got := js[string](p, `document.querySelector('#refusals tr[data-refusal="`+all.Refusals[1].ID+`"]').innerText`); !strings.Contains(got, r.push.ID) {
		t.Errorf("the push's refusal does not name its job: %q", got)
	}
	p.check("policy")
	p.axe("policy")
	p.shot("dashboard-policy")

	// By rule, from the filter.
	js[any](p, `(() => { const el = document.getElementById('r-rule'); el.value = 'images.tags.forbid_latest'; el.dispatchEvent(new Event('change')); return null; })()`)
	want := idsOf(r.refusals("?rule=images.tags.forbid_latest").Refusals)
	p.until(20*time.Second, `JSON.stringify([...document.querySelectorAll('#refusals tbody tr[data-refusal]')].map((tr) => tr.dataset.refusal)) === `+jsString(mustJSON(want)), "document.getElementById('refusals').innerText")
	// By image, from a click on it (the rule filter back to any).
	js[any](p, `(() => { const el = document.getElementById('r-rule'); el.value = ''; return null; })()`)
	p.do(chromedp.Click(chromedp.CSS(`#by-image tr[data-image="` + r.elsewhere + `"] button`)))
	want = idsOf(r.refusals("?image=" + url.QueryEscape(r.elsewhere)).Refusals)
	p.until(20*time.Second, `JSON.stringify([...document.querySelectorAll('#refusals tbody tr[data-refusal]')].map((tr) => tr.dataset.refusal)) === `+jsString(mustJSON(want)), "document.getElementById('refusals').innerText")
	if got := js[string](p, `document.getElementById('r-image').value`); got != r.elsewhere {
		t.Errorf("after a click on %s the image filter is %q", r.elsewhere, got)
	}
	p.check("policy filtered")

	ph := r.tab(t, 390, 844)
	ph.signIn(r.tokens[state.ScopeRead])
	ph.open("#/policy", "#refusals tbody tr[data-refusal]")
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the policy's page is %d px wider than the screen", w)
	}
	ph.check("policy on a phone")
	ph.axe("policy on a phone")
	ph.shot("dashboard-policy-phone")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
