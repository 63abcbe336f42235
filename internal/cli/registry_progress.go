package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization"
)

// progressVerbs name the transfers that report progress.
var progressVerbs = map[string]string{
	containerization.RegistryPush: "pushing",
	containerization.RegistryPull: "pulling",
	containerization.RegistryCopy: "copying",
}

// progress returns the channel a push, pull or copy reports its bytes to, and a function to call once the
// operation has returned. The bytes are drawn on one line of stderr when stderr is a terminal and results are a
// table; otherwise the channel is nil, and the library reports nothing.
func (g *globalOptions) progress(op string) (chan v1.Update, func()) {
	if g.structured() || !isTerminal(g.errOut) {
		return nil, func() {}
	}
	ch := make(chan v1.Update, 16)
	// The first draw waits a moment: a transfer that takes less draws nothing.
	p := &progressLine{w: g.errOut, verb: progressVerbs[op], last: time.Now()}
	go p.draw(ch)
	return ch, p.stop
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

// draw shows updates until the library closes the channel. It keeps reading after stop, so that an update sent
// as the operation returns never blocks the library.
func (p *progressLine) draw(updates <-chan v1.Update) {
	for u := range updates {
		p.mu.Lock()
		if !p.stopped && u.Error == nil && time.Since(p.last) >= 100*time.Millisecond {
			p.drawn, p.last = true, time.Now()
			line := fmt.Sprintf("%s %.1f MB", p.verb, float64(u.Complete)/(1<<20))
			if u.Total > 0 {
				line = fmt.Sprintf("%s %.1f / %.1f MB  %3d%%", p.verb, float64(u.Complete)/(1<<20),
					float64(u.Total)/(1<<20), 100*u.Complete/u.Total)
			}
			fmt.Fprintf(p.w, "\r\033[K%s", line)
		}
		p.mu.Unlock()
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
