package server_test

import (
	"crypto/rand"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

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

// Saved registries over the API, on a real distribution registry (TLS, basic auth): a login is saved by an admin
// token only, after the registry accepted it, and no answer after shows its password (a canary); the registry is
// listed and shown with its catalog, a repository's tags read through a path with slashes; its retention policy
// runs as a job, a plan then the deletions; bad input is 400 before anything is saved or queued, a name not saved
// 404; every answer matches the OpenAPI document.
func TestRegistriesOverHTTP(t *testing.T) { onBoth(t, testRegistriesOverHTTP) }

func testRegistriesOverHTTP(t *testing.T, on backend) {
	const canary = "canary-api-s3cret"
	reg := testenv.Distribution(t, testenv.DistributionOptions{Password: canary})
	key := make([]byte, credstore.KeySize)
	rand.Read(key)
	store, err := credstore.Open(credstore.Options{Dir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, containerization.Config{Registries: store}, on)
	var answers []string
	do := func(scope state.Scope, method, path string, body any) (int, []byte) {
		t.Helper()
		st, b := e.do(scope, method, path, body)
		answers = append(answers, string(b))
		return st, b
	}

	// Three images in team/app, an hour apart.
	opts := []remote.Option{remote.WithTransport(reg.Transport()), remote.WithAuth(&authn.Basic{Username: reg.Username, Password: reg.Password})}
	pushed := map[string]v1.Image{}
	for i, tag := range []string{"1", "2", "3"} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.CreatedAt(img, v1.Time{Time: time.Date(2026, 1, 1, i, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(reg.Ref("team/app:" + tag))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, opts...); err != nil {
			t.Fatal(err)
		}
		pushed[tag] = img
	}
	keepOne := map[string]any{"rules": []any{map[string]any{"repositories": map[string]any{"pattern": "**"},
		"tags": map[string]any{"pattern": "**"}, "retain": map[string]any{"most_recently_pushed": 1}}}}
	add := map[string]any{"name": "sec", "url": reg.URL(), "ca_file": reg.CAFile, "retention_policy": keepOne,
		"credentials": map[string]any{"username": reg.Username, "password": canary}}

	// Refused before anything is saved: bad bodies (400), a wrong password (401), an operate token (403).
	for _, bad := range []any{`{}`, `{"name": "sec"}`, `{"name": "sec", "url": "` + reg.URL() + `", "bogus": 1}`,
		`{"name": "a b", "url": "` + reg.URL() + `"}`, `{"name": "sec", "url": "` + reg.URL() + `", "retention_policy": {"rules": [{"retain": {"most_recently_pushed": -1}}]}}`} {
		if st, body := do(state.ScopeAdmin, "POST", "/v1/registries", bad); st != 400 {
			t.Errorf("add %v = %d %s, want 400", bad, st, body)
		}
	}
	wrong := map[string]any{"name": "sec", "url": reg.URL(), "ca_file": reg.CAFile, "credentials": map[string]any{"username": reg.Username, "password": "canary-wrong"}}
	if st, body := do(state.ScopeAdmin, "POST", "/v1/registries", wrong); st != 401 {
		t.Errorf("add with a wrong password = %d %s, want 401", st, body)
	}
	if st, body := do(state.ScopeOperate, "POST", "/v1/registries", add); st != 403 {
		t.Errorf("add with an operate token = %d %s, want 403", st, body)
	}
	st, body := do(state.ScopeRead, "GET", "/v1/registries", nil)
	if st != 200 || string(body) != "{\"registries\":[]}\n" {
		t.Fatalf("after the refused adds: %d %s; want none saved", st, body)
	}

	// Saved; listed; shown with its catalog.
	st, body = do(state.ScopeAdmin, "POST", "/v1/registries", add)
	var saved containerization.ContainerRegistry
	if err := json.Unmarshal(body, &saved); st != 201 || err != nil || saved.Name != "sec" || saved.URL != reg.Host || saved.Credentials.Username != reg.Username ||
		!slices.Equal(saved.Repositories, []string{"team/app"}) || !strings.Contains(string(body), `"password":"********"`) {
		t.Fatalf("add = %d %s", st, body)
	}
	e.valid("/v1/registries", "POST", 201, body)
	if st, body := do(state.ScopeAdmin, "POST", "/v1/registries", add); st != 409 {
		t.Errorf("adding sec again = %d %s, want 409", st, body)
	}
	st, body = do(state.ScopeRead, "GET", "/v1/registries", nil)
	var list server.RegistryList
	if err := json.Unmarshal(body, &list); st != 200 || err != nil || len(list.Registries) != 1 || list.Registries[0].Name != "sec" || list.Registries[0].RetentionPolicy == nil {
		t.Errorf("list = %d %s", st, body)
	}
	e.valid("/v1/registries", "GET", 200, body)
	st, body = do(state.ScopeRead, "GET", "/v1/registries/sec", nil)
	if err := json.Unmarshal(body, &saved); st != 200 || err != nil || !slices.Equal(saved.Repositories, []string{"team/app"}) {
		t.Errorf("show = %d %s", st, body)
	}
	e.valid("/v1/registries/{name}", "GET", 200, body)
	if st, body := do(state.ScopeRead, "GET", "/v1/registries/sec?catalog=false", nil); st != 200 || !strings.Contains(string(body), `"repositories":[]`) {
		t.Errorf("show without the catalog = %d %s", st, body)
	}

	// A repository's tags, its path's slashes as they are.
	tags := func() []string {
		t.Helper()
		st, body := do(state.ScopeRead, "GET", "/v1/registries/sec/repositories/team/app/tags", nil)
		var res containerization.RegistryResult
		if err := json.Unmarshal(body, &res); st != 200 || err != nil || !res.Success {
			t.Fatalf("tags = %d %s", st, body)
		}
		e.valid("/v1/registries/{name}/repositories/{repository}/tags", "GET", 200, body)
		return res.Tags
	}
	if got := tags(); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("tags = %v, want 1 2 3", got)
	}
	// With details=true, one request says what each tag names: its digest and size, as the manifests say.
	st, body = do(state.ScopeRead, "GET", "/v1/registries/sec/repositories/team/app/tags?details=true", nil)
	var detailed containerization.RegistryResult
	if err := json.Unmarshal(body, &detailed); st != 200 || err != nil || len(detailed.TagDetails) != 3 {
		t.Fatalf("tags with details = %d %s", st, body)
	}
	e.valid("/v1/registries/{name}/repositories/{repository}/tags", "GET", 200, body)
	for i, d := range detailed.TagDetails {
		img := pushed[d.Tag]
		digest, _ := img.Digest()
		m, _ := img.Manifest()
		size := m.Config.Size
		for _, l := range m.Layers {
			size += l.Size
		}
		if d.Tag != detailed.Tags[i] || d.Digest != digest.String() || d.Size != size || d.Error != "" {
			t.Errorf("tag detail %d = %+v, want %s naming %s, %d bytes", i, d, detailed.Tags[i], digest, size)
		}
	}

	// Retention: a plan (nothing deleted), then the deletions, as jobs.
	st, body = do(state.ScopeOperate, "POST", "/v1/registries/sec/retention", nil)
	job := e.submitted("POST", "/v1/registries/{name}/retention", st, body)
	job = e.wait(job.ID, 2*time.Minute)
	answers = append(answers, string(job.Result))
	var report retention.Report
	if err := json.Unmarshal(job.Result, &report); job.State != state.JobSucceeded || job.Kind != "retention" || err != nil || !report.DryRun || report.Deleted != 2 || report.Kept != 1 {
		t.Fatalf("the retention plan = %+v %s %s", job, job.Result, job.Error)
	}
	if got := tags(); len(got) != 3 {
		t.Errorf("after the plan the tags are %v; want all three", got)
	}
	st, body = do(state.ScopeOperate, "POST", "/v1/registries/sec/retention", map[string]any{"apply": true, "repositories": []string{"team/app"}})
	job = e.wait(e.submitted("POST", "/v1/registries/{name}/retention", st, body).ID, 2*time.Minute)
	answers = append(answers, string(job.Result))
	if err := json.Unmarshal(job.Result, &report); job.State != state.JobSucceeded || err != nil || report.DryRun || report.Deleted != 2 {
		t.Fatalf("the retention run = %+v %s %s", job, job.Result, job.Error)
	}
	if got := tags(); !slices.Equal(got, []string{"3"}) {
		t.Errorf("after the retention run the tags are %v; want 3, the newest", got)
	}
	// The registry's retention runs, newest first.
	st, body = do(state.ScopeRead, "GET", "/v1/jobs?kind=retention&subject=sec", nil)
	var runs server.JobList
	if err := json.Unmarshal(body, &runs); st != 200 || err != nil || len(runs.Jobs) != 2 || runs.Jobs[0].ID != job.ID || runs.Jobs[1].Kind != "retention" {
		t.Errorf("the retention runs of sec = %d %s, want the two, the applied one first", st, body)
	}
	e.valid("/v1/jobs", "GET", 200, body)
	if st, body := do(state.ScopeRead, "GET", "/v1/jobs?kind=retention&subject=nosuch", nil); st != 200 || string(body) != "{\"jobs\":[]}\n" {
		t.Errorf("the retention runs of nosuch = %d %s, want none", st, body)
	}

	// Bad input: 400, nothing queued; not saved: 404.
	jobs := e.jobCount()
	if st, body := do(state.ScopeAdmin, "POST", "/v1/registries", map[string]any{"name": "plain", "url": reg.URL(), "ca_file": reg.CAFile, "no_check": true}); st != 201 {
		t.Fatalf("add plain = %d %s", st, body)
	}
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/v1/registries/sec/retention", `{"apply": "yes"}`, 400},
		{"POST", "/v1/registries/sec/retention", `{"repositories": ["Team/App!"]}`, 400},
		{"POST", "/v1/registries/plain/retention", `{}`, 400}, // no retention policy
		{"POST", "/v1/registries/nosuch/retention", `{}`, 404},
		{"GET", "/v1/registries/sec/repositories/Team!/tags", nil, 400},
		{"GET", "/v1/registries/sec/repositories/team/app", nil, 404},
		{"GET", "/v1/registries/nosuch/repositories/team/app/tags", nil, 404},
		{"GET", "/v1/registries/sec/repositories/team/nosuch/tags", nil, 404},
		{"GET", "/v1/registries/nosuch", nil, 404},
		{"GET", "/v1/registries/sec?catalog=maybe", nil, 400},
		{"GET", "/v1/registries/sec/repositories/team/app/tags?details=maybe", nil, 400},
		{"GET", "/v1/jobs?kind=nosuch", nil, 400},
		{"GET", "/v1/jobs?subject=" + strings.Repeat("x", 1025), nil, 400},
		{"DELETE", "/v1/registries/nosuch", nil, 404},
	} {
		st, body := do(state.ScopeAdmin, c.method, c.path, c.body)
		if st != c.want {
			t.Errorf("%s %s %v = %d %s, want %d", c.method, c.path, c.body, st, body, c.want)
			continue
		}
		var eb server.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
			t.Errorf("%s %s: the answer is not the error object: %s", c.method, c.path, body)
		}
	}
	if n := e.jobCount(); n != jobs {
		t.Errorf("the refused retention runs queued %d jobs", n-jobs)
	}

	// Removed by an admin.
	st, body = do(state.ScopeAdmin, "DELETE", "/v1/registries/sec", nil)
	if st != 200 || !strings.Contains(string(body), `"removed":true`) {
		t.Errorf("remove = %d %s", st, body)
	}
	e.valid("/v1/registries/{name}", "DELETE", 200, body)
	if st, _ := do(state.ScopeRead, "GET", "/v1/registries/sec", nil); st != 404 {
		t.Errorf("show after remove = %d, want 404", st)
	}

	// No answer showed the password: not the registries', the jobs', nor the audit log.
	do(state.ScopeRead, "GET", "/v1/jobs", nil)
	_, body = do(state.ScopeAdmin, "GET", "/v1/audit?limit=1000", nil)
	if !strings.Contains(string(body), "/v1/registries") {
		t.Errorf("the audit log lacks the registry changes: %s", body)
	}
	for _, a := range answers {
		if strings.Contains(a, "canary-") {
			t.Errorf("an answer shows a password: %s", a)
		}
	}
}
