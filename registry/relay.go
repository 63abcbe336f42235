package registry

import (
	"errors"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Transfer is a report of a push, pull or copy: the bytes moved so far of the whole image. The last report of a
// transfer that succeeded has Finished set; one that failed ends with Err.
type Transfer struct {
	Done, Total int64
	Finished    bool
	Err         error
}

// relay carries go-containerregistry's updates to Options.Progress on one goroutine. The channel is handed to
// go-containerregistry's remote writes, which close it, or fed by tarball.Write, which does not: end closes it
// then, waits until the last update was delivered, and reports the finish, so Progress is never called after
// the operation returns.
type relay struct {
	report func(Transfer)
	ch     chan v1.Update
	done   chan struct{}
	handed bool
	last   v1.Update
}

// relay starts the relay of an operation; nil (a no-op everywhere) without Progress.
func (o Options) relay() *relay {
	if o.Progress == nil {
		return nil
	}
	r := &relay{report: o.Progress, ch: make(chan v1.Update, 16), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for u := range r.ch {
			if errors.Is(u.Error, io.EOF) { // tarball.Write's way of saying it is done
				continue
			}
			r.last = u
			r.report(Transfer{Done: u.Complete, Total: u.Total, Err: u.Error})
		}
	}()
	return r
}

// write returns the remote options with the relay's channel handed to go-containerregistry, which closes it.
func (r *relay) write(ropts []remote.Option) []remote.Option {
	if r == nil {
		return ropts
	}
	r.handed = true
	return append(append([]remote.Option(nil), ropts...), remote.WithProgress(r.ch))
}

// tarball returns the tarball.Write option feeding the relay; the caller's end closes the channel.
func (r *relay) tarball() []tarball.WriteOption {
	if r == nil {
		return nil
	}
	return []tarball.WriteOption{tarball.WithProgress(r.ch)}
}

// end finishes the relay once the operation is over: it closes the channel unless go-containerregistry owns it,
// waits for the last update, and reports a finished transfer when err is nil and bytes moved.
func (r *relay) end(err error) {
	if r == nil {
		return
	}
	if !r.handed {
		close(r.ch)
	}
	<-r.done
	if err == nil && r.last.Error == nil && (r.last.Total > 0 || r.last.Complete > 0) {
		r.report(Transfer{Done: r.last.Complete, Total: r.last.Total, Finished: true})
	}
}
