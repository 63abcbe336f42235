package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization/internal/testenv"
)

// tab is a headless Chromium tab on a test server's dashboard. Every document it loads records its uncaught
// errors and its Content-Security-Policy violations (a script injected by the browser, which the policy does not
// apply to), and [tab.check] fails the test on any.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// watcher runs in every document before the page's own scripts.
const watcher = `window.__errors = []; window.__csp = [];
window.addEventListener('error', (e) => window.__errors.push(String(e.message || e)));
window.addEventListener('unhandledrejection', (e) => window.__errors.push('unhandled rejection: ' + String(e.reason && e.reason.message || e.reason)));
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`

func (e *env) tab(t *testing.T, w, h int) *tab {
	t.Helper()
	ctx := testenv.BrowserTab(t, w, h)
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watcher})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	return &tab{t: t, ctx: ctx, base: e.url}
}

// do runs actions, failing the test on an error (within two minutes).
func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\n%s", err, p.dump())
	}
}

// js evaluates an expression in the page and decodes its value into T.
func js[T any](p *tab, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// until waits (at most d) for a JavaScript expression to be truthy; what is shown when it is not is the page's
// text and what why (an expression) says.
func (p *tab) until(d time.Duration, expr, why string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d+10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
		state := ""
		if why != "" {
			state, _ = chromedp.Run(p.ctx, chromedp.Evaluate[string]("String("+why+")"))
		}
		p.t.Fatalf("waiting for %s: %v (%s)\n%s", expr, err, state, p.dump())
	}
}

// open goes to the dashboard's route (#/…) and waits for selector: within the page as a link would (the hash
// changes) when the dashboard is loaded, else by loading it.
func (p *tab) open(route, selector string) {
	p.t.Helper()
	loc, _ := chromedp.Run(p.ctx, chromedp.Location())
	if strings.HasPrefix(loc, p.base+"/ui/") && strings.HasPrefix(route, "#") {
		js[any](p, `(() => { location.hash = `+jsString(route)+`; return null; })()`)
	} else {
		p.do(chromedp.Navigate(p.base + "/ui/" + route))
	}
	p.do(chromedp.WaitVisible(chromedp.CSS(selector)))
}

// signIn signs in with token from the sign-in form, as a user would.
func (p *tab) signIn(token string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("form button[type=submit]")))
	p.until(30*time.Second, `document.getElementById('signout') && !document.getElementById('signout').hidden`, "document.querySelector('main').innerText")
}

// check fails the test on an uncaught error or a Content-Security-Policy violation in the current document.
func (p *tab) check(where string) {
	p.t.Helper()
	errs := js[[]string](p, `window.__errors || []`)
	csp := js[[]string](p, `window.__csp || []`)
	if len(errs) > 0 {
		p.t.Errorf("%s: uncaught errors in the page: %q", where, errs)
	}
	if len(csp) > 0 {
		p.t.Errorf("%s: Content-Security-Policy violations: %q", where, csp)
	}
}

// axeViolation is one rule axe-core found broken.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// axe runs axe-core on the current document (WCAG 2.x A and AA rules and best practices) and fails the test on
// any serious or critical violation; the others are logged.
func (p *tab) axe(where string) {
	p.t.Helper()
	src := testenv.Axe(p.t)
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[chromedp.Void](src+";0")); err != nil && !strings.Contains(err.Error(), "undefined") {
		p.t.Fatalf("loading axe-core: %v", err)
	}
	raw := js[string](p, `axe.run(document, {resultTypes: ['violations']}).then((r) => JSON.stringify(r.violations))`)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		p.t.Fatalf("axe-core's answer: %v", err)
	}
	for _, v := range vs {
		var nodes []string
		for _, n := range v.Nodes {
			nodes = append(nodes, fmt.Sprint(n.Target)+" "+n.HTML)
		}
		msg := fmt.Sprintf("%s: axe-core: %s (%s): %s\n  %s", where, v.ID, v.Impact, v.Help, strings.Join(nodes, "\n  "))
		if v.Impact == "serious" || v.Impact == "critical" {
			p.t.Error(msg)
		} else {
			p.t.Log(msg)
		}
	}
}

// shot saves a screenshot of the page as NAME.png in $MYRMEX_SCREENSHOTS (docs/img makes the README's); without
// it, nothing.
func (p *tab) shot(name string) {
	p.t.Helper()
	dir := os.Getenv("MYRMEX_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot()) // the viewport, as PNG
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// dump is the page's location and text, for failures.
func (p *tab) dump() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ''`))
	return "page " + loc + ":\n" + text
}

// TestAxeFinds: the accessibility check can fail — axe-core, as the tests load it, finds an image without a text
// alternative and a button without a name.
func TestAxeFinds(t *testing.T) {
	ctx := testenv.BrowserTab(t, 800, 600)
	p := &tab{t: t, ctx: ctx}
	p.do(chromedp.Navigate(`data:text/html,<!doctype html><html lang="en"><title>t</title><main><img src="data:,"><button></button></main></html>`))
	src := testenv.Axe(t)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](src+";0")); err != nil && !strings.Contains(err.Error(), "undefined") {
		t.Fatal(err)
	}
	raw := js[string](p, `axe.run(document, {resultTypes: ['violations']}).then((r) => JSON.stringify(r.violations))`)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, v := range vs {
		found[v.ID] = v.Impact
	}
	if found["image-alt"] != "critical" || found["button-name"] != "critical" {
		t.Fatalf("axe-core found %v; want image-alt and button-name, critical", found)
	}
}
