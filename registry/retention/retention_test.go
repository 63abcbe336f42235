package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/registry/retention"
)

var now = time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return now.AddDate(0, 0, -n) }

// fixture is an in-process registry holding two repositories:
//
//	team-a/app  a1 (1 day old; latest, v5)  idx (index; newest image 3 days; multi)  a5 (release-4, v4)
//	            a10 (v3)  c20 (20 days; child-20d, an image of idx)  a40 (release-2, v2)
//	            ann (index; annotation 50 days; annotated)  a100 (v1)  rnd (random index, no time; random-index)
//	team-b/web  b2 (main)  bu (3 days, untagged)  b60 (old)
type fixture struct {
	host   string
	digest map[string]string // label → digest
	repo   map[string]string // label → repository path
	refuse func(*http.Request) bool
	mu     sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{digest: map[string]string{}, repo: map[string]string{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	// The fault hook lets a test make the registry refuse a read, which no real registry does on demand (one that
	// refuses deletes is distribution with its default configuration: TestApplyWhereTheRegistryRefusesDeletes).
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		refuse := f.refuse
		f.mu.Unlock()
		if refuse != nil && refuse(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			io.WriteString(w, `{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	f.host = strings.TrimPrefix(s.URL, "http://")

	c3 := f.image(t, daysAgo(3))
	c20 := f.image(t, daysAgo(20))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: c3, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: c20, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	ann, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ann = mutate.Annotations(ann, map[string]string{"org.opencontainers.image.created": daysAgo(50).Format(time.RFC3339)}).(v1.ImageIndex)
	rnd, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}

	f.push(t, "team-a/app", "a1", f.image(t, daysAgo(1)), "latest", "v5")
	f.push(t, "team-a/app", "idx", idx, "multi")
	f.push(t, "team-a/app", "c20", c20, "child-20d")
	f.push(t, "team-a/app", "a5", f.image(t, daysAgo(5)), "release-4", "v4")
	f.push(t, "team-a/app", "a10", f.image(t, daysAgo(10)), "v3")
	f.push(t, "team-a/app", "a40", f.image(t, daysAgo(40)), "release-2", "v2")
	f.push(t, "team-a/app", "ann", ann, "annotated")
	f.push(t, "team-a/app", "a100", f.image(t, daysAgo(100)), "v1")
	f.push(t, "team-a/app", "rnd", rnd, "random-index")
	f.push(t, "team-b/web", "b2", f.image(t, daysAgo(2)), "main")
	f.push(t, "team-b/web", "b60", f.image(t, daysAgo(60)), "old")
	f.push(t, "team-b/web", "bu", f.image(t, daysAgo(3)))
	return f
}

func (f *fixture) image(t *testing.T, created time.Time) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
		t.Fatal(err)
	}
	return img
}

// push writes an image or index under its first tag, or by digest alone when it has none, then adds the others.
func (f *fixture) push(t *testing.T, path, label string, art remote.Taggable, tags ...string) {
	t.Helper()
	repo := f.repository(t, path)
	d, err := art.(interface{ Digest() (v1.Hash, error) }).Digest()
	if err != nil {
		t.Fatal(err)
	}
	var ref name.Reference = repo.Digest(d.String())
	if len(tags) > 0 {
		ref = repo.Tag(tags[0])
	}
	switch a := art.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, a)
	case v1.Image:
		err = remote.Write(ref, a)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	for _, tag := range tags[min(1, len(tags)):] {
		if err := remote.Tag(repo.Tag(tag), art); err != nil {
			t.Fatalf("tagging %s: %v", tag, err)
		}
	}
	f.digest[label], f.repo[label] = d.String(), path
}

func (f *fixture) repository(t *testing.T, path string) name.Repository {
	t.Helper()
	repo, err := name.NewRepository(f.host + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func (f *fixture) label(d retention.Decision) string {
	for l, dg := range f.digest {
		if dg == d.Digest && f.repo[l] == d.Repository {
			return l
		}
	}
	return d.Repository + "@" + d.Digest
}

func (f *fixture) options() retention.Options {
	return retention.Options{Registry: f.host, Now: now}
}

// decisions indexes a report by label.
func (f *fixture) decisions(r *retention.Report) map[string]retention.Decision {
	m := map[string]retention.Decision{}
	for _, d := range r.Artifacts {
		m[f.label(d)] = d
	}
	return m
}

func kept(f *fixture, r *retention.Report) []string {
	var k []string
	for _, d := range r.Artifacts {
		if d.Keep {
			k = append(k, f.label(d))
		}
	}
	slices.Sort(k)
	return k
}

func mustParse(t *testing.T, policy string) retention.Policy {
	t.Helper()
	p, err := retention.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatalf("ParsePolicy(%q) = %v", policy, err)
	}
	return p
}

func TestPlan(t *testing.T) {
	f := newFixture(t)
	teamA := []string{"a1", "idx", "c20", "a5", "a10", "a40", "ann", "a100", "rnd"}
	tests := []struct {
		name     string
		policy   string
		untagged bool // pass bu as an extra digest
		want     []string
	}{{
		name: "most recently pushed 3, and the index's tagged image",
		policy: `rules:
- {repositories: {pattern: "team-a/**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 3}}`,
		want: []string{"a1", "idx", "a5", "c20", "b2", "b60"},
	}, {
		name: "pushed within 30 days; unknown and annotated-old are not",
		policy: `rules:
- {repositories: {pattern: "team-a/**"}, tags: {pattern: "**"}, retain: {pushed_within_days: 30}}`,
		want: []string{"a1", "idx", "a5", "a10", "c20", "b2", "b60"},
	}, {
		name: "always, tags matching",
		policy: `rules:
- {repositories: {pattern: "team-a/app"}, tags: {pattern: "release-*"}, retain: {always: true}}`,
		want: []string{"a5", "a40", "b2", "b60"},
	}, {
		name: "always, tags excluding: kept if one tag is not excluded",
		policy: `rules:
- {repositories: {pattern: "team-a/app"}, tags: {decoration: excludes, pattern: "v*"}, retain: {always: true}}`,
		want: []string{"a1", "idx", "c20", "a5", "a40", "ann", "rnd", "b2", "b60"},
	}, {
		name: "repositories excluding",
		policy: `rules:
- {repositories: {decoration: excludes, pattern: "team-a/**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 1}}`,
		want: append([]string{"b2"}, teamA...),
	}, {
		name: "two rules OR-ed",
		policy: `rules:
- {repositories: {pattern: "team-a/*"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 1}}
- {repositories: {pattern: "**"}, tags: {pattern: "v{1,2}"}, retain: {always: true}}`,
		want: []string{"a1", "a40", "a100"},
	}, {
		name: "Harbor's comma list",
		policy: `rules:
- {repositories: {pattern: "team-a/app,team-c/app"}, tags: {pattern: "v1,v2"}, retain: {always: true}}`,
		want: []string{"a40", "a100", "b2", "b60"},
	}, {
		name: "a multi-tag artifact is kept whole through one tag",
		policy: `rules:
- {repositories: {pattern: "team-a/app"}, tags: {pattern: "latest"}, retain: {always: true}}`,
		want: []string{"a1", "b2", "b60"},
	}, {
		name: "a disabled rule talks about nothing",
		policy: `rules:
- {repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 1}, disabled: true}`,
		want: append([]string{"b2", "b60"}, teamA...),
	}, {
		name: "an index keeps its images",
		policy: `rules:
- {repositories: {pattern: "team-a/app"}, tags: {pattern: "multi"}, retain: {always: true}}`,
		want: []string{"idx", "c20", "b2", "b60"},
	}, {
		name:     "untagged digests are deleted unless a rule selects them",
		untagged: true,
		policy: `rules:
- {repositories: {pattern: "team-b/*"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 2}}`,
		want: append([]string{"b2", "b60"}, teamA...),
	}, {
		name:     "untagged: true ranks untagged digests too",
		untagged: true,
		policy: `rules:
- {repositories: {pattern: "team-b/*"}, tags: {pattern: "**"}, untagged: true, retain: {most_recently_pushed: 2}}`,
		want: append([]string{"b2", "bu"}, teamA...),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := f.options()
			if tt.untagged {
				opts.ExtraDigests = map[string][]string{"team-b/web": {f.digest["bu"]}}
			}
			report, err := retention.Plan(context.Background(), mustParse(t, tt.policy), opts)
			if err != nil {
				t.Fatalf("Plan(%s) = %v", tt.name, err)
			}
			want := slices.Sorted(slices.Values(tt.want))
			if got := kept(f, report); !slices.Equal(got, want) {
				t.Errorf("Plan(%s) kept %v, want %v", tt.name, got, want)
			}
			wantN := 11
			if tt.untagged {
				wantN++
			}
			if len(report.Artifacts) != wantN || report.Kept != len(want) || report.Deleted != wantN-len(want) {
				t.Errorf("Plan(%s) has %d artifacts, %d kept, %d to delete; want %d, %d, %d",
					tt.name, len(report.Artifacts), report.Kept, report.Deleted, wantN, len(want), wantN-len(want))
			}
			if !report.DryRun {
				t.Errorf("Plan(%s).DryRun = false, want true", tt.name)
			}
		})
	}
}

// "Pushed within N days" counts back N calendar days for any N: 106752 days and more (past what a
// time.Duration holds) keep every artifact of known push time, instead of none.
func TestPlanPushedWithinManyDays(t *testing.T) {
	f := newFixture(t)
	for _, days := range []string{"106751", "106752", "1000000", "2147483648", "9223372036854775807"} {
		t.Run(days, func(t *testing.T) {
			p := mustParse(t, `rules:
- {repositories: {pattern: "team-a/**"}, tags: {pattern: "**"}, retain: {pushed_within_days: `+days+`}}`)
			report, err := retention.Plan(context.Background(), p, f.options())
			if err != nil {
				t.Fatalf("Plan = %v", err)
			}
			want := []string{"a1", "a10", "a100", "a40", "a5", "ann", "b2", "b60", "c20", "idx"}
			if got := kept(f, report); !slices.Equal(got, want) {
				t.Errorf("Plan(pushed within %s days) kept %v, want %v (all but the one of unknown time)", days, got, want)
			}
			if d := f.decisions(report)["a100"]; !strings.HasPrefix(d.Reason, "retained by rule 1: pushed within "+days+" days") {
				t.Errorf("Plan(pushed within %s days): a100's reason is %q", days, d.Reason)
			}
		})
	}
}

func TestPlanReasonsAndTimes(t *testing.T) {
	f := newFixture(t)
	p := mustParse(t, `rules:
- {repositories: {pattern: "team-a/**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 3}}
- {repositories: {pattern: "team-a/**"}, tags: {pattern: "v3"}, retain: {pushed_within_days: 30}}`)
	report, err := retention.Plan(context.Background(), p, f.options())
	if err != nil {
		t.Fatalf("Plan = %v", err)
	}
	ds := f.decisions(report)
	for _, tt := range []struct {
		label, reason, source string
		pushed                time.Time
	}{
		{"a1", "retained by rule 1: most recently pushed 3 (rank 1 of 9)", "config.created", daysAgo(1)},
		{"idx", "retained by rule 1: most recently pushed 3 (rank 2 of 9)", "config.created", daysAgo(3)},
		{"a5", "retained by rule 1: most recently pushed 3 (rank 3 of 9)", "config.created", daysAgo(5)},
		{"a10", "retained by rule 2: pushed within 30 days (2026-12-10)", "config.created", daysAgo(10)},
		{"c20", "referenced by retained index " + f.digest["idx"], "config.created", daysAgo(20)},
		{"ann", "not retained by any rule", "annotation", daysAgo(50)},
		{"rnd", "not retained by any rule", "unknown", time.Time{}},
		{"b2", "repository matches no rule", "", time.Time{}},
	} {
		d := ds[tt.label]
		if d.Reason != tt.reason || d.TimeSource != tt.source || !d.PushedAt.Equal(tt.pushed) {
			t.Errorf("Plan: %s has reason %q, time %v from %q; want %q, %v from %q",
				tt.label, d.Reason, d.PushedAt, d.TimeSource, tt.reason, tt.pushed, tt.source)
		}
	}
	if got := report.Artifacts[8]; got.Digest != f.digest["rnd"] {
		t.Errorf("Plan: team-a's 9th artifact is %s, want the one of unknown time last", f.label(report.Artifacts[8]))
	}
	if got, want := ds["a1"].Tags, []string{"latest", "v5"}; !slices.Equal(got, want) {
		t.Errorf("Plan: a1 has tags %v, want %v", got, want)
	}
	if !slices.ContainsFunc(report.Notes, func(n string) bool { return strings.Contains(n, "untagged") }) {
		t.Errorf("Plan notes %q, want one about untagged artifacts", report.Notes)
	}
}

func TestPlanDeletesNothing(t *testing.T) {
	f := newFixture(t)
	p := mustParse(t, `{"rules": [{"repositories": {"pattern": "**"}, "tags": {"pattern": "**"}, "retain": {"most_recently_pushed": 1}}]}`)
	report, err := retention.Plan(context.Background(), p, f.options())
	if err != nil {
		t.Fatalf("Plan = %v", err)
	}
	if report.Deleted == 0 {
		t.Fatalf("Plan would delete nothing; the test needs a plan that deletes")
	}
	for label, d := range f.digest {
		if _, err := remote.Get(f.repository(t, f.repo[label]).Digest(d)); err != nil {
			t.Errorf("after Plan, remote.Get(%s) = %v, want it still there", label, err)
		}
	}
}

// planOneEach plans "keep the newest of each repository", which deletes most of the fixture.
func planOneEach(t *testing.T, f *fixture) *retention.Report {
	t.Helper()
	report, err := retention.Plan(context.Background(), mustParse(t, `rules:
- {repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 1}}`), f.options())
	if err != nil {
		t.Fatalf("Plan = %v", err)
	}
	return report
}

// checkGone checks that the artifacts with the labels in gone are deleted, with their tags, and the others are
// all there.
func checkGone(t *testing.T, f *fixture, gone []string) {
	t.Helper()
	for label, d := range f.digest {
		repo := f.repository(t, f.repo[label])
		_, err := remote.Get(repo.Digest(d))
		var te *transport.Error
		switch {
		case slices.Contains(gone, label) && !(errors.As(err, &te) && te.StatusCode == http.StatusNotFound):
			t.Errorf("after Apply, remote.Get(%s) = %v, want 404", label, err)
		case !slices.Contains(gone, label) && err != nil:
			t.Errorf("after Apply, remote.Get(%s) = %v, want it still there", label, err)
		}
	}
	for _, path := range []string{"team-a/app", "team-b/web"} {
		tags, err := remote.List(f.repository(t, path))
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			desc, err := remote.Head(f.repository(t, path).Tag(tag))
			if err != nil {
				t.Fatal(err)
			}
			if l := f.label(retention.Decision{Repository: path, Digest: desc.Digest.String()}); slices.Contains(gone, l) {
				t.Errorf("after Apply, tag %s:%s still points at deleted %s", path, tag, l)
			}
		}
	}
}

func TestApply(t *testing.T) {
	f := newFixture(t)
	plan := planOneEach(t, f)
	var planned []string
	for _, d := range plan.Artifacts {
		if !d.Keep {
			planned = append(planned, f.label(d))
		}
	}
	slices.Sort(planned)
	if want := []string{"a10", "a100", "a40", "a5", "ann", "b60", "c20", "idx", "rnd"}; !slices.Equal(planned, want) {
		t.Fatalf("Plan would delete %v, want %v", planned, want)
	}

	// The plan goes through JSON, as it does when a CLI saves it for review.
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	var saved retention.Report
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	report, err := retention.Apply(context.Background(), &saved, retention.Options{})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	checkGone(t, f, planned)
	if report.DryRun || report.Deleted != len(planned) || report.Failed != 0 || report.Skipped != 0 {
		t.Errorf("Apply report: dry run %v, %d deleted, %d failed, %d skipped; want false, %d, 0, 0",
			report.DryRun, report.Deleted, report.Failed, report.Skipped, len(planned))
	}
	for _, d := range report.Artifacts {
		if d.Deleted == d.Keep {
			t.Errorf("Apply: %s keep %v, deleted %v", f.label(d), d.Keep, d.Deleted)
		}
	}
	if saved.Deleted != len(planned) || slices.ContainsFunc(saved.Artifacts, func(d retention.Decision) bool { return d.Deleted }) {
		t.Errorf("Apply changed the plan it was given")
	}

	// Applying the result again deletes nothing more and fails on nothing.
	again, err := retention.Apply(context.Background(), report, retention.Options{})
	if err != nil || again.Deleted != len(planned) {
		t.Errorf("Apply(Apply(plan)) = %d deleted, %v; want %d, nil", again.Deleted, err, len(planned))
	}
}

func TestApplySkipsRetagged(t *testing.T) {
	f := newFixture(t)
	plan := planOneEach(t, f)
	repo := f.repository(t, "team-a/app")
	img, err := remote.Image(repo.Digest(f.digest["a10"]))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(repo.Tag("hotfix"), img); err != nil {
		t.Fatal(err)
	}

	report, err := retention.Apply(context.Background(), plan, retention.Options{Registry: f.host})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	checkGone(t, f, []string{"idx", "c20", "a5", "a40", "a100", "ann", "rnd", "b60"})
	if d := f.decisions(report)["a10"]; !d.Skipped || d.Deleted {
		t.Errorf("Apply: retagged a10 skipped %v, deleted %v; want true, false", d.Skipped, d.Deleted)
	}
	if report.Skipped != 1 || !slices.ContainsFunc(report.Notes, func(n string) bool { return strings.Contains(n, f.digest["a10"]) }) {
		t.Errorf("Apply: %d skipped, notes %q; want 1 and a note on a10", report.Skipped, report.Notes)
	}
}

// A registry that does not delete (distribution's default, delete.enabled false) answers every DELETE with 405
// UNSUPPORTED: Apply still tries each artifact, deletes none, and says the registry does not implement it.
func TestApplyWhereTheRegistryRefusesDeletes(t *testing.T) {
	reg := testenv.Distribution(t, testenv.DistributionOptions{PlainHTTP: true, NoAuth: true, NoDelete: true})
	rOpts := []remote.Option{remote.WithTransport(reg.Transport())}
	repo, err := name.NewRepository(reg.Ref("app"))
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{} // tag → digest
	for _, age := range []int{1, 10, 40} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.CreatedAt(img, v1.Time{Time: daysAgo(age)}); err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("build-%d", age)
		if err := remote.Write(repo.Tag(tag), img, rOpts...); err != nil {
			t.Fatalf("pushing %s: %v", tag, err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = d.String()
	}
	opts := retention.Options{Registry: reg.Host, Now: now, Remote: rOpts}
	plan, err := retention.Plan(context.Background(), mustParse(t, `rules:
- {repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 1}}`), opts)
	if err != nil {
		t.Fatalf("Plan = %v", err)
	}
	if plan.Deleted != 2 {
		t.Fatalf("Plan would delete %d artifacts, want 2", plan.Deleted)
	}

	report, err := retention.Apply(context.Background(), plan, opts)
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("Apply on a registry that does not delete = %v, want %v", err, errdefs.ErrNotImplemented)
	}
	if report == nil || report.Deleted != 0 || report.Failed != 2 {
		t.Fatalf("Apply report = %+v, want 0 deleted and 2 failed", report)
	}
	for _, d := range report.Artifacts {
		if !d.Keep && (d.Deleted || !strings.Contains(d.Error, "does not allow")) {
			t.Errorf("Apply: %v deleted %v, error %q; want not deleted and the registry's refusal", d.Tags, d.Deleted, d.Error)
		}
	}
	for tag, d := range digests {
		if _, err := remote.Get(repo.Digest(d), rOpts...); err != nil {
			t.Errorf("after the refused Apply, %s is gone: %v", tag, err)
		}
		if got, err := remote.Head(repo.Tag(tag), rOpts...); err != nil || got.Digest.String() != d {
			t.Errorf("after the refused Apply, tag %s = %v, %v; want %s", tag, got, err, d)
		}
	}
}

func TestPlanKeepsWhatItCannotRead(t *testing.T) {
	f := newFixture(t)
	f.mu.Lock()
	f.refuse = func(r *http.Request) bool {
		return r.Method == http.MethodGet && (strings.HasSuffix(r.URL.Path, "/manifests/"+f.digest["a100"]) ||
			strings.HasSuffix(r.URL.Path, "/team-b/web/tags/list"))
	}
	f.mu.Unlock()
	report, err := retention.Plan(context.Background(), mustParse(t, `rules:
- {repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 1}}`), f.options())
	if err == nil {
		t.Errorf("Plan with unreadable manifest and repository = nil error, want one")
	}
	ds := f.decisions(report)
	if d := ds["a100"]; !d.Keep || d.Error == "" {
		t.Errorf("Plan: unreadable a100 keep %v, error %q; want true and an error", d.Keep, d.Error)
	}
	if _, ok := ds["b60"]; ok || len(report.Artifacts) != 9 {
		t.Errorf("Plan: %d artifacts, team-b's included %v; want team-a's 9 only", len(report.Artifacts), ok)
	}
}

func TestPlanErrors(t *testing.T) {
	f := newFixture(t)
	p := mustParse(t, `rules: [{repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {always: true}}]`)
	tests := []struct {
		name string
		opts retention.Options
		want error
	}{
		{"no registry", retention.Options{}, errdefs.ErrInvalidArgument},
		{"bad extra digest", retention.Options{Registry: f.host, ExtraDigests: map[string][]string{"team-b/web": {"latest"}}}, errdefs.ErrInvalidArgument},
		{"unknown repository", retention.Options{Registry: f.host, Repositories: []string{"team-a/app", "nope"}}, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			report, err := retention.Plan(context.Background(), p, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Plan(%s) = %v, want %v", tt.name, err, tt.want)
			}
			if tt.want == errdefs.ErrNotFound && (report == nil || len(report.Artifacts) != 9) {
				t.Errorf("Plan(%s) gave no report of the readable repository", tt.name)
			}
		})
	}
	if _, err := retention.Plan(context.Background(), retention.Policy{Rules: []retention.Rule{{}}}, f.options()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Plan(empty rule) = %v, want %v", err, errdefs.ErrInvalidArgument)
	}
	if _, err := retention.Apply(context.Background(), &retention.Report{Registry: f.host}, retention.Options{Registry: "example.com"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Apply(plan of another registry) = %v, want %v", err, errdefs.ErrInvalidArgument)
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name     string
		policy   string
		problems int // 0: valid; -1: unreadable, no PolicyError
	}{
		{"yaml", "rules:\n- repositories: {decoration: matches, pattern: \"team-a/**\"}\n  tags: {decoration: excludes, pattern: \"*-dev\"}\n  untagged: true\n  retain: {most_recently_pushed: 5}\n", 0},
		{"json", `{"rules":[{"repositories":{"pattern":"**"},"tags":{"pattern":"{a,b}*"},"retain":{"always":true}}]}`, 0},
		{"no rules", `rules: []`, 0},
		{"no retain template", `rules: [{repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {}}]`, 1},
		{"two templates", `rules: [{repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {always: true, pushed_within_days: 3}}]`, 1},
		{"N < 1", `rules: [{repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: -2}}]`, 1},
		{"bad pattern", `rules: [{repositories: {pattern: "team-[a"}, tags: {pattern: "**"}, retain: {always: true}}]`, 1},
		{"bad decoration", `rules: [{repositories: {decoration: matching, pattern: "**"}, tags: {pattern: "**"}, retain: {always: true}}]`, 1},
		{"every problem", `rules:
- {repositories: {pattern: ""}, tags: {pattern: "{a"}, retain: {}}
- {repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {always: true, most_recently_pushed: 0, pushed_within_days: -1}}`, 5},
		{"unknown field", `rules: [{repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {most_recent: 5}}]`, -1},
		{"not yaml", `rules: [`, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := retention.ParsePolicy([]byte(tt.policy))
			var pe *retention.PolicyError
			switch {
			case tt.problems == 0 && err != nil:
				t.Errorf("ParsePolicy(%q) = %v, want nil", tt.policy, err)
			case tt.problems != 0 && !errors.Is(err, errdefs.ErrInvalidArgument):
				t.Errorf("ParsePolicy(%q) = %v, want %v", tt.policy, err, errdefs.ErrInvalidArgument)
			case tt.problems > 0 && (!errors.As(err, &pe) || len(pe.Problems) != tt.problems):
				t.Errorf("ParsePolicy(%q) = %v, want a PolicyError with %d problems", tt.policy, err, tt.problems)
			}
		})
	}
}

// Accessories (what the referrers tag schema or cosign tags sha256-HEX, .sig, .att, .sbom) go with their
// subject: no rule selects or counts them; the one of a kept image is kept, the one of a deleted image is
// deleted, one whose subject is not listed is kept.
func TestPlanAccessoriesFollowTheirSubject(t *testing.T) {
	f := &fixture{digest: map[string]string{}, repo: map[string]string{}}
	reg := testenv.InProcess(t)
	f.host = reg.Host
	newer, older := f.image(t, daysAgo(1)), f.image(t, daysAgo(9))
	f.push(t, "app", "newer", newer, "v2")
	f.push(t, "app", "older", older, "v1")
	tagOf := func(label, suffix string) string {
		return strings.Replace(f.digest[label], "sha256:", "sha256-", 1) + suffix
	}
	f.push(t, "app", "newer.sig", f.image(t, now), tagOf("newer", ".sig"))
	f.push(t, "app", "older.ref", f.image(t, now), tagOf("older", ""))
	f.push(t, "app", "orphan.att", f.image(t, now), "sha256-"+strings.Repeat("ab", 32)+".att")
	f.push(t, "app", "mixed", f.image(t, now), tagOf("older", ".sbom"), "release")

	plan, err := retention.Plan(context.Background(), mustParse(t, `rules: [{repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {most_recently_pushed: 2}}]`), f.options())
	if err != nil {
		t.Fatal(err)
	}
	d := f.decisions(plan)
	for label, want := range map[string]bool{"newer": true, "mixed": true, "older": false, "newer.sig": true, "older.ref": false, "orphan.att": true} {
		if d[label].Keep != want {
			t.Errorf("%s: keep %v (%s), want %v", label, d[label].Keep, d[label].Reason, want)
		}
	}
	if r := d["older.ref"].Reason; !strings.Contains(r, "accessory of "+f.digest["older"]) {
		t.Errorf("the deleted accessory's reason = %q", r)
	}
}
