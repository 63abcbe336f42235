package containerization

import (
	"time"

	"github.com/codomyrmex/containerization/build"
	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/registry"
)

// Event is one moment of a long operation, as it happens: a build step starting, its output, its end; bytes of a
// push, pull or copy; a scan's phases; an object applied, pruned, waited for or deleted. Every option struct of a
// long operation takes a Progress func(Event); the CLI renders events, and the HTTP API streams them as they are.
// Events of one operation are delivered in order, one at a time.
type Event struct {
	Time time.Time `json:"time"`
	// Op is the operation: build, push, pull, copy, scan, apply, prune, wait, delete, scale or rollback.
	Op string `json:"op"`
	// Phase is the part of it: step and log (build); transfer (push, pull, copy); open, inventory and
	// matching, done (scan); for Kubernetes, the same as Op.
	Phase string `json:"phase,omitempty"`
	// ID tells apart the subjects of one operation's events (a build step's digest).
	ID string `json:"id,omitempty"`
	// Subject is what the event is about: a build step's name, the image, an object (kind.group/namespace/name).
	Subject string `json:"subject,omitempty"`
	// Status is started, done, cached or failed (build steps); running, done or failed (transfers, scans);
	// Kubernetes' own words for objects (created, configured, unchanged, deleted, InProgress, Current, Failed…).
	Status string `json:"status,omitempty"`
	// Message is a line of a step's output (Stream 1 stdout, 2 stderr), an error, or a status message.
	Message string `json:"message,omitempty"`
	Stream  int    `json:"stream,omitempty"`
	// BytesDone and BytesTotal count a transfer's bytes (BytesTotal 0 when unknown).
	BytesDone  int64 `json:"bytes_done,omitempty"`
	BytesTotal int64 `json:"bytes_total,omitempty"`
}

// buildEvent is a build step's event as an Event.
func buildEvent(e build.Event) Event {
	ev := Event{Time: e.Time, Op: "build", Phase: "step", ID: e.Step, Subject: e.Name}
	switch e.Kind {
	case build.StepStarted:
		ev.Status = "started"
	case build.StepLog:
		ev.Phase, ev.Status, ev.Message, ev.Stream = "log", "running", e.Line, e.Stream
	case build.StepCompleted:
		switch {
		case e.Error != "":
			ev.Status, ev.Message = "failed", e.Error
		case e.Cached:
			ev.Status = "cached"
		default:
			ev.Status = "done"
		}
	}
	return ev
}

// kubeEvent is a Kubernetes event as an Event.
func kubeEvent(e kube.Event) Event {
	return Event{Time: e.Time, Op: e.Phase, Phase: e.Phase, Subject: e.Object, Status: e.Status, Message: e.Message}
}

// kubeProgress adapts progress to the kube package's events; nil stays nil.
func kubeProgress(progress func(Event)) func(kube.Event) {
	if progress == nil {
		return nil
	}
	return func(e kube.Event) { progress(kubeEvent(e)) }
}

// buildProgress adapts progress to the build package's events; nil stays nil.
func buildProgress(progress func(Event)) func(build.Event) {
	if progress == nil {
		return nil
	}
	return func(e build.Event) { progress(buildEvent(e)) }
}

// transferProgress adapts progress to the registry package's transfer reports; nil stays nil.
func transferProgress(op, subject string, progress func(Event)) func(registry.Transfer) {
	if progress == nil {
		return nil
	}
	return func(t registry.Transfer) {
		ev := Event{Time: time.Now(), Op: op, Phase: "transfer", Subject: subject, Status: "running",
			BytesDone: t.Done, BytesTotal: t.Total}
		switch {
		case t.Err != nil:
			ev.Status, ev.Message = "failed", t.Err.Error()
		case t.Finished:
			ev.Status = "done"
		}
		progress(ev)
	}
}
