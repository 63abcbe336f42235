package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/server/state"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// buildMyrmex builds the CLI once for the package's tests (TestMain removes it).
func buildMyrmex(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "myrmex-server-test-"); buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "myrmex")
		build := exec.Command("go", "build", "-o", builtBin, "./cmd/myrmex")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// replica is a myrmex serve process.
type replica struct {
	cmd *exec.Cmd
	url string
}

func startReplica(t *testing.T, bin, where, runner string) *replica {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--runner", runner, "--job-lease", "3s")
	cmd.Env = append(os.Environ(), "MYRMEX_SERVE_STATE="+where)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	r := &replica{cmd: cmd}
	for sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`serving the API on (http://\S+)`).FindStringSubmatch(line); m != nil {
			r.url = m[1]
			break
		}
	}
	if r.url == "" {
		t.Fatalf("replica %s did not say where it listens", runner)
	}
	go io.Copy(io.Discard, stderr)
	return r
}

func (r *replica) do(t *testing.T, token, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (r *replica) job(t *testing.T, token, id string) state.Job {
	t.Helper()
	st, body := r.do(t, token, "GET", "/v1/jobs/"+id, "")
	var j state.Job
	if err := json.Unmarshal(body, &j); st != 200 || err != nil {
		t.Fatalf("job %s = %d %s", id, st, body)
	}
	return j
}

// until polls cond every 100 ms for at most d.
func until(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// Two replicas on one PostgreSQL database share the jobs: a job submitted through one is run by one; when the
// replica running it is killed mid-job (SIGKILL: no goodbye), the other takes it over once the lease runs out,
// never while the first could still run it, and says so in the job's events; a replica that stops (SIGTERM) puts
// its job back in the queue for the other; a job is cancelled through a replica that does not run it; its events
// stream through a replica that does not run it, to its end.
func TestReplicasTakeOver(t *testing.T) {
	testenv.Engine(t)
	where := testenv.Postgres(t)
	bin := buildMyrmex(t)
	tokCmd := exec.Command(bin, "serve", "token", "create", "replicas", "--scope", "operate", "--expires", "1h")
	tokCmd.Env = append(os.Environ(), "MYRMEX_SERVE_STATE="+where)
	out, err := tokCmd.Output()
	token := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(token, "myx_") {
		t.Fatalf("token create on PostgreSQL = %q %v", out, err)
	}

	// A registry that accepts connections and never answers: a pull from it runs until it is stopped (a fault no
	// real registry makes on demand).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	a := startReplica(t, bin, where, "replica-a")
	st, body := a.do(t, token, "POST", "/v1/registry", `{"operation":"pull","image_name":"`+ln.Addr().String()+`/hang:1"}`)
	var job state.Job
	if err := json.Unmarshal(body, &job); st != 202 || err != nil {
		t.Fatalf("pull = %d %s", st, body)
	}
	if !until(20*time.Second, func() bool {
		j := a.job(t, token, job.ID)
		return j.State == state.JobRunning && j.Runner == "replica-a"
	}) {
		t.Fatalf("the job never ran on replica-a: %+v", a.job(t, token, job.ID))
	}
	b := startReplica(t, bin, where, "replica-b")
	// b sees the job running on a and leaves it alone while a lives (several lease periods).
	time.Sleep(7 * time.Second)
	if j := b.job(t, token, job.ID); j.Runner != "replica-a" || j.Attempts != 1 {
		t.Fatalf("while replica-a lives, the job = %+v", j)
	}

	// Follow the job through b while a is killed.
	events := make(chan string, 100)
	go func() {
		defer close(events)
		req, _ := http.NewRequest("GET", b.url+"/v1/jobs/"+job.ID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") || strings.HasPrefix(sc.Text(), "event: ") {
				events <- sc.Text()
			}
		}
	}()
	killed := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	if !until(30*time.Second, func() bool {
		j := b.job(t, token, job.ID)
		return j.Runner == "replica-b" && j.State == state.JobRunning
	}) {
		t.Fatalf("replica-b did not take the job over: %+v", b.job(t, token, job.ID))
	}
	if took := time.Since(killed); took < 2*time.Second {
		t.Errorf("taken over %s after the kill: before the 3 s lease could have run out", took)
	}
	if j := b.job(t, token, job.ID); j.Attempts != 2 {
		t.Errorf("after the takeover: %+v, want attempt 2", j)
	}

	// b stops cleanly: the job goes back to the queue, and a replica started after takes it.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Wait(); err != nil {
		t.Errorf("replica-b after SIGTERM: %v", err)
	}
	c := startReplica(t, bin, where, "replica-c")
	if !until(20*time.Second, func() bool {
		j := c.job(t, token, job.ID)
		return j.Runner == "replica-c" && j.State == state.JobRunning
	}) {
		t.Fatalf("the released job was not run by replica-c: %+v", c.job(t, token, job.ID))
	}
	if j := c.job(t, token, job.ID); j.Attempts != 2 {
		t.Errorf("a released job counts its attempt again: %+v", j)
	}

	// Cancelled through d, which does not run it: c stops it at its next renewal; the stream through b ended
	// when b stopped, so follow it through d to its end.
	d := startReplica(t, bin, where, "replica-d")
	if st, body := d.do(t, token, "DELETE", "/v1/jobs/"+job.ID, ""); st != 202 {
		t.Fatalf("cancel through replica-d = %d %s", st, body)
	}
	req, _ := http.NewRequest("GET", d.url+"/v1/jobs/"+job.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body) // returns at the end event
	resp.Body.Close()
	if !strings.Contains(string(raw), "event: end") || !strings.Contains(string(raw), `"state":"canceled"`) || !strings.Contains(string(raw), "restarted") {
		t.Errorf("the stream through replica-d:\n%s", raw)
	}
	if j := d.job(t, token, job.ID); j.State != state.JobCanceled || j.Runner != "replica-c" {
		t.Errorf("the cancelled job = %+v", j)
	}
	var seen []string
	for e := range events {
		seen = append(seen, e)
	}
	if !strings.Contains(strings.Join(seen, "\n"), "replica-b starts it again") {
		t.Errorf("the stream through replica-b did not tell of the takeover: %v", seen)
	}
}

// tcpProxy forwards connections to target until it is cut: then it drops every connection and refuses new ones
// (a replica cut from its database: a fault the real PostgreSQL cannot make for one client alone).
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// hangRegistry accepts connections and never answers, and records when each opens and closes (the client gave
// up: its job stopped).
type hangRegistry struct {
	ln     net.Listener
	mu     sync.Mutex
	opened []time.Time
	closed []time.Time
}

func newHangRegistry(t *testing.T) *hangRegistry {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangRegistry{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.opened = append(h.opened, time.Now())
			h.mu.Unlock()
			go func() {
				io.Copy(io.Discard, c) // until the client closes
				c.Close()
				h.mu.Lock()
				h.closed = append(h.closed, time.Now())
				h.mu.Unlock()
			}()
		}
	}()
	return h
}

func (h *hangRegistry) counts() (opened, closed int, firstClosed, lastOpened time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.closed) > 0 {
		firstClosed = h.closed[0]
	}
	if len(h.opened) > 0 {
		lastOpened = h.opened[len(h.opened)-1]
	}
	return len(h.opened), len(h.closed), firstClosed, lastOpened
}

// A replica cut from its database stops its job before its lease can run out, and only then does another
// replica start it again: the job is never run by two at once (the registry the job pulls from sees the first
// run's connection close before the second run's opens).
func TestReplicaCutFromDatabase(t *testing.T) {
	testenv.Engine(t)
	where := testenv.Postgres(t)
	u, err := url.Parse(where)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.ln.Addr().String()
	bin := buildMyrmex(t)
	tokCmd := exec.Command(bin, "serve", "token", "create", "cut", "--scope", "operate", "--expires", "1h")
	tokCmd.Env = append(os.Environ(), "MYRMEX_SERVE_STATE="+where)
	out, err := tokCmd.Output()
	token := strings.TrimSpace(string(out))
	if err != nil {
		t.Fatalf("token create = %q %v", out, err)
	}
	hang := newHangRegistry(t)
	e := startReplica(t, bin, viaProxy.String(), "replica-e")
	st, body := e.do(t, token, "POST", "/v1/registry", `{"operation":"pull","image_name":"`+hang.ln.Addr().String()+`/hang:1"}`)
	var job state.Job
	if err := json.Unmarshal(body, &job); st != 202 || err != nil {
		t.Fatalf("pull = %d %s", st, body)
	}
	if !until(20*time.Second, func() bool { o, _, _, _ := hang.counts(); return o > 0 }) {
		t.Fatal("the job never reached the registry")
	}
	f := startReplica(t, bin, where, "replica-f")
	proxy.setCut(true)
	cut := time.Now()
	if !until(30*time.Second, func() bool {
		j := f.job(t, token, job.ID)
		return j.Runner == "replica-f" && j.State == state.JobRunning
	}) {
		t.Fatalf("replica-f did not take the job over: %+v", f.job(t, token, job.ID))
	}
	if !until(10*time.Second, func() bool { o, _, _, _ := hang.counts(); return o >= 2 }) {
		t.Fatal("replica-f's run never reached the registry")
	}
	opened, closed, firstClosed, lastOpened := hang.counts()
	if closed < 1 || !firstClosed.Before(lastOpened) {
		t.Errorf("the registry saw %d connections opened and %d closed; the first run's closed at %s, the second's opened at %s (cut at %s): two runs at once",
			opened, closed, firstClosed.Format("15:04:05.000"), lastOpened.Format("15:04:05.000"), cut.Format("15:04:05.000"))
	}
	// e comes back: it does not record anything for the job it lost; f's run is the job's.
	proxy.setCut(false)
	time.Sleep(4 * time.Second)
	if j := f.job(t, token, job.ID); j.Runner != "replica-f" || j.State != state.JobRunning || j.Attempts != 2 {
		t.Errorf("after replica-e came back: %+v", j)
	}
	if st, _ := f.do(t, token, "DELETE", "/v1/jobs/"+job.ID, ""); st != 202 {
		t.Errorf("cancel = %d", st)
	}
	if !until(10*time.Second, func() bool { return f.job(t, token, job.ID).State == state.JobCanceled }) {
		t.Errorf("the job after cancel: %+v", f.job(t, token, job.ID))
	}
}
