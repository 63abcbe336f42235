package build

import (
	"bytes"
	"time"

	bkclient "github.com/moby/buildkit/client"
)

// EventKind says what an [Event] reports.
type EventKind int

const (
	// StepStarted: the builder began a step.
	StepStarted EventKind = iota + 1
	// StepLog: the step wrote a line of output.
	StepLog
	// StepCompleted: the step finished, from the cache, with success or with an error.
	StepCompleted
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case StepStarted:
		return "started"
	case StepLog:
		return "log"
	case StepCompleted:
		return "completed"
	}
	return "unknown"
}

// Event is one change in a build's progress. Steps are BuildKit's vertices: the Dockerfile's instructions
// ("[build 2/4] RUN make") and the builder's own work ("[internal] load build context").
type Event struct {
	Kind EventKind
	// Step identifies the step across its events (the vertex digest).
	Step string
	// Name is the step's display name.
	Name string
	// Time is when the builder reported the change.
	Time time.Time
	// Cached is set on StepCompleted when the step was served from the build cache.
	Cached bool
	// Error is set on StepCompleted when the step failed.
	Error string
	// Line is one line of output on StepLog, without its newline; Stream is 1 for stdout and 2 for stderr.
	Line   string
	Stream int
}

// outputTail is how many of a step's last output lines a StepError keeps.
const outputTail = 20

// vertex is what the tracker knows about one step.
type vertex struct {
	name               string
	started, completed bool
	cached             bool
	err                string
	lines              []string // the last outputTail lines
	partial            map[int][]byte
}

// tracker folds BuildKit's status stream into per-step state and emits Events for the changes.
type tracker struct {
	emit              func(Event)
	vertices          map[string]*vertex
	order             []string
	completed, cached int
}

func newTracker(emit func(Event)) *tracker {
	if emit == nil {
		emit = func(Event) {}
	}
	return &tracker{emit: emit, vertices: map[string]*vertex{}}
}

func (t *tracker) vertex(id string) *vertex {
	v, ok := t.vertices[id]
	if !ok {
		v = &vertex{partial: map[int][]byte{}}
		t.vertices[id] = v
		t.order = append(t.order, id)
	}
	return v
}

func (t *tracker) update(st *bkclient.SolveStatus) {
	for _, bv := range st.Vertexes {
		id := bv.Digest.String()
		v := t.vertex(id)
		if bv.Name != "" {
			v.name = bv.Name
		}
		if bv.Started != nil && !v.started {
			v.started = true
			t.emit(Event{Kind: StepStarted, Step: id, Name: v.name, Time: *bv.Started})
		}
		if bv.Completed != nil && !v.completed {
			t.flushVertex(id, v)
			v.completed, v.cached, v.err = true, bv.Cached, bv.Error
			if v.err == "" {
				t.completed++
				if v.cached {
					t.cached++
				}
			}
			t.emit(Event{Kind: StepCompleted, Step: id, Name: v.name, Time: *bv.Completed, Cached: v.cached, Error: v.err})
		}
	}
	for _, l := range st.Logs {
		id := l.Vertex.String()
		v := t.vertex(id)
		data := append(v.partial[l.Stream], l.Data...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			t.line(id, v, l.Stream, string(bytes.TrimSuffix(data[:i], []byte{'\r'})), l.Timestamp)
			data = data[i+1:]
		}
		v.partial[l.Stream] = bytes.Clone(data)
	}
}

func (t *tracker) line(id string, v *vertex, stream int, line string, at time.Time) {
	v.lines = append(v.lines, line)
	if len(v.lines) > outputTail {
		v.lines = v.lines[len(v.lines)-outputTail:]
	}
	t.emit(Event{Kind: StepLog, Step: id, Name: v.name, Time: at, Line: line, Stream: stream})
}

// flushVertex emits the output a step left without a final newline.
func (t *tracker) flushVertex(id string, v *vertex) {
	for _, stream := range []int{1, 2} {
		if rest := v.partial[stream]; len(rest) > 0 {
			t.line(id, v, stream, string(rest), time.Now())
			delete(v.partial, stream)
		}
	}
}

// flush ends the stream: pending partial lines become lines.
func (t *tracker) flush() {
	for _, id := range t.order {
		t.flushVertex(id, t.vertices[id])
	}
}

// failed returns the id of the step that failed, the last one reported when several did.
func (t *tracker) failed() string {
	for i := len(t.order) - 1; i >= 0; i-- {
		if t.vertices[t.order[i]].err != "" {
			return t.order[i]
		}
	}
	return ""
}
