package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// MaxJobEvents bounds the events a job keeps; later ones are counted, not kept (the result is always kept).
const MaxJobEvents = 10000

// The causes a job's context ends with, besides a cancellation asked for through the API.
var (
	errShutdown  = errors.New("the server is shutting down")
	errLeaseLost = errors.New("the job's lease was lost: another server took it over")
	errCanceled  = errors.New("canceled through the API")
)

// jobs runs the server's jobs. A request stores a job (its kind and its request) queued; every server on the same
// state claims queued jobs, one server per job, and runs each on a context of its own (a client that disconnects
// does not stop it), renewing a lease on it while it runs. A server that dies mid-job lets its lease run out; any
// server then puts the job back in the queue (up to state.MaxAttempts starts) or fails it, so that a job is never
// lost and never run by two servers at once: a server that cannot renew its lease stops the job. A server that
// shuts down puts its running jobs back in the queue.
type jobs struct {
	st  *state.Store
	log *slog.Logger
	now func() time.Time

	runner string        // this server's name among the replicas
	lease  time.Duration // how long a claim holds without renewal
	poll   time.Duration // how often the queue is looked at (a job submitted here wakes it at once)
	max    int           // jobs run at once by this server
	keep   int           // ended jobs kept
	maxAge time.Duration // and for how long

	// kinds prepares each kind's work from its request: at submission (to refuse a bad request before it is
	// queued) and when a server claims it.
	kinds     map[string]prepare
	kindNames []string

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	mu      sync.Mutex
	running map[string]*running

	// ended, when set, is told of each job this process ran once it has ended (the metrics count them).
	ended func(job *state.Job)
}

// prepare checks a job's request and returns its subject and its work.
type prepare func(spec json.RawMessage) (subject string, run work, err error)

// work is what a job runs: it reports its progress, and returns its result.
type work func(ctx context.Context, progress func(containerization.Event)) (any, error)

// running is a job in this process.
type running struct {
	cancel  context.CancelCauseFunc
	renewed time.Time // the last renewal of its lease that the database confirmed (only maintain touches it)
	mu      sync.Mutex
	seq     int
	notify  chan struct{} // closed and replaced at each event and at the end
}

type jobsConfig struct {
	runner       string
	lease, poll  time.Duration
	max, keep    int
	maxAge       time.Duration
	log          *slog.Logger
	now          func() time.Time
	kinds        map[string]prepare
	ended        func(*state.Job)
	disableClaim bool
}

func newJobs(st *state.Store, c jobsConfig) *jobs {
	if c.runner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		c.runner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &jobs{st: st, log: c.log, now: c.now, runner: c.runner, lease: c.lease, poll: c.poll, max: c.max, keep: c.keep, maxAge: c.maxAge,
		kinds: c.kinds, kindNames: slices.Sorted(maps.Keys(c.kinds)), ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), running: map[string]*running{}, ended: c.ended}
}

// start runs the claiming loop.
func (j *jobs) start() {
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		j.loop()
	}()
}

// close stops claiming, puts the running jobs back in the queue and waits for them to stop.
func (j *jobs) close() {
	j.cancel(errShutdown)
	j.wg.Wait()
}

// submit checks a request of kind and queues it.
func (j *jobs) submit(ctx context.Context, kind, owner string, spec json.RawMessage) (*state.Job, error) {
	p := j.kinds[kind]
	if p == nil {
		return nil, fmt.Errorf("%w: no job kind %q", errdefs.ErrInvalidArgument, kind)
	}
	subject, _, err := p(spec)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 12)
	rand.Read(id)
	job := &state.Job{ID: hex.EncodeToString(id), Kind: kind, Subject: subject, State: state.JobQueued, Owner: owner, Created: j.now().UTC()}
	if err := j.st.CreateJob(ctx, job, spec); err != nil {
		return nil, err
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return job, nil
}

// loop claims queued jobs while this server has room, renews its leases, takes back the jobs of servers that
// died, and prunes old jobs.
func (j *jobs) loop() {
	claim := time.NewTicker(j.poll)
	defer claim.Stop()
	renew := time.NewTicker(j.lease / 3)
	defer renew.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	j.maintain(true)
	for {
		j.claim()
		select {
		case <-j.ctx.Done():
			return
		case <-j.wake:
		case <-claim.C:
		case <-renew.C:
			j.maintain(false)
		case <-prune.C:
			j.maintain(true)
		}
	}
}

// claim takes queued jobs while fewer than max run here.
func (j *jobs) claim() {
	for {
		j.mu.Lock()
		n := len(j.running)
		j.mu.Unlock()
		if n >= j.max || j.ctx.Err() != nil {
			return
		}
		now := j.now()
		job, spec, err := j.st.ClaimJob(j.ctx, j.runner, j.kindNames, now, now.Add(j.lease))
		if err != nil {
			if j.ctx.Err() == nil {
				j.log.Error("claiming a job", "err", err)
			}
			return
		}
		if job == nil {
			return
		}
		ctx, cancel := context.WithCancelCause(j.ctx)
		rj := &running{cancel: cancel, notify: make(chan struct{}), renewed: now}
		j.mu.Lock()
		j.running[job.ID] = rj
		j.mu.Unlock()
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			defer cancel(nil)
			j.run(ctx, job, spec, rj)
		}()
	}
}

// maintain renews the leases of the jobs running here (stopping those lost or cancelled elsewhere), takes back the
// jobs whose lease ran out, and with prune deletes the old ended jobs.
func (j *jobs) maintain(prune bool) {
	ctx := j.ctx
	j.mu.Lock()
	ids := make(map[string]*running, len(j.running))
	for id, rj := range j.running {
		ids[id] = rj
	}
	j.mu.Unlock()
	for id, rj := range ids {
		held, cancel, err := j.st.RenewLease(ctx, id, j.runner, j.now().Add(j.lease))
		switch {
		case err != nil && j.now().Sub(rj.renewed) >= j.lease/2:
			// The lease may run out before the database answers again, and another server take the job: stop it
			// first, so that it never runs twice at once (the other server runs it again).
			j.log.Error("cannot renew a job's lease: stopping it", "id", id, "err", err)
			rj.cancel(errLeaseLost)
		case err != nil:
			j.log.Error("renewing a job's lease", "id", id, "err", err)
		case !held:
			rj.cancel(errLeaseLost)
		case cancel:
			rj.renewed = j.now()
			rj.cancel(errCanceled)
		default:
			rj.renewed = j.now()
		}
	}
	requeued, failed, err := j.st.Reclaim(ctx, j.now())
	if err != nil {
		if ctx.Err() == nil {
			j.log.Error("taking back jobs", "err", err)
		}
	} else if len(requeued)+len(failed) > 0 {
		j.log.Warn("jobs of a server that stopped", "requeued", requeued, "failed", failed)
	}
	if prune {
		if n, err := j.st.PruneJobs(ctx, j.keep, j.now().Add(-j.maxAge)); err != nil {
			if ctx.Err() == nil {
				j.log.Error("pruning jobs", "err", err)
			}
		} else if n > 0 {
			j.log.Info("old jobs pruned", "jobs", n)
		}
		if n, err := j.st.PruneRefusals(ctx, j.keep, j.now().Add(-j.maxAge)); err != nil {
			if ctx.Err() == nil {
				j.log.Error("pruning the policy's refusals", "err", err)
			}
		} else if n > 0 {
			j.log.Info("old refusals of the policy pruned", "refusals", n)
		}
	}
}

func (j *jobs) run(ctx context.Context, job *state.Job, spec []byte, rj *running) {
	store := context.WithoutCancel(ctx)
	defer func() {
		j.mu.Lock()
		delete(j.running, job.ID)
		j.mu.Unlock()
		rj.mu.Lock()
		close(rj.notify)
		rj.notify = nil
		rj.mu.Unlock()
		select { // room for another job
		case j.wake <- struct{}{}:
		default:
		}
	}()
	seq, err := j.st.NextEvent(store, job.ID)
	if err != nil {
		j.log.Error("job", "id", job.ID, "err", err)
	}
	rj.seq = seq
	dropped := 0
	progress := func(e containerization.Event) {
		b, err := json.Marshal(e)
		if err != nil {
			return
		}
		rj.mu.Lock()
		defer rj.mu.Unlock()
		if rj.seq >= MaxJobEvents {
			dropped++
			return
		}
		held, err := j.st.AddEvent(store, job.ID, j.runner, rj.seq, b)
		if err != nil {
			j.log.Error("job event", "id", job.ID, "err", err)
			return
		}
		if !held {
			rj.cancel(errLeaseLost)
			return
		}
		rj.seq++
		close(rj.notify)
		rj.notify = make(chan struct{})
	}
	if job.Attempts > 1 {
		progress(containerization.Event{Time: j.now().UTC(), Op: job.Kind, Status: "restarted",
			Message: fmt.Sprintf("the server running this job stopped; %s starts it again (attempt %d of %d)", j.runner, job.Attempts, state.MaxAttempts)})
	}
	res, err := func() (res any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("the job panicked: %v", p)
			}
		}()
		p := j.kinds[job.Kind]
		if p == nil {
			return nil, fmt.Errorf("%w: this server does not know jobs of kind %q", errdefs.ErrNotImplemented, job.Kind)
		}
		_, run, err := p(spec)
		if err != nil {
			return nil, err
		}
		return run(ctx, progress)
	}()
	if dropped > 0 {
		j.log.Warn("job events dropped", "id", job.ID, "dropped", dropped)
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errShutdown) && err != nil:
		// Not the job's fault: it goes back to the queue, for another server or the next start.
		if rerr := j.st.ReleaseJob(store, job.ID, j.runner); rerr != nil {
			j.log.Error("job", "id", job.ID, "err", rerr)
		}
		return
	case errors.Is(cause, errLeaseLost):
		j.log.Warn("job stopped: another server holds it", "id", job.ID)
		return
	}
	job.Finished = j.now().UTC()
	switch {
	case err == nil:
		job.State = state.JobSucceeded
	case errors.Is(context.Cause(ctx), errCanceled):
		job.State = state.JobCanceled
	default:
		job.State = state.JobFailed
	}
	if b, err := json.Marshal(res); err == nil && string(b) != "null" {
		job.Result = b // a typed nil (a failed call's result) is no result
	}
	if err != nil {
		job.Error, _ = json.Marshal(containerization.NewErrorObject(err))
	}
	j.recordScan(store, job) // the scan history (scans.go), in it before the job is seen ended
	keepRefusal(store, j.st, j.log, refusalOf(containerization.PolicyVerdict(err), job.Finished, state.RefusalJob, job.Kind+" "+job.Subject, job.Owner, job.ID))
	held, uerr := j.st.FinishJob(store, job, j.runner)
	if uerr != nil {
		j.log.Error("job", "id", job.ID, "err", uerr)
	}
	if held && j.ended != nil {
		j.ended(job)
	}
}

// cancelJob cancels a job: a queued one never starts, a running one here stops at once, one running on another
// server stops at its next lease renewal. One that has ended is ErrConflict, one not there ErrNotFound.
func (j *jobs) cancelJob(ctx context.Context, id string) (*state.Job, error) {
	job, err := j.st.RequestCancel(ctx, id, j.now())
	if err != nil {
		return job, err
	}
	j.mu.Lock()
	rj := j.running[id]
	j.mu.Unlock()
	if rj != nil {
		rj.cancel(errCanceled)
	}
	return job, nil
}

// wait returns a channel closed at the job's next event or end; nil when the job is not running here.
func (j *jobs) wait(id string) <-chan struct{} {
	j.mu.Lock()
	rj := j.running[id]
	j.mu.Unlock()
	if rj == nil {
		return nil
	}
	rj.mu.Lock()
	defer rj.mu.Unlock()
	return rj.notify
}

// streamBatch is how many events a stream reads at once.
const streamBatch = 1000

// stream writes a job's events as Server-Sent Events (event "progress", id its sequence number), from the
// Last-Event-ID the client saw, as they come (at once from a job running here, within the poll interval from one
// queued or running on another server), then an "end" event with the job, and returns.
func (j *jobs) stream(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := j.st.GetJob(r.Context(), id); err != nil {
		return err
	}
	if _, ok := w.(http.Flusher); !ok {
		return fmt.Errorf("%w: this connection cannot stream", errdefs.ErrNotImplemented)
	}
	// Each write is bounded in time: a client that stops reading (its buffers full) is dropped after
	// streamWriteTimeout instead of holding the stream for ever.
	rc := http.NewResponseController(w)
	emit := func(format string, args ...any) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	next := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &next); err != nil || next < 0 || next >= MaxJobEvents {
			return fmt.Errorf("%w: Last-Event-ID %q", errdefs.ErrInvalidArgument, v)
		}
		next++
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if emit("") != nil { // the status and headers at once, before the first event
		return nil
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		wake := j.wait(id) // taken before reading, so that an event written meanwhile wakes the loop
		events, err := j.st.Events(r.Context(), id, next, streamBatch)
		if err != nil {
			return nil // the status is sent; the stream ends
		}
		for _, e := range events {
			if emit("id: %d\nevent: progress\ndata: %s\n\n", next, e) != nil {
				return nil // the client is gone or stopped reading
			}
			next++
		}
		if len(events) == streamBatch {
			continue
		}
		if wake == nil { // not running here: queued, running elsewhere, or ended
			job, err := j.st.GetJob(r.Context(), id)
			if err != nil {
				return nil
			}
			if job.Done() {
				if more, err := j.st.Events(r.Context(), id, next, 1); err == nil && len(more) > 0 {
					continue
				}
				b, _ := json.Marshal(job)
				_ = emit("event: end\ndata: %s\n\n", b)
				return nil
			}
			t := time.NewTimer(j.poll)
			select {
			case <-t.C:
			case <-heartbeat.C:
				t.Stop()
				if emit(": heartbeat\n\n") != nil {
					return nil
				}
			case <-r.Context().Done():
				t.Stop()
				return nil
			}
			continue
		}
		select {
		case <-wake:
		case <-heartbeat.C:
			if emit(": heartbeat\n\n") != nil {
				return nil
			}
		case <-r.Context().Done():
			return nil
		}
	}
}
