package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/codomyrmex/containerization/build"
)

// stepPrinter shows a build's steps on stderr as plain lines: one when a step starts, one when it ends (done,
// cached or failed), and the output of running steps, indented under them. The library calls event on the
// caller's goroutine, so it needs no lock.
type stepPrinter struct {
	w       io.Writer
	started map[string]time.Time
	last    string // the step whose output was written last, so that a step's lines are headed by its name
}

func newStepPrinter(w io.Writer) *stepPrinter {
	return &stepPrinter{w: w, started: map[string]time.Time{}}
}

func (p *stepPrinter) event(e build.Event) {
	switch e.Kind {
	case build.StepStarted:
		p.started[e.Step] = e.Time
		fmt.Fprintf(p.w, "=> %s\n", e.Name)
		p.last = e.Step
	case build.StepLog:
		if p.last != e.Step {
			fmt.Fprintf(p.w, "=> %s\n", e.Name)
			p.last = e.Step
		}
		fmt.Fprintf(p.w, "   | %s\n", e.Line)
	case build.StepCompleted:
		switch {
		case e.Error != "":
			fmt.Fprintf(p.w, "=> FAILED %s: %s\n", e.Name, e.Error)
		case e.Cached:
			fmt.Fprintf(p.w, "=> CACHED %s\n", e.Name)
		default:
			took := ""
			if at, ok := p.started[e.Step]; ok {
				took = fmt.Sprintf(" %.1fs", e.Time.Sub(at).Seconds())
			}
			fmt.Fprintf(p.w, "=> DONE %s%s\n", e.Name, took)
		}
		p.last = ""
	}
}

// stop ends the steps' output, before the result or the error is written.
func (p *stepPrinter) stop() {
	if len(p.started) > 0 {
		fmt.Fprintln(p.w)
	}
}
