package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/codomyrmex/containerization/engine"
)

// censusProxy is a counting reverse proxy on a socket of its own in front of the engine. Each contender does a
// little untimed work through it, so the report can say how many Engine API requests one cycle (or one container
// sampled) costs each of them: the work the engine is asked to do, which the wall times alone do not show.
type censusProxy struct {
	host string // unix:// address of the proxy
	dir  string
	srv  *http.Server

	mu     sync.Mutex
	counts map[string]int
}

var (
	versionRE = regexp.MustCompile(`^/v[0-9.]+/`)
	idRE      = regexp.MustCompile(`/[0-9a-f]{64}(/|$)`)
	nameRE    = regexp.MustCompile(`/bench-[0-9a-f]{6}-[a-z0-9-]+(/|$)`)
)

// startCensus listens on a fresh unix socket and forwards every request to the engine behind raw.
func startCensus(raw *rawAPI) (*censusProxy, error) {
	target, err := url.Parse(raw.base)
	if err != nil {
		return nil, err
	}
	target.Path = ""
	dir, err := os.MkdirTemp("", "myrmex-bench-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "engine.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &censusProxy{host: "unix://" + sock, dir: dir, counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = raw.hc.Transport
	rp.FlushInterval = -1
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method+" "+normalize(r.URL.Path)]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// normalize turns a request path into its route: no API version, IDs and benchmark names as placeholders.
func normalize(path string) string {
	path = versionRE.ReplaceAllString(path, "/")
	path = idRE.ReplaceAllString(path, "/{id}$1")
	return nameRE.ReplaceAllString(path, "/{name}$1")
}

// take returns the requests counted since the last take, by route, and starts counting afresh.
func (p *censusProxy) take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	p.counts = map[string]int{}
	return c
}

func (p *censusProxy) close() {
	_ = p.srv.Close()
	_ = os.RemoveAll(p.dir)
}

// through returns a copy of b whose contenders talk to the engine through the proxy.
func (b *bench) through(ctx context.Context, p *censusProxy) (*bench, error) {
	eng, err := engine.New(ctx, engine.Options{Host: p.host})
	if err != nil {
		return nil, err
	}
	raw, err := newRawAPI(p.host, max(b.cfg.concurrency, 2))
	if err != nil {
		eng.Close()
		return nil, err
	}
	c := *b
	c.eng, c.raw, c.dockerHost = eng, raw, p.host
	return &c, nil
}

// requests is a census of one contender: Engine API requests per operation, in all and by route.
type requests struct {
	PerOp   float64            `json:"per_op"`
	ByRoute map[string]float64 `json:"by_route"`
}

func perOp(counts map[string]int, ops int) *requests {
	r := &requests{ByRoute: map[string]float64{}}
	total := 0
	for k, v := range counts {
		r.ByRoute[k] = float64(v) / float64(ops)
		total += v
	}
	r.PerOp = float64(total) / float64(ops)
	return r
}

func (r *requests) String() string {
	if r == nil {
		return ""
	}
	keys := slices.Sorted(maps.Keys(r.ByRoute))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%.3g", k, r.ByRoute[k])
	}
	return strings.Join(parts, ", ")
}

// lifecycleCensus runs n cycles of every lifecycle contender through the proxy and records their requests in ms.
// Its containers are verified and cleaned up like a round's.
func (b *bench) lifecycleCensus(ctx context.Context, cs []lifecycleContender, ms []measurement, n int) error {
	p, err := startCensus(b.raw)
	if err != nil {
		return err
	}
	defer p.close()
	cb, err := b.through(ctx, p)
	if err != nil {
		return err
	}
	defer cb.eng.Close()
	for i, c := range cs {
		// The contender closes over the bench it was made from: make it again from the proxied one.
		pc := cb.lifecycleContenders()[i]
		names := make([]string, n)
		for k := range names {
			names[k] = fmt.Sprintf("bench-%s-%s-census-%02d", b.runID, c.key, k+1)
		}
		p.take()
		ids, err := pc.run(ctx, names)
		counts := p.take()
		if err != nil {
			return fmt.Errorf("census of %s: %w", c.title, err)
		}
		if len(ids) != n {
			return fmt.Errorf("census of %s: %d cycles, want %d", c.title, len(ids), n)
		}
		ms[i].Requests = perOp(counts, n)
	}
	if left, err := b.raw.list(ctx, runLabel, b.runID); err != nil || len(left) > 0 {
		return errors.Join(err, fmt.Errorf("census: %d containers left, want 0", len(left)))
	}
	return nil
}

// statsCensus samples the running stats containers once with every stats contender through the proxy.
func (b *bench) statsCensus(ctx context.Context, cs []statsContender, ms []measurement, names []string) error {
	p, err := startCensus(b.raw)
	if err != nil {
		return err
	}
	defer p.close()
	cb, err := b.through(ctx, p)
	if err != nil {
		return err
	}
	defer cb.eng.Close()
	for i, c := range cs {
		pc := cb.statsContenders(len(names))[i]
		p.take()
		sampled, _, err := pc.run(ctx, names)
		counts := p.take()
		if err != nil {
			return fmt.Errorf("census of %s: %w", c.title, err)
		}
		if len(sampled) != len(names) {
			return fmt.Errorf("census of %s: %d sampled, want %d", c.title, len(sampled), len(names))
		}
		ms[i].Requests = perOp(counts, len(names))
	}
	return nil
}
