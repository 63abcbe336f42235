package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/server"
)

// defaultMix is the share of each read in the load: mostly the cheap reads a dashboard or a script polls
// (inspect, the list, the job list, health), and one metrics read in ten, which holds its request for the engine's
// one-second sample.
const defaultMix = "inspect=3,metrics=1,list=2,jobs=2,health=2"

// maxErrorSamples bounds the errors a run keeps word for word.
const maxErrorSamples = 10

// read is one route of the load and how its answer is checked.
type read struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Weight int    `json:"weight"`
	check  func(body []byte) error
}

var readNames = []string{"inspect", "metrics", "list", "jobs", "health"}

// parseMix reads -mix: route=weight pairs, each route of readNames at most once, weights from 1 to 1000.
func parseMix(s string) ([]read, error) {
	var out []read
	for _, kv := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(kv), "=")
		weight, err := strconv.Atoi(w)
		switch {
		case !ok || err != nil || weight < 1 || weight > 1000:
			return nil, fmt.Errorf("-mix %q: %q is not route=weight with a weight from 1 to 1000", s, kv)
		case !slices.Contains(readNames, name):
			return nil, fmt.Errorf("-mix %q: no route %q (want %s)", s, name, strings.Join(readNames, ", "))
		case slices.ContainsFunc(out, func(r read) bool { return r.Name == name }):
			return nil, fmt.Errorf("-mix %q: %s given twice", s, name)
		}
		out = append(out, read{Name: name, Weight: weight})
	}
	return out, nil
}

// loadReport is the load part's results.
type loadReport struct {
	Clients   int          `json:"clients"`
	DurationS float64      `json:"duration_s"`
	Mix       []read       `json:"mix"`
	Jobs      int          `json:"jobs"` // the jobs in the server's state, which the job list lists
	SettleS   float64      `json:"settle_s"`
	Runs      []loadRun    `json:"runs"`
	Memory    []procStatus `json:"memory"`         // before the first run, then after each
	RSSGrowth float64      `json:"rss_growth_mib"` // VmRSS after the last run less after the first
	HWMGrowth float64      `json:"hwm_growth_mib"`
	Transport string       `json:"transport"`
}

// loadRun is one run of the load.
type loadRun struct {
	Run         int            `json:"run"`
	ElapsedS    float64        `json:"elapsed_s"` // from the start to the last client's last answer
	Requests    int            `json:"requests"`  // answered and checked, errors included
	Errors      int            `json:"errors"`
	Throughput  float64        `json:"throughput_rps"` // good answers per second
	All         latencies      `json:"all"`            // the good answers' times, every route together
	Routes      []routeRun     `json:"routes"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	FirstErrors []string       `json:"first_errors,omitempty"`
	ServerCPU   float64        `json:"server_cpu_s"`
}

type routeRun struct {
	Name       string  `json:"name"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Throughput float64 `json:"throughput_rps"`
	// TimeShare is the share of the clients' time spent waiting for this route's good answers: where a closed
	// loop of clients spends its time bounds the throughput.
	TimeShare float64 `json:"time_share"`
	latencies
}

// settle is how long the benchmark waits after a run, its clients' connections closed, before it reads the
// server's memory: the server's side of those connections ends, and the figures are read at a quiet moment.
const settle = 2 * time.Second

// load runs cfg.runs runs of cfg.clients clients against the server, reading its memory before and after each.
func load(ctx context.Context, cfg config, mix []read, srv *proc, target container, jobIDs []string, idle procStatus) (loadReport, error) {
	rep := loadReport{Clients: cfg.clients, DurationS: cfg.duration.Seconds(), Jobs: len(jobIDs), SettleS: settle.Seconds(),
		Transport: "HTTP/1.1 over TCP on 127.0.0.1, a net/http Transport per client, keep-alive"}
	for i := range mix {
		mix[i].Path, mix[i].check = readRoute(mix[i].Name, target, jobIDs)
	}
	rep.Mix = mix
	before, err := srv.status("before the first run")
	if err != nil {
		return rep, err
	}
	rep.Memory = append(rep.Memory, idle, before)
	for r := 1; r <= cfg.runs; r++ {
		benchkit.Logf("load, run %d of %d: %d clients for %s", r, cfg.runs, cfg.clients, cfg.duration)
		lr, err := loadOnce(ctx, cfg, mix, srv)
		if err != nil {
			return rep, err
		}
		lr.Run = r
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(settle):
		}
		if err := srv.alive(); err != nil {
			return rep, err
		}
		after, err := srv.status(fmt.Sprintf("after run %d", r))
		if err != nil {
			return rep, err
		}
		lr.ServerCPU = after.CPU - rep.Memory[len(rep.Memory)-1].CPU
		rep.Memory = append(rep.Memory, after)
		rep.Runs = append(rep.Runs, lr)
		benchkit.Logf("load, run %d: %d requests, %d errors, %.0f/s, p50 %.1f ms, p99 %.1f ms; server VmRSS %.1f MiB, VmHWM %.1f MiB",
			r, lr.Requests, lr.Errors, lr.Throughput, lr.All.P50Ms, lr.All.P99Ms, after.RSSMiB, after.HWMMiB)
	}
	first, last := rep.Memory[2], rep.Memory[len(rep.Memory)-1]
	rep.RSSGrowth, rep.HWMGrowth = last.RSSMiB-first.RSSMiB, last.HWMMiB-first.HWMMiB
	return rep, nil
}

// readRoute is a read's path and the check of its answer.
func readRoute(name string, target container, jobIDs []string) (string, func([]byte) error) {
	switch name {
	case "inspect":
		return "/v1/containers/" + target.name, func(b []byte) error {
			var res containerization.ContainerResult
			if err := json.Unmarshal(b, &res); err != nil {
				return err
			}
			return checkInspect(&res, target)
		}
	case "metrics":
		return "/v1/containers/" + target.name + "/metrics", func(b []byte) error {
			var res server.Metrics
			if err := json.Unmarshal(b, &res); err != nil {
				return err
			}
			return checkMetrics(res.Metrics, target)
		}
	case "list":
		return "/v1/containers", func(b []byte) error {
			var res containerization.ContainerResult
			if err := json.Unmarshal(b, &res); err != nil {
				return err
			}
			if !res.Success || res.Operation != containerization.OpList ||
				!slices.ContainsFunc(res.Containers, func(c engine.Container) bool { return c.ID == target.id }) {
				return fmt.Errorf("%w: the list (%d containers, success %v) does not hold %s", errWrongAnswer, len(res.Containers), res.Success, target.name)
			}
			return nil
		}
	case "jobs":
		return "/v1/jobs", func(b []byte) error {
			var res struct {
				Jobs []job `json:"jobs"`
			}
			if err := json.Unmarshal(b, &res); err != nil {
				return err
			}
			got := make([]string, len(res.Jobs))
			for i, j := range res.Jobs {
				got[i] = j.ID
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(jobIDs))
			if !slices.Equal(got, want) {
				return fmt.Errorf("%w: the job list holds %d jobs, want the %d made", errWrongAnswer, len(got), len(want))
			}
			return nil
		}
	default: // health
		return "/v1/health", func(b []byte) error {
			var h server.Health
			if err := json.Unmarshal(b, &h); err != nil {
				return err
			}
			if h.Status != "ok" {
				return fmt.Errorf("%w: health %+v", errWrongAnswer, h)
			}
			return nil
		}
	}
}

// tally is what the clients of a run share: the errors.
type tally struct {
	mu      sync.Mutex
	kinds   map[string]int
	samples []string
}

func (t *tally) fail(kind, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.kinds[kind]++
	if len(t.samples) < maxErrorSamples {
		t.samples = append(t.samples, what)
		if len(t.samples) <= 5 {
			benchkit.Logf("load error: %s", what)
		}
	}
}

// loadOnce runs the clients until the run's end: each draws a read from the mix, sends it, reads and checks the
// answer, and goes on. A request in flight at the end is finished and counted.
func loadOnce(ctx context.Context, cfg config, mix []read, srv *proc) (loadRun, error) {
	total := 0
	for _, r := range mix {
		total += r.Weight
	}
	type clientTimes [][]time.Duration // by read
	times := make([]clientTimes, cfg.clients)
	errs := make([][]int, cfg.clients)
	t := &tally{kinds: map[string]int{}}
	start := time.Now()
	end := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for c := range cfg.clients {
		times[c] = make(clientTimes, len(mix))
		errs[c] = make([]int, len(mix))
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConns: 1, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: time.Minute}
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(c)))
			for time.Now().Before(end) && ctx.Err() == nil {
				i, pick := 0, rng.IntN(total)
				for pick >= mix[i].Weight {
					pick -= mix[i].Weight
					i++
				}
				d, kind, what := readOnce(ctx, hc, srv, mix[i])
				if kind != "" {
					if ctx.Err() != nil {
						return
					}
					errs[c][i]++
					t.fail(mix[i].Name+": "+kind, fmt.Sprintf("%s GET %s: %s", mix[i].Name, mix[i].Path, what))
					continue
				}
				times[c][i] = append(times[c][i], d)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return loadRun{}, err
	}
	elapsed := time.Since(start)
	lr := loadRun{ElapsedS: elapsed.Seconds(), ErrorKinds: t.kinds, FirstErrors: t.samples}
	var every []time.Duration
	var waited time.Duration
	for i, r := range mix {
		var ds []time.Duration
		nerr := 0
		for c := range cfg.clients {
			ds = append(ds, times[c][i]...)
			nerr += errs[c][i]
		}
		every = append(every, ds...)
		rr := routeRun{Name: r.Name, Requests: len(ds) + nerr, Errors: nerr, Throughput: float64(len(ds)) / elapsed.Seconds(), latencies: summarize(ds)}
		for _, d := range ds {
			rr.TimeShare += d.Seconds()
		}
		waited += time.Duration(rr.TimeShare * float64(time.Second))
		lr.Routes = append(lr.Routes, rr)
		lr.Requests += rr.Requests
		lr.Errors += nerr
	}
	for i := range lr.Routes {
		lr.Routes[i].TimeShare /= waited.Seconds()
	}
	lr.All = summarize(every)
	lr.Throughput = float64(len(every)) / elapsed.Seconds()
	if len(lr.ErrorKinds) == 0 {
		lr.ErrorKinds = nil
	}
	return lr, nil
}

// readOnce sends one read and checks its answer; kind is "" for a good answer, else the error's kind
// (transport, HTTP status, wrong answer) and what describes it.
func readOnce(ctx context.Context, hc *http.Client, srv *proc, r read) (time.Duration, string, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+r.Path, nil)
	if err != nil {
		return 0, "request", err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+srv.read)
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "transport", err.Error()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return d, "transport", "reading the answer: " + err.Error()
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return d, "HTTP " + strconv.Itoa(resp.StatusCode), resp.Status + ": " + excerpt(body)
	}
	if err := r.check(body); err != nil {
		kind := "undecodable answer"
		if errors.Is(err, errWrongAnswer) {
			kind = "wrong answer"
		}
		return d, kind, err.Error()
	}
	return d, "", ""
}

// loadNotes say what the load found: its errors, and how the server's memory moved between the runs.
func loadNotes(l loadReport) []string {
	var notes []string
	errs := 0
	for _, r := range l.Runs {
		errs += r.Errors
	}
	if errs > 0 {
		notes = append(notes, fmt.Sprintf("**The load had %d errors** (goal: none); their kinds and the first of them are under *Errors*.", errs))
	}
	if len(l.Runs) >= 2 {
		first, last := l.Memory[2], l.Memory[len(l.Memory)-1]
		verdict := "no growth beyond noise (5 % of VmRSS, and no open file more)"
		if l.RSSGrowth > 0.05*first.RSSMiB || last.FDs > first.FDs {
			verdict = "**the server grew**: a leak to look for"
		}
		notes = append(notes, fmt.Sprintf("The server's memory from the end of run 1 to the end of run %d: VmRSS %+.1f MiB (%.1f → %.1f, %+.1f %%), "+
			"VmHWM %+.1f MiB (%.1f → %.1f), threads %d → %d, open files %d → %d: %s.", len(l.Runs),
			l.RSSGrowth, first.RSSMiB, last.RSSMiB, 100*l.RSSGrowth/first.RSSMiB, l.HWMGrowth, first.HWMMiB, last.HWMMiB,
			first.Threads, last.Threads, first.FDs, last.FDs, verdict))
	}
	return notes
}
