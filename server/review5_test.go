package server_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization"
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
