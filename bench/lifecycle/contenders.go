package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
)

// A lifecycle contender runs create→start→stop→remove for each name and returns the IDs of the containers it
// made and removed. An error is fatal to the benchmark.
type lifecycleContender struct {
	key         string // short, for names and JSON
	title       string // for the table
	how         string // one line for the report
	concurrency int
	inProcess   bool // its allocations are this process's, and are measured
	run         func(ctx context.Context, names []string) ([]string, error)
}

// bench holds what every contender shares: the engine, the settings and the run's label.
type bench struct {
	eng        *engine.Client
	raw        *rawAPI
	docker     string
	dockerHost string // DOCKER_HOST for the docker CLI; empty inherits this process's
	cfg        config
	runID      string
	order      *benchkit.Order // the contenders' order in every round
}

// dockerEnv is the environment of a docker CLI process.
func (b *bench) dockerEnv(cmd *exec.Cmd, env ...string) {
	cmd.Env = append(cmd.Environ(), env...)
	if b.dockerHost != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+b.dockerHost)
	}
}

// labels are the labels every benchmark container carries, whoever makes it, so that verification and
// cleanup find all of them and nothing else.
func (b *bench) labels() map[string]string { return map[string]string{runLabel: b.runID} }

func (b *bench) lifecycleContenders() []lifecycleContender {
	c := b.cfg.concurrency
	return []lifecycleContender{
		{
			key: "myrmex", title: fmt.Sprintf("Myrmex library, -P%d", c), concurrency: c, inProcess: true,
			how: "containerization.ManageContainers create/start/stop/remove with one shared engine.Client",
			run: b.myrmexCycles,
		},
		{
			key: "cli-seq", title: "docker CLI, sequential", concurrency: 1,
			how: "docker create; docker start; docker stop -t N; docker rm — one process per step, one job at a time",
			run: func(ctx context.Context, names []string) ([]string, error) { return b.cliCycles(ctx, names, 1) },
		},
		{
			key: "cli-xargs", title: fmt.Sprintf("docker CLI, xargs -P%d", c), concurrency: c,
			how: fmt.Sprintf("the same four docker commands per job, %d jobs at a time through xargs -P%d", c, c),
			run: func(ctx context.Context, names []string) ([]string, error) { return b.cliCycles(ctx, names, c) },
		},
		{
			key: "raw-api", title: fmt.Sprintf("raw Engine API, -P%d", c), concurrency: c, inProcess: true,
			how: "net/http over the socket: POST /" + rawAPIVersion + "/containers/create, /start, /stop?t=N, DELETE /containers/ID",
			run: b.rawCycles,
		},
	}
}

// myrmexCycles is the library as a caller uses it: ManageContainers, one operation per call, by name.
func (b *bench) myrmexCycles(ctx context.Context, names []string) ([]string, error) {
	stop := time.Duration(b.cfg.stopTimeout) * time.Second
	opts := containerization.ManageOptions{Engine: b.eng, StopTimeout: &stop}
	want := map[string]string{
		containerization.OpCreate: "created",
		containerization.OpStart:  "running",
		containerization.OpStop:   "exited",
		containerization.OpRemove: "removed",
	}
	return parallel(ctx, names, b.cfg.concurrency, func(ctx context.Context, name string) (string, error) {
		cfg := &containerization.ContainerConfig{Image: b.cfg.image, Command: sleepCmd, Labels: b.labels()}
		var id string
		for _, op := range []string{containerization.OpCreate, containerization.OpStart, containerization.OpStop, containerization.OpRemove} {
			var c *containerization.ContainerConfig
			if op == containerization.OpCreate {
				c = cfg
			}
			res, err := containerization.ManageContainers(ctx, op, name, c, opts)
			if err != nil {
				return id, err
			}
			if !res.Success || !res.Changed || res.Status != want[op] {
				return id, fmt.Errorf("%s %s: success %v, changed %v, status %q, want status %q", op, name, res.Success, res.Changed, res.Status, want[op])
			}
			id = res.ContainerID
		}
		return id, nil
	})
}

// rawCycles is the floor: four HTTP requests per container and nothing else.
func (b *bench) rawCycles(ctx context.Context, names []string) ([]string, error) {
	spec := rawCreate{Image: b.cfg.image, Cmd: sleepCmd, Labels: b.labels()}
	return parallel(ctx, names, b.cfg.concurrency, func(ctx context.Context, name string) (string, error) {
		return b.raw.cycle(ctx, name, spec, b.cfg.stopTimeout)
	})
}

// cycleScript is one job of the docker CLI contenders: four docker processes, then the ID on stdout. set -e makes
// any failed step fail the job, and xargs then exits non-zero.
const cycleScript = `set -e
id=$("$DOCKER" create --name "$1" --label "$LABEL" "$IMAGE" sleep 3600)
"$DOCKER" start "$1" >/dev/null
"$DOCKER" stop -t "$STOP_TIMEOUT" "$1" >/dev/null
"$DOCKER" rm "$1" >/dev/null
echo "$id"`

// cliCycles runs the jobs through xargs -P p: with p = 1 that is the sequential docker CLI, so the two CLI
// contenders differ in nothing but parallelism.
func (b *bench) cliCycles(ctx context.Context, names []string, p int) ([]string, error) {
	cmd := exec.CommandContext(ctx, "xargs", "-P", strconv.Itoa(p), "-n", "1", "sh", "-c", cycleScript, "sh")
	b.dockerEnv(cmd,
		"DOCKER="+b.docker,
		"IMAGE="+b.cfg.image,
		"LABEL="+runLabel+"="+b.runID,
		"STOP_TIMEOUT="+strconv.Itoa(b.cfg.stopTimeout),
	)
	cmd.Stdin = strings.NewReader(strings.Join(names, "\n") + "\n")
	out, err := runGroup(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// runGroup runs cmd in a process group of its own, so that cancelling kills xargs and every docker process under
// it, not only xargs; it returns stdout, and stderr in the error.
func runGroup(ctx context.Context, cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return stdout.String(), ctx.Err()
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args[:min(len(cmd.Args), 4)], " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// parallel calls fn for every name with at most n calls at once and returns the IDs in names' order. The first
// error stops new calls and is returned once the calls under way have finished.
func parallel(ctx context.Context, names []string, n int, fn func(ctx context.Context, name string) (string, error)) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ids := make([]string, len(names))
	jobs := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range n {
		wg.Go(func() {
			for i := range jobs {
				id, err := fn(ctx, names[i])
				ids[i] = id
				if err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range names {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		return ids, first
	}
	return ids, ctx.Err()
}

// A stats contender samples the running benchmark containers once and returns the names it has figures for.
type statsContender struct {
	key, title, how string
	concurrency     int // samples taken at once
	inProcess       bool
	run             func(ctx context.Context, names []string) (sampled []string, extra int, err error)
}

func (b *bench) statsContenders(n int) []statsContender {
	return []statsContender{
		{
			key: "myrmex", title: "Myrmex GetContainerMetrics", concurrency: n, inProcess: true,
			how: `containerization.GetContainerMetrics(ctx, "", opts): every running Myrmex container, default concurrency (all at once), readings where it chooses (the cgroups, beside the engine)`,
			run: func(ctx context.Context, names []string) ([]string, int, error) {
				return b.myrmexStats(ctx, names, 0, "")
			},
		},
		{
			key: "myrmex-engine", title: "Myrmex GetContainerMetrics, via engine", concurrency: n, inProcess: true,
			how: `the same with Via "engine": the readings from the engine's stats stream, as on a host whose cgroups Myrmex cannot read`,
			run: func(ctx context.Context, names []string) ([]string, int, error) {
				return b.myrmexStats(ctx, names, 0, "engine")
			},
		},
		{
			key: "docker-stats", title: "docker stats --no-stream", concurrency: n,
			how: "docker stats --no-stream NAME... over the same containers",
			run: b.dockerStats,
		},
		{
			key: "raw-api", title: "raw Engine API, one request each", concurrency: n, inProcess: true,
			how: "GET /containers/NAME/stats?stream=false for every container at once, over the socket with net/http: the engine's own two readings, the least any client of the API can ask",
			run: b.rawStats,
		},
	}
}

// rawStats asks the engine for one stats answer per container, all at once, and checks that each has two
// readings (a previous one for the rate) and a memory figure.
func (b *bench) rawStats(ctx context.Context, names []string) ([]string, int, error) {
	type answer struct {
		Read        time.Time `json:"read"`
		PreRead     time.Time `json:"preread"`
		MemoryStats struct {
			Usage uint64 `json:"usage"`
		} `json:"memory_stats"`
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a answer
			if err := b.raw.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(name)+"/stats?stream=false", nil, &a, http.StatusOK); err != nil {
				errs[i] = err
				return
			}
			if a.Read.IsZero() || a.PreRead.IsZero() || a.MemoryStats.Usage == 0 {
				errs[i] = fmt.Errorf("stats of %s: read %v, previous %v, memory %d: want two readings of a running container", name, a.Read, a.PreRead, a.MemoryStats.Usage)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	return names, 0, nil
}

// myrmexStats samples every running Myrmex container and checks that each of ours has live figures. Other
// Myrmex containers running on the engine are sampled too (the call cannot leave them out); extra counts them.
func (b *bench) myrmexStats(ctx context.Context, names []string, concurrency int, via string) ([]string, int, error) {
	start := time.Now()
	ms, err := containerization.GetContainerMetrics(ctx, "", containerization.MetricsOptions{Engine: b.eng, Concurrency: concurrency, Via: via})
	if err != nil {
		return nil, 0, err
	}
	if took := time.Since(start); took < time.Second {
		// Each figure is a rate over a second between two readings: a sample cannot be quicker.
		return nil, 0, fmt.Errorf("metrics via %q took %v: less than the second between two readings", via, took)
	}
	ours := make(map[string]bool, len(names))
	for _, n := range names {
		ours[n] = true
	}
	var sampled []string
	extra := 0
	for _, m := range ms {
		if !ours[m.ContainerName] {
			extra++
			continue
		}
		if m.Status != "running" || m.MemoryUsageMB <= 0 || m.MemoryLimitMB <= 0 {
			return nil, extra, fmt.Errorf("metrics of %s: status %q, memory %v of %v MiB: want a running container's figures", m.ContainerName, m.Status, m.MemoryUsageMB, m.MemoryLimitMB)
		}
		sampled = append(sampled, m.ContainerName)
	}
	return sampled, extra, nil
}

// dockerStats runs docker stats --no-stream over the names and checks that each has a memory figure.
func (b *bench) dockerStats(ctx context.Context, names []string) ([]string, int, error) {
	args := append([]string{"stats", "--no-stream", "--format", "{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}"}, names...)
	cmd := exec.CommandContext(ctx, b.docker, args...)
	b.dockerEnv(cmd)
	out, err := runGroup(ctx, cmd)
	if err != nil {
		return nil, 0, err
	}
	var sampled []string
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) != 3 {
			return nil, 0, fmt.Errorf("docker stats: unexpected line %q", line)
		}
		if strings.Contains(f[2], "--") || strings.HasPrefix(f[2], "0B ") {
			return nil, 0, fmt.Errorf("docker stats: no figures for %s: %q", f[0], line)
		}
		sampled = append(sampled, f[0])
	}
	return sampled, 0, nil
}
