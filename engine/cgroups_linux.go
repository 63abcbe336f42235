//go:build linux

package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Reading a container's resource use from the kernel, beside the engine.
//
// The engine's stats come from the container's cgroup v1 files, /proc/stat and the interfaces of its network
// namespace, read on its stats collector's rounds: one goroutine that reads every subscribed container, then
// sleeps a second. A rate needs two readings, so a sample of many containers through the Engine API waits for two
// or three of those rounds. When Myrmex runs on the engine's host, as root, it can read the same files itself, at
// the moment it wants, and a sample takes one second. The readings are turned into the engine's own
// StatsResponse, field by field as the engine (and containerd's cgroup library under it) fills them, so that
// [ComputeMetrics] gives the same figures from either.
//
// Whether the files are the container's is decided from the kernel alone: the process the engine names as the
// container's (its inspect's State.Pid) must be in cgroups whose paths hold the container's full ID. A remote
// engine, another PID namespace or cgroup namespace, or a host on cgroup v2 fails that test, and the sample goes
// through the Engine API.

// Bounds on what is read: these files are the kernel's, but a container decides how many interfaces it has.
const (
	cgroupFileLimit  = 256 << 10 // any one cgroup or /proc file
	procStatCPULines = 4096      // cpu lines of /proc/stat
	netDevLines      = 4096      // interfaces of one network namespace
)

// cgroupHost is what every container's reading shares: where the cgroup v1 controllers are mounted and the
// host's memory (the limit the engine reports for a container without one).
type cgroupHost struct {
	proc          string            // /proc
	mounts        map[string]mount1 // controller → its hierarchy's mount
	machineMemory uint64
}

type mount1 struct{ root, point string }

// newCgroupHost reads the mounts of this process's cgroup v1 hierarchies. It fails on a host without the
// controllers a reading needs (cgroup v2 only, or no /proc).
func newCgroupHost(proc string) (*cgroupHost, error) {
	data, err := readLimited(filepath.Join(proc, "self", "mountinfo"), 4<<20)
	if err != nil {
		return nil, err
	}
	h := &cgroupHost{proc: proc, mounts: map[string]mount1{}}
	for line := range strings.SplitSeq(string(data), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || g[0] != "cgroup" {
			continue
		}
		for opt := range strings.SplitSeq(g[2], ",") {
			switch opt {
			case "cpuacct", "memory", "blkio":
				h.mounts[opt] = mount1{root: unescapeMount(f[3]), point: unescapeMount(f[4])}
			}
		}
	}
	for _, c := range []string{"cpuacct", "memory", "blkio"} {
		if _, ok := h.mounts[c]; !ok {
			return nil, fmt.Errorf("no cgroup v1 %s hierarchy is mounted", c)
		}
	}
	mem, err := readLimited(filepath.Join(proc, "meminfo"), cgroupFileLimit)
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(string(mem), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					h.machineMemory = kb * 1024
				}
			}
			break
		}
	}
	return h, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupSource reads one running container.
type cgroupSource struct {
	host     *cgroupHost
	id, name string
	pid      string
	started  string // the process's start time (field 22 of /proc/PID/stat): a new process is a new container run
	dirs     map[string]string
	networks bool // the engine reports interfaces (not for host or no networking)
}

// locate finds the cgroups of the container ins describes, or says why they cannot be read here.
func (h *cgroupHost) locate(ins container.InspectResponse) (*cgroupSource, error) {
	if ins.State == nil || ins.State.Pid <= 0 || len(ins.ID) != 64 {
		return nil, errors.New("no process to read")
	}
	s := &cgroupSource{host: h, id: ins.ID, name: ins.Name, pid: strconv.Itoa(ins.State.Pid), dirs: map[string]string{}}
	var err error
	if s.started, err = s.startTime(); err != nil {
		return nil, err
	}
	data, err := readLimited(filepath.Join(h.proc, s.pid, "cgroup"), cgroupFileLimit)
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		// HIERARCHY-ID:CONTROLLER[,CONTROLLER...]:PATH
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			m, ok := h.mounts[c]
			if !ok {
				continue
			}
			rel := parts[2]
			if m.root != "/" {
				if rel != m.root && !strings.HasPrefix(rel, m.root+"/") {
					continue
				}
				rel = strings.TrimPrefix(rel, m.root)
			}
			if !strings.Contains(rel, s.id) || strings.Contains(rel, "..") {
				continue
			}
			s.dirs[c] = filepath.Join(m.point, rel)
		}
	}
	for _, c := range []string{"cpuacct", "memory", "blkio"} {
		if s.dirs[c] == "" {
			return nil, fmt.Errorf("process %s is in no %s cgroup of container %.12s here", s.pid, c, s.id)
		}
	}
	// The process read above must still be the container's: the engine named it before its cgroup was read.
	if again, err := s.startTime(); err != nil || again != s.started {
		return nil, errors.New("the container's process changed while it was located")
	}
	s.networks = true
	if hc := ins.HostConfig; hc != nil {
		mode := container.NetworkMode(hc.NetworkMode)
		if mode.IsContainer() {
			// The engine reports the interfaces of the container whose stack it shares (none when that one
			// is on the host's): only the engine knows that one's mode without another request.
			return nil, errors.New("it shares another container's network stack")
		}
		s.networks = !mode.IsHost() && !mode.IsNone()
	}
	if ins.Config != nil && ins.Config.NetworkDisabled {
		s.networks = false
	}
	return s, nil
}

// startTime reads the start time of the container's process, in clock ticks after boot.
func (s *cgroupSource) startTime() (string, error) {
	data, err := readLimited(filepath.Join(s.host.proc, s.pid, "stat"), cgroupFileLimit)
	if err != nil {
		return "", err
	}
	// PID (COMM) STATE PPID ...: the command may hold spaces and parentheses, the last ")" ends it.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", errors.New("unreadable process status")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return "", errors.New("unreadable process status")
	}
	return f[19], nil
}

// alive reports whether the process located is still running: when it is not, the container stopped or
// restarted, and a reading of its cgroups is not of the run the first reading was.
func (s *cgroupSource) alive() bool {
	st, err := s.startTime()
	return err == nil && st == s.started
}

// read takes one reading, filled as the engine fills a reading of its own.
func (s *cgroupSource) read() (*container.StatsResponse, error) {
	st := &container.StatsResponse{ID: s.id, Name: s.name, Read: time.Now()}
	var err error
	cpu := s.dirs["cpuacct"]
	if st.CPUStats.CPUUsage.TotalUsage, err = readUint(filepath.Join(cpu, "cpuacct.usage")); err != nil {
		return nil, err
	}
	if st.CPUStats.CPUUsage.PercpuUsage, err = readUints(filepath.Join(cpu, "cpuacct.usage_percpu")); err != nil {
		return nil, err
	}
	if st.CPUStats.SystemUsage, st.CPUStats.OnlineCPUs, err = systemCPU(filepath.Join(s.host.proc, "stat")); err != nil {
		return nil, err
	}
	if err := s.readMemory(&st.MemoryStats); err != nil {
		return nil, err
	}
	if st.BlkioStats.IoServiceBytesRecursive, err = s.readBlkio(); err != nil {
		return nil, err
	}
	if s.networks {
		if st.Networks, err = netDev(filepath.Join(s.host.proc, s.pid, "net", "dev")); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// readMemory fills memory as the engine does on cgroup v1: usage and the limit from their files (the limit at
// most the host's memory), and every line of memory.stat.
func (s *cgroupSource) readMemory(m *container.MemoryStats) error {
	dir := s.dirs["memory"]
	var err error
	if m.Usage, err = readUint(filepath.Join(dir, "memory.usage_in_bytes")); err != nil {
		return err
	}
	if m.MaxUsage, err = readUint(filepath.Join(dir, "memory.max_usage_in_bytes")); err != nil {
		return err
	}
	if m.Failcnt, err = readUint(filepath.Join(dir, "memory.failcnt")); err != nil {
		return err
	}
	if m.Limit, err = readUint(filepath.Join(dir, "memory.limit_in_bytes")); err != nil {
		return err
	}
	if mm := s.host.machineMemory; mm > 0 && m.Limit > mm {
		m.Limit = mm
	}
	data, err := readLimited(filepath.Join(dir, "memory.stat"), cgroupFileLimit)
	if err != nil {
		return err
	}
	m.Stats = map[string]uint64{}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m.Stats[k] = n
		}
	}
	return nil
}

// readBlkio reads the bytes served, as containerd's cgroup library does for the engine: the CFQ scheduler's
// recursive counters where the kernel has them and they hold entries, else the throttling layer's.
func (s *cgroupSource) readBlkio() ([]container.BlkioStatEntry, error) {
	dir := s.dirs["blkio"]
	if _, err := os.Lstat(filepath.Join(dir, "blkio.io_serviced_recursive")); err == nil {
		entries, err := blkioEntries(filepath.Join(dir, "blkio.io_service_bytes_recursive"))
		if err != nil || len(entries) > 0 {
			return entries, err
		}
	}
	return blkioEntries(filepath.Join(dir, "blkio.throttle.io_service_bytes"))
}

// blkioEntries parses "MAJOR:MINOR OP VALUE" lines (a "Total N" line is skipped).
func blkioEntries(path string) ([]container.BlkioStatEntry, error) {
	data, err := readLimited(path, cgroupFileLimit)
	if err != nil {
		return nil, err
	}
	var out []container.BlkioStatEntry
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ':' })
		if len(f) < 3 {
			continue
		}
		major, err1 := strconv.ParseUint(f[0], 10, 64)
		minor, err2 := strconv.ParseUint(f[1], 10, 64)
		op, value := "", f[2]
		if len(f) >= 4 {
			op, value = f[2], f[3]
		}
		v, err3 := strconv.ParseUint(value, 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("%s: unreadable line %q", path, line)
		}
		out = append(out, container.BlkioStatEntry{Major: major, Minor: minor, Op: op, Value: v})
	}
	return out, nil
}

// systemCPU reads the host's CPU time as the engine does: the first seven fields of /proc/stat's "cpu" line in
// nanoseconds (at the kernel's 100 ticks a second), and the number of "cpuN" lines.
func systemCPU(path string) (uint64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer closeQuietly(f)
	sc := bufio.NewScanner(io.LimitReader(f, cgroupFileLimit))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	var usage uint64
	var cpus uint32
	found := false
	for lines := 0; sc.Scan() && lines < procStatCPULines; lines++ {
		line := sc.Text()
		if len(line) < 4 || line[:3] != "cpu" {
			break
		}
		if line[3] == ' ' {
			parts := strings.Fields(line)
			if len(parts) < 8 {
				return 0, 0, errors.New("/proc/stat: too few cpu fields")
			}
			var ticks uint64
			for _, p := range parts[1:8] {
				v, err := strconv.ParseUint(p, 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("/proc/stat: %w", err)
				}
				ticks += v
			}
			usage, found = ticks*1e9/100, true
		} else if line[3] >= '0' && line[3] <= '9' {
			cpus++
		}
	}
	if !found {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	return usage, cpus, nil
}

// netDev reads the counters of a network namespace's interfaces, but its loopback, which the engine does not
// report.
func netDev(path string) (map[string]container.NetworkStats, error) {
	data, err := readLimited(path, cgroupFileLimit)
	if err != nil {
		return nil, err
	}
	out := map[string]container.NetworkStats{}
	lines := strings.Split(string(data), "\n")
	if len(lines) > netDevLines {
		lines = lines[:netDevLines]
	}
	for _, line := range lines {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		var v [16]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
				return nil, fmt.Errorf("%s: unreadable line %q", path, line)
			}
		}
		// Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop …
		out[name] = container.NetworkStats{
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		}
	}
	return out, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer closeQuietly(f)
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

func readUint(path string) (uint64, error) {
	data, err := readLimited(path, 4096)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
}

func readUints(path string) ([]uint64, error) {
	data, err := readLimited(path, cgroupFileLimit)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for f := range strings.FieldsSeq(string(data)) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, v)
	}
	return out, nil
}
