package server_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/internal/testenv"
)

// myrmex serve as a real process: a non-loopback address without TLS is refused (exit 2); a token made with
// serve token create opens the API, a missing one does not; SIGTERM stops the server cleanly (exit 0).
func TestServeProcess(t *testing.T) {
	testenv.Engine(t) // DOCKER_HOST names the test engine for the child too
	dir := t.TempDir()
	bin := buildMyrmex(t)
	statePath := filepath.Join(dir, "state.db")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "MYRMEX_STATE_DIR="+dir)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	if _, code := run("serve", "--listen", "0.0.0.0:0", "--state", statePath); code != 2 {
		t.Errorf("serve on 0.0.0.0 without TLS exited %d, want 2", code)
	}
	token, code := run("serve", "token", "create", "proc", "--scope", "read", "--expires", "1h", "--state", statePath)
	token = strings.TrimSpace(token)
	if code != 0 || !strings.HasPrefix(token, "myx_") {
		t.Fatalf("token create = %q, exit %d", token, code)
	}
	if out, code := run("serve", "token", "ls", "--state", statePath); code != 0 || !strings.Contains(out, "proc") || strings.Contains(out, token) {
		t.Errorf("token ls = %q, exit %d", out, code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--state", statePath)
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	sc := bufio.NewScanner(stderr)
	url := ""
	for sc.Scan() {
		if m := regexp.MustCompile(`serving the API on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatal("the server did not say where it listens")
	}
	go io.Copy(io.Discard, stderr)
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", url+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get("/v1/health", ""); st != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("health = %d %s", st, body)
	}
	if st, _ := get("/v1/containers", ""); st != 401 {
		t.Errorf("containers without a token = %d", st)
	}
	if st, body := get("/v1/containers", token); st != 200 || !strings.Contains(body, `"operation":"list"`) {
		t.Errorf("containers = %d %s", st, body)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
}
