package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/server"
)

// part is one read measured through the library and through the API.
type part struct {
	Name   string `json:"name"`
	Rounds int    `json:"rounds"`
	N      int    `json:"n"` // sequential calls per contender and round
	Rows   []row  `json:"rows"`
	// RatioP50 and RatioP99 are the API's p50 and p99 over the library's: above 1 the API costs more.
	RatioP50 float64 `json:"ratio_p50"`
	RatioP99 float64 `json:"ratio_p99"`
	// DiffP50Ms is the API's p50 less the library's: what the API adds to a typical call.
	DiffP50Ms float64 `json:"diff_p50_ms"`
}

// row is one contender's calls.
type row struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	How   string `json:"how"`
	latencies
	// RoundP50Ms is each round's p50, in the order of the rounds.
	RoundP50Ms []float64 `json:"round_p50_ms"`
}

// contender is one way of making a read; check verifies its answer, outside the time measured.
type contender struct {
	key, title, how string
	call            func(ctx context.Context) (any, error)
	check           func(any) error
}

// overhead times the inspect and the metrics read through the library and through the API, call by call, the two
// contenders of a part in a random order each round.
func overhead(ctx context.Context, cfg config, order *benchkit.Order, lib *containerization.Client, srv *proc, target container) ([]part, error) {
	// One keep-alive connection, as a client that makes its calls one after the other holds.
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	inspectCheck := func(v any) error { return checkInspect(v.(*containerization.ContainerResult), target) }
	metricsCheck := func(v any) error { return checkMetrics(v.([]containerization.ContainerMetrics), target) }
	parts := []struct {
		name    string
		n, warm int
		cs      []contender
	}{
		{"inspect", cfg.inspectN, 3, []contender{
			{"library", "Client.ManageContainers(inspect)", `c.ManageContainers(ctx, "inspect", NAME, nil, ManageOptions{}) on one long-lived Client`,
				func(ctx context.Context) (any, error) {
					return lib.ManageContainers(ctx, containerization.OpInspect, target.name, nil, containerization.ManageOptions{})
				}, inspectCheck},
			{"api", "GET /v1/containers/{name}", "the request on one keep-alive connection, the answer read and decoded into a ContainerResult",
				func(ctx context.Context) (any, error) {
					var res containerization.ContainerResult
					return &res, getJSON(ctx, hc, srv.url+"/v1/containers/"+target.name, srv.read, &res)
				}, inspectCheck},
		}},
		{"metrics", cfg.metricsN, 1, []contender{
			{"library", "Client.GetContainerMetrics", "c.GetContainerMetrics(ctx, NAME, MetricsOptions{}) on one long-lived Client",
				func(ctx context.Context) (any, error) {
					return lib.GetContainerMetrics(ctx, target.name, containerization.MetricsOptions{})
				}, metricsCheck},
			{"api", "GET /v1/containers/{name}/metrics", "the request on one keep-alive connection, the answer read and decoded into ContainerMetrics",
				func(ctx context.Context) (any, error) {
					var res server.Metrics
					err := getJSON(ctx, hc, srv.url+"/v1/containers/"+target.name+"/metrics", srv.read, &res)
					return res.Metrics, err
				}, metricsCheck},
		}},
	}

	var out []part
	for _, p := range parts {
		benchkit.Logf("overhead, %s: %d rounds of %d calls per contender", p.name, cfg.rounds, p.n)
		// Warm-up, not recorded: connections opened, code paths run, SQLite's pages of the tokens read.
		for _, c := range p.cs {
			for range p.warm {
				if err := callChecked(ctx, c); err != nil {
					return nil, fmt.Errorf("%s, %s, warm-up: %w", p.name, c.key, err)
				}
			}
		}
		keys := make([]string, len(p.cs))
		for i, c := range p.cs {
			keys[i] = c.key
		}
		rows := make([]row, len(p.cs))
		all := make([][]time.Duration, len(p.cs))
		for i, c := range p.cs {
			rows[i] = row{Key: c.key, Title: c.title, How: fmt.Sprintf("%d × %s", p.n, c.how)}
		}
		for r, ord := range order.Rounds(p.name, keys, cfg.rounds) {
			for _, i := range ord {
				c := p.cs[i]
				round := make([]time.Duration, 0, p.n)
				for range p.n {
					t0 := time.Now()
					v, err := c.call(ctx)
					d := time.Since(t0)
					if err == nil {
						err = c.check(v)
					}
					if err != nil {
						return nil, fmt.Errorf("%s, %s, round %d: %w", p.name, c.key, r+1, err)
					}
					round = append(round, d)
				}
				all[i] = append(all[i], round...)
				rows[i].RoundP50Ms = append(rows[i].RoundP50Ms, summarize(round).P50Ms)
			}
		}
		for i := range rows {
			rows[i].latencies = summarize(all[i])
		}
		viaLib, viaAPI := rows[0], rows[1]
		out = append(out, part{Name: p.name, Rounds: cfg.rounds, N: p.n, Rows: rows, RatioP50: viaAPI.P50Ms / viaLib.P50Ms,
			RatioP99: viaAPI.P99Ms / viaLib.P99Ms, DiffP50Ms: viaAPI.P50Ms - viaLib.P50Ms})
	}
	return out, nil
}

func callChecked(ctx context.Context, c contender) error {
	v, err := c.call(ctx)
	if err != nil {
		return err
	}
	return c.check(v)
}

// errWrongAnswer is what a check returns when an answer is well formed but not the right one.
var errWrongAnswer = errors.New("wrong answer")

// checkInspect verifies an inspect's answer: the right container, running, with its details.
func checkInspect(res *containerization.ContainerResult, target container) error {
	if res == nil || !res.Success || res.Operation != containerization.OpInspect || res.ContainerName != target.name ||
		res.ContainerID != target.id || res.Status != "running" || res.Details == nil || res.Details.ID != target.id {
		return fmt.Errorf("%w: inspect of %s answered %s", errWrongAnswer, target.name, summary(res))
	}
	return nil
}

// checkMetrics verifies a metrics read: one sample, of the right container, running, with its memory figures.
func checkMetrics(ms []containerization.ContainerMetrics, target container) error {
	if len(ms) != 1 {
		return fmt.Errorf("%w: metrics of %s: %d samples, want 1", errWrongAnswer, target.name, len(ms))
	}
	m := ms[0]
	if m.ContainerName != target.name || m.ContainerID != target.id || m.Status != "running" || m.Timestamp.IsZero() ||
		m.MemoryUsageMB <= 0 || m.MemoryLimitMB <= 0 || m.UptimeSeconds <= 0 || m.CPUUsagePercent < 0 {
		return fmt.Errorf("%w: metrics of %s: %+v", errWrongAnswer, target.name, m)
	}
	return nil
}

func summary(res *containerization.ContainerResult) string {
	if res == nil {
		return "nothing"
	}
	id := ""
	if res.Details != nil {
		id = res.Details.ID
	}
	return fmt.Sprintf("operation %q, success %v, name %q, id %q, status %q, details id %q, error %q",
		res.Operation, res.Success, res.ContainerName, res.ContainerID, res.Status, id, res.ErrorMessage)
}

// latencies summarises the times of many calls.
type latencies struct {
	Calls  int     `json:"calls"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// summarize takes the percentiles by nearest rank: the p-th percentile of n sorted times is the ⌈p·n⌉-th.
func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latencies{Calls: len(s), P50Ms: ms(s[rank(len(s), 50)]), P99Ms: ms(s[rank(len(s), 99)]),
		MeanMs: ms(sum / time.Duration(len(s))), MaxMs: ms(s[len(s)-1])}
}

// rank is the index of the p-th percentile (nearest rank) among n sorted values: ⌈p·n/100⌉ − 1.
func rank(n, p int) int { return max(0, (p*n+99)/100-1) }
