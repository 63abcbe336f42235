package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/server/state"
)

// The defaults of the container sampling behind /metrics.
const (
	DefaultMetricsInterval = 15 * time.Second
	DefaultMetricsTimeout  = 5 * time.Second
)

const (
	// sampleConcurrency bounds the containers sampled at once: each sample holds an engine request open for
	// about a second.
	sampleConcurrency = 16
	// maxScanImages bounds the images whose scan findings are exported; past it the image scanned longest ago is
	// dropped, so that scanning many images cannot grow the exposition (and Prometheus's series) without bound.
	maxScanImages = 1000
)

// metrics is what GET /metrics exposes, in the Prometheus text format: the running containers' ContainerMetrics
// from a sample taken in the background (a scrape never calls the engine), the jobs this process ran by kind
// and outcome, the findings of the latest scan of each image, and the policy's refusals by rule. Each server has
// a registry of its own.
type metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	refusals    *prometheus.CounterVec
	findings    *prometheus.GaugeVec

	scansMu sync.Mutex
	scanned map[string]time.Time // the images whose findings are exported, with when they were set

	containers *containerSampler
	now        func() time.Time
}

func newMetrics(cfg Config, log *slog.Logger, sample func(context.Context) ([]containerSample, error)) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), scanned: map[string]time.Time{}, now: cfg.Now}
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "myrmex_jobs_total",
		Help: "Jobs this server ran to their end, by kind (scan, build, push, pull, copy, optimize, apply) and outcome (succeeded, failed, canceled)."},
		[]string{"kind", "outcome"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "myrmex_job_duration_seconds",
		Help:    "How long the jobs this server ran took, from their start to their end, by kind and outcome.",
		Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}},
		[]string{"kind", "outcome"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "myrmex_policy_refusals_total",
		Help: "Requests and jobs the policy refused, by gate and rule (a refusal that breaks several rules counts once for each)."},
		[]string{"gate", "rule"})
	m.findings = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "myrmex_scan_findings",
		Help: "The vulnerabilities the latest scan of an image found (a scan job, or a build's scan), by severity."},
		[]string{"image", "severity"})
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "myrmex_build_info", Help: "Always 1: the server's version.",
		ConstLabels: prometheus.Labels{"version": containerization.Version()}})
	build.Set(1)
	m.containers = newContainerSampler(cfg, log, sample)
	m.reg.MustRegister(m.jobs, m.jobDuration, m.refusals, m.findings, build, m.containers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{log},
		ErrorHandling: promhttp.ContinueOnError, // a metric that cannot be gathered does not hide the others
		// A scrape reads memory only; this bounds what many scrapers at once can cost.
		MaxRequestsInFlight: 8,
	})
	return m
}

// close stops the container sampling.
func (m *metrics) close() { m.containers.stop() }

// jobEnded counts a job that ended, and takes from its result or error what the metrics show: a scan's findings,
// a policy's refusal.
func (m *metrics) jobEnded(j *state.Job) {
	start := j.Started
	if start.IsZero() {
		start = j.Created
	}
	m.jobs.WithLabelValues(j.Kind, j.State).Inc()
	m.jobDuration.WithLabelValues(j.Kind, j.State).Observe(max(0, j.Finished.Sub(start).Seconds()))
	if sr := scanOf(j); sr != nil {
		m.scanFindings(sr)
	}
	if len(j.Error) > 0 {
		var o containerization.ErrorObject
		if json.Unmarshal(j.Error, &o) == nil {
			m.refused(o.Verdict)
		}
	}
}

// scanOf is the security scan a job's result carries: a scan's own result (kept when the findings failed its
// threshold too), or a build's scan of the image it built. Pushes attach a scan (its evidence) but carry no
// result of one.
func scanOf(j *state.Job) *containerization.SecurityScanResult {
	if len(j.Result) == 0 {
		return nil
	}
	switch j.Kind {
	case "scan":
		var r containerization.SecurityScanResult
		if json.Unmarshal(j.Result, &r) == nil && r.ImageName != "" {
			return &r
		}
	case "build":
		var b struct {
			Scan *containerization.SecurityScanResult `json:"scan"`
		}
		if json.Unmarshal(j.Result, &b) == nil && b.Scan != nil && b.Scan.ImageName != "" {
			return b.Scan
		}
	}
	return nil
}

// scanFindings sets an image's findings by severity to its latest scan's; the five severities are always set,
// so that a finding fixed since reads 0.
func (m *metrics) scanFindings(r *containerization.SecurityScanResult) {
	m.scansMu.Lock()
	defer m.scansMu.Unlock()
	m.scanned[r.ImageName] = m.now()
	for sev, n := range map[string]int{"critical": r.CriticalCount, "high": r.HighCount, "medium": r.MediumCount,
		"low": r.LowCount, "unknown": r.UnknownCount} {
		m.findings.WithLabelValues(r.ImageName, sev).Set(float64(n))
	}
	for len(m.scanned) > maxScanImages {
		oldest, at := "", time.Time{}
		for img, t := range m.scanned {
			if oldest == "" || t.Before(at) {
				oldest, at = img, t
			}
		}
		delete(m.scanned, oldest)
		m.findings.DeletePartialMatch(prometheus.Labels{"image": oldest})
	}
}

// refused counts a refusal of the policy; a verdict that allowed (or none) is no refusal.
func (m *metrics) refused(v *policy.Verdict) {
	if v == nil || v.Allowed {
		return
	}
	seen := map[string]bool{}
	for _, x := range v.Violations {
		if !seen[x.Rule] {
			seen[x.Rule] = true
			m.refusals.WithLabelValues(v.Gate, x.Rule).Inc()
		}
	}
}

// containerSample is one container's ContainerMetrics and the image it runs.
type containerSample struct {
	containerization.ContainerMetrics
	Image string
}

// sampleContainers samples the running containers (Myrmex's, or every one with Config.MetricsForeign) and
// names their images. A container that could not be sampled is left out, and said in the error.
func (s *Server) sampleContainers(ctx context.Context) ([]containerSample, error) {
	ms, err := s.cfg.Client.GetContainerMetrics(ctx, "", containerization.MetricsOptions{Foreign: s.cfg.MetricsForeign, Concurrency: sampleConcurrency})
	if len(ms) == 0 {
		return nil, err
	}
	// Listed after the sampling, so that every container sampled that still exists is listed.
	list, lerr := s.cfg.Client.ManageContainers(ctx, containerization.OpList, "", nil, containerization.ManageOptions{Foreign: s.cfg.MetricsForeign})
	images := map[string]string{}
	if lerr == nil {
		for _, c := range list.Containers {
			images[c.ID] = c.Image
		}
	}
	out := make([]containerSample, 0, len(ms))
	for _, m := range ms {
		out = append(out, containerSample{ContainerMetrics: m, Image: images[m.ContainerID]})
	}
	return out, errors.Join(err, lerr)
}

// containerSampler samples the containers every interval, each sampling bounded by a timeout, and keeps the
// last sample for the scrapes: a scrape reads it and never waits for the engine. It is the collector of the
// containers' metrics.
type containerSampler struct {
	sample            func(context.Context) ([]containerSample, error)
	interval, timeout time.Duration
	now               func() time.Time
	log               *slog.Logger

	collections, errors prometheus.Counter

	mu      sync.Mutex
	samples []containerSample
	taken   time.Time     // when the samples kept were taken; zero before the first
	took    time.Duration // how long the last sampling took

	cancel context.CancelFunc
	done   chan struct{}
}

var containerLabels = []string{"name", "id", "image"}

func containerDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, containerLabels...), labels...), nil)
}

// The containers' series, from ContainerMetrics in base units: cumulative quantities (network, disk, restarts)
// are counters, so that rate() reads them.
var (
	descCPU         = containerDesc("myrmex_container_cpu_usage_percent", "The share of the CPUs the container may use that it used over the sampling second, 0 to 100 (cpu_usage_percent).")
	descMemory      = containerDesc("myrmex_container_memory_usage_bytes", "Memory the container uses, page cache left out as docker stats does (memory_usage_mb).")
	descMemoryLimit = containerDesc("myrmex_container_memory_limit_bytes", "The container's memory limit, or the host's memory without one (memory_limit_mb).")
	descRx          = containerDesc("myrmex_container_network_receive_bytes_total", "Bytes the container received, over its interfaces (network_rx_mb).")
	descTx          = containerDesc("myrmex_container_network_transmit_bytes_total", "Bytes the container sent, over its interfaces (network_tx_mb).")
	descDiskRead    = containerDesc("myrmex_container_disk_read_bytes_total", "Bytes the container read from block devices (disk_read_mb).")
	descDiskWrite   = containerDesc("myrmex_container_disk_write_bytes_total", "Bytes the container wrote to block devices (disk_write_mb).")
	descStart       = containerDesc("myrmex_container_start_time_seconds", "When the container started, in Unix seconds (the sample's time less uptime_seconds).")
	descRestarts    = containerDesc("myrmex_container_restarts_total", "How many times the engine restarted the container (restart_count).")
	descHealth      = containerDesc("myrmex_container_health_status", "1 for the container's health status (healthy, unhealthy, unknown: without a HEALTHCHECK), 0 for the others.", "status")
	descScore       = containerDesc("myrmex_container_performance_score", "The container's performance score, 0 to 100 (performance_score).")

	descTaken = prometheus.NewDesc("myrmex_container_sample_timestamp_seconds", "When the containers' sample a scrape reads was taken, in Unix seconds (absent before the first).", nil, nil)
	descAge   = prometheus.NewDesc("myrmex_container_sample_age_seconds", "How old the containers' sample a scrape reads is (absent before the first).", nil, nil)
	descTook  = prometheus.NewDesc("myrmex_container_sample_duration_seconds", "How long the last sampling of the containers took (it is bounded by the server's metrics timeout).", nil, nil)
)

var healthStatuses = []string{engine.HealthHealthy, engine.HealthUnhealthy, engine.HealthUnknown}

func newContainerSampler(cfg Config, log *slog.Logger, sample func(context.Context) ([]containerSample, error)) *containerSampler {
	ctx, cancel := context.WithCancel(context.Background())
	cs := &containerSampler{sample: sample, interval: cfg.MetricsInterval, timeout: cfg.MetricsTimeout, now: cfg.Now, log: log,
		cancel: cancel, done: make(chan struct{}),
		collections: prometheus.NewCounter(prometheus.CounterOpts{Name: "myrmex_container_samples_total",
			Help: "Samplings of the containers the server started in the background (scrapes start none)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "myrmex_container_sample_errors_total",
			Help: "Samplings of the containers that failed in part or in whole (the engine did not answer, or not within the metrics timeout)."}),
	}
	if cs.interval == 0 {
		cs.interval = DefaultMetricsInterval
	}
	if cs.timeout <= 0 {
		cs.timeout = DefaultMetricsTimeout
	}
	if cs.interval > 0 {
		go cs.run(ctx) // a sampling longer than the interval delays the next: they never overlap
	} else {
		close(cs.done)
	}
	return cs
}

func (cs *containerSampler) run(ctx context.Context) {
	defer close(cs.done)
	t := time.NewTicker(cs.interval)
	defer t.Stop()
	for {
		cs.collect(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collect takes one sample within the timeout. A sampling that yields containers replaces the sample kept, even
// when some could not be sampled; one that yields none because it failed keeps the previous one, whose age
// then grows.
func (cs *containerSampler) collect(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, cs.timeout)
	defer cancel()
	start := time.Now()
	samples, err := cs.sample(ctx)
	took := time.Since(start)
	cs.collections.Inc()
	if err != nil {
		cs.errors.Inc()
		cs.log.Warn("sampling the containers for /metrics", "err", err, "sampled", len(samples))
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.took = took
	if err == nil || len(samples) > 0 {
		cs.samples, cs.taken = samples, cs.now()
	}
}

func (cs *containerSampler) stop() {
	cs.cancel()
	<-cs.done
}

// Describe implements prometheus.Collector.
func (cs *containerSampler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descMemory, descMemoryLimit, descRx, descTx, descDiskRead, descDiskWrite,
		descStart, descRestarts, descHealth, descScore, descTaken, descAge, descTook} {
		ch <- d
	}
	cs.collections.Describe(ch)
	cs.errors.Describe(ch)
}

// Collect implements prometheus.Collector: the sample kept, as it is.
func (cs *containerSampler) Collect(ch chan<- prometheus.Metric) {
	cs.mu.Lock()
	samples, taken, took := cs.samples, cs.taken, cs.took
	cs.mu.Unlock()
	for _, m := range samples {
		labels := []string{m.ContainerName, shortID(m.ContainerID), m.Image}
		metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, more ...string) {
			ch <- prometheus.MustNewConstMetric(d, t, v, append(labels, more...)...)
		}
		metric(descCPU, prometheus.GaugeValue, m.CPUUsagePercent)
		metric(descMemory, prometheus.GaugeValue, bytesOf(m.MemoryUsageMB))
		metric(descMemoryLimit, prometheus.GaugeValue, bytesOf(m.MemoryLimitMB))
		metric(descRx, prometheus.CounterValue, bytesOf(m.NetworkRxMB))
		metric(descTx, prometheus.CounterValue, bytesOf(m.NetworkTxMB))
		metric(descDiskRead, prometheus.CounterValue, bytesOf(m.DiskReadMB))
		metric(descDiskWrite, prometheus.CounterValue, bytesOf(m.DiskWriteMB))
		if m.UptimeSeconds > 0 {
			started := m.Timestamp.Add(-time.Duration(m.UptimeSeconds * float64(time.Second)))
			metric(descStart, prometheus.GaugeValue, float64(started.UnixMilli())/1e3)
		}
		metric(descRestarts, prometheus.CounterValue, float64(m.RestartCount))
		for _, st := range healthStatuses {
			v := 0.0
			if m.HealthStatus == st {
				v = 1
			}
			metric(descHealth, prometheus.GaugeValue, v, st)
		}
		metric(descScore, prometheus.GaugeValue, m.PerformanceScore)
	}
	if !taken.IsZero() {
		ch <- prometheus.MustNewConstMetric(descTaken, prometheus.GaugeValue, float64(taken.UnixMilli())/1e3)
		ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, max(0, cs.now().Sub(taken).Seconds()))
	}
	ch <- prometheus.MustNewConstMetric(descTook, prometheus.GaugeValue, took.Seconds())
	cs.collections.Collect(ch)
	cs.errors.Collect(ch)
}

// bytesOf turns ContainerMetrics' MiB back into bytes.
func bytesOf(mib float64) float64 { return math.Round(mib * (1 << 20)) }

// shortID is a container ID as docker ps shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// slogPrinter hands promhttp's errors to the server's logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("/metrics", "err", fmt.Sprint(v...)) }

// last is the last sample kept, and when it was taken.
func (cs *containerSampler) last() ([]containerSample, time.Time) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.samples, cs.taken
}
