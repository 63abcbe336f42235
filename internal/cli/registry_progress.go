package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/codomyrmex/containerization"
)

// progressVerbs name the transfers that report progress.
var progressVerbs = map[string]string{
	containerization.RegistryPush: "pushing",
	containerization.RegistryPull: "pulling",
	containerization.RegistryCopy: "copying",
}

// progress returns the function a push, pull or copy reports its bytes to, and a function to call once the
// operation has returned. The bytes are drawn on one line of stderr when stderr is a terminal and results are a
// table; otherwise the function is nil, and the library reports nothing.
func (g *globalOptions) progress(op string) (func(containerization.Event), func()) {
	if g.structured() || !isTerminal(g.errOut) {
		return nil, func() {}
	}
	// The first draw waits a moment: a transfer that takes less draws nothing.
	p := &progressLine{w: g.errOut, verb: progressVerbs[op], last: time.Now()}
	return p.draw, p.stop
}

// progressLine draws a transfer's progress on one terminal line, at most ten times a second.
type progressLine struct {
	w    io.Writer
	verb string

	mu      sync.Mutex
	stopped bool
	drawn   bool
	last    time.Time
}

// draw shows a transfer's bytes, at most ten times a second, until stop.
func (p *progressLine) draw(e containerization.Event) {
	if e.Phase != "transfer" || e.Status != "running" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped && time.Since(p.last) >= 100*time.Millisecond {
		p.drawn, p.last = true, time.Now()
		line := fmt.Sprintf("%s %.1f MB", p.verb, float64(e.BytesDone)/(1<<20))
		if e.BytesTotal > 0 {
			line = fmt.Sprintf("%s %.1f / %.1f MB  %3d%%", p.verb, float64(e.BytesDone)/(1<<20),
				float64(e.BytesTotal)/(1<<20), 100*e.BytesDone/e.BytesTotal)
		}
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	}
}

// stop clears the line, before the result or the error is printed.
func (p *progressLine) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
