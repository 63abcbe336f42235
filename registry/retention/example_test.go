package retention_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/registry/retention"
)

func ExampleParsePolicy() {
	p, err := retention.ParsePolicy([]byte(`
rules:
  - repositories: {decoration: matches, pattern: "team-a/**"}
    tags: {decoration: matches, pattern: "release-*"}
    retain: {most_recently_pushed: 5}
  - repositories: {pattern: "**"}
    tags: {decoration: excludes, pattern: "*-dev"}
    untagged: true
    retain: {pushed_within_days: 30}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, r := range p.Rules {
		fmt.Printf("rule %d: %s\n", i+1, r)
	}

	_, err = retention.ParsePolicy([]byte(`rules: [{repositories: {pattern: "**"}, tags: {pattern: "[a"}, retain: {}}]`))
	fmt.Println(err)
	// Output:
	// rule 1: retain the most recently pushed 5 artifacts, repositories matching team-a/**, tags matching release-*
	// rule 2: retain the artifacts pushed within the last 30 days, repositories matching **, tags excluding *-dev and untagged artifacts
	// invalid retention policy: rule 1: tags.pattern "[a" is not a valid pattern; rule 1: retain: no template: set most_recently_pushed, pushed_within_days (at least 1) or always: true
}

func ExamplePlan() {
	// An in-process registry with three images of app, built 1, 10 and 40 days ago.
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer s.Close()
	host := strings.TrimPrefix(s.URL, "http://")
	now := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	for _, age := range []int{1, 10, 40} {
		img, _ := random.Image(64, 1)
		img, _ = mutate.CreatedAt(img, v1.Time{Time: now.AddDate(0, 0, -age)})
		ref, _ := name.ParseReference(fmt.Sprintf("%s/app:build-%d", host, age))
		if err := remote.Write(ref, img); err != nil {
			fmt.Println(err)
			return
		}
	}

	p, _ := retention.ParsePolicy([]byte(`rules:
- {repositories: {pattern: "**"}, tags: {pattern: "build-*"}, retain: {most_recently_pushed: 1}}
- {repositories: {pattern: "**"}, tags: {pattern: "**"}, retain: {pushed_within_days: 30}}`))
	report, err := retention.Plan(context.Background(), p, retention.Options{Registry: host, Now: now})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range report.Artifacts {
		fmt.Printf("%s:%s keep=%v (%s)\n", d.Repository, strings.Join(d.Tags, ","), d.Keep, d.Reason)
	}
	fmt.Printf("%d kept, %d to delete\n", report.Kept, report.Deleted)
	// Output:
	// app:build-1 keep=true (retained by rule 1: most recently pushed 1 (rank 1 of 3))
	// app:build-10 keep=true (retained by rule 2: pushed within 30 days (2026-12-10))
	// app:build-40 keep=false (not retained by any rule)
	// 2 kept, 1 to delete
}
