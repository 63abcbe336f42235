package state_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/server/state"
)

// onBoth runs f on a SQLite database and on a PostgreSQL one: the same tests on both.
func onBoth(t *testing.T, f func(t *testing.T, where string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "state.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testenv.Postgres(t)) })
}

// kinds are the kinds the test runners know.
var kinds = []string{"scan", "build"}

func open(t *testing.T, where string) *state.Store {
	t.Helper()
	st, err := state.Open(context.Background(), where)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func queue(t *testing.T, st *state.Store, n int, at time.Time) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("job%03d", i)
		if err := st.CreateJob(context.Background(), &state.Job{ID: id, Kind: "scan", Subject: "img", State: state.JobQueued, Owner: "t",
			Created: at.Add(time.Duration(i) * time.Millisecond)}, []byte(`{"image_name":"img"}`)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// Claims: each queued job is taken by one runner only, however many claim at once (four stores on the same
// database, as four replicas), oldest first, with its spec.
func TestClaimOnce(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		first := open(t, where)
		ids := queue(t, first, 40, now)
		job, spec, err := first.ClaimJob(ctx, "r0", kinds, now, now.Add(time.Minute))
		if err != nil || job == nil || job.ID != ids[0] || string(spec) != `{"image_name":"img"}` || job.State != state.JobRunning || job.Runner != "r0" || job.Attempts != 1 {
			t.Fatalf("ClaimJob = %+v %s %v", job, spec, err)
		}
		var mu sync.Mutex
		claimed := map[string]string{job.ID: "r0"}
		var wg sync.WaitGroup
		for r := range 4 {
			st := first
			if r > 0 {
				st = open(t, where)
			}
			runner := fmt.Sprintf("r%d", r+1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					j, _, err := st.ClaimJob(ctx, runner, kinds, now, now.Add(time.Minute))
					if err != nil {
						t.Error(err)
						return
					}
					if j == nil {
						return
					}
					mu.Lock()
					if prev, ok := claimed[j.ID]; ok {
						t.Errorf("job %s claimed by %s and %s", j.ID, prev, runner)
					}
					claimed[j.ID] = runner
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimed) != len(ids) {
			t.Errorf("%d of %d jobs claimed", len(claimed), len(ids))
		}
		if j, _, err := first.ClaimJob(ctx, "r9", kinds, now, now.Add(time.Minute)); j != nil || err != nil {
			t.Errorf("an empty queue gave %+v %v", j, err)
		}
		// A kind a runner does not know is left to the others.
		if err := first.CreateJob(ctx, &state.Job{ID: "newer", Kind: "teleport", State: state.JobQueued, Created: now}, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if j, _, _ := first.ClaimJob(ctx, "r9", kinds, now, now.Add(time.Minute)); j != nil {
			t.Errorf("a runner took a kind it does not know: %+v", j)
		}
		if j, _, _ := first.ClaimJob(ctx, "r9", []string{"scan", "teleport"}, now, now.Add(time.Minute)); j == nil || j.ID != "newer" {
			t.Errorf("a runner that knows the kind did not take it: %+v", j)
		}
	})
}

// Leases: a runner renews its own; one whose lease ran out loses the job to the queue (its renewal, events and
// end are refused), the second runner's end is kept; after MaxAttempts starts a lapsed job is failed, not
// requeued. Cancellation: a queued job at once, a running one by a flag its runner reads at renewal, an ended
// one is a conflict.
func TestLeases(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := open(t, where)
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		ids := queue(t, st, 3, now)
		a, _, _ := st.ClaimJob(ctx, "a", kinds, now, now.Add(15*time.Second))
		if held, cancel, err := st.RenewLease(ctx, a.ID, "a", now.Add(20*time.Second)); !held || cancel || err != nil {
			t.Errorf("renew = %v %v %v", held, cancel, err)
		}
		if held, _, _ := st.RenewLease(ctx, a.ID, "b", now.Add(20*time.Second)); held {
			t.Error("another runner renewed a's lease")
		}
		if held, err := st.AddEvent(ctx, a.ID, "a", 0, []byte(`{"op":"scan"}`)); !held || err != nil {
			t.Errorf("AddEvent = %v %v", held, err)
		}
		// Before the lease runs out nothing is reclaimed; after, the job is queued again and claimed by b.
		if rq, f, err := st.Reclaim(ctx, now.Add(19*time.Second)); len(rq)+len(f) != 0 || err != nil {
			t.Errorf("Reclaim before the lease ran out = %v %v %v", rq, f, err)
		}
		if rq, f, err := st.Reclaim(ctx, now.Add(21*time.Second)); len(rq) != 1 || rq[0] != a.ID || len(f) != 0 || err != nil {
			t.Fatalf("Reclaim = %v %v %v", rq, f, err)
		}
		if held, _, _ := st.RenewLease(ctx, a.ID, "a", now.Add(30*time.Second)); held {
			t.Error("a renewed a lease it lost")
		}
		b, _, _ := st.ClaimJob(ctx, "b", kinds, now.Add(22*time.Second), now.Add(40*time.Second))
		if b == nil || b.ID != a.ID || b.Attempts != 2 {
			t.Fatalf("the requeued job claimed = %+v", b)
		}
		if held, _ := st.AddEvent(ctx, a.ID, "a", 1, []byte(`{}`)); held {
			t.Error("a wrote an event on a job it lost")
		}
		if n, err := st.NextEvent(ctx, a.ID); n != 1 || err != nil {
			t.Errorf("NextEvent = %d %v, want 1 (the first runner's event kept)", n, err)
		}
		a.State, a.Finished = state.JobSucceeded, now.Add(23*time.Second)
		if held, _ := st.FinishJob(ctx, a, "a"); held {
			t.Error("a recorded the end of a job it lost")
		}
		// b dies too: the job has had its attempts and fails.
		if rq, f, _ := st.Reclaim(ctx, now.Add(41*time.Second)); len(rq) != 0 || len(f) != 1 {
			t.Errorf("Reclaim after the last attempt = %v %v", rq, f)
		}
		if j, _ := st.GetJob(ctx, a.ID); j.State != state.JobFailed || len(j.Error) == 0 {
			t.Errorf("the job after two lapsed runners = %+v", j)
		}

		// Cancel: queued (at once), running (flagged for its runner), ended (409), missing (404).
		if j, err := st.RequestCancel(ctx, ids[1], now); err != nil || j.State != state.JobCanceled {
			t.Errorf("cancel queued = %+v %v", j, err)
		}
		c, _, _ := st.ClaimJob(ctx, "c", kinds, now, now.Add(time.Minute))
		if c == nil || c.ID != ids[2] {
			t.Fatalf("claim = %+v (the cancelled job must not be claimed)", c)
		}
		if j, err := st.RequestCancel(ctx, c.ID, now); err != nil || j.State != state.JobRunning {
			t.Errorf("cancel running = %+v %v", j, err)
		}
		if held, cancel, _ := st.RenewLease(ctx, c.ID, "c", now.Add(time.Minute)); !held || !cancel {
			t.Errorf("the runner's renewal after a cancel = %v %v", held, cancel)
		}
		c.State, c.Finished = state.JobCanceled, now
		if held, err := st.FinishJob(ctx, c, "c"); !held || err != nil {
			t.Errorf("FinishJob = %v %v", held, err)
		}
		if _, err := st.RequestCancel(ctx, c.ID, now); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("cancel ended = %v", err)
		}
		if _, err := st.RequestCancel(ctx, "nosuch", now); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("cancel missing = %v", err)
		}
		// A server shutting down releases its job: queued again, the attempt given back.
		if n, err := st.PruneJobs(ctx, 0, now.Add(2*time.Hour)); n != 3 || err != nil {
			t.Errorf("PruneJobs = %d %v, want the 3 ended", n, err)
		}
		queue(t, st, 4, now.Add(time.Hour))
		if n, _ := st.PruneJobs(ctx, 0, now.Add(2*time.Hour)); n != 0 {
			t.Errorf("PruneJobs deleted %d queued jobs", n)
		}
		d, _, _ := st.ClaimJob(ctx, "d", kinds, now, now.Add(time.Minute))
		if err := st.ReleaseJob(ctx, d.ID, "d"); err != nil {
			t.Fatal(err)
		}
		if j, _ := st.GetJob(ctx, d.ID); j.State != state.JobQueued || j.Attempts != 0 {
			t.Errorf("a released job = %+v", j)
		}
		if list, _ := st.Jobs(ctx, state.JobQuery{}); len(list) != 4 {
			t.Errorf("after pruning: %d jobs, want the 4 queued", len(list))
		}
	})
}

// Pruning keeps the newest ended jobs and their events, deletes the rest; the scheduled slots are done once.
func TestPruneAndSchedules(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := open(t, where)
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		ids := queue(t, st, 10, now)
		for range ids {
			j, _, _ := st.ClaimJob(ctx, "r", kinds, now, now.Add(time.Minute))
			st.AddEvent(ctx, j.ID, "r", 0, []byte(`{}`))
			j.State, j.Finished = state.JobSucceeded, now.Add(time.Second)
			st.FinishJob(ctx, j, "r")
		}
		if n, err := st.PruneJobs(ctx, 3, now.Add(-time.Hour)); n != 7 || err != nil {
			t.Errorf("PruneJobs(3) = %d %v, want 7", n, err)
		}
		list, _ := st.Jobs(ctx, state.JobQuery{})
		if len(list) != 3 || list[0].ID != ids[9] || list[2].ID != ids[7] {
			t.Errorf("kept %+v", list)
		}
		if ev, _ := st.Events(ctx, ids[0], 0, 10); len(ev) != 0 {
			t.Error("a pruned job's events are kept")
		}
		if ev, _ := st.Events(ctx, ids[9], 0, 10); len(ev) != 1 {
			t.Error("a kept job's events are gone")
		}
		if n, _ := st.PruneJobs(ctx, 100, now.Add(time.Hour)); n != 3 {
			t.Errorf("PruneJobs by age = %d, want 3", n)
		}
		slot := now.Truncate(time.Minute)
		if ok, err := st.ClaimSchedule(ctx, "retention/main", slot, "a", now); !ok || err != nil {
			t.Errorf("first claim = %v %v", ok, err)
		}
		if ok, err := st.ClaimSchedule(ctx, "retention/main", slot, "b", now); ok || err != nil {
			t.Errorf("second claim of a slot = %v %v", ok, err)
		}
		if ok, _ := st.ClaimSchedule(ctx, "retention/main", slot.Add(time.Minute), "b", now); !ok {
			t.Error("the next slot was refused")
		}
	})
}

// Replicas starting together on one PostgreSQL database migrate it once.
func TestConcurrentMigrations(t *testing.T) {
	where := testenv.Postgres(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := state.Open(context.Background(), where)
			if err == nil {
				st.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, err := state.Open(context.Background(), "postgres://nobody:canary-Pa55word@127.0.0.1:1/x?connect_timeout=2"); !errors.Is(err, errdefs.ErrUnavailable) ||
		strings.Contains(err.Error(), "canary-Pa55word") {
		t.Errorf("an unreachable database = %v (want unavailable, no password)", err)
	}
}

// Jobs lists the newest first, of a kind and subject when asked, at most the limit.
func TestJobQuery(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := open(t, where)
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, j := range []struct{ kind, subject string }{
			{"scan", "img"}, {"retention", "sec"}, {"retention", "other"}, {"retention", "sec"}, {"scan", "sec"},
		} {
			if err := st.CreateJob(ctx, &state.Job{ID: fmt.Sprintf("q%d", i), Kind: j.kind, Subject: j.subject, State: state.JobQueued,
				Owner: "t", Created: now.Add(time.Duration(i) * time.Second)}, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			q    state.JobQuery
			want []string
		}{
			{state.JobQuery{}, []string{"q4", "q3", "q2", "q1", "q0"}},
			{state.JobQuery{Limit: 2}, []string{"q4", "q3"}},
			{state.JobQuery{Kind: "retention"}, []string{"q3", "q2", "q1"}},
			{state.JobQuery{Kind: "retention", Subject: "sec"}, []string{"q3", "q1"}},
			{state.JobQuery{Kind: "retention", Subject: "sec", Limit: 1}, []string{"q3"}},
			{state.JobQuery{Subject: "sec"}, []string{"q4", "q3", "q1"}},
			{state.JobQuery{Kind: "build"}, []string{}},
			{state.JobQuery{Subject: "sec' OR '1'='1"}, []string{}},
		} {
			list, err := st.Jobs(ctx, c.q)
			ids := []string{}
			for _, j := range list {
				ids = append(ids, j.ID)
			}
			if err != nil || !slices.Equal(ids, c.want) {
				t.Errorf("Jobs(%+v) = %v, %v; want %v", c.q, ids, err, c.want)
			}
		}
	})
}
