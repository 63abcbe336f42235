package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// browserClient is an HTTP client with a cookie jar, as a browser keeps cookies.
func browserClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: time.Minute}
}

func send(t *testing.T, c *http.Client, method, url, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, []byte(b.String())
}

// The dashboard's sessions over real HTTP: a token exchanged for an HttpOnly, SameSite=Strict cookie; the cookie
// opens what the token's scope opens; a change made with it needs the CSRF token and is refused from another
// site; signing out ends it; a wrong token counts as a failed login. Every answer carries the strict
// Content-Security-Policy, the pages included.
func TestDashboardSession(t *testing.T) { onBoth(t, testDashboardSession) }

func testDashboardSession(t *testing.T, b backend) {
	e := newEnvOn(t, containerization.Config{Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")}, b)
	c := browserClient(t)

	resp, body := send(t, c, "POST", e.url+"/v1/session", `{"token": "myx_wrong"}`, "Content-Type", "application/json")
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Fatalf("sign-in with a wrong token = %d %s, cookies %v", resp.StatusCode, body, resp.Cookies())
	}
	resp, body = send(t, c, "POST", e.url+"/v1/session", `{}`, "Content-Type", "application/json")
	if resp.StatusCode != 400 {
		t.Fatalf("sign-in without a token = %d %s", resp.StatusCode, body)
	}
	resp, body = send(t, c, "POST", e.url+"/v1/session", `{"token": "`+e.tokens[state.ScopeOperate]+`"}`, "Content-Type", "application/json")
	if resp.StatusCode != 201 {
		t.Fatalf("sign-in = %d %s", resp.StatusCode, body)
	}
	e.valid("/v1/session", "POST", 201, body)
	var info server.SessionInfo
	if err := json.Unmarshal(body, &info); err != nil || info.Name != "t-operate" || info.Scope != state.ScopeOperate || len(info.CSRFToken) != 64 {
		t.Fatalf("sign-in answered %s", body)
	}
	if strings.Contains(string(body), e.tokens[state.ScopeOperate]) {
		t.Fatal("the sign-in answer holds the token")
	}
	ck := resp.Cookies()
	if len(ck) != 1 || ck[0].Name != "myrmex_session" || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" ||
		!strings.HasPrefix(ck[0].Value, state.SessionPrefix) || ck[0].Value == e.tokens[state.ScopeOperate] {
		t.Fatalf("session cookie %+v", ck)
	}

	// The cookie opens what the token opens; GET /v1/session gives the CSRF token back (after a reload).
	resp, body = send(t, c, "GET", e.url+"/v1/session", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), info.CSRFToken) {
		t.Fatalf("GET /v1/session = %d %s", resp.StatusCode, body)
	}
	e.valid("/v1/session", "GET", 200, body)
	if resp, body := send(t, c, "GET", e.url+"/v1/jobs", ""); resp.StatusCode != 200 {
		t.Fatalf("GET /v1/jobs with the session = %d %s", resp.StatusCode, body)
	}
	if resp, body := send(t, c, "GET", e.url+"/v1/audit", ""); resp.StatusCode != 403 {
		t.Fatalf("GET /v1/audit (admin) with an operate session = %d %s", resp.StatusCode, body)
	}
	// A change: refused without the CSRF token, with a wrong one, and from another site; let through with it.
	change := e.url + "/v1/jobs/nosuchjob"
	for _, h := range [][]string{nil, {"X-CSRF-Token", strings.Repeat("0", 64)}, {"X-CSRF-Token", info.CSRFToken, "Sec-Fetch-Site", "cross-site"}} {
		resp, body := send(t, c, "DELETE", change, "", h...)
		if resp.StatusCode != 403 || !strings.Contains(string(body), `"csrf"`) {
			t.Errorf("DELETE with the session and headers %q = %d %s; want 403 csrf", h, resp.StatusCode, body)
		}
	}
	if resp, body := send(t, c, "DELETE", change, "", "X-CSRF-Token", info.CSRFToken, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != 404 {
		t.Errorf("DELETE with the session and its CSRF token = %d %s; want 404 (authorised, no such job)", resp.StatusCode, body)
	}
	// The audit log names the token behind the session.
	_, raw := e.do(state.ScopeAdmin, "GET", "/v1/audit", nil)
	if !strings.Contains(string(raw), `"token":"t-operate","method":"POST","path":"/v1/session"`) {
		t.Errorf("the sign-in is not in the audit log: %s", raw)
	}

	// Every answer carries the policy: the API's and the pages'.
	for _, path := range []string{"/v1/health", "/v1/jobs", "/ui/", "/ui/js/app.js", "/ui/app.css", "/ui/no-such-file"} {
		resp, _ := send(t, c, "GET", e.url+path, "")
		if got := resp.Header.Get("Content-Security-Policy"); got != server.ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy %q", path, got)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	for path, typ := range map[string]string{"/ui/": "text/html", "/ui/js/app.js": "text/javascript", "/ui/app.css": "text/css"} {
		resp, body := send(t, c, "GET", e.url+path, "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || len(body) == 0 {
			t.Errorf("%s = %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if etag := resp.Header.Get("ETag"); etag == "" {
			t.Errorf("%s: no ETag", path)
		} else if again, _ := send(t, c, "GET", e.url+path, "", "If-None-Match", etag); again.StatusCode != 304 {
			t.Errorf("%s with its ETag = %d, want 304", path, again.StatusCode)
		}
	}
	if resp, _ := send(t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, "GET", e.url+"/", ""); resp.StatusCode != 302 || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Signing out ends the session and clears the cookie.
	resp, body = send(t, c, "DELETE", e.url+"/v1/session", "", "X-CSRF-Token", info.CSRFToken)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-out = %d %s", resp.StatusCode, body)
	}
	if resp, body := send(t, c, "GET", e.url+"/v1/jobs", ""); resp.StatusCode != 401 {
		t.Errorf("GET /v1/jobs after signing out = %d %s", resp.StatusCode, body)
	}
	// A bearer token has no session to sign out.
	if st, body := e.do(state.ScopeRead, "DELETE", "/v1/session", nil); st != 400 {
		t.Errorf("DELETE /v1/session with a bearer token = %d %s", st, body)
	}
}

// The dashboard's frame in a real Chromium (no engine needed): the sign-in form (a wrong token refused in words,
// the token never in the URL), the jobs, the keyboard alone, signing out; axe-core on each.
func TestDashboardFrame(t *testing.T) {
	e := newEnvWith(t, containerization.Config{Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")})
	p := e.tab(t, 1280, 860)
	p.open("", "#token")
	p.axe("sign-in")
	p.shot("dashboard-signin")
	p.do(chromedp.SendKeys(chromedp.CSS("#token"), "myx_wrong"), chromedp.Click(chromedp.CSS("form button[type=submit]")))
	p.until(20*time.Second, `document.querySelector('main [role=alert]').innerText.includes('not valid')`, "document.querySelector('main').innerText")
	p.signIn(e.tokens[state.ScopeRead])
	if loc := js[string](p, `location.href`); strings.Contains(loc, "myx_") {
		t.Fatalf("the token is in the URL: %s", loc)
	}
	if n := js[int](p, `localStorage.length + sessionStorage.length`); n != 0 {
		t.Errorf("the page keeps %d items in its storage", n)
	}
	if ck := js[string](p, `document.cookie`); strings.Contains(ck, "myrmex_session") {
		t.Errorf("the session cookie is readable by scripts: %q", ck)
	}
	// A job to show: a scan of an image the engine cannot be asked for fails, and is kept.
	if st, body := e.do(state.ScopeOperate, "POST", "/v1/scans", map[string]any{"image_name": "myrmex.local/none:test"}); st != 202 {
		t.Fatalf("scan = %d %s", st, body)
	}
	// Jobs.
	p.open("#/jobs", "#jobs")
	p.until(30*time.Second, `document.querySelector('#jobs tbody a')`, "")
	p.check("jobs")
	p.axe("jobs")

	// A job's page.
	p.do(chromedp.Click(chromedp.CSS("#jobs tbody a")))
	p.until(60*time.Second, `document.querySelector('#result [role=alert]')`, "document.querySelector('main').innerText")
	p.check("job")
	p.axe("job")
	// The keyboard alone: the skip link first, then the sections; Enter follows a link.
	p.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("main h1")))
	p.do(chromedp.KeyEvent(kb.Tab))
	if got := js[string](p, `document.activeElement.textContent`); got != "Skip to the content" {
		t.Errorf("the first Tab reaches %q", got)
	}
	for range 12 {
		if js[string](p, `document.activeElement.getAttribute('href') || ''`) == "#/containers" {
			break
		}
		p.do(chromedp.KeyEvent(kb.Tab))
	}
	p.do(chromedp.KeyEvent(kb.Enter))
	p.until(10*time.Second, `location.hash === '#/containers' && document.querySelector('main h1').innerText === 'Containers'`, "location.hash")

	// Signing out: the sign-in form again, and the session is gone for the server too.
	p.do(chromedp.Click(chromedp.CSS("#signout")))
	p.until(20*time.Second, `document.getElementById('token')`, "")
	if st := js[int](p, `fetch('/v1/jobs').then((r) => r.status)`); st != 401 {
		t.Errorf("after signing out the page's session answers %d", st)
	}
}

// The dashboard in a real Chromium against a real server and engine: sign in (the token never in a URL or in
// the page's storage), watch a container's CPU chart move while it burns CPU and its logs come, see markup from a
// label, a log line and the address shown as text and never run, stop the container from the page and see its
// state change; keyboard and phone sizes; axe-core on every page; no script error and no CSP violation.
func TestDashboardContainers(t *testing.T) {
	e := newEnv(t)
	run := "myrmex-ui-" + time.Now().Format("150405")
	burner, quiet := run+"-burn", run+"-quiet"
	t.Cleanup(func() {
		e.do(state.ScopeOperate, "DELETE", "/v1/containers/"+burner+"?force=true", nil)
		e.do(state.ScopeOperate, "DELETE", "/v1/containers/"+quiet+"?force=true", nil)
	})
	const markup = `<img src=x onerror="window.__xss=1">`
	for name, cmd := range map[string]string{
		burner: `echo '<script>window.__xss=2</script>'; echo started >&2; while :; do :; done`,
		quiet:  `while :; do echo tick; sleep 1; done`,
	} {
		st, body := e.do(state.ScopeOperate, "POST", "/v1/containers", map[string]any{"name": name,
			"config": map[string]any{"image": testimages.Busybox, "command": []string{"sh", "-c", cmd},
				"labels": map[string]string{"note": markup}, "resources": map[string]string{"cpu_limit": "0.5"}}})
		if st != 201 {
			t.Fatalf("create %s = %d %s", name, st, body)
		}
		if st, body := e.do(state.ScopeOperate, "POST", "/v1/containers/"+name+"/start", nil); st != 200 {
			t.Fatalf("start %s = %d %s", name, st, body)
		}
	}

	p := e.tab(t, 1280, 860)
	p.signIn(e.tokens[state.ScopeOperate])
	p.until(30*time.Second, `document.querySelector('#containers tr[data-name="`+burner+`"]')`, "document.querySelector('main').innerText")
	if loc := js[string](p, `location.href`); strings.Contains(loc, "myx_") {
		t.Fatalf("the token is in the URL: %s", loc)
	}
	if n := js[int](p, `localStorage.length + sessionStorage.length`); n != 0 {
		t.Errorf("the page keeps %d items in its storage", n)
	}
	if ck := js[string](p, `document.cookie`); strings.Contains(ck, "myrmex_session") {
		t.Errorf("the session cookie is readable by scripts: %q", ck)
	}
	if hist := js[int](p, `history.length`); hist > 3 {
		t.Logf("history length %d", hist)
	}
	p.check("containers")
	p.axe("containers")

	// A container: the CPU chart moves while it burns (a cap of half a CPU), its logs come, markup stays text.
	p.open("#/containers/"+burner, "#cpu-chart")
	p.until(60*time.Second, `(() => { const pts = document.querySelector('#cpu-chart polyline').getAttribute('points').trim().split(' ');
		const m = /now CPU ([0-9.]+)/.exec(document.querySelector('#cpu-chart svg').getAttribute('aria-label'));
		return pts.length >= 4 && m && parseFloat(m[1]) > 20; })()`, "document.querySelector('#cpu-chart svg').getAttribute('aria-label')")
	first := js[string](p, `document.querySelector('#cpu-chart polyline').getAttribute('points')`)
	p.until(20*time.Second, `document.querySelector('#cpu-chart polyline').getAttribute('points') !== `+jsString(first), "")
	p.until(30*time.Second, `document.getElementById('logs').innerText.includes('<script>window.__xss=2</script>')`, "document.getElementById('logs').innerText")
	p.until(10*time.Second, `document.getElementById('facts').innerText.includes(`+jsString(markup)+`)`, "document.getElementById('facts').innerText")
	if n := js[int](p, `document.querySelectorAll('main img, main script').length`); n != 0 {
		t.Errorf("markup from the container became %d elements", n)
	}
	if os.Getenv("MYRMEX_SCREENSHOTS") != "" {
		time.Sleep(30 * time.Second) // half the charts' window: a picture with some history
	}
	p.shot("dashboard-container")
	p.check("container")
	p.axe("container")

	// An address holding markup: shown as the name it asks for, not run.
	p.open("#/containers/"+`%3Cimg%20src%3Dx%20onerror%3D%22window.__xss%3D3%22%3E`, "main h1")
	p.until(20*time.Second, `document.querySelector('main').innerText.includes('<img src=x onerror="window.__xss=3">')`, "document.querySelector('main').innerText")

	// Stop it from the page: the confirmation, then the state changes.
	p.open("#/containers/"+burner, "button[data-op=stop]")
	p.do(chromedp.Click(chromedp.CSS("button[data-op=stop]")), chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	p.axe("confirmation")
	p.do(chromedp.Click(chromedp.CSS("#confirm-ok")))
	p.until(60*time.Second, `document.getElementById('state').dataset.state === 'exited'`, "document.getElementById('state').dataset.state")
	st, body := e.do(state.ScopeRead, "GET", "/v1/containers/"+burner, nil)
	if st != 200 || !strings.Contains(string(body), `"status":"exited"`) {
		t.Errorf("after Stop on the page the container is %d %s", st, body)
	}
	if x := js[any](p, `window.__xss === undefined ? null : window.__xss`); x != nil {
		t.Errorf("markup ran: window.__xss = %v", x)
	}
	p.check("container after stop")

	// A job followed live: a build's steps show as they come, then its result.
	buildCtx := t.TempDir()
	if err := os.WriteFile(filepath.Join(buildCtx, "Dockerfile"), []byte("FROM "+testimages.Busybox+"\nRUN sleep 3\nLABEL ui="+run+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	built := "myrmex.local/ui-build:" + run[strings.LastIndex(run, "-")+1:]
	eng := testenv.Engine(t)
	t.Cleanup(func() {
		_, _ = eng.API().ImageRemove(context.Background(), built, client.ImageRemoveOptions{Force: true})
	})
	id := e.startJob("/v1/builds", map[string]any{"image_name": built, "context_path": buildCtx, "scan": "off", "no_cache": true})
	p.open("#/jobs/"+id, "#events")
	p.until(2*time.Minute, `document.querySelectorAll('#events li').length > 0`, "document.querySelector('main').innerText")
	p.until(3*time.Minute, `document.querySelector('#result pre') && document.querySelector('main .badge').innerText === 'succeeded'`, "document.querySelector('main').innerText")
	if got := js[string](p, `document.getElementById('events').innerText`); !strings.Contains(got, "build") {
		t.Errorf("the build's events: %q", got)
	}
	p.shot("dashboard-job")
	p.check("job")

	// A phone: the sections behind the menu button, nothing wider than the screen.
	ph := e.tab(t, 390, 844)
	ph.signIn(e.tokens[state.ScopeRead])
	ph.open("#/containers/"+quiet, "#cpu-chart")
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the page is %d px wider than the screen", w)
	}
	if vis := js[bool](ph, `getComputedStyle(document.getElementById('nav')).display !== 'none'`); vis {
		t.Error("on a phone the sections show before the menu is opened")
	}
	ph.do(chromedp.Click(chromedp.CSS("#menu")))
	ph.until(5*time.Second, `getComputedStyle(document.getElementById('nav')).display !== 'none'`, "")
	// A read token sees no enabled action.
	if n := js[int](ph, `[...document.querySelectorAll('#actions button')].filter((b) => !b.disabled).length`); n != 0 {
		t.Errorf("a read session has %d enabled actions", n)
	}
	ph.shot("dashboard-phone")
	ph.check("phone")
	ph.axe("phone")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
