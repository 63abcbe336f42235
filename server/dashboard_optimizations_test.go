package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// jsBytes is the dashboard's bytes() (dom.js): how the pages write a size.
func jsBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', -1, 64) + " " + units[i]
	}
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + units[i]
}

// The optimizations in a real Chromium: a real optimization of the web test image (its page served by busybox
// httpd, the probe an HTTP request) with a layer of files it never reads, built and optimized through the API; the list shows it with the sizes and layers of its
// result; its page draws before and after as bars in proportion, with what was removed and the probe's verdict on
// both images; an optimization started from the page's form is followed live to its end (it fails: the image is
// not there) and shows why. GET /v1/optimizations over HTTP, bounded.
func TestDashboardOptimizations(t *testing.T) {
	eng := testenv.Engine(t)
	if err := testimages.Ensure(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MYRMEX_SENSOR", testenv.Sensor(t))
	e := newEnvWith(t, containerization.Config{Engine: eng})
	// The web image with a layer of what it never reads: the profile leaves it out.
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1e6)
	source, target := "myrmex.local/web-heavy:dash-"+run, "myrmex.local/web-heavy:dash-"+run+"-optimized"
	t.Cleanup(func() {
		for _, ref := range []string{source, target} {
			_, _ = eng.API().ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true})
		}
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+testimages.Web+
		"\nRUN mkdir -p /opt/unused && head -c 3145728 /dev/urandom > /opt/unused/blob && head -c 1048576 /dev/urandom > /opt/unused/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, body := e.do(state.ScopeOperate, "POST", "/v1/builds", map[string]any{"image_name": source, "context_path": dir, "scan": "off"})
	if built := e.wait(e.submitted("POST", "/v1/builds", st, body).ID, 5*time.Minute); built.State != state.JobSucceeded {
		t.Fatalf("build of %s = %+v %s", source, built, built.Error)
	}
	st, body = e.do(state.ScopeOperate, "POST", "/v1/optimizations", map[string]any{"image_name": source, "optimized_image": target,
		"probe": map[string]any{"http": []any{map[string]any{"port": 8080, "path": "/", "body": "Hello"}}}})
	job := e.wait(e.submitted("POST", "/v1/optimizations", st, body).ID, 5*time.Minute)
	var res containerization.OptimizationResult
	if err := json.Unmarshal(job.Result, &res); job.State != state.JobSucceeded || err != nil || res.Result == nil || res.SizeAfter <= 0 ||
		res.SizeBefore-res.SizeAfter < 4<<20 || len(res.Removed) == 0 {
		t.Fatalf("the optimization of %s = %+v %s; want 4 MiB or more removed", source, job, job.Result)
	}

	// Over HTTP: the job with its result in brief.
	st, body = e.do(state.ScopeRead, "GET", "/v1/optimizations", nil)
	var list server.OptimizationList
	if err := json.Unmarshal(body, &list); st != 200 || err != nil || len(list.Optimizations) != 1 {
		t.Fatalf("GET /v1/optimizations = %d %s", st, body)
	}
	e.valid("/v1/optimizations", "GET", 200, body)
	o := list.Optimizations[0]
	if o.Job.ID != job.ID || o.Job.Result != nil || o.Result == nil || o.Result.SizeBefore != res.SizeBefore || o.Result.SizeAfter != res.SizeAfter ||
		o.Result.LayersBefore != res.LayersBefore || o.Result.LayersAfter != res.LayersAfter || o.Result.OptimizedImage != target ||
		!o.Result.Verified || o.Result.ProbePassed == nil || !*o.Result.ProbePassed {
		t.Errorf("GET /v1/optimizations = %s; want the job's result in brief (%+v)", body, res.Result)
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=x"} {
		if st, body := e.do(state.ScopeRead, "GET", "/v1/optimizations"+q, nil); st != 400 {
			t.Errorf("GET /v1/optimizations%s = %d %s, want 400", q, st, body)
		}
	}

	p := e.tab(t, 1280, 900)
	p.signIn(e.tokens[state.ScopeOperate])
	row := `#optimizations tr[data-job="` + job.ID + `"]`
	p.open("#/optimizations", row)
	cells := js[[]string](p, `[...document.querySelectorAll('`+row+` td')].map((td) => td.innerText)`)
	if len(cells) != 7 || cells[2] != jsBytes(float64(res.SizeBefore)) || cells[3] != jsBytes(float64(res.SizeAfter)) ||
		cells[4] != fmt.Sprintf("%d → %d", res.LayersBefore, res.LayersAfter) || cells[5] != "verified" {
		t.Errorf("the list's row = %q; want %s → %s, %d → %d layers", cells, jsBytes(float64(res.SizeBefore)), jsBytes(float64(res.SizeAfter)), res.LayersBefore, res.LayersAfter)
	}
	p.check("optimizations")
	p.axe("optimizations")
	p.shot("dashboard-optimizations")

	p.do(chromedp.Click(chromedp.CSS(row + " a")))
	p.until(30*time.Second, `document.getElementById('o-size-chart')`, "document.querySelector('main').innerText")
	if got, want := js[string](p, `document.getElementById('o-sizes').innerText`), jsBytes(float64(res.SizeBefore))+" → "+jsBytes(float64(res.SizeAfter)); !strings.HasPrefix(got, want) {
		t.Errorf("the sizes shown = %q, want %q…", got, want)
	}
	if got := js[string](p, `document.getElementById('o-layers').innerText`); got != fmt.Sprintf("%d → %d", res.LayersBefore, res.LayersAfter) {
		t.Errorf("the layers shown = %q", got)
	}
	// The picture: the bars in proportion to the sizes and to the layers.
	for _, c := range []struct {
		chart         string
		before, after float64
	}{{"o-size-chart", float64(res.SizeBefore), float64(res.SizeAfter)}, {"o-layer-chart", float64(res.LayersBefore), float64(res.LayersAfter)}} {
		w := js[[]float64](p, `[...document.querySelectorAll('#`+c.chart+` rect')].map((r) => parseFloat(r.getAttribute('width')))`)
		if len(w) != 2 || w[0] <= 0 || math.Abs(w[1]/w[0]-c.after/c.before) > 0.02 {
			t.Errorf("%s: bars %v for %v → %v", c.chart, w, c.before, c.after)
		}
	}
	if got := js[string](p, `document.querySelector('#o-probe-optimized').dataset.passed + ' ' + document.querySelector('#o-probe-original').dataset.passed`); got != "true true" {
		t.Errorf("the probe's verdicts shown: %q", got)
	}
	if n := js[int](p, `document.querySelectorAll('#o-removed tbody tr').length`); n != len(res.Removed) {
		t.Errorf("%d removals shown, the result has %d", n, len(res.Removed))
	}
	p.check("optimization")
	p.axe("optimization")
	p.shot("dashboard-optimization")

	// The form: an image that is not there; the job's page follows it to its failure.
	p.open("#/optimizations", "#optimize-form")
	p.do(chromedp.SendKeys(chromedp.CSS("#o-image"), "myrmex.local/nosuch:dash"), chromedp.Click(chromedp.CSS("#o-submit")))
	p.until(2*time.Minute, `document.getElementById('o-error')`, "document.querySelector('main').innerText")
	id := js[string](p, `decodeURIComponent(location.hash.split('/')[2])`)
	failed := e.wait(id, time.Minute)
	var eo containerization.ErrorObject
	if err := json.Unmarshal(failed.Error, &eo); failed.Kind != "optimize" || failed.State != state.JobFailed || err != nil {
		t.Fatalf("the job started from the form = %+v", failed)
	}
	if got := js[string](p, `document.getElementById('o-error').innerText`); got != eo.Message {
		t.Errorf("the page says %q, the job %q", got, eo.Message)
	}
	p.check("failed optimization")

	ph := e.tab(t, 390, 844)
	ph.signIn(e.tokens[state.ScopeRead])
	ph.open("#/optimizations/"+job.ID, "#o-size-chart")
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the optimization's page is %d px wider than the screen", w)
	}
	ph.open("#/optimizations", "#optimize-form")
	if !js[bool](ph, `document.getElementById('o-submit').disabled`) {
		t.Error("a read session may start an optimization")
	}
	ph.check("optimizations on a phone")
	ph.axe("optimizations on a phone")
}
