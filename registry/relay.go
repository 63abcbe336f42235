package registry

import (
	"errors"
	"io"
	"net/http"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Transfer is a report of a push, pull or copy: the bytes moved so far of the whole image. The last report of a
// transfer that succeeded has Finished set; one that failed ends with Err. A push from the engine counts the
// layers' uncompressed bytes as the engine's save streams them, and its Total grows as each layer begins.
type Transfer struct {
	Done, Total int64
	Finished    bool
	Err         error
}

// relay carries go-containerregistry's updates to Options.Progress on one goroutine. The channel is handed to
// go-containerregistry's remote writes, which close it, or fed by Myrmex's own push from the engine and pull,
// which do not: end closes it then, waits until the last update was delivered, and reports the finish, so
// Progress is never called after the operation returns.
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
			r.last = u
			r.report(Transfer{Done: u.Complete, Total: u.Total, Err: u.Error})
		}
	}()
	return r
}

// write returns the remote options with the relay's channel handed to go-containerregistry, which closes it, and
// base fenced (see fence).
func (r *relay) write(ropts []remote.Option, base http.RoundTripper) []remote.Option {
	if r == nil {
		return ropts
	}
	r.handed = true
	return append(append([]remote.Option(nil), ropts...), remote.WithProgress(r.ch), remote.WithTransport(fence{base}))
}

// fence keeps go-containerregistry's progress from outliving a write. net/http may go on reading a request's body
// after RoundTrip returned (an HTTP/2 stream still sending when the connection broke or the server answered early);
// go-containerregistry's progress reader then sends on the channel its write has closed, and the process panics
// ("send on closed channel", seen when a registry was killed mid-push). Through fence, a body's reads end when
// RoundTrip returns: one in flight finishes first, later ones fail.
type fence struct{ base http.RoundTripper }

var errFenced = errors.New("request body read after the request ended")

func (f fence) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return f.base.RoundTrip(req)
	}
	var mu sync.Mutex
	var bodies []*fencedBody
	wrap := func(rc io.ReadCloser) io.ReadCloser {
		b := &fencedBody{rc: rc}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		return b
	}
	out := req.Clone(req.Context())
	out.Body = wrap(req.Body)
	if get := req.GetBody; get != nil { // a retry's fresh body is fenced too
		out.GetBody = func() (io.ReadCloser, error) {
			rc, err := get()
			if err != nil {
				return nil, err
			}
			return wrap(rc), nil
		}
	}
	resp, err := f.base.RoundTrip(out)
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bodies {
		b.close()
	}
	return resp, err
}

type fencedBody struct {
	mu     sync.Mutex
	rc     io.ReadCloser
	fenced bool
}

func (b *fencedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fenced {
		return 0, errFenced
	}
	return b.rc.Read(p)
}

func (b *fencedBody) Close() error { return b.rc.Close() }

func (b *fencedBody) close() {
	b.mu.Lock()
	b.fenced = true
	b.mu.Unlock()
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
