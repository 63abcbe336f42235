package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// What the dashboard watches live: a container's metrics and its log lines as Server-Sent Events, and the last
// sample of every running container.

// ContainerSample is one container in GET /v1/metrics/containers: its last ContainerMetrics, and its image.
type ContainerSample struct {
	containerization.ContainerMetrics
	Image string `json:"image"`
}

// ContainerSamples is GET /v1/metrics/containers's answer: the server's last sample of the running containers
// (taken in the background every --metrics-interval; the same as /metrics reads).
type ContainerSamples struct {
	// Taken is when the sample was taken; zero before the first.
	Taken      time.Time         `json:"taken,omitzero"`
	Containers []ContainerSample `json:"containers"`
}

// LogLine is one event of a log stream.
type LogLine struct {
	// Stream is stdout or stderr.
	Stream string `json:"stream"`
	Line   string `json:"line"`
	// Truncated is true when the line was longer than MaxLogLine and was cut.
	Truncated bool `json:"truncated,omitempty"`
}

// MaxLogLine bounds one line of a log stream (bytes); the rest of a longer line is dropped.
const MaxLogLine = 16 << 10

// streamWriteTimeout bounds one write of a live stream: a client that stops reading (its buffers full) is dropped
// after this long instead of holding its stream, and the engine's, for ever.
const streamWriteTimeout = 30 * time.Second

// MaxStreams bounds the live streams (metrics and logs) one server holds open at once; more are refused with
// ErrUnavailable (503) until one closes.
const MaxStreams = 64

func (s *Server) liveRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/metrics/containers", scope: state.ScopeRead, id: "containerSamples", summary: "The last sample of every running container (taken in the background; never waits for the engine)",
			out: &ContainerSamples{}, status: 200, handle: func(s *Server, c *call) (int, any, error) {
				samples, taken := s.metrics.containers.last()
				out := ContainerSamples{Taken: taken, Containers: make([]ContainerSample, 0, len(samples))}
				for _, m := range samples {
					out.Containers = append(out.Containers, ContainerSample{ContainerMetrics: m.ContainerMetrics, Image: m.Image})
				}
				return 200, out, nil
			}},
		{method: "GET", path: "/v1/containers/{name}/metrics/stream", scope: state.ScopeRead, id: "watchContainerMetrics", summary: "A container's ContainerMetrics as Server-Sent Events (metrics), about one a second while it runs, one when its state changes",
			out: &containerization.ContainerMetrics{}, status: 200, stream: true, handle: func(s *Server, c *call) (int, any, error) {
				return s.liveStream(c, func(send func(event string, v any) error) error {
					eng, err := s.cfg.Client.Engine(c.req.Context())
					if err != nil {
						return err
					}
					return eng.WatchMetrics(c.req.Context(), chi.URLParam(c.req, "name"), func(m engine.ContainerMetrics) error {
						return send("metrics", m)
					})
				})
			}},
		{method: "GET", path: "/v1/containers/{name}/logs/stream", scope: state.ScopeRead, id: "followContainerLogs", summary: "A container's output as it comes, as Server-Sent Events (log: one line each; end: the container stopped)",
			query: []param{{"tail", "integer", "start with the last N lines (default 100; 0: all)"}},
			out:   &LogLine{}, status: 200, stream: true, handle: func(s *Server, c *call) (int, any, error) {
				tail := 100
				if c.req.URL.Query().Has("tail") {
					var err error
					if tail, err = intParam(c, "tail", 0, 100000); err != nil {
						return 0, nil, err
					}
				}
				return s.liveStream(c, func(send func(event string, v any) error) error {
					eng, err := s.cfg.Client.Engine(c.req.Context())
					if err != nil {
						return err
					}
					var mu sync.Mutex
					out := &lineWriter{stream: "stdout", mu: &mu, send: send}
					errw := &lineWriter{stream: "stderr", mu: &mu, send: send}
					err = eng.StreamLogs(c.req.Context(), chi.URLParam(c.req, "name"), engine.LogOptions{Follow: true, Tail: tail}, out, errw)
					out.flush()
					errw.flush()
					if err == nil && c.req.Context().Err() == nil {
						return send("end", map[string]string{"reason": "the container stopped"})
					}
					return err
				})
			}},
	}
}

// liveStream answers a stream: checks what it can before the status is sent (an error then is an ordinary
// error answer), then sends events until run returns or the client goes, with a heartbeat comment every 15 s.
// An error after the status is sent is an "error" event with the error object.
func (s *Server) liveStream(c *call, run func(send func(event string, v any) error) error) (int, any, error) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		return 0, nil, fmt.Errorf("%w: %d live streams are open on this server: close one", errdefs.ErrUnavailable, MaxStreams)
	}
	w := c.req.Context().Value(writerKey{}).(http.ResponseWriter)
	if _, ok := w.(http.Flusher); !ok {
		return 0, nil, fmt.Errorf("%w: this connection cannot stream", errdefs.ErrUnavailable)
	}
	rc := http.NewResponseController(w)
	var mu sync.Mutex
	started := false
	start := func() {
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			started = true
		}
	}
	// write sends text at once, or fails once the client has not taken it for streamWriteTimeout. mu is held.
	write := func(text string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		start()
		if _, err := io.WriteString(w, text); err != nil {
			return err
		}
		return rc.Flush()
	}
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		return write("event: " + event + "\ndata: " + string(b) + "\n\n")
	}
	done := make(chan struct{})
	var beats sync.WaitGroup
	beats.Add(1)
	go func() {
		defer beats.Done()
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				_ = write(": heartbeat\n\n")
				mu.Unlock()
			}
		}
	}()
	err := run(send)
	close(done)
	beats.Wait() // nothing writes to w once this handler returns
	mu.Lock()
	defer mu.Unlock()
	if err != nil && !started {
		return 0, nil, err // nothing sent yet: an ordinary error answer
	}
	if err != nil && c.req.Context().Err() == nil {
		b, _ := json.Marshal(containerization.NewErrorObject(err))
		_ = write("event: error\ndata: " + string(b) + "\n\n")
	}
	start()
	return 200, nil, nil
}

// lineWriter turns a log stream into one event per line, each at most MaxLogLine bytes.
type lineWriter struct {
	stream    string
	mu        *sync.Mutex
	send      func(string, any) error
	buf       bytes.Buffer
	truncated bool
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := MaxLogLine - l.buf.Len(); len(chunk) > room {
			l.buf.Write(chunk[:room]) // cut, perhaps inside a character: made valid when sent
			l.truncated = true
		} else {
			l.buf.Write(chunk)
		}
		if i < 0 {
			break
		}
		if err := l.emit(); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

func (l *lineWriter) emit() error {
	line := LogLine{Stream: l.stream, Line: string(bytes.ToValidUTF8(l.buf.Bytes(), []byte("\uFFFD"))), Truncated: l.truncated}
	l.buf.Reset()
	l.truncated = false
	return l.send("log", line)
}

// flush sends what is left after the last line break.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		_ = l.emit()
	}
}
