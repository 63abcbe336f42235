package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// The Deployments section in a real Chromium, on the test control plane (KWOK nodes: pods run): a Deployment
// applied twice through the API (two revisions); the namespace's list as the API lists it; the application's
// pods and revisions; scaled from 1 to 3 from the page, the rollout followed until the three pods run and are
// ready; rolled back to revision 1 from the page after a confirmation, the revision and image changing as the
// API says; a read session on a phone can change nothing and nothing is wider than the screen; axe-core and no
// script error on every page.
func TestDashboardDeployments(t *testing.T) {
	kubeconfig, kc := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, kc)
	e := newEnvWith(t, containerization.Config{Kubeconfig: kubeconfig, Host: "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")})
	manifest := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(manifest, []byte(webManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"registry.local/web:1", "registry.local/web:2"} {
		st, body := e.do(state.ScopeOperate, "POST", "/v1/kubernetes/deployments", map[string]any{"deployment_name": "web",
			"manifest_path": manifest, "namespace": ns, "image": image, "wait": true, "timeout": "2m"})
		if job := e.wait(e.submitted("POST", "/v1/kubernetes/deployments", st, body).ID, 3*time.Minute); job.State != state.JobSucceeded {
			t.Fatalf("apply of %s = %+v %s", image, job, job.Error)
		}
	}
	base := "/v1/kubernetes/deployments/" + ns + "/web"
	get := func() containerization.KubernetesDeployment {
		t.Helper()
		st, body := e.do(state.ScopeRead, "GET", base, nil)
		var d containerization.KubernetesDeployment
		if err := json.Unmarshal(body, &d); st != 200 || err != nil {
			t.Fatalf("GET %s = %d %s", base, st, body)
		}
		return d
	}

	p := e.tab(t, 1280, 900)
	p.signIn(e.tokens[state.ScopeOperate])

	// The namespace's applications, as the API lists them; the namespace chosen in the selector.
	p.open("#/deployments/"+ns, `#deployments tr[data-name="web"]`)
	st, body := e.do(state.ScopeRead, "GET", "/v1/kubernetes/deployments?namespace="+ns, nil)
	var list server.DeploymentList
	if err := json.Unmarshal(body, &list); st != 200 || err != nil || len(list.Deployments) != 1 {
		t.Fatalf("list = %d %s", st, body)
	}
	d := list.Deployments[0]
	row := js[string](p, `document.querySelector('#deployments tr[data-name="web"]').innerText`)
	for _, want := range []string{d.Status, fmt.Sprintf("%d/%d", d.ReadyReplicas, d.Replicas), d.Image, "1 Running", fmt.Sprint(d.Revision)} {
		if !strings.Contains(row, want) {
			t.Errorf("the row of web reads %q; want %q in it (the API: %+v)", row, want, d)
		}
	}
	if got := js[string](p, `document.getElementById('namespace').value`); got != ns {
		t.Errorf("the namespace selector reads %q, want %s", got, ns)
	}
	p.check("deployments")
	p.axe("deployments")
	p.shot("dashboard-deployments")

	// The application: its pods and revisions.
	p.do(chromedp.Click(chromedp.CSS(`#deployments tr[data-name="web"] a`)))
	p.until(30*time.Second, `document.querySelectorAll('#revisions tr[data-revision]').length === 2 && document.querySelectorAll('#pods tr[data-pod]').length === 1`,
		"document.querySelector('main').innerText")
	if cur := js[[]string](p, `[...document.querySelectorAll('#revisions tr[data-current="true"]')].map((r) => r.dataset.revision)`); !slices.Equal(cur, []string{fmt.Sprint(d.Revision)}) {
		t.Errorf("the current revision shown = %v, want %d", cur, d.Revision)
	}
	p.check("deployment")
	p.axe("deployment")

	// Scale from 1 to 3 from the page: the rollout is followed until three pods run, ready.
	p.do(chromedp.SetValue(chromedp.CSS("#replicas"), "3"), chromedp.Click(chromedp.CSS("#scale")))
	p.until(2*time.Minute, `document.getElementById('rollout').dataset.state === 'settled'`, "document.getElementById('rollout').innerText")
	shownPods := js[[]string](p, `[...document.querySelectorAll('#pods tr[data-phase="Running"][data-ready="true"]')].map((r) => r.dataset.pod)`)
	now := get()
	var apiPods []string
	for _, pod := range now.Pods {
		if pod.Phase == "Running" && pod.Ready {
			apiPods = append(apiPods, pod.Name)
		}
	}
	if now.Replicas != 3 || len(shownPods) != 3 || !slices.Equal(shownPods, apiPods) {
		t.Errorf("after Scale to 3 the page shows the running pods %v; the API: %d replicas, running %v", shownPods, now.Replicas, apiPods)
	}
	if text := js[string](p, `document.getElementById('rollout').innerText`); !strings.Contains(text, "3 of 3 ready") {
		t.Errorf("the rollout reads %q", text)
	}
	p.check("scaled")
	p.axe("scaled")
	js[any](p, `(() => { document.getElementById('pods-h').scrollIntoView(); return null; })()`)
	p.shot("dashboard-deployment")

	// Roll back to revision 1 from the page: a confirmation, then the revision and image change.
	p.do(chromedp.Click(chromedp.CSS(`button[data-rollback="1"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	if q := js[string](p, `document.getElementById('confirm-text').innerText`); !strings.Contains(q, "revision 1") || !strings.Contains(q, "registry.local/web:1") {
		t.Errorf("the confirmation reads %q", q)
	}
	p.axe("rollback confirmation")
	p.do(chromedp.Click(chromedp.CSS("#confirm-ok")))
	p.until(2*time.Minute, `document.getElementById('rollout').dataset.state === 'settled' && document.getElementById('revision').innerText !== `+jsString(fmt.Sprint(d.Revision)),
		"document.getElementById('rollout').innerText + ' revision ' + document.getElementById('revision').innerText")
	now = get()
	if now.Image != "registry.local/web:1" || now.Revision == d.Revision {
		t.Fatalf("after the rollback the API says image %s, revision %d; want web:1 and a new revision", now.Image, now.Revision)
	}
	p.until(20*time.Second, `document.getElementById('revision').innerText === `+jsString(fmt.Sprint(now.Revision))+
		` && document.querySelector('#revisions tr[data-current="true"]').dataset.revision === `+jsString(fmt.Sprint(now.Revision)),
		"document.getElementById('revision').innerText")
	if img := js[string](p, `document.getElementById('facts').innerText`); !strings.Contains(img, "registry.local/web:1") {
		t.Errorf("after the rollback the workload reads %q", img)
	}
	p.check("rolled back")

	// An address holding markup: shown as the name it asks for, never run.
	p.open("#/deployments/"+ns+"/"+`%3Cimg%20src%3Dx%20onerror%3D%22window.__xss%3D1%22%3E`, "main [role=alert]")
	p.until(10*time.Second, `document.querySelector('main').innerText.includes('<img src=x onerror="window.__xss=1">')`, "document.querySelector('main').innerText")
	if n := js[int](p, `document.querySelectorAll('main img, main script').length`); n != 0 || js[bool](p, `window.__xss !== undefined`) {
		t.Errorf("markup in the address became %d elements", n)
	}
	p.check("markup")

	// A read session on a phone: nothing it can change, nothing wider than the screen.
	ph := e.tab(t, 390, 844)
	ph.signIn(e.tokens[state.ScopeRead])
	ph.open("#/deployments/"+ns+"/web", `#pods tr[data-pod]`)
	if n := js[int](ph, `[...document.querySelectorAll('main button, main input')].filter((b) => !b.disabled).length`); n != 0 {
		t.Errorf("a read session has %d enabled controls", n)
	}
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the deployment's page is %d px wider than the screen", w)
	}
	ph.shot("dashboard-deployment-phone")
	ph.check("phone deployment")
	ph.axe("phone deployment")
	ph.open("#/deployments/"+ns, `#deployments tr[data-name="web"]`)
	if w := js[int](ph, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a phone the list is %d px wider than the screen", w)
	}
	ph.check("phone deployments")
}
