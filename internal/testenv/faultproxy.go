package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Faults are the faults a [FaultProxy] injects, each into at most the given number of requests. The zero value
// injects none.
type Faults struct {
	// Match selects the requests the faults apply to. Nil means blob upload requests: PATCH and PUT under
	// /v2/…/blobs/uploads/.
	Match func(*http.Request) bool
	// Fail503 answers the first Fail503 matching requests 503 Service Unavailable, with a registry error body,
	// without forwarding them.
	Fail503 int
	// CutUpload cuts the next CutUpload matching requests that have a body: the proxy forwards half of the body
	// (the first 64 KiB when its length is unknown), then drops the connection to the target and the one to the
	// client, which sees its connection reset in the middle of the upload.
	CutUpload int
	// Fail500 answers the first Fail500 matching requests (after the 503s) 500 Internal Server Error, with a
	// registry error body, without forwarding them.
	Fail500 int
	// TruncateBody forwards the next TruncateBody matching requests and passes on only the first half of each
	// answer's body, then drops the connection: the client reads a truncated blob.
	TruncateBody int
	// CorruptBody forwards the next CorruptBody matching requests and flips a byte in the middle of each answer's
	// body: the client reads a blob whose bytes do not match its digest.
	CorruptBody int
}

// cutChunk is how much of a body of unknown length a cut upload forwards.
const cutChunk = 64 << 10

// errCut ends the body forwarded to the target, which makes the proxy's transport abort the request.
var errCut = errors.New("upload cut by testenv.FaultProxy")

// unavailable is distribution's error body for 503, so that clients read it as a registry error.
const unavailable = `{"errors":[{"code":"UNAVAILABLE","message":"injected by testenv.FaultProxy"}]}`

type faultCounters struct {
	seen503, seenCut, seen500, seenTrunc, seenCorrupt atomic.Int64 // matching requests, which consume the budgets
	fail503, cut, fail500, trunc, corrupt             atomic.Int64 // faults actually injected
}

// internalError is a registry error body for 500.
const internalError = `{"errors":[{"code":"UNKNOWN","message":"injected by testenv.FaultProxy"}]}`

// Injected reports how many 503 answers and cut uploads a [FaultProxy] has injected so far; both are zero for
// a registry that is not a fault proxy.
func (r *Registry) Injected() (fail503, cut int) {
	if r.faults == nil {
		return 0, 0
	}
	return int(r.faults.fail503.Load()), int(r.faults.cut.Load())
}

// InjectedAnswers reports how many 500 answers, truncated bodies and corrupted bodies a [FaultProxy] has
// injected so far.
func (r *Registry) InjectedAnswers() (fail500, truncated, corrupted int) {
	if r.faults == nil {
		return 0, 0, 0
	}
	return int(r.faults.fail500.Load()), int(r.faults.trunc.Load()), int(r.faults.corrupt.Load())
}

// IsBlobRead reports whether req reads a blob (GET /v2/…/blobs/sha256:…): what pull and copy download.
func IsBlobRead(req *http.Request) bool {
	return req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/v2/") && strings.Contains(req.URL.Path, "/blobs/sha256:")
}

type answerKey struct{}

// answerFault is what to do to one forwarded answer's body.
type answerFault int

const (
	truncateAnswer answerFault = iota + 1
	corruptAnswer
)

// FaultProxy starts a reverse proxy on 127.0.0.1 in front of target that injects f, for the faults a real
// registry cannot produce on demand. The proxy serves plain HTTP with target's credentials, which pass through,
// and talks to target in target's scheme, trusting its CA. It rewrites absolute Location headers that point at
// target, as distribution's upload locations do, so that clients keep going through the proxy. Bearer-token
// realms are not rewritten: the proxy suits registries with basic authentication or none. [Registry.Injected]
// counts the faults injected. The proxy stops when the test ends.
func FaultProxy(t testing.TB, target *Registry, f Faults) *Registry {
	t.Helper()
	match := f.Match
	if match == nil {
		match = isBlobUpload
	}
	counters := &faultCounters{}
	targetURL := &url.URL{Scheme: target.Scheme, Host: target.Host}
	var proxyHost string // set before the server starts

	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(targetURL) },
		Transport: target.Transport(),
		ModifyResponse: func(resp *http.Response) error {
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err == nil && loc.IsAbs() && loc.Host == target.Host {
				loc.Scheme, loc.Host = "http", proxyHost
				resp.Header.Set("Location", loc.String())
			}
			fault, _ := resp.Request.Context().Value(answerKey{}).(answerFault)
			if fault == 0 || resp.StatusCode != http.StatusOK {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			switch fault {
			case truncateAnswer:
				// The header promises the whole body; half arrives, then the connection drops.
				resp.Body = &cutAnswer{r: bytes.NewReader(body[:len(body)/2])}
				counters.trunc.Add(1)
			case corruptAnswer:
				if len(body) > 0 {
					body[len(body)/2] ^= 0xff
				}
				resp.Body = io.NopCloser(bytes.NewReader(body))
				counters.corrupt.Add(1)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if body, ok := req.Context().Value(cutKey{}).(*cutBody); ok && body.cut.Load() {
				if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
					conn.Close()
					counters.cut.Add(1)
					return
				}
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if match(req) {
			// An error answer, in place of the registry's. The body is read first: a server that answers early and
			// closes may reach the client as a reset connection instead of the status.
			fail := func(status int, body string, injected *atomic.Int64) {
				_, _ = io.Copy(io.Discard, req.Body)
				injected.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, body)
			}
			if counters.seen503.Add(1) <= int64(f.Fail503) {
				fail(http.StatusServiceUnavailable, unavailable, &counters.fail503)
				return
			}
			if counters.seen500.Add(1) <= int64(f.Fail500) {
				fail(http.StatusInternalServerError, internalError, &counters.fail500)
				return
			}
			switch {
			case counters.seenTrunc.Add(1) <= int64(f.TruncateBody):
				req = req.WithContext(context.WithValue(req.Context(), answerKey{}, truncateAnswer))
			case counters.seenCorrupt.Add(1) <= int64(f.CorruptBody):
				req = req.WithContext(context.WithValue(req.Context(), answerKey{}, corruptAnswer))
			}
			if req.ContentLength != 0 && counters.seenCut.Add(1) <= int64(f.CutUpload) {
				limit := req.ContentLength / 2
				if req.ContentLength < 0 {
					limit = cutChunk
				}
				body := &cutBody{rc: req.Body, left: limit}
				req.Body = body
				req = req.WithContext(context.WithValue(req.Context(), cutKey{}, body))
			}
		}
		rp.ServeHTTP(w, req)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	proxyHost = srv.Listener.Addr().String()
	srv.Start()

	r := &Registry{
		Host:      proxyHost,
		Scheme:    "http",
		Username:  target.Username,
		Password:  target.Password,
		transport: newTransport(nil),
		faults:    counters,
	}
	t.Cleanup(func() {
		srv.Close()
		r.transport.CloseIdleConnections()
	})
	return r
}

// isBlobUpload reports whether req sends blob data or completes a blob upload.
func isBlobUpload(req *http.Request) bool {
	return (req.Method == http.MethodPatch || req.Method == http.MethodPut) &&
		strings.HasPrefix(req.URL.Path, "/v2/") && strings.Contains(req.URL.Path, "/blobs/uploads/")
}

type cutKey struct{}

// cutBody passes on the first left bytes of a request body, then fails with errCut.
type cutBody struct {
	rc   io.ReadCloser
	left int64
	cut  atomic.Bool // read by the handler while the transport reads the body
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.cut.Store(true)
		return 0, errCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }

// cutAnswer passes on what it holds, then fails: the proxy aborts the answer, and the client's connection
// drops before the length its header promised.
type cutAnswer struct{ r *bytes.Reader }

func (a *cutAnswer) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err == io.EOF {
		return n, errCut
	}
	return n, err
}

func (a *cutAnswer) Close() error { return nil }
