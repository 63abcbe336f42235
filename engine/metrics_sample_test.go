package engine_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// startBusy starts a container that spins at its limit: half a CPU, and 64 MB of memory.
func startBusy(t *testing.T, eng *engine.Client, run *testenv.Run, name string) {
	t.Helper()
	cfg := run.Config(testimages.Busybox, "sh", "-c", "while :; do :; done")
	cfg.Resources = engine.Resources{CPULimit: "0.5", MemoryLimit: "64m"}
	startContainer(t, eng, name, cfg)
}

// startHealthy starts the test image with a health check and waits until the check passes.
func startHealthy(t *testing.T, eng *engine.Client, run *testenv.Run, name string) {
	t.Helper()
	startContainer(t, eng, name, run.Config(testimages.Healthy))
	if !testenv.Eventually(30*time.Second, func() bool {
		m, err := eng.Metrics(context.Background(), name)
		return err == nil && m.HealthStatus == engine.HealthHealthy
	}) {
		t.Fatalf("%s never became healthy", name)
	}
}

// Through the engine, Metrics reads two stats from the engine's stream and inspects between them; the figures
// are those of the slower path it replaced (an inspect, the engine's one-shot stats with its previous reading, an
// inspect again), value by value whenever the two read the same rounds of the engine's collector.
func TestMetricsMatchTheReference(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	busy, healthy, stopped := run.Name("busy"), run.Name("healthy"), run.Name("stopped")
	startBusy(t, eng, run, busy)
	startHealthy(t, eng, run, healthy)
	if _, err := eng.Create(ctx, stopped, run.Config(testimages.Busybox, "true"), engine.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{busy, healthy} {
		t.Run(name, func(t *testing.T) {
			// A stream held open for the whole comparison keeps the engine's collector going round, so that both
			// paths, asked at the same moment, most often read the same two rounds.
			actx, stop := context.WithCancel(ctx)
			defer stop()
			anchor, err := eng.API().ContainerStats(actx, name, client.ContainerStatsOptions{Stream: true})
			if err != nil {
				t.Fatal(err)
			}
			defer anchor.Body.Close()
			go func() { _, _ = io.Copy(io.Discard, anchor.Body) }()

			same := 0
			for attempt := 0; attempt < 8 && same < 2; attempt++ {
				var wg sync.WaitGroup
				var got, ref struct {
					m   engine.ContainerMetrics
					st  bool
					rd  [2]time.Time
					err error
				}
				now := time.Now()
				wg.Add(2)
				go func() {
					defer wg.Done()
					ins, st, _, err := eng.Sample(ctx, name, engine.MetricsViaEngine)
					got.err = err
					if err == nil && st != nil {
						got.m, got.st, got.rd = engine.ComputeMetrics(ins, st, now), true, [2]time.Time{st.PreRead, st.Read}
					}
				}()
				go func() {
					defer wg.Done()
					ins, st, err := eng.ReferenceSample(ctx, name)
					ref.err = err
					if err == nil && st != nil {
						ref.m, ref.st, ref.rd = engine.ComputeMetrics(ins, st, now), true, [2]time.Time{st.PreRead, st.Read}
					}
				}()
				wg.Wait()
				if got.err != nil || ref.err != nil || !got.st || !ref.st {
					t.Fatalf("Sample = %v (reading %v), reference = %v (reading %v), want two readings each", got.err, got.st, ref.err, ref.st)
				}
				// The second reading carries the first as its previous one: a rate over one round of the collector.
				if got.rd[0].IsZero() || !got.rd[1].After(got.rd[0]) {
					t.Fatalf("Sample's readings at %v then %v, want a previous reading before the second", got.rd[0], got.rd[1])
				}
				if got.rd != ref.rd {
					continue // different rounds: different figures, rightly
				}
				same++
				if got.m != ref.m {
					t.Errorf("on the same readings (%v, %v):\n Metrics   %+v\n reference %+v", got.rd[0], got.rd[1], got.m, ref.m)
				}
				if name == busy && (got.m.CPUUsagePercent <= 0 || got.m.MemoryLimitMB != 64) {
					t.Errorf("busy: cpu %v%%, memory limit %v MB, want use of its half CPU and a 64 MB limit", got.m.CPUUsagePercent, got.m.MemoryLimitMB)
				}
			}
			if same == 0 {
				t.Fatalf("in 8 tries, Metrics and the reference never read the same rounds of the engine's collector")
			}
		})
	}

	// A container that is not running: its state at once, no use, no reading.
	m, err := eng.Metrics(ctx, stopped)
	if err != nil || m.Status != "created" || m.CPUUsagePercent != 0 || m.MemoryUsageMB != 0 || m.PerformanceScore != 0 {
		t.Errorf("Metrics(created, never started) = %+v, %v; want its state and zero use", m, err)
	}
	if _, err := eng.Metrics(ctx, run.Name("missing")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Metrics(missing) = %v, want ErrNotFound", err)
	}
}

// A sample of every running container costs one listing and, per container, one inspect when the cgroups are
// read beside the engine, and the stats stream and one inspect through the engine.
func TestMetricsAllRequests(t *testing.T) {
	ctx := context.Background()
	base := testenv.Engine(t)
	run := testenv.NewRun(t, base)
	const n = 4
	for i := range n {
		startContainer(t, base, run.Name("c"+string(rune('a'+i))), run.Config(testimages.Busybox, "sleep", "3600"))
	}
	var mu sync.Mutex
	counts := map[string]int{}
	idRE := regexp.MustCompile(`/containers/[^/]+/`)
	verRE := regexp.MustCompile(`^/v[0-9.]+`)
	eng, err := engine.New(ctx, engine.Options{RequestHook: func(req *http.Request) error {
		p := idRE.ReplaceAllString(verRE.ReplaceAllString(req.URL.Path, ""), "/containers/{id}/")
		mu.Lock()
		counts[req.Method+" "+p]++
		mu.Unlock()
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, via := range []string{engine.MetricsViaAuto, engine.MetricsViaEngine} {
		mu.Lock()
		clear(counts) // the version negotiation, the run before
		mu.Unlock()
		all, err := eng.MetricsAll(ctx, engine.MetricsOptions{Via: via})
		if err != nil {
			t.Fatal(err)
		}
		ours := 0
		for _, m := range all {
			if strings.HasPrefix(m.ContainerName, run.ID+"-") {
				ours++
				if m.MemoryUsageMB <= 0 || m.MemoryLimitMB <= 0 {
					t.Errorf("via %q: %s uses %v of %v MB, want a reading", via, m.ContainerName, m.MemoryUsageMB, m.MemoryLimitMB)
				}
			}
		}
		if ours != n {
			t.Fatalf("MetricsAll(via %q) has %d of the %d running containers of this test", via, ours, n)
		}
		want := map[string]int{"GET /containers/json": 1, "GET /containers/{id}/json": len(all)}
		if via == engine.MetricsViaEngine {
			want["GET /containers/{id}/stats"] = len(all)
		}
		mu.Lock()
		if !maps.Equal(counts, want) {
			t.Errorf("via %q: Engine API requests for %d containers: %v, want %v", via, len(all), counts, want)
		}
		mu.Unlock()
	}
}
