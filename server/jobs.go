package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// MaxJobEvents bounds the events a job keeps; later ones are counted, not kept (the result is always kept).
const MaxJobEvents = 10000

// jobs runs the server's jobs: each on a context of its own (a client that disconnects does not stop it),
// its events stored as they come and handed to the streams that follow it.
type jobs struct {
	st  *state.Store
	log *slog.Logger
	now func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]*running

	// ended, when set, is told of each job this process ran once it has ended (the metrics count them).
	ended func(job *state.Job)
}

// running is a job in this process.
type running struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	seq    int
	notify chan struct{} // closed and replaced at each event and at the end
}

func newJobs(st *state.Store, log *slog.Logger, now func() time.Time) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobs{st: st, log: log, now: now, ctx: ctx, cancel: cancel, running: map[string]*running{}}
}

func (j *jobs) close() {
	j.cancel()
	j.wg.Wait()
}

// work is what a job runs: it reports its progress, and returns its result.
type work func(ctx context.Context, progress func(containerization.Event)) (any, error)

// start records a queued job and runs it.
func (j *jobs) start(kind, subject, owner string, run work) (*state.Job, error) {
	id := make([]byte, 12)
	rand.Read(id)
	job := &state.Job{ID: hex.EncodeToString(id), Kind: kind, Subject: subject, State: state.JobQueued, Owner: owner, Created: j.now().UTC()}
	if err := j.st.CreateJob(j.ctx, job); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(j.ctx)
	rj := &running{cancel: cancel, notify: make(chan struct{})}
	j.mu.Lock()
	j.running[job.ID] = rj
	j.mu.Unlock()
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		defer cancel()
		j.run(ctx, job, rj, run)
	}()
	out := *job
	return &out, nil
}

func (j *jobs) run(ctx context.Context, job *state.Job, rj *running, run work) {
	store := context.WithoutCancel(ctx)
	job.State, job.Started = state.JobRunning, j.now().UTC()
	if err := j.st.UpdateJob(store, job); err != nil {
		j.log.Error("job", "id", job.ID, "err", err)
	}
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
		if err := j.st.AddEvent(store, job.ID, rj.seq, b); err != nil {
			j.log.Error("job event", "id", job.ID, "err", err)
			return
		}
		rj.seq++
		close(rj.notify)
		rj.notify = make(chan struct{})
	}
	res, err := func() (res any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("the job panicked: %v", p)
			}
		}()
		return run(ctx, progress)
	}()
	if dropped > 0 {
		j.log.Warn("job events dropped", "id", job.ID, "dropped", dropped)
	}
	job.Finished = j.now().UTC()
	switch {
	case err == nil:
		job.State = state.JobSucceeded
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
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
	if uerr := j.st.UpdateJob(store, job); uerr != nil {
		j.log.Error("job", "id", job.ID, "err", uerr)
	}
	if j.ended != nil {
		j.ended(job)
	}
	j.mu.Lock()
	delete(j.running, job.ID)
	j.mu.Unlock()
	rj.mu.Lock()
	close(rj.notify)
	rj.notify = nil
	rj.mu.Unlock()
}

// cancel cancels a running job; one that has ended is ErrConflict, one not there ErrNotFound.
func (j *jobs) cancelJob(ctx context.Context, id string) (*state.Job, error) {
	j.mu.Lock()
	rj := j.running[id]
	j.mu.Unlock()
	if rj == nil {
		job, err := j.st.GetJob(ctx, id)
		if err != nil {
			return nil, err
		}
		return job, fmt.Errorf("%w: job %s has ended (%s)", errdefs.ErrConflict, id, job.State)
	}
	rj.cancel()
	return j.st.GetJob(ctx, id)
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

// stream writes a job's events as Server-Sent Events (event "progress", id its sequence number), from the
// Last-Event-ID the client saw, as they come, then an "end" event with the job, and returns.
func (j *jobs) stream(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := j.st.GetJob(r.Context(), id); err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("%w: this connection cannot stream", errdefs.ErrNotImplemented)
	}
	next := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &next); err != nil || next < 0 {
			return fmt.Errorf("%w: Last-Event-ID %q", errdefs.ErrInvalidArgument, v)
		}
		next++
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		wake := j.wait(id) // taken before reading, so that an event written meanwhile wakes the loop
		events, err := j.st.Events(r.Context(), id, next)
		if err != nil {
			return nil // the status is sent; the stream ends
		}
		for _, e := range events {
			fmt.Fprintf(w, "id: %d\nevent: progress\ndata: %s\n\n", next, e)
			next++
		}
		fl.Flush()
		if wake == nil { // not running here: ended (or ran in a server since gone)
			job, err := j.st.GetJob(r.Context(), id)
			if err != nil {
				return nil
			}
			if more, err := j.st.Events(r.Context(), id, next); err == nil && len(more) > 0 {
				continue
			}
			b, _ := json.Marshal(job)
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
			fl.Flush()
			return nil
		}
		select {
		case <-wake:
		case <-heartbeat.C:
			fmt.Fprint(w, ": heartbeat\n\n")
			fl.Flush()
		case <-r.Context().Done():
			return nil
		}
	}
}
