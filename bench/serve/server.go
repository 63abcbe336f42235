package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
)

// myrmexBinary returns the binary to serve: path when given, else bin/myrmex built now from the work tree (the
// commit measured), as `make build` builds it.
func myrmexBinary(ctx context.Context, path string) (string, bool, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", false, fmt.Errorf("-myrmex: %w", err)
		}
		return path, false, nil
	}
	benchkit.Logf("building bin/myrmex")
	cmd := exec.CommandContext(ctx, cmp.Or(os.Getenv("GO"), "go"), "build", "-o", "bin/myrmex", "./cmd/myrmex")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("go build -o bin/myrmex ./cmd/myrmex (run from the module's top directory): %w: %s", err, benchkit.LastLines(out, 10))
	}
	return "bin/myrmex", true, nil
}

// myrmexVersion is what the served binary says it is.
func myrmexVersion(ctx context.Context, bin string) string {
	out, _, err := benchkit.RunTool(ctx, nil, bin, "version", "-o", "json")
	var v struct {
		Version, Commit string
		Modified        bool
		GoVersion       string `json:"go_version"`
	}
	if json.Unmarshal([]byte(out), &v) != nil && err != nil {
		return "unknown"
	}
	s := v.Version + ", " + v.GoVersion
	if v.Commit != "" {
		s += ", commit " + v.Commit
	}
	return s
}

func engineVersion(ctx context.Context, eng *engine.Client) string {
	v, err := eng.API().ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "unknown"
	}
	return "dockerd " + v.Version + ", API " + v.APIVersion
}

func countContainers(ctx context.Context, eng *engine.Client) (all, mine int) {
	if list, err := eng.List(ctx, engine.ListOptions{Foreign: true}); err == nil {
		all = len(list)
	}
	if list, err := eng.List(ctx, engine.ListOptions{}); err == nil {
		mine = len(list)
	}
	return all, mine
}

// proc is a `myrmex serve` process on 127.0.0.1 with a state of its own.
type proc struct {
	cmd     *exec.Cmd
	dir     string
	url     string
	read    string // a token of scope read: every load request carries it
	operate string // a token of scope operate: makes the jobs the job list lists
	exited  chan struct{}
	waitErr error
	stderr  *tail
}

// startServer makes a temporary state with two tokens (`myrmex serve token create`), starts `myrmex serve` on a
// free loopback port and waits for its health check to answer.
func startServer(ctx context.Context, bin, dockerHost string) (*proc, error) {
	dir, err := os.MkdirTemp("", "bench-serve-")
	if err != nil {
		return nil, err
	}
	s := &proc{dir: dir, exited: make(chan struct{}), stderr: &tail{max: 50}}
	env := []string{"DOCKER_HOST=" + dockerHost, "MYRMEX_STATE_DIR=" + dir}
	statePath := filepath.Join(dir, "server.db")
	token := func(name, scope string) (string, error) {
		out, _, err := benchkit.RunTool(ctx, env, bin, "serve", "token", "create", name, "--scope", scope, "--expires", "24h", "--state", statePath)
		out = strings.TrimSpace(out)
		if err == nil && !strings.HasPrefix(out, "myx_") {
			err = fmt.Errorf("myrmex serve token create printed %q, not a token", out)
		}
		return out, err
	}
	if s.read, err = token("bench-read", "read"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.operate, err = token("bench-operate", "operate"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	s.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--state", statePath)
	s.cmd.Env = append(os.Environ(), env...)
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving the API on (http://\S+)`)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.stderr.add(sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.url = <-urls:
	case <-s.exited:
		s.stop()
		return nil, fmt.Errorf("myrmex serve exited at its start: %v: %s", s.waitErr, s.stderr)
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("myrmex serve did not say where it listens within 30 s: %s", s.stderr)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	var h struct{ Status string }
	if err := getJSON(ctx, http.DefaultClient, s.url+"/v1/health", "", &h); err != nil || h.Status != "ok" {
		s.stop()
		return nil, fmt.Errorf("myrmex serve's health check answered %+v, %v", h, err)
	}
	return s, nil
}

func (s *proc) pid() int { return s.cmd.Process.Pid }

// alive is an error when the server has exited.
func (s *proc) alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("myrmex serve exited during the run: %v: %s", s.waitErr, s.stderr)
	default:
		return nil
	}
}

// stop ends the server by its pid (SIGTERM, then SIGKILL after 15 s) and deletes its state.
func (s *proc) stop() {
	defer os.RemoveAll(s.dir)
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		benchkit.Logf("myrmex serve (pid %d) did not stop within 15 s of SIGTERM: killing it", s.pid())
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// procStatus is the server process's memory and resources at one moment.
type procStatus struct {
	At      string  `json:"at"`
	RSSMiB  float64 `json:"vm_rss_mib"` // VmRSS: resident now
	HWMMiB  float64 `json:"vm_hwm_mib"` // VmHWM: the peak resident set so far
	Threads int     `json:"threads"`
	FDs     int     `json:"open_files"`
	CPU     float64 `json:"cpu_s"` // user and system seconds since the start
}

// status reads /proc/PID/status, /proc/PID/fd and /proc/PID/stat of the server.
func (s *proc) status(at string) (procStatus, error) {
	p := procStatus{At: at}
	dir := fmt.Sprintf("/proc/%d", s.pid())
	kib := func(key string) (float64, error) {
		var n int64
		if _, err := fmt.Sscanf(benchkit.ProcField(dir+"/status", key), "%d kB", &n); err != nil {
			return 0, fmt.Errorf("%s/status %s: %w", dir, key, err)
		}
		return float64(n) / 1024, nil
	}
	var err error
	if p.RSSMiB, err = kib("VmRSS"); err != nil {
		return p, err
	}
	if p.HWMMiB, err = kib("VmHWM"); err != nil {
		return p, err
	}
	p.Threads, _ = strconv.Atoi(benchkit.ProcField(dir+"/status", "Threads"))
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return p, err
	}
	p.FDs = len(fds)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, err
	}
	// The fields after the command's closing parenthesis; utime and stime are the 14th and 15th of the line.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 {
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			p.CPU = (ut + st) / 100 // USER_HZ: 100 on Linux
		}
	}
	return p, nil
}

// getJSON GETs url with token, and decodes a 200 answer into v.
func getJSON(ctx context.Context, hc *http.Client, url, token string, v any) error {
	return doJSON(ctx, hc, http.MethodGet, url, token, nil, http.StatusOK, v)
}

func doJSON(ctx context.Context, hc *http.Client, method, url, token string, body any, want int, v any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, excerpt(b))
	}
	return json.Unmarshal(b, v)
}

// excerpt is the start of an answer, for an error message.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// seedJobs makes n jobs through the API (scans of an image that does not exist, which fail at once) and waits
// for them to end, so that the job list has something to list; it returns their ids.
func seedJobs(ctx context.Context, s *proc, runID string, n int) ([]string, error) {
	ids := make([]string, 0, n)
	for i := range n {
		var j job
		body := map[string]string{"image_name": fmt.Sprintf("myrmex.local/bench-serve-absent-%s:%d", runID, i), "scan_type": "quick"}
		if err := doJSON(ctx, http.DefaultClient, http.MethodPost, s.url+"/v1/scans", s.operate, body, http.StatusAccepted, &j); err != nil {
			return nil, fmt.Errorf("making a job: %w", err)
		}
		ids = append(ids, j.ID)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, id := range ids {
		for {
			var j job
			if err := getJSON(ctx, http.DefaultClient, s.url+"/v1/jobs/"+id, s.read, &j); err != nil {
				return nil, err
			}
			if j.State == "succeeded" || j.State == "failed" || j.State == "canceled" {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("job %s still %s after 2 minutes", id, j.State)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return ids, nil
}

// job is what the benchmark reads of a job: its id, kind and state.
type job struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	State string `json:"state"`
}

// tail keeps the last lines of the server's stderr, for an error message.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.max {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "(nothing on stderr)"
	}
	return "stderr: " + strings.Join(t.lines, "\n")
}
