package registry

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// roundTripFunc is a transport that behaves as net/http's can: it returns, and reads the body later.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countingBody counts the reads that reach it.
type countingBody struct {
	io.Reader
	reads atomic.Int32
}

func (c *countingBody) Read(p []byte) (int, error) { c.reads.Add(1); return c.Reader.Read(p) }
func (c *countingBody) Close() error               { return nil }

// A body read after RoundTrip returned (an HTTP/2 stream still sending when the connection broke) never reaches
// go-containerregistry's progress reader, whose channel the failed write has closed by then.
func TestFenceStopsReadsAfterRoundTrip(t *testing.T) {
	body := &countingBody{Reader: strings.NewReader(strings.Repeat("x", 1<<20))}
	late := make(chan error, 1)
	var kept *http.Request
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		buf := make([]byte, 10)
		if _, err := r.Body.Read(buf); err != nil { // a read while the request is on: it goes through
			t.Errorf("read during the request = %v", err)
		}
		kept = r
		return nil, errors.New("connection reset by peer")
	})
	req, err := http.NewRequest(http.MethodPut, "http://127.0.0.1:1/v2/x/blobs/uploads/1", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (fence{base}).RoundTrip(req); err == nil {
		t.Fatal("RoundTrip = nil error, want the transport's")
	}
	go func() {
		_, err := kept.Body.Read(make([]byte, 10))
		late <- err
	}()
	if err := <-late; !errors.Is(err, errFenced) {
		t.Errorf("a read after RoundTrip returned = %v, want errFenced", err)
	}
	if n := body.reads.Load(); n != 1 {
		t.Errorf("the body was read %d times, want once (during the request)", n)
	}
}
