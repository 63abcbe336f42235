package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/errdefs"
)

// ContainerMetrics is the specification's ContainerMetrics: one sample of a container's resource use.
// Sizes are in MiB (2^20 bytes), as docker stats shows memory. See [ComputeMetrics] for the formulas.
type ContainerMetrics struct {
	ContainerName    string    `json:"container_name"`
	Timestamp        time.Time `json:"timestamp"`
	CPUUsagePercent  float64   `json:"cpu_usage_percent"`
	MemoryUsageMB    float64   `json:"memory_usage_mb"`
	MemoryLimitMB    float64   `json:"memory_limit_mb"`
	NetworkRxMB      float64   `json:"network_rx_mb"`
	NetworkTxMB      float64   `json:"network_tx_mb"`
	DiskReadMB       float64   `json:"disk_read_mb"`
	DiskWriteMB      float64   `json:"disk_write_mb"`
	UptimeSeconds    float64   `json:"uptime_seconds"`
	RestartCount     int       `json:"restart_count"`
	HealthStatus     string    `json:"health_status"`
	PerformanceScore float64   `json:"performance_score"`

	// ContainerID and Status are not in the specification; they say which container and in what state.
	ContainerID string `json:"container_id"`
	Status      string `json:"status"`
}

// Health statuses, as the specification names them.
const (
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthUnknown   = "unknown"
)

const mib = 1 << 20

// ComputeMetrics turns an inspect and a stats sample (nil for a container that is not running) into
// ContainerMetrics. It is a pure function.
//
// cpu_usage_percent is the share of the CPUs the container may use, 0–100:
//
//	host% = Δcontainer_cpu / Δsystem_cpu × online_cpus × 100     (what docker stats prints; up to online_cpus×100)
//	allowed = cpu_limit (NanoCPUs, else CpuQuota/CpuPeriod, else the cpuset's size, else online_cpus),
//	          at most online_cpus
//	cpu_usage_percent = clamp(host% / allowed, 0, 100)
//
// memory_usage_mb leaves out the page cache, as docker stats does: usage − total_inactive_file (cgroup v1) or
// usage − inactive_file (cgroup v2). memory_limit_mb is the container's limit, or the host's memory without one.
// Network is summed over interfaces; disk is the block I/O service bytes read and written.
//
// performance_score is 100 less penalties, clamped to 0–100, and 0 for a container that is not running:
//
//	cpu:      40 × clamp((cpu_usage_percent − 50) / 50, 0, 1)      nothing below half the allowed CPU
//	memory:   40 × clamp((memory% − 50) / 50, 0, 1)                memory% = usage / limit × 100
//	health:   30 when unhealthy
//	restarts: 5 per restart, at most 20
func ComputeMetrics(ins container.InspectResponse, st *container.StatsResponse, now time.Time) ContainerMetrics {
	m := ContainerMetrics{
		ContainerName: strings.TrimPrefix(ins.Name, "/"),
		ContainerID:   ins.ID,
		Timestamp:     now.UTC(),
		RestartCount:  ins.RestartCount,
		HealthStatus:  HealthUnknown,
	}
	running := false
	if s := ins.State; s != nil {
		m.Status = string(s.Status)
		running = s.Running
		if s.Health != nil {
			switch s.Health.Status {
			case container.Healthy:
				m.HealthStatus = HealthHealthy
			case container.Unhealthy:
				m.HealthStatus = HealthUnhealthy
			}
		}
		if running {
			if started, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil && now.After(started) {
				m.UptimeSeconds = round(now.Sub(started).Seconds(), 3)
			}
		}
	}
	if st == nil || !running {
		return m
	}

	m.CPUUsagePercent = round(cpuPercent(st, ins.HostConfig), 2)
	usage := memoryWithoutCache(st.MemoryStats)
	m.MemoryUsageMB = round(usage/mib, 3)
	m.MemoryLimitMB = round(float64(st.MemoryStats.Limit)/mib, 3)
	var rx, tx uint64
	for _, n := range st.Networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	m.NetworkRxMB = round(float64(rx)/mib, 6)
	m.NetworkTxMB = round(float64(tx)/mib, 6)
	var rd, wr uint64
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			rd += e.Value
		case "write":
			wr += e.Value
		}
	}
	m.DiskReadMB = round(float64(rd)/mib, 6)
	m.DiskWriteMB = round(float64(wr)/mib, 6)

	memPercent := 0.0
	if st.MemoryStats.Limit > 0 {
		memPercent = usage / float64(st.MemoryStats.Limit) * 100
	}
	m.PerformanceScore = round(performanceScore(m.CPUUsagePercent, memPercent, m.HealthStatus, m.RestartCount), 1)
	return m
}

func cpuPercent(st *container.StatsResponse, hc *container.HostConfig) float64 {
	cpuDelta := float64(st.CPUStats.CPUUsage.TotalUsage) - float64(st.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(st.CPUStats.SystemUsage) - float64(st.PreCPUStats.SystemUsage)
	if cpuDelta <= 0 || sysDelta <= 0 {
		return 0
	}
	online := float64(st.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(st.CPUStats.CPUUsage.PercpuUsage))
	}
	if online == 0 {
		online = 1
	}
	host := cpuDelta / sysDelta * online * 100
	allowed := online
	if hc != nil {
		switch {
		case hc.NanoCPUs > 0:
			allowed = float64(hc.NanoCPUs) / 1e9
		case hc.CPUQuota > 0:
			period := hc.CPUPeriod
			if period == 0 {
				period = 100000
			}
			allowed = float64(hc.CPUQuota) / float64(period)
		case hc.CpusetCpus != "":
			if n := cpusetSize(hc.CpusetCpus); n > 0 {
				allowed = float64(n)
			}
		}
	}
	allowed = min(allowed, online)
	return clamp(host/allowed, 0, 100)
}

// cpusetSize counts the CPUs of a cpuset such as "0-2,5".
func cpusetSize(set string) int {
	n := 0
	for _, part := range strings.Split(set, ",") {
		var lo, hi int
		if _, err := fmt.Sscanf(part, "%d-%d", &lo, &hi); err == nil && hi >= lo {
			n += hi - lo + 1
		} else if _, err := fmt.Sscanf(part, "%d", &lo); err == nil {
			n++
		}
	}
	return n
}

func memoryWithoutCache(mem container.MemoryStats) float64 {
	if v, ok := mem.Stats["total_inactive_file"]; ok && v < mem.Usage {
		return float64(mem.Usage - v)
	}
	if v := mem.Stats["inactive_file"]; v < mem.Usage {
		return float64(mem.Usage - v)
	}
	return float64(mem.Usage)
}

func performanceScore(cpu, memPercent float64, health string, restarts int) float64 {
	score := 100.0
	score -= 40 * clamp((cpu-50)/50, 0, 1)
	score -= 40 * clamp((memPercent-50)/50, 0, 1)
	if health == HealthUnhealthy {
		score -= 30
	}
	score -= math.Min(20, 5*float64(restarts))
	return clamp(score, 0, 100)
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// Where a sample's readings come from: [MetricsViaAuto] reads the container's cgroups beside the engine when
// it can (Myrmex on the engine's Linux host, as root, cgroup v1) and asks the engine otherwise;
// [MetricsViaEngine] always asks the engine; [MetricsViaCgroups] reads the cgroups or fails.
const (
	MetricsViaAuto    = ""
	MetricsViaEngine  = "engine"
	MetricsViaCgroups = "cgroups"
)

// CheckMetricsVia refuses a via that is none of the MetricsVia values.
func CheckMetricsVia(via string) error {
	switch via {
	case MetricsViaAuto, MetricsViaEngine, MetricsViaCgroups:
		return nil
	}
	return fmt.Errorf("%w: metrics via %q: want %q or %q (empty: the cgroups when they can be read, else the engine)",
		errdefs.ErrInvalidArgument, via, MetricsViaCgroups, MetricsViaEngine)
}

// Metrics samples one container over about a second: its CPU use is a rate between two readings. The readings
// come from the container's cgroups when Myrmex runs beside the engine (one Engine API request: the inspect), else
// from the engine's stats stream (two: the stream, read for two readings, and an inspect between them). A
// container that is not running answers at once with zero use; one that stops while it is sampled is read once
// more, to say what it is now.
func (c *Client) Metrics(ctx context.Context, name string) (ContainerMetrics, error) {
	return c.MetricsVia(ctx, name, MetricsViaAuto)
}

// MetricsVia is [Client.Metrics] with the readings taken where via says (the MetricsVia values).
func (c *Client) MetricsVia(ctx context.Context, name, via string) (ContainerMetrics, error) {
	if err := CheckMetricsVia(via); err != nil {
		return ContainerMetrics{}, err
	}
	s, err := c.sample(ctx, name, via)
	if err != nil {
		return ContainerMetrics{}, err
	}
	return ComputeMetrics(s.ins, s.st, time.Now()), nil
}

// sampled is what [Client.Metrics] computes from: the container's inspect and its second stats reading (nil for
// a container that is not running), with the first as the reading's previous one; via says where the readings
// came from.
type sampled struct {
	ins container.InspectResponse
	st  *container.StatsResponse
	via string
}

// sampleInterval is the time between a sample's two readings, the engine collector's.
const sampleInterval = time.Second

func (c *Client) sample(ctx context.Context, name, via string) (sampled, error) {
	if via == MetricsViaEngine {
		return c.sampleStream(ctx, name)
	}
	host, herr := c.cgroups()
	if herr != nil && via == MetricsViaAuto {
		return c.sampleStream(ctx, name)
	}
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return sampled{}, err
	}
	if ins.State == nil || !ins.State.Running || ins.State.Restarting {
		return sampled{ins: ins, via: via}, nil
	}
	unreadable := func(err error) (sampled, error) {
		if via == MetricsViaAuto {
			c.log.Debug("metrics through the engine: the cgroups cannot be read here", "container", ins.ID, "why", err)
			return c.sampleStream(ctx, ins.ID)
		}
		return sampled{}, fmt.Errorf("%w: the cgroups of container %q cannot be read here (%v): sample it via the engine",
			errdefs.ErrUnavailable, name, err)
	}
	if herr != nil {
		return unreadable(herr)
	}
	src, err := host.locate(ins)
	if err != nil {
		return unreadable(err)
	}
	first, err := src.read()
	if err != nil {
		if !src.alive() {
			return c.stoppedNow(ctx, ins.ID)
		}
		return unreadable(err)
	}
	t := time.NewTimer(sampleInterval)
	select {
	case <-ctx.Done():
		t.Stop()
		return sampled{}, ctx.Err()
	case <-t.C:
	}
	second, err := src.read()
	if !src.alive() {
		// It stopped or restarted during the sampled second: say what it is now.
		return c.stoppedNow(ctx, ins.ID)
	}
	if err != nil {
		return unreadable(err)
	}
	second.PreCPUStats, second.PreRead = first.CPUStats, first.Read
	return sampled{ins: ins, st: second, via: MetricsViaCgroups}, nil
}

// cgroups is the host's cgroup mounts, read once for the client's life.
func (c *Client) cgroups() (*cgroupHost, error) {
	c.cgroupOnce.Do(func() { c.cgroupHost, c.cgroupErr = newCgroupHost("/proc") })
	return c.cgroupHost, c.cgroupErr
}

// stoppedNow reads a container that stopped or restarted while it was sampled: its state now, and no reading.
func (c *Client) stoppedNow(ctx context.Context, id string) (sampled, error) {
	ins, err := c.Inspect(ctx, id)
	return sampled{ins: ins, via: MetricsViaCgroups}, err
}

// sampleStream samples through the engine in two Engine API requests: the engine's stats stream, read for two
// readings (the engine takes them about a second apart, on its own collector's rounds, and gives the second with
// the first as its previous one, so that CPU use is a rate), and an inspect between the two, so that the state,
// restarts and health are those of the sampled second.
func (c *Client) sampleStream(ctx context.Context, name string) (sampled, error) {
	ins, st, err := c.streamSample(ctx, name)
	return sampled{ins: ins, st: st, via: MetricsViaEngine}, err
}

// streamSample is [Client.sampleStream]'s reading: the inspect and the second reading of the engine's stream.
func (c *Client) streamSample(ctx context.Context, name string) (container.InspectResponse, *container.StatsResponse, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := c.api.ContainerStats(sctx, name, client.ContainerStatsOptions{Stream: true})
	if err != nil {
		return container.InspectResponse{}, nil, c.classify(err)
	}
	defer closeQuietly(res.Body)
	dec := json.NewDecoder(res.Body)
	var first container.StatsResponse
	if err := dec.Decode(&first); err != nil {
		return c.stoppedOr(ctx, name, fmt.Errorf("reading stats of %q: %w", name, err))
	}
	if first.Read.IsZero() {
		// The engine answers a container that is not running with an empty reading (and would then wait).
		cancel()
		return c.stoppedOr(ctx, name, nil)
	}
	type inspected struct {
		ins container.InspectResponse
		err error
	}
	state := make(chan inspected, 1)
	go func() {
		ins, err := c.Inspect(ctx, first.ID)
		state <- inspected{ins, err}
	}()
	var second container.StatsResponse
	serr := dec.Decode(&second)
	cancel()
	got := <-state
	if got.err != nil {
		return container.InspectResponse{}, nil, got.err
	}
	if serr != nil || second.Read.IsZero() || got.ins.State == nil || !got.ins.State.Running {
		// It stopped (or restarts) during the sampled second: say what it is now.
		return c.stoppedOr(ctx, first.ID, fmt.Errorf("reading stats of %q: the stream ended after one reading", name))
	}
	return got.ins, &second, nil
}

// stoppedOr reads a container whose stats stream gave no rate: a container that is not running is its inspect
// without a reading; a running one is err (or, when err is nil, again its inspect: it was not running when asked).
func (c *Client) stoppedOr(ctx context.Context, name string, err error) (container.InspectResponse, *container.StatsResponse, error) {
	ins, ierr := c.Inspect(ctx, name)
	switch {
	case ierr != nil:
		return container.InspectResponse{}, nil, ierr
	case err == nil || ins.State == nil || !ins.State.Running:
		return ins, nil, nil
	}
	return container.InspectResponse{}, nil, err
}

// MetricsOptions tunes [Client.MetricsAll].
type MetricsOptions struct {
	// Foreign includes running containers that Myrmex did not create.
	Foreign bool
	// Concurrency bounds the samples taken at once; zero samples every container at once, as docker stats does
	// (each sample waits about a second between its readings, and costs the client little).
	Concurrency int
	// Via says where the readings come from (the MetricsVia values; empty: the cgroups when they can be read).
	Via string
}

// MetricsAll samples every running container of Myrmex's (or every one, with opts.Foreign) concurrently.
// A container that stops or goes away while it is sampled is left out. Results keep the listing's order.
func (c *Client) MetricsAll(ctx context.Context, opts MetricsOptions) ([]ContainerMetrics, error) {
	if err := CheckMetricsVia(opts.Via); err != nil {
		return nil, err
	}
	list, err := c.List(ctx, ListOptions{Foreign: opts.Foreign, RunningOnly: true})
	if err != nil {
		return nil, err
	}
	limit := opts.Concurrency
	if limit <= 0 {
		limit = max(1, len(list))
	}
	results := make([]ContainerMetrics, len(list))
	errs := make([]error, len(list))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, ct := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = c.MetricsVia(ctx, ct.ID, opts.Via)
		}()
	}
	wg.Wait()
	out := results[:0]
	var failed []error
	for i, m := range results {
		switch {
		case errs[i] == nil && m.Status == string(container.StateRunning):
			out = append(out, m)
		case errs[i] == nil:
			// It stopped while it was sampled: no longer one of the running containers asked for.
		case errors.Is(errs[i], errdefs.ErrNotFound):
		default:
			failed = append(failed, errs[i])
		}
	}
	return out, errors.Join(failed...)
}

// WatchMetrics follows one container's resource use as it happens: fn gets a sample about every second while
// the container runs (from the engine's stats stream, each reading a rate over the second before it), and one
// when it stops, starts or goes through a restart (its state is read again every few seconds, for health and
// restarts). It returns when ctx ends (nil), when fn returns an error (that error), or when the container goes
// away (ErrNotFound).
func (c *Client) WatchMetrics(ctx context.Context, name string, fn func(ContainerMetrics) error) error {
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return err
	}
	id := ins.ID
	for ctx.Err() == nil {
		if ins.State == nil || !ins.State.Running {
			if err := fn(ComputeMetrics(ins, nil, time.Now())); err != nil {
				return err
			}
			// Stopped: look again every two seconds until it runs (or goes away, or ctx ends).
			for ctx.Err() == nil && (ins.State == nil || !ins.State.Running) {
				t := time.NewTimer(2 * time.Second)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
				if ins, err = c.Inspect(ctx, id); err != nil {
					return quietEnd(ctx, err)
				}
			}
			continue
		}
		if err := c.streamStats(ctx, id, &ins, fn); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		// The stream ended: the container stopped (or restarts). Read what it is now.
		if ins, err = c.Inspect(ctx, id); err != nil {
			return quietEnd(ctx, err)
		}
	}
	return nil
}

func quietEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// streamStats reads the engine's stats stream of a running container until it ends, handing fn each reading
// that has a previous one (a rate needs two); ins is read again every five seconds.
func (c *Client) streamStats(ctx context.Context, id string, ins *container.InspectResponse, fn func(ContainerMetrics) error) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := c.api.ContainerStats(sctx, id, client.ContainerStatsOptions{Stream: true})
	if err != nil {
		return quietEnd(ctx, c.classify(err))
	}
	defer closeQuietly(res.Body)
	dec := json.NewDecoder(res.Body)
	reread := time.Now()
	for {
		var st container.StatsResponse
		if err := dec.Decode(&st); err != nil {
			return nil // the stream ended: the caller reads the state
		}
		if st.PreCPUStats.SystemUsage == 0 && st.PreCPUStats.CPUUsage.TotalUsage == 0 {
			continue // the first reading: nothing to make a rate of
		}
		if time.Since(reread) >= 5*time.Second {
			if again, err := c.Inspect(ctx, id); err == nil {
				*ins = again
			}
			reread = time.Now()
		}
		if !st.Read.IsZero() && ins.State != nil && !ins.State.Running {
			return nil
		}
		if err := fn(ComputeMetrics(*ins, &st, time.Now())); err != nil {
			return err
		}
	}
}
