package server_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry/credstore"
	"github.com/codomyrmex/containerization/registry/retention"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// The Registries section in a real Chromium, on the distribution registry (TLS, a login, deletes enabled) saved
// on the server with a retention policy: the saved registries, a registry's repositories and policy in words, a
// repository's tags with the digests and sizes the registry holds; a retention plan made from the page and
// followed to its end, each image's decision and reason as the API's report says; applying it after a
// confirmation that counts the tags, which the registry then lacks; the runs listed; a read session on a phone
// can change nothing and nothing is wider than the screen; axe-core and no script error on every page.
func TestDashboardRegistries(t *testing.T) {
	reg := testenv.Distribution(t, testenv.DistributionOptions{})
	key := make([]byte, credstore.KeySize)
	rand.Read(key)
	store, err := credstore.Open(credstore.Options{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, containerization.Config{Registries: store, Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")})

	// team/app: four images an hour apart, the newest also tagged stable; team/web: one.
	opts := []remote.Option{remote.WithTransport(reg.Transport()), remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password})}
	push := func(repo string, at time.Time, tags ...string) {
		t.Helper()
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.CreatedAt(img, v1.Time{Time: at}); err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			ref, err := name.ParseReference(reg.Ref(repo + ":" + tag))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img, opts...); err != nil {
				t.Fatal(err)
			}
		}
	}
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, tags := range [][]string{{"1"}, {"2"}, {"3"}, {"4", "stable"}} {
		push("team/app", day.Add(time.Duration(i)*time.Hour), tags...)
	}
	push("team/web", day, "1")
	policy := map[string]any{"rules": []any{
		map[string]any{"repositories": map[string]any{"pattern": "team/app"}, "tags": map[string]any{"pattern": "**"}, "retain": map[string]any{"most_recently_pushed": 2}},
		map[string]any{"repositories": map[string]any{"pattern": "team/web"}, "tags": map[string]any{"pattern": "**"}, "retain": map[string]any{"always": true}},
	}}
	if st, body := e.do(state.ScopeAdmin, "POST", "/v1/registries", map[string]any{"name": "sec", "url": reg.URL(), "ca_file": reg.CAFile,
		"retention_policy": policy, "credentials": map[string]any{"username": reg.Username, "password": reg.Password}}); st != 201 {
		t.Fatalf("saving the registry = %d %s", st, body)
	}
	tagsOf := func(repo string) containerization.RegistryResult {
		t.Helper()
		st, body := e.do(state.ScopeRead, "GET", "/v1/registries/sec/repositories/"+repo+"/tags?details=true", nil)
		var res containerization.RegistryResult
		if err := json.Unmarshal(body, &res); st != 200 || err != nil {
			t.Fatalf("tags of %s = %d %s", repo, st, body)
		}
		return res
	}

	p := e.tab(t, 1280, 900)
	p.signIn(e.tokens[state.ScopeOperate])

	// The saved registries.
	p.open("#/registries", `#registries tr[data-name="sec"]`)
	if got := js[string](p, `document.querySelector('#registries tr[data-name="sec"]').innerText`); !strings.Contains(got, reg.Host) || !strings.Contains(got, "a policy") {
		t.Errorf("the registry's row reads %q; want its address and its policy", got)
	}
	p.check("registries")
	p.axe("registries")
	p.shot("dashboard-registries")

	// A registry: its repositories from the catalog, its policy in words.
	p.do(chromedp.Click(chromedp.CSS(`#registries tr[data-name="sec"] a`)))
	p.until(30*time.Second, `document.querySelectorAll('#repositories tr[data-repository]').length === 2`, "document.querySelector('main').innerText")
	repos := js[[]string](p, `[...document.querySelectorAll('#repositories tr[data-repository]')].map((r) => r.dataset.repository)`)
	if !slices.Equal(repos, []string{"team/app", "team/web"}) {
		t.Errorf("repositories shown = %v, want team/app and team/web", repos)
	}
	if rules := js[string](p, `document.getElementById('rules').innerText`); !strings.Contains(rules, "keep the 2 most recently pushed") || !strings.Contains(rules, "keep them all") {
		t.Errorf("the policy reads %q", rules)
	}
	if n := js[int](p, `document.querySelectorAll('#runs tr[data-job]').length`); n != 0 {
		t.Errorf("%d runs shown before any", n)
	}
	p.check("registry")
	p.axe("registry")

	// A repository's tags: the digests and sizes the registry holds.
	p.do(chromedp.Click(chromedp.CSS(`#repositories tr[data-repository="team/app"] a`)))
	p.until(30*time.Second, `document.querySelectorAll('#tags tr[data-tag]').length === 5`, "document.querySelector('main').innerText")
	type shownTag struct {
		Tag, Digest, Size string
	}
	shown := js[[]shownTag](p, `[...document.querySelectorAll('#tags tr[data-tag]')].map((r) => ({Tag: r.dataset.tag, Digest: r.dataset.digest,
		Size: r.querySelector('[data-size]').dataset.size}))`)
	want := tagsOf("team/app")
	if len(shown) != len(want.TagDetails) {
		t.Fatalf("tags shown %+v, want %+v", shown, want.TagDetails)
	}
	for i, d := range want.TagDetails {
		if shown[i].Tag != d.Tag || shown[i].Digest != d.Digest || shown[i].Size != fmt.Sprint(d.Size) || d.Digest == "" || d.Size == 0 {
			t.Errorf("tag row %d = %+v, want %s naming %s, %d bytes", i, shown[i], d.Tag, d.Digest, d.Size)
		}
	}
	if shown[3].Digest != shown[4].Digest || shown[0].Digest == shown[1].Digest {
		t.Errorf("4 and stable name one image, 1 and 2 two: %+v", shown)
	}
	p.check("tags")
	p.axe("tags")
	p.shot("dashboard-registries-tags")

	// The retention plan, made from the page and followed to its end.
	p.open("#/registries/sec", "#make-plan")
	p.do(chromedp.Click(chromedp.CSS("#make-plan")))
	p.until(2*time.Minute, `document.querySelectorAll('#plan-artifacts tr[data-digest]').length === 5`, "document.getElementById('plan-status').innerText")
	var runs server.JobList
	st, body := e.do(state.ScopeRead, "GET", "/v1/jobs?kind=retention&subject=sec", nil)
	if err := json.Unmarshal(body, &runs); st != 200 || err != nil || len(runs.Jobs) != 1 {
		t.Fatalf("retention runs after the plan = %d %s", st, body)
	}
	report := retentionReport(t, e, runs.Jobs[0].ID)
	if !report.DryRun || report.Deleted != 2 || report.Kept != 3 {
		t.Fatalf("the plan the page asked for = %+v", report)
	}
	type shownDecision struct {
		Digest, Keep, Text string
	}
	decisions := js[[]shownDecision](p, `[...document.querySelectorAll('#plan-artifacts tr[data-digest]')].map((r) => ({Digest: r.dataset.digest,
		Keep: r.dataset.keep, Text: r.innerText}))`)
	for i, a := range report.Artifacts {
		d := decisions[i]
		verdict := "delete"
		if a.Keep {
			verdict = "keep"
		}
		if d.Digest != a.Digest || d.Keep != fmt.Sprint(a.Keep) || !strings.Contains(d.Text, a.Reason) || !strings.Contains(d.Text, verdict) ||
			!strings.Contains(d.Text, a.Repository) {
			t.Errorf("plan row %d = %+v, want %s %s: %s", i, d, a.Digest, verdict, a.Reason)
		}
		for _, tag := range a.Tags {
			if !strings.Contains(d.Text, tag) {
				t.Errorf("plan row %d lacks the tag %s: %q", i, tag, d.Text)
			}
		}
	}
	if status := js[string](p, `document.getElementById('plan-status').innerText`); !strings.Contains(status, "3 kept, 2 to delete (2 tags)") {
		t.Errorf("the plan's summary reads %q", status)
	}
	p.until(20*time.Second, `document.querySelectorAll('#runs tr[data-job]').length === 1`, "document.getElementById('runs').innerText")
	p.check("plan")
	p.axe("plan")
	js[any](p, `(() => { document.getElementById('retention-h').scrollIntoView(); return null; })()`)
	p.shot("dashboard-registries-plan")

	// Applying it: the confirmation counts and names the tags; then the registry lacks them.
	p.do(chromedp.Click(chromedp.CSS("#apply-plan")), chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	question := js[string](p, `document.getElementById('confirm-text').innerText`)
	if !strings.Contains(question, "Delete 2 tags (2 images) from sec") || !strings.Contains(question, "team/app:1") || !strings.Contains(question, "team/app:2") ||
		strings.Contains(question, "team/app:3") {
		t.Errorf("the confirmation reads %q", question)
	}
	p.axe("apply confirmation")
	p.do(chromedp.Click(chromedp.CSS("#confirm-ok")))
	p.until(2*time.Minute, `document.getElementById('plan-status').innerText.startsWith('Applied')`, "document.getElementById('plan-status').innerText")
	if got := tagsOf("team/app").Tags; !slices.Equal(got, []string{"3", "4", "stable"}) {
		t.Errorf("after Apply the tags of team/app are %v, want 3 4 stable", got)
	}
	if got := tagsOf("team/web").Tags; !slices.Equal(got, []string{"1"}) {
		t.Errorf("after Apply the tags of team/web are %v, want 1", got)
	}
	p.until(20*time.Second, `document.querySelectorAll('#runs tr[data-job]').length === 2`, "document.getElementById('runs').innerText")
	if kinds := js[[]string](p, `[...document.querySelectorAll('#runs tr[data-job]')].map((r) => r.cells[1].innerText)`); !slices.Equal(kinds, []string{"applied", "plan"}) {
		t.Errorf("the runs read %v, want applied then plan", kinds)
	}
	if n := js[int](p, `document.querySelectorAll('#apply-plan').length`); n != 0 {
		t.Error("an applied run offers to apply again")
	}
	p.check("applied")

	// A registry whose saved login it refuses (401 from the registry, not from the server): the page says so and
	// the session goes on. An address holding markup is shown as the name it asks for, never run.
	if st, body := e.do(state.ScopeAdmin, "POST", "/v1/registries", map[string]any{"name": "refused", "url": reg.URL(), "ca_file": reg.CAFile,
		"no_check": true, "credentials": map[string]any{"username": reg.Username, "password": "wrong"}}); st != 201 {
		t.Fatalf("saving a registry with a wrong login = %d %s", st, body)
	}
	p.open("#/registries/refused/team/app", "main [role=alert]")
	st, body = e.do(state.ScopeRead, "GET", "/v1/registries/refused/repositories/team/app/tags?details=true", nil)
	var refusal server.ErrorBody
	if err := json.Unmarshal(body, &refusal); st != 401 || err != nil || refusal.Error.Code != "unauthorized" {
		t.Fatalf("the tags of a registry that refuses the login = %d %s", st, body)
	}
	if alert := js[string](p, `document.querySelector('main [role=alert]').innerText`); alert != refusal.Error.Message {
		t.Errorf("the tags of a registry that refuses the login: the page says %q, the API %q", alert, refusal.Error.Message)
	}
	if !js[bool](p, `!document.getElementById('signout').hidden && !document.getElementById('token')`) {
		t.Error("a registry's refusal signed the page out")
	}
	p.open("#/registries/"+`%3Cimg%20src%3Dx%20onerror%3D%22window.__xss%3D1%22%3E`, "main [role=alert]")
	p.until(10*time.Second, `document.querySelector('main').innerText.includes('<img src=x onerror="window.__xss=1">')`, "document.querySelector('main').innerText")
	if n := js[int](p, `document.querySelectorAll('main img, main script').length`); n != 0 || js[bool](p, `window.__xss !== undefined`) {
		t.Errorf("markup in the address became %d elements", n)
	}
	p.check("refusals")

	// A read session on a phone: nothing it can change, nothing wider than the screen.
	ph := e.tab(t, 390, 844)
	ph.signIn(e.tokens[state.ScopeRead])
	ph.open("#/registries/sec", `#runs tr[data-job]`)
	if !js[bool](ph, `document.getElementById('make-plan').disabled`) {
		t.Error("a read session may plan retention")
	}
	ph.do(chromedp.Click(chromedp.CSS(`#runs tr[data-job] button`)))
	ph.until(20*time.Second, `document.querySelectorAll('#plan-artifacts tr[data-digest]').length > 0`, "document.getElementById('plan').innerText")
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the registry's page is %d px wider than the screen", w)
	}
	ph.check("phone registry")
	ph.axe("phone registry")
	ph.open("#/registries/sec/team/app", `#tags tr[data-tag]`)
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the tags' page is %d px wider than the screen", w)
	}
	ph.check("phone tags")
}

// retentionReport is the report of a retention job, read through the API.
func retentionReport(t *testing.T, e *env, id string) retention.Report {
	t.Helper()
	st, body := e.do(state.ScopeRead, "GET", "/v1/jobs/"+id, nil)
	var job state.Job
	var r retention.Report
	if err := json.Unmarshal(body, &job); st != 200 || err != nil || job.State != state.JobSucceeded {
		t.Fatalf("job %s = %d %s", id, st, body)
	}
	if err := json.Unmarshal(job.Result, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
