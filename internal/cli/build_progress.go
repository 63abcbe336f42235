package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/codomyrmex/containerization"
)

// stepPrinter shows a build's steps on stderr as plain lines: one when a step starts, one when it ends (done,
// cached or failed), and the output of running steps, indented under them. The library calls event on one
// goroutine at a time, so it needs no lock. Events of the scan and push that follow the build are not drawn.
type stepPrinter struct {
	w       io.Writer
	started map[string]time.Time
	last    string // the step whose output was written last, so that a step's lines are headed by its name
}

func newStepPrinter(w io.Writer) *stepPrinter {
	return &stepPrinter{w: w, started: map[string]time.Time{}}
}

func (p *stepPrinter) event(e containerization.Event) {
	if e.Op != "build" {
		return
	}
	switch {
	case e.Phase == "log":
		if p.last != e.ID {
			fmt.Fprintf(p.w, "=> %s\n", e.Subject)
			p.last = e.ID
		}
		fmt.Fprintf(p.w, "   | %s\n", e.Message)
	case e.Status == "started":
		p.started[e.ID] = e.Time
		fmt.Fprintf(p.w, "=> %s\n", e.Subject)
		p.last = e.ID
	case e.Status == "failed":
		fmt.Fprintf(p.w, "=> FAILED %s: %s\n", e.Subject, e.Message)
		p.last = ""
	case e.Status == "cached":
		fmt.Fprintf(p.w, "=> CACHED %s\n", e.Subject)
		p.last = ""
	case e.Status == "done":
		took := ""
		if at, ok := p.started[e.ID]; ok {
			took = fmt.Sprintf(" %.1fs", e.Time.Sub(at).Seconds())
		}
		fmt.Fprintf(p.w, "=> DONE %s%s\n", e.Subject, took)
		p.last = ""
	}
}

// stop ends the steps' output, before the result or the error is written.
func (p *stepPrinter) stop() {
	if len(p.started) > 0 {
		fmt.Fprintln(p.w)
	}
}
