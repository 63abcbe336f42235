package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// cgroupV1 says whether this host mounts the cgroup v1 controllers a reading needs (read independently of the
// code under test). On a host without them (cgroup v2 only), the tests check that samples go through the engine.
func cgroupV1(t *testing.T) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		_, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(post); ok && len(f) >= 3 && f[0] == "cgroup" {
			for _, c := range strings.Split(f[2], ",") {
				found[c] = true
			}
		}
	}
	return found["cpuacct"] && found["memory"] && found["blkio"]
}

// onlyTheEngine checks, on a host whose cgroups cannot be read, that a sample goes through the engine and that
// asking for the cgroups is refused.
func onlyTheEngine(t *testing.T, eng *engine.Client, name string) {
	t.Helper()
	if _, st, via, err := eng.Sample(context.Background(), name, engine.MetricsViaAuto); err != nil || st == nil || via != engine.MetricsViaEngine {
		t.Errorf("Sample(%s) on a host without cgroup v1 = reading %v via %q, %v; want the engine's", name, st != nil, via, err)
	}
	if _, err := eng.MetricsVia(context.Background(), name, engine.MetricsViaCgroups); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("MetricsVia(%s, cgroups) on a host without cgroup v1 = %v, want ErrUnavailable", name, err)
	}
}

// engineReading is one reading of the engine's own (the first frame of its collector, no previous one).
func engineReading(t *testing.T, eng *engine.Client, name string) *container.StatsResponse {
	t.Helper()
	res, err := eng.API().ContainerStats(context.Background(), name, client.ContainerStatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func blkioSum(st *container.StatsResponse, op string) uint64 {
	var n uint64
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		if strings.EqualFold(e.Op, op) {
			n += e.Value
		}
	}
	return n
}

// A reading of the cgroups is the engine's reading, field by field: taken just before and just after the
// engine's, every counter the engine reports lies between the two, and every value that did not change between
// them is the engine's exactly. The engine's own tests of its formulas then hold for either source.
func TestCgroupReadingsAreTheEngines(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cgroups are read on Linux only")
	}
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	busy, idle, host, none := run.Name("busy"), run.Name("idle"), run.Name("host"), run.Name("none")
	startBusy(t, eng, run, busy)
	// (Block I/O: this kernel's throttling layer, which the engine reads, counts none for a container's writes,
	// even O_DIRECT ones, so both sides are empty here; the parsing of entries is the engine's format.)
	startContainer(t, eng, idle, run.Config(testimages.Busybox, "sleep", "3600"))
	cfgHost := run.Config(testimages.Busybox, "sleep", "3600")
	cfgHost.Networks = []string{"host"}
	startContainer(t, eng, host, cfgHost)
	cfgNone := run.Config(testimages.Busybox, "sleep", "3600")
	cfgNone.Networks = []string{"none"}
	startContainer(t, eng, none, cfgNone)
	if !cgroupV1(t) {
		onlyTheEngine(t, eng, busy)
		return
	}

	for _, name := range []string{busy, idle, host, none} {
		t.Run(name, func(t *testing.T) {
			exact := 0
			for attempt := 0; attempt < 10 && exact < 2; attempt++ {
				d1, err := eng.CgroupReading(ctx, name)
				if err != nil {
					t.Fatalf("CgroupReading = %v, want a reading of a container on this host", err)
				}
				e := engineReading(t, eng, name)
				d2, err := eng.CgroupReading(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				between := func(what string, a, v, b uint64) {
					t.Helper()
					if v < a || v > b {
						t.Errorf("%s: the engine's %d is not between the cgroups' %d and %d", what, v, a, b)
					}
				}
				between("cpu total", d1.CPUStats.CPUUsage.TotalUsage, e.CPUStats.CPUUsage.TotalUsage, d2.CPUStats.CPUUsage.TotalUsage)
				between("system cpu", d1.CPUStats.SystemUsage, e.CPUStats.SystemUsage, d2.CPUStats.SystemUsage)
				between("disk read", blkioSum(d1, "read"), blkioSum(e, "read"), blkioSum(d2, "read"))
				between("disk write", blkioSum(d1, "write"), blkioSum(e, "write"), blkioSum(d2, "write"))
				if d1.CPUStats.OnlineCPUs != e.CPUStats.OnlineCPUs || len(d1.CPUStats.CPUUsage.PercpuUsage) != len(e.CPUStats.CPUUsage.PercpuUsage) {
					t.Errorf("cpus: cgroups %d online, %d counted; engine %d, %d", d1.CPUStats.OnlineCPUs,
						len(d1.CPUStats.CPUUsage.PercpuUsage), e.CPUStats.OnlineCPUs, len(e.CPUStats.CPUUsage.PercpuUsage))
				}
				if d1.MemoryStats.Limit != e.MemoryStats.Limit {
					t.Errorf("memory limit: cgroups %d, engine %d", d1.MemoryStats.Limit, e.MemoryStats.Limit)
				}
				names := func(st *container.StatsResponse) []string { return slices.Sorted(maps.Keys(st.Networks)) }
				if !slices.Equal(names(d1), names(e)) {
					t.Errorf("interfaces: cgroups %v, engine %v", names(d1), names(e))
				}
				for k, n := range e.Networks {
					between(k+" rx", d1.Networks[k].RxBytes, n.RxBytes, d2.Networks[k].RxBytes)
					between(k+" tx", d1.Networks[k].TxBytes, n.TxBytes, d2.Networks[k].TxBytes)
				}
				if t.Failed() {
					return
				}
				// Gauges: when the two readings of the cgroups agree, the engine's is the same.
				if d1.MemoryStats.Usage != d2.MemoryStats.Usage || d1.MemoryStats.Stats["total_inactive_file"] != d2.MemoryStats.Stats["total_inactive_file"] {
					continue
				}
				exact++
				if e.MemoryStats.Usage != d1.MemoryStats.Usage || e.MemoryStats.Stats["total_inactive_file"] != d1.MemoryStats.Stats["total_inactive_file"] {
					t.Errorf("memory: cgroups %d (inactive file %d) before and after, engine %d (%d)", d1.MemoryStats.Usage,
						d1.MemoryStats.Stats["total_inactive_file"], e.MemoryStats.Usage, e.MemoryStats.Stats["total_inactive_file"])
				}
				if !sameBlkio(d1.BlkioStats.IoServiceBytesRecursive, e.BlkioStats.IoServiceBytesRecursive) && blkioSum(d1, "total") == blkioSum(d2, "total") {
					t.Errorf("block I/O: cgroups %+v, engine %+v", d1.BlkioStats.IoServiceBytesRecursive, e.BlkioStats.IoServiceBytesRecursive)
				}
			}
			if exact == 0 {
				t.Fatalf("in 10 tries, the memory in use never held still across the engine's reading")
			}
		})
	}
}

// sameBlkio says whether two readings list the same block I/O entries (the operation's case aside).
func sameBlkio(a, b []container.BlkioStatEntry) bool {
	return slices.EqualFunc(a, b, func(x, y container.BlkioStatEntry) bool {
		return x.Major == y.Major && x.Minor == y.Minor && x.Value == y.Value && strings.EqualFold(x.Op, y.Op)
	})
}

// Beside the engine, a sample reads the cgroups a second apart and makes one Engine API request; its figures are
// the engine path's, where the container's use holds still. What it cannot read it samples through the engine,
// unless asked for the cgroups.
func TestMetricsViaCgroups(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cgroups are read on Linux only")
	}
	ctx := context.Background()
	eng := testenv.Engine(t)
	run := testenv.NewRun(t, eng)
	busy, healthy, shared := run.Name("busy"), run.Name("healthy"), run.Name("shared")
	startBusy(t, eng, run, busy)
	startHealthy(t, eng, run, healthy)
	cfgShared := run.Config(testimages.Busybox, "sleep", "3600")
	cfgShared.Networks = []string{"container:" + healthy}
	startContainer(t, eng, shared, cfgShared)
	if !cgroupV1(t) {
		onlyTheEngine(t, eng, busy)
		return
	}

	for _, name := range []string{busy, healthy} {
		ins, st, via, err := eng.Sample(ctx, name, engine.MetricsViaAuto)
		if err != nil || st == nil || via != engine.MetricsViaCgroups {
			t.Fatalf("Sample(%s) = reading %v via %q, %v; want a reading of the cgroups", name, st != nil, via, err)
		}
		if gap := st.Read.Sub(st.PreRead); gap < time.Second || gap > 1500*time.Millisecond {
			t.Errorf("%s: readings %v apart, want a second", name, gap)
		}
		got := engine.ComputeMetrics(ins, st, time.Now())
		ref, err := eng.MetricsVia(ctx, name, engine.MetricsViaEngine)
		if err != nil {
			t.Fatal(err)
		}
		// The same container, sampled over two different seconds: use that holds still is the same (the health
		// check's processes come and go in the container's memory).
		if got.MemoryLimitMB != ref.MemoryLimitMB || got.HealthStatus != ref.HealthStatus || got.RestartCount != ref.RestartCount ||
			got.Status != ref.Status || got.ContainerID != ref.ContainerID || got.DiskWriteMB != ref.DiskWriteMB ||
			math.Abs(got.MemoryUsageMB-ref.MemoryUsageMB) > 2 || math.Abs(got.NetworkRxMB-ref.NetworkRxMB) > 0.01 {
			t.Errorf("%s:\n cgroups %+v\n engine  %+v", name, got, ref)
		}
		switch name {
		case busy:
			// A loop held to half a CPU uses all it is allowed, by either path.
			if got.CPUUsagePercent < 80 || ref.CPUUsagePercent < 80 || got.MemoryLimitMB != 64 {
				t.Errorf("busy: cpu %v%% (engine %v%%), memory limit %v MB; want all of its half CPU, 64 MB", got.CPUUsagePercent, ref.CPUUsagePercent, got.MemoryLimitMB)
			}
		case healthy:
			if got.CPUUsagePercent > 20 || got.HealthStatus != engine.HealthHealthy || got.PerformanceScore != ref.PerformanceScore {
				t.Errorf("healthy: cpu %v%%, health %q, score %v (engine %v); want little use, healthy", got.CPUUsagePercent, got.HealthStatus, got.PerformanceScore, ref.PerformanceScore)
			}
		}
	}

	// A container on another's network stack: the engine knows which interfaces to report, so it is asked.
	if _, _, via, err := eng.Sample(ctx, shared, engine.MetricsViaAuto); err != nil || via != engine.MetricsViaEngine {
		t.Errorf("Sample(sharing a network stack) via %q, %v; want the engine", via, err)
	}
	if _, err := eng.MetricsVia(ctx, shared, engine.MetricsViaCgroups); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("MetricsVia(sharing a network stack, cgroups) = %v, want ErrUnavailable", err)
	}
	if _, err := eng.MetricsVia(ctx, busy, "proc"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("MetricsVia(busy, proc) = %v, want ErrInvalidArgument", err)
	}
	if _, err := eng.MetricsAll(ctx, engine.MetricsOptions{Via: "proc"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("MetricsAll(via proc) = %v, want ErrInvalidArgument", err)
	}

	// A container that ends during its sampled second is reported as it is then, with no use.
	brief := run.Name("brief")
	startContainer(t, eng, brief, run.Config(testimages.Busybox, "sleep", "0.4"))
	m, err := eng.Metrics(ctx, brief)
	if err != nil || m.Status != "exited" || m.CPUUsagePercent != 0 || m.MemoryUsageMB != 0 {
		t.Errorf("Metrics(ends within the second) = %+v, %v; want exited, no use", m, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := eng.MetricsVia(cctx, busy, engine.MetricsViaCgroups); !errors.Is(err, context.Canceled) {
		t.Errorf("MetricsVia(cancelled) = %v, want context.Canceled", err)
	}
}
