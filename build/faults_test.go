package build_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
)

// A standalone buildkitd killed in the middle of a step: the build ends at once with a typed error that says the
// builder went away (not a step's failure, not a hang until the deadline), and nothing is pushed under the tag.
func TestBuilderKilledMidBuild(t *testing.T) {
	f := newRemoteFixture(t)
	addr, kill := testenv.BuildkitdKillable(t, f.reg.Host)
	tag := f.reg.Ref("app:killed")
	dir := f.context("FROM BASE\nRUN echo started && sleep 60 && echo never\n")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var killedAt string
	_, err := build.Build(ctx, nil, build.Options{ContextPath: dir, Builder: addr, Output: build.OutputRegistry, Tags: []string{tag},
		Progress: func(e build.Event) {
			// The step has started and printed: it is running inside buildkitd now.
			if e.Kind == build.StepLog && strings.Contains(e.Line, "started") && killedAt == "" {
				killedAt = e.Name
				kill()
			}
		}})
	if killedAt == "" {
		t.Fatalf("Build = %v before the RUN step printed: nothing was killed", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Build ran until its deadline (%v) after buildkitd was killed during %q", err, killedAt)
	}
	var se *build.StepError
	if !errors.Is(err, errdefs.ErrUnavailable) || errors.As(err, &se) {
		t.Errorf("Build with buildkitd killed during %q = %v (%T), want ErrUnavailable saying the builder went away, not a step's failure", killedAt, err, err)
	}
	if _, herr := remote.Head(f.ref(tag), remote.WithTransport(f.reg.Transport())); herr == nil {
		t.Errorf("%s exists after a build whose builder was killed", tag)
	}
}
