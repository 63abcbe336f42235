package engine

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func running(started string, hc *container.HostConfig, health container.HealthStatus, restarts int) container.InspectResponse {
	ins := container.InspectResponse{
		ID: "abc", Name: "/web", RestartCount: restarts, HostConfig: hc,
		State: &container.State{Status: container.StateRunning, Running: true, StartedAt: started},
	}
	if health != "" {
		ins.State.Health = &container.Health{Status: health}
	}
	return ins
}

func sample(cpuDelta, sysDelta uint64, online uint32, usage, limit uint64, stats map[string]uint64) *container.StatsResponse {
	st := &container.StatsResponse{}
	st.PreCPUStats.CPUUsage.TotalUsage = 1000
	st.PreCPUStats.SystemUsage = 100000
	st.CPUStats.CPUUsage.TotalUsage = 1000 + cpuDelta
	st.CPUStats.SystemUsage = 100000 + sysDelta
	st.CPUStats.OnlineCPUs = online
	st.MemoryStats = container.MemoryStats{Usage: usage, Limit: limit, Stats: stats}
	return st
}

func TestComputeMetrics(t *testing.T) {
	now := mustTime("2026-01-01T00:01:40Z")
	start := "2026-01-01T00:00:00Z"
	tests := []struct {
		name                string
		ins                 container.InspectResponse
		st                  *container.StatsResponse
		cpu, memMB, limitMB float64
		health              string
		score, uptime       float64
	}{
		{
			// One busy CPU out of two online, no limit: docker stats says 100%, of the two allowed CPUs it is 50%.
			name: "no limit", ins: running(start, &container.HostConfig{}, "", 0),
			st:  sample(500, 1000, 2, 100<<20, 1000<<20, map[string]uint64{"total_inactive_file": 20 << 20}),
			cpu: 50, memMB: 80, limitMB: 1000, health: HealthUnknown, score: 100, uptime: 100,
		},
		{
			// Half a CPU allowed and half a CPU used: 100% of what it may use.
			name: "cpu limit", ins: running(start, &container.HostConfig{Resources: container.Resources{NanoCPUs: 5e8}}, container.Healthy, 0),
			st:  sample(250, 1000, 2, 60<<20, 64<<20, map[string]uint64{"inactive_file": 4 << 20}),
			cpu: 100, memMB: 56, limitMB: 64, health: HealthHealthy,
			// cpu penalty 40, memory 87.5% → 40×0.75 = 30
			score: 30, uptime: 100,
		},
		{
			name: "quota and cgroup v2 cache", ins: running(start, &container.HostConfig{Resources: container.Resources{CPUQuota: 50000, CPUPeriod: 100000}}, container.Unhealthy, 3),
			st:  sample(125, 1000, 2, 10<<20, 100<<20, map[string]uint64{"inactive_file": 2 << 20}),
			cpu: 50, memMB: 8, limitMB: 100, health: HealthUnhealthy,
			score: 100 - 30 - 15, uptime: 100,
		},
		{
			name: "cpuset", ins: running(start, &container.HostConfig{Resources: container.Resources{CpusetCpus: "0"}}, container.Starting, 9),
			st:  sample(250, 1000, 2, 1<<20, 100<<20, nil),
			cpu: 50, memMB: 1, limitMB: 100, health: HealthUnknown, score: 80, uptime: 100,
		},
		{
			name: "stopped", ins: container.InspectResponse{Name: "/web", State: &container.State{Status: container.StateExited}},
			health: HealthUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ComputeMetrics(tt.ins, tt.st, now)
			if m.CPUUsagePercent != tt.cpu || m.MemoryUsageMB != tt.memMB || m.MemoryLimitMB != tt.limitMB {
				t.Errorf("ComputeMetrics() cpu, mem, limit = %v, %v, %v; want %v, %v, %v",
					m.CPUUsagePercent, m.MemoryUsageMB, m.MemoryLimitMB, tt.cpu, tt.memMB, tt.limitMB)
			}
			if m.HealthStatus != tt.health || m.PerformanceScore != tt.score || m.UptimeSeconds != tt.uptime {
				t.Errorf("ComputeMetrics() health, score, uptime = %q, %v, %v; want %q, %v, %v",
					m.HealthStatus, m.PerformanceScore, m.UptimeSeconds, tt.health, tt.score, tt.uptime)
			}
			if m.ContainerName != "web" {
				t.Errorf("ContainerName = %q, want web", m.ContainerName)
			}
		})
	}
}

func TestComputeMetricsIO(t *testing.T) {
	st := sample(0, 1000, 1, 0, 0, nil)
	st.Networks = map[string]container.NetworkStats{
		"eth0": {RxBytes: 1 << 20, TxBytes: 2 << 20},
		"eth1": {RxBytes: 1 << 20, TxBytes: 0},
	}
	st.BlkioStats.IoServiceBytesRecursive = []container.BlkioStatEntry{
		{Op: "Read", Value: 3 << 20}, {Op: "Write", Value: 4 << 20}, {Op: "read", Value: 1 << 20}, {Op: "Total", Value: 8 << 20},
	}
	m := ComputeMetrics(running("2026-01-01T00:00:00Z", nil, "", 0), st, mustTime("2026-01-01T00:00:01Z"))
	if m.NetworkRxMB != 2 || m.NetworkTxMB != 2 || m.DiskReadMB != 4 || m.DiskWriteMB != 4 {
		t.Errorf("ComputeMetrics() net rx/tx %v/%v disk r/w %v/%v, want 2/2 and 4/4", m.NetworkRxMB, m.NetworkTxMB, m.DiskReadMB, m.DiskWriteMB)
	}
}

func TestCPUPercentClampsAndCountsPerCPU(t *testing.T) {
	st := sample(3000, 1000, 0, 0, 0, nil)
	st.CPUStats.CPUUsage.PercpuUsage = []uint64{1, 1}
	if got := cpuPercent(st, nil); got != 100 {
		t.Errorf("cpuPercent(over) = %v, want clamped to 100", got)
	}
	if got := cpusetSize("0-2,5,7-8"); got != 6 {
		t.Errorf("cpusetSize(%q) = %d, want 6", "0-2,5,7-8", got)
	}
}
