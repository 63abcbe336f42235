package server_test

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// A sign-in forged by another site: its page posts a form (enctype text/plain, which a browser sends without
// asking) whose body is JSON with the attacker's token. Accepted, it would sign the victim's browser in as the
// attacker, whose pages then see what the victim does. Over HTTP: only a JSON body from the page's own origin
// signs in. In a real Chromium: the attacker's page on another site leaves the dashboard signed out.
func TestSignInFromAnotherSite(t *testing.T) {
	e := newEnvWith(t, containerization.Config{Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")})
	token := e.tokens[state.ScopeRead]
	// The body a text/plain form makes of <input name='{"tokeN":"x' value='","token":"…"}'>: name=value, the =
	// inside a string, and the last of two keys that match a field without regard to case wins.
	forged := `{"tokeN":"x=","token":"` + token + `"}`
	for _, h := range [][]string{
		{"Content-Type", "text/plain", "Sec-Fetch-Site", "cross-site"},
		{"Content-Type", "text/plain"},
		{"Content-Type", "application/x-www-form-urlencoded"},
		{"Content-Type", "application/json", "Sec-Fetch-Site", "same-site"},
		{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"},
	} {
		resp, body := send(t, browserClient(t), "POST", e.url+"/v1/session", forged, h...)
		if resp.StatusCode/100 == 2 || len(resp.Cookies()) != 0 {
			t.Errorf("POST /v1/session with %q = %d %s, cookies %v; want it refused", h, resp.StatusCode, body, resp.Cookies())
		}
	}
	resp, body := send(t, browserClient(t), "POST", e.url+"/v1/session", `{"token":"`+token+`"}`,
		"Content-Type", "application/json; charset=utf-8", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != 201 {
		t.Fatalf("the page's own sign-in = %d %s", resp.StatusCode, body)
	}

	// The attacker's page, on another site (localhost is not 127.0.0.1 to a browser).
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>prize</title><form id="f" method="post" enctype="text/plain" action="%s/v1/session">`+
			`<input type="hidden" name="%s" value="%s"></form><script>document.getElementById('f').submit()</script>`,
			html.EscapeString(e.url), html.EscapeString(`{"tokeN":"x`), html.EscapeString(`","token":"`+token+`"}`))
	}))
	t.Cleanup(evil.Close)
	p := e.tab(t, 1024, 768)
	p.do(chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)))
	p.until(30*time.Second, `location.href.endsWith('/v1/session')`, "location.href")
	if text := js[string](p, `document.body.innerText`); !strings.Contains(text, `"error"`) {
		t.Errorf("the forged sign-in answered %s", text)
	}
	p.open("", "main h1")
	if st := js[int](p, `fetch('/v1/session').then((r) => r.status)`); st != 401 {
		t.Errorf("after another site's forged sign-in, the dashboard's session answers %d; want 401 (signed out)", st)
	}
}

// liveGoroutines counts this process's goroutines in a live stream's handler or in the engine calls it makes.
func liveGoroutines() int {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "server.(*Server).liveStream") || strings.Contains(g, "engine.(*Client).WatchMetrics") ||
			strings.Contains(g, "engine.(*Client).StreamLogs") {
			n++
		}
	}
	return n
}

// waitGoroutines waits (at most d) until liveGoroutines is n.
func waitGoroutines(t *testing.T, n int, d time.Duration, why string) {
	t.Helper()
	for end := time.Now().Add(d); liveGoroutines() != n; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: %d goroutines of live streams after %s, want %d", why, liveGoroutines(), d, n)
		}
	}
}

// noisy starts a container of busybox running script, removed when the test ends.
func (e *env) noisy(t *testing.T, name, script string) {
	t.Helper()
	t.Cleanup(func() { e.do(state.ScopeOperate, "DELETE", "/v1/containers/"+name+"?force=true", nil) })
	st, body := e.do(state.ScopeOperate, "POST", "/v1/containers", map[string]any{"name": name,
		"config": map[string]any{"image": testimages.Busybox, "command": []string{"sh", "-c", script}}})
	if st != 201 {
		t.Fatalf("create %s = %d %s", name, st, body)
	}
	if st, body := e.do(state.ScopeOperate, "POST", "/v1/containers/"+name+"/start", nil); st != 200 {
		t.Fatalf("start %s = %d %s", name, st, body)
	}
}

// A live stream leaves nothing behind when its client goes: no handler, heartbeat or engine call is still
// running, for metrics and logs alike, and the slots of the 64-stream limit come back (96 opened in turns of 32).
func TestLiveStreamsLetGo(t *testing.T) {
	e := newEnv(t)
	name := "myrmex-r5-letgo-" + time.Now().Format("150405")
	e.noisy(t, name, `while :; do echo tick; sleep 0.2; done`)
	waitGoroutines(t, 0, time.Minute, "before the streams")
	open := func(path string) *http.Response {
		req, _ := http.NewRequest("GET", e.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens[state.ScopeRead])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, b)
		}
		return resp
	}
	for round := range 3 { // half the limit at a time, more than the limit in all: every slot is given back
		var open32 []*http.Response
		for i := range server.MaxStreams / 2 {
			path := "/v1/containers/" + name + "/logs/stream"
			if i == 0 { // one of metrics a round: its first sample takes two of the engine's readings
				path = "/v1/containers/" + name + "/metrics/stream"
			}
			resp := open(path)
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil { // its first event has come
				t.Fatalf("round %d, %s: %v", round, path, err)
			}
			open32 = append(open32, resp)
		}
		for _, resp := range open32 {
			resp.Body.Close()
		}
		waitGoroutines(t, 0, 2*time.Minute, "after the clients went")
	}
	resp := open("/v1/containers/" + name + "/logs/stream")
	resp.Body.Close()
}

// Renders are two at a time, and a request waiting its turn holds its body (up to 16 MiB) decoded: the requests
// taken in, body and all, are bounded too. Requests whose bodies never end (a slow client, or one that wants the
// server's memory) fill the queue; the next is refused at once with 503, its body unread.
func TestRenderQueueBounded(t *testing.T) {
	e := newEnvWith(t, containerization.Config{Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")})
	const n = 12
	answers := make(chan int, n)
	for range n {
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		go pw.Write([]byte(`{"format": "pdf", "scan_result": {"image_name": "`))
		req, _ := http.NewRequest("POST", e.url+"/v1/reports/render", pr)
		req.ContentLength = 15 << 20
		req.Header.Set("Authorization", "Bearer "+e.tokens[state.ScopeRead])
		req.Header.Set("Content-Type", "application/json")
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers <- 0
				return
			}
			resp.Body.Close()
			answers <- resp.StatusCode
		}()
	}
	timeout := time.After(time.Minute)
	for range n - 8 {
		select {
		case st := <-answers:
			if st != http.StatusServiceUnavailable {
				t.Errorf("a render beyond the queue = %d, want 503", st)
			}
		case <-timeout:
			t.Fatalf("%d renders whose bodies never end: none refused after a minute; want all but 8 refused at once", n)
		}
	}
	select {
	case st := <-answers:
		t.Errorf("a render with its body unfinished answered %d; want it still reading", st)
	default:
	}
}
