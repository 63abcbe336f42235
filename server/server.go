// Package server is `myrmex serve`: the six functions of the specification over authenticated HTTP/JSON, long
// operations as jobs whose progress streams over Server-Sent Events, durable state (package state), an audit log,
// an OpenAPI 3.1 document generated from the same Go types the handlers use, and Prometheus metrics (GET /metrics).
//
// Every route but GET /v1/health and POST /v1/admission (the admission webhook, see [AdmissionConfig]) needs a
// token (Authorization: Bearer myx_…) whose scope covers the route's: read for what only reads, operate for what
// changes containers, images, registries and deployments, admin for the audit log and tokens. Errors are
// containerization.ErrorObject ({"error": {…}}) with the status of the error's kind (errdefs.Kinds).
package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
	"github.com/codomyrmex/containerization/web"
)

// Config configures a [Server].
type Config struct {
	// Client runs the operations; its engine, clusters, policy and stores are the server's.
	Client *containerization.Client
	// State holds tokens, jobs and the audit log.
	State *state.Store
	// MaxBody bounds a request body (default 1 MiB).
	MaxBody int64
	// FailedAuthLimit is how many failed authentications one client address may make per minute before it is
	// refused with 429 for the rest of that minute (default 20).
	FailedAuthLimit int
	// Admission configures the validating admission webhook, POST /v1/admission (off by default).
	Admission AdmissionConfig
	Logger    *slog.Logger
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time

	// Runner names this server among replicas sharing a PostgreSQL state (default: host, pid and a random part).
	Runner string
	// JobLease is how long a server's claim on a running job holds without renewal (renewed every third of it;
	// default 15 s): a server that dies mid-job has its jobs taken over by another after this long.
	JobLease time.Duration
	// JobPoll is how often a server looks for queued jobs submitted through another replica, and how often a
	// stream of a job running elsewhere looks for its events (default 1 s).
	JobPoll time.Duration
	// MaxJobs is how many jobs this server runs at once (default 4); the others wait queued.
	MaxJobs int
	// ScheduleEvery is how often the scheduler looks for retention runs due (default 30 s); negative: never.
	ScheduleEvery time.Duration
	// KeepJobs and KeepJobsFor bound the ended jobs kept, with their events and results (default 10000, 30 days).
	KeepJobs    int
	KeepJobsFor time.Duration

	// MetricsInterval is how often the running containers are sampled for GET /metrics (default 15s); a
	// negative one samples none. A scrape reads the last sample: it never waits for the engine.
	MetricsInterval time.Duration
	// MetricsTimeout bounds one sampling (default 5s): the containers not sampled by then are left out of it.
	MetricsTimeout time.Duration
	// MetricsForeign samples every running container of the engine, not only Myrmex's.
	MetricsForeign bool
}

// Server serves the API. Its jobs run until they end, whatever happens to the requests that started them;
// Close cancels them.
type Server struct {
	cfg     Config
	log     *slog.Logger
	routes  []route
	jobs    *jobs
	limit   *limiter
	metrics *metrics
	streams chan struct{} // a slot per live stream open (MaxStreams)
	// renders holds a place for each report being rendered (each PDF is a browser of its own).
	renders chan struct{}
	// renderQueued holds a place for each report being rendered or waiting its turn (maxRenderQueue).
	renderQueued chan struct{}
}

// New makes a server over cfg and starts its part of the job queue: jobs queued (by it, by another replica, or
// left by a server that stopped) are claimed and run.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Client == nil || cfg.State == nil {
		return nil, fmt.Errorf("%w: the server needs a client and a state store", errdefs.ErrInvalidArgument)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.FailedAuthLimit <= 0 {
		cfg.FailedAuthLimit = 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Admission.Timeout <= 0 {
		cfg.Admission.Timeout = DefaultAdmissionTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.JobLease <= 0 {
		cfg.JobLease = 15 * time.Second
	}
	if cfg.JobPoll <= 0 {
		cfg.JobPoll = time.Second
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 4
	}
	if cfg.KeepJobs <= 0 {
		cfg.KeepJobs = 10000
	}
	if cfg.KeepJobsFor <= 0 {
		cfg.KeepJobsFor = 30 * 24 * time.Hour
	}
	s := &Server{cfg: cfg, log: log, limit: newLimiter(cfg.FailedAuthLimit, cfg.Now), streams: make(chan struct{}, MaxStreams),
		renders: make(chan struct{}, maxRenders), renderQueued: make(chan struct{}, maxRenderQueue)}
	s.metrics = newMetrics(cfg, log, s.sampleContainers)
	s.jobs = newJobs(cfg.State, jobsConfig{runner: cfg.Runner, lease: cfg.JobLease, poll: cfg.JobPoll, max: cfg.MaxJobs,
		keep: cfg.KeepJobs, maxAge: cfg.KeepJobsFor, log: log, now: cfg.Now, kinds: s.jobKinds(), ended: s.metrics.jobEnded})
	s.routes = s.table()
	s.jobs.start()
	if cfg.ScheduleEvery == 0 {
		cfg.ScheduleEvery = 30 * time.Second
	}
	if cfg.ScheduleEvery > 0 {
		s.jobs.wg.Add(1)
		go s.scheduler(cfg.ScheduleEvery)
	}
	return s, nil
}

// Close stops the metrics' sampling and the running jobs, which go back to the queue (for another replica, or
// the next start).
func (s *Server) Close() {
	s.metrics.close()
	s.jobs.close()
}

// Handler is the API.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, fmt.Errorf("%w: no route %s %s", errdefs.ErrNotFound, req.Method, req.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody(fmt.Errorf("method %s is not allowed on %s", req.Method, req.URL.Path), "method_not_allowed"))
	})
	r.Use(securityHeaders)
	for _, rt := range s.routes {
		r.Method(rt.method, cmp.Or(rt.pattern, rt.path), s.wrap(rt))
	}
	web.Mount(r)
	return r
}

// CheckListen refuses to serve a non-loopback address without TLS: the API drives the engine (root-equivalent).
func CheckListen(addr string, tls bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: listen address %q: %v", errdefs.ErrInvalidArgument, addr, err)
	}
	if tls {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %s is not a loopback address: serving the API beyond this machine needs TLS (--tls-cert and --tls-key)", errdefs.ErrInvalidArgument, addr)
}

// call is one authenticated request.
type call struct {
	token *state.Token
	req   *http.Request
	// session is the dashboard's session the request was made with (nil for a bearer token); sessionValue its
	// cookie's value.
	session      *state.Session
	sessionValue string
}

// wrap authenticates, authorises, bounds the body, runs the handler, writes its answer and audits a change.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), writerKey{}, w))
		c := &call{req: r}
		if rt.scope != "" {
			addr := clientAddr(r)
			if s.limit.blocked(addr) {
				w.Header().Set("Retry-After", "60")
				writeJSON(w, http.StatusTooManyRequests, errorBody(errRateLimited, "rate_limited"))
				return
			}
			tok, ok, err := s.authenticate(r)
			if err != nil {
				writeError(w, err)
				return
			}
			if !ok && r.Header.Get("Authorization") == "" {
				sess, value, sok, csrfErr, err := s.sessionAuth(r)
				if err != nil {
					writeError(w, err)
					return
				}
				if csrfErr != nil {
					writeJSON(w, http.StatusForbidden, errorBody(csrfErr, "csrf"))
					return
				}
				if sok {
					tok, ok, c.session, c.sessionValue = &sess.Token, true, sess, value
				}
			}
			if !ok {
				if r.Header.Get("Authorization") != "" { // a wrong token, not a missing one, is a failed login
					s.limit.fail(addr)
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="myrmex"`)
				writeJSON(w, http.StatusUnauthorized, errorBody(errors.New("a valid token is required: Authorization: Bearer myx_… (myrmex serve token create)"), "unauthorized"))
				return
			}
			if !tok.Scope.Allows(rt.scope) {
				writeJSON(w, http.StatusForbidden, errorBody(fmt.Errorf("token %s has scope %s; %s %s needs %s", tok.Name, tok.Scope, rt.method, rt.path, rt.scope), "forbidden"))
				return
			}
			c.token = tok
		}
		r.Body = http.MaxBytesReader(w, r.Body, max(rt.maxBody, s.cfg.MaxBody))
		status, out, err := rt.handle(s, c)
		if rt.method != http.MethodGet && c.token != nil {
			outcome := "ok"
			if err != nil {
				outcome = errdefs.KindOf(err).Code
			}
			st := status
			if err != nil {
				st = httpStatus(err)
			}
			if aerr := s.cfg.State.Audit(context.WithoutCancel(r.Context()), state.AuditEntry{Time: s.cfg.Now().UTC(), Token: c.token.Name,
				Method: r.Method, Path: r.URL.Path, Status: st, Outcome: outcome}); aerr != nil {
				s.log.Error("audit", "err", aerr)
			}
		}
		if err != nil {
			verdict := containerization.PolicyVerdict(err)
			s.metrics.refused(verdict)
			who := ""
			if c.token != nil {
				who = c.token.Name
			}
			keepRefusal(r.Context(), s.cfg.State, s.log, refusalOf(verdict, s.cfg.Now(), state.RefusalRequest, r.Method+" "+r.URL.Path, who, ""))
			if errors.Is(err, errRateLimited) {
				writeJSON(w, http.StatusTooManyRequests, errorBody(err, "rate_limited"))
				return
			}
			if errors.Is(err, errCrossSite) {
				writeJSON(w, http.StatusForbidden, errorBody(err, "csrf"))
				return
			}
			writeError(w, err)
			return
		}
		if out == nil { // the handler wrote its answer itself (a stream)
			return
		}
		writeJSON(w, status, out)
	})
}

func (s *Server) authenticate(r *http.Request) (*state.Token, bool, error) {
	h := r.Header.Get("Authorization")
	v, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, false, nil
	}
	return s.cfg.State.Authenticate(r.Context(), strings.TrimSpace(v), s.cfg.Now())
}

// clientAddr is the request's remote IP (its port is not the client).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// decode reads a JSON body into v: one value, no unknown field, within the server's size bound.
func decode(c *call, v any) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeSpec(raw, v)
}

// ErrorBody is every error's answer: the JSON error object of the CLI (-o json), under "error".
type ErrorBody struct {
	Error containerization.ErrorObject `json:"error"`
}

func errorBody(err error, code string) ErrorBody {
	o := containerization.NewErrorObject(err)
	o.Code = code
	return ErrorBody{Error: o}
}

func httpStatus(err error) int {
	if k := errdefs.KindOf(err); k.HTTPStatus != 0 {
		return k.HTTPStatus
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, httpStatus(err), ErrorBody{Error: containerization.NewErrorObject(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// limiter counts failed authentications per client address and minute.
type limiter struct {
	mu     sync.Mutex
	max    int
	now    func() time.Time
	window time.Time
	fails  map[string]int
}

func newLimiter(max int, now func() time.Time) *limiter {
	return &limiter{max: max, now: now, fails: map[string]int{}}
}

func (l *limiter) roll() {
	if t := l.now().Truncate(time.Minute); !t.Equal(l.window) {
		l.window, l.fails = t, map[string]int{}
	}
}

func (l *limiter) blocked(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.fails[addr] >= l.max
}

func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	if len(l.fails) < 100000 { // a bound on the addresses remembered within a minute
		l.fails[addr]++
	}
}
