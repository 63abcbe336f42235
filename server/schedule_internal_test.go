package server

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry/credstore"
	"github.com/codomyrmex/containerization/registry/retention"
	"github.com/codomyrmex/containerization/server/state"
)

// The scheduled times a tick finds: those of the last few minutes, none twice, the same on every replica
// (constant-delay schedules fall on multiples of their delay).
func TestDueSlots(t *testing.T) {
	at := func(h, m, s int) time.Time { return time.Date(2027, 1, 1, h, m, s, 0, time.UTC) }
	for _, c := range []struct {
		spec string
		now  time.Time
		want []time.Time
	}{
		{"0 3 * * *", at(3, 0, 20), []time.Time{at(3, 0, 0)}},
		{"0 3 * * *", at(3, 2, 59), []time.Time{at(3, 0, 0)}},
		{"0 3 * * *", at(3, 3, 1), nil}, // too late: skipped, as cron does
		{"0 3 * * *", at(2, 59, 59), nil},
		{"* * * * *", at(3, 0, 30), []time.Time{at(2, 58, 0), at(2, 59, 0), at(3, 0, 0)}},
		{"@hourly", at(5, 1, 0), []time.Time{at(5, 0, 0)}},
		{"@every 2m", at(5, 1, 0), []time.Time{at(5, 0, 0)}},
		{"@every 1m", at(5, 1, 0), []time.Time{at(4, 59, 0), at(5, 0, 0), at(5, 1, 0)}},
		{"@every 6h", at(6, 0, 1), []time.Time{at(6, 0, 0)}},
	} {
		sched, err := retention.ParseSchedule(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := dueSlots(sched, c.now, scheduleWindow); !slices.EqualFunc(got, c.want, time.Time.Equal) {
			t.Errorf("dueSlots(%q, %s) = %v, want %v", c.spec, c.now.Format("15:04:05"), got, c.want)
		}
	}
	for _, bad := range []string{"", "* * *", "61 * * * *", "CRON_TZ=Europe/Paris 0 3 * * *", "@yearly-ish"} {
		if _, err := retention.ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) passed", bad)
		}
	}
	if _, err := retention.ParsePolicy([]byte("schedule: '0 3 * *'\nrules: []\n")); err == nil {
		t.Error("a policy with a bad schedule passed")
	}
}

// A saved registry's retention policy with a schedule runs from the server, once per scheduled time across two
// replicas on one PostgreSQL database (both tick at once, and one ticks again), as a job that applies it.
func TestScheduledRetention(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	where := testenv.Postgres(t)
	reg := testenv.InProcess(t)
	key := make([]byte, credstore.KeySize)
	rand.Read(key)
	dir := t.TempDir()
	replica := func(name string) *Server {
		store, err := credstore.Open(credstore.Options{Dir: dir, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		c, err := containerization.New(ctx, containerization.Config{Engine: eng, Registries: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		st, err := state.Open(ctx, where)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := New(ctx, Config{Client: c, State: st, Runner: name, ScheduleEvery: -1, JobPoll: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(tlog{t}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	a, b := replica("a"), replica("b")
	c := a.cfg.Client
	// Two images in one repository, the older pushed first; the policy keeps the most recent one.
	for _, p := range []struct{ image, tag string }{{testimages.Busybox, "old"}, {testimages.Web, "new"}} {
		if _, err := c.ManageContainerRegistry(ctx, containerization.RegistryPush, p.image, reg.URL(),
			containerization.RegistryOptions{Destination: "sched/app:" + p.tag}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddRegistry(ctx, "sched", containerization.ContainerRegistry{URL: reg.URL(), RetentionPolicy: map[string]any{
		"schedule": "*/5 * * * *",
		"rules": []any{map[string]any{"repositories": map[string]any{"pattern": "**"}, "tags": map[string]any{"pattern": "**"},
			"retain": map[string]any{"most_recently_pushed": 1}}}}}, containerization.AddRegistryOptions{}); err != nil {
		t.Fatal(err)
	}
	before := time.Date(2027, 1, 1, 0, 4, 30, 0, time.UTC)
	a.schedules(ctx, before) // 00:00 is more than the window back: nothing due
	now := time.Date(2027, 1, 1, 0, 5, 30, 0, time.UTC)
	var wg sync.WaitGroup
	for _, s := range []*Server{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); s.schedules(ctx, now) }()
	}
	wg.Wait()
	b.schedules(ctx, now.Add(20*time.Second))
	jobs, err := a.cfg.State.Jobs(ctx, state.JobQuery{})
	if err != nil || len(jobs) != 1 || jobs[0].Kind != "retention" || jobs[0].Owner != "scheduler" || jobs[0].Subject != "sched" {
		t.Fatalf("jobs after the ticks = %+v, %v; want one retention run", jobs, err)
	}
	var job *state.Job
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if job, err = a.cfg.State.GetJob(ctx, jobs[0].ID); err != nil || job.Done() {
			break
		}
	}
	if err != nil || job.State != state.JobSucceeded {
		t.Fatalf("the retention run = %+v %s, %v", job, job.Error, err)
	}
	res, err := c.ManageContainerRegistry(ctx, containerization.RegistryList, "sched/app", reg.URL(), containerization.RegistryOptions{})
	if err != nil || !slices.Equal(res.Tags, []string{"new"}) {
		t.Errorf("tags after the scheduled run = %v, %v; want new alone (result %s)", res.Tags, err, job.Result)
	}
}

// tlog writes a server's log to the test's.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }
