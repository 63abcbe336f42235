package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/kube"
)

// Field managers the verification expects on every Deployment a contender applied.
const (
	kubectlCSAManager = "kubectl-client-side-apply"
	kubectlSSAManager = "kubectl"
	myrmexManager     = kube.DefaultFieldManager
)

// appName is the application the Myrmex contenders apply the N Deployments as.
const appName = "bench"

// contender is one way of applying the N manifests and waiting until every Deployment is rolled out.
type contender struct {
	key, title, how string
	manager         string // the field manager its Deployments must carry
	diagnostic      bool   // not a default configuration: reported apart, not in the headline ratios
	processes       int    // processes it starts per run
	run             func(ctx context.Context, ns string, cen *census) (outcome, error)
}

// outcome is what one run of a contender reports besides its wall time.
type outcome struct {
	phases       []phase
	allAvailable float64 // seconds from the start until the benchmark's watch saw the last Deployment rolled out; 0: unknown
}

// phase is a part of a run: its name, its seconds and (in the census) its requests.
type phase struct {
	name     string
	seconds  float64
	requests int
}

func (b *bench) contenders() []contender {
	cs := []contender{
		b.kubectlContender("kubectl-csa", "kubectl apply + rollout status", false),
		b.kubectlContender("kubectl-ssa", "kubectl apply --server-side + rollout status", true),
		{
			key: "myrmex", title: "Myrmex library, one Apply with Wait", manager: myrmexManager,
			how: fmt.Sprintf("kube.ReadManifests(DIR); kube.New(Config{Kubeconfig}); Client.Apply(ctx, objs, ApplyOptions{Name: %q, "+
				"Namespace: NS, Wait: true, Timeout}): the library's defaults (client QPS and Burst, concurrency; the wait watches)", appName),
			run: b.myrmexRun(kube.Config{}),
		},
	}
	if b.cfg.diagnose {
		lifted := kube.Config{QPS: 10000, Burst: 10000}
		cs = append(cs,
			contender{
				key: "myrmex-noqps", title: "Myrmex library, QPS limit lifted (diagnostic)", manager: myrmexManager, diagnostic: true,
				how: "the same with Config{QPS: 10000, Burst: 10000}: client-go's client-side rate limiter out of the way",
				run: b.myrmexRun(lifted),
			},
		)
	}
	return cs
}

// kubectlContender is `kubectl apply -f DIR` (server-side or not) followed by `kubectl rollout status` for each
// Deployment in turn, one process each, as a user's script does:
//
//	kubectl apply [--server-side] -f DIR -n NS && for d in …; do kubectl rollout status deployment/$d -n NS; done
func (b *bench) kubectlContender(key, title string, serverSide bool) contender {
	apply := []string{"apply", "-f", b.manifests}
	manager, verb := kubectlCSAManager, "created"
	if serverSide {
		apply = []string{"apply", "--server-side", "-f", b.manifests}
		manager, verb = kubectlSSAManager, "serverside-applied"
	}
	return contender{
		key: key, title: title, manager: manager, processes: 1 + b.cfg.n,
		how: fmt.Sprintf("`kubectl %s -n NS`, then `kubectl rollout status deployment/NAME -n NS --timeout=%s` for each of the %d, one after the other",
			strings.Join(apply[:len(apply)-1], " ")+" DIR", b.cfg.timeout, b.cfg.n),
		run: func(ctx context.Context, ns string, cen *census) (outcome, error) {
			t0 := time.Now()
			out, err := b.kubectl(ctx, cen, append(apply, "-n", ns)...)
			if err != nil {
				return outcome{}, err
			}
			if got := strings.Count(out, " "+verb+"\n"); got != b.cfg.n {
				return outcome{}, fmt.Errorf("kubectl apply reported %d objects %s, want %d:\n%s", got, verb, b.cfg.n, benchkit.LastLines([]byte(out), 5))
			}
			t1 := time.Now()
			for _, name := range b.names {
				out, err := b.kubectl(ctx, cen, "rollout", "status", "deployment/"+name, "-n", ns, "--timeout="+b.cfg.timeout.String())
				if err != nil {
					return outcome{}, err
				}
				if !strings.Contains(out, "successfully rolled out") {
					return outcome{}, fmt.Errorf("kubectl rollout status deployment/%s: %s", name, strings.TrimSpace(out))
				}
			}
			t2 := time.Now()
			o := outcome{phases: []phase{
				{name: "kubectl apply", seconds: t1.Sub(t0).Seconds()},
				{name: fmt.Sprintf("%d × kubectl rollout status", b.cfg.n), seconds: t2.Sub(t1).Seconds()},
			}}
			if cen != nil {
				o.phases[0].requests, o.phases[1].requests = cen.between(t0, t1), cen.between(t1, t2)
			}
			return o, nil
		},
	}
}

// kubectl runs kubectl against the control plane and returns its stdout. With a census, it runs at -v=6 and its
// request log is counted.
func (b *bench) kubectl(ctx context.Context, cen *census, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", b.cfg.kubeconfig}, args...)
	if cen != nil {
		args = append(args, "-v=6")
	}
	cmd := exec.CommandContext(ctx, b.cfg.kubectl, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cen != nil {
		cen.addKubectlLog(stderr.String())
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(b.cfg.kubectl), strings.Join(args[2:], " "), err,
			benchkit.LastLines(append(stdout.Bytes(), stderr.Bytes()...), 10))
	}
	return stdout.String(), nil
}

// myrmexRun is one Apply of the N objects as one application, with Wait, from reading the manifests and making
// the client (which discovers the API) to every object ready.
func (b *bench) myrmexRun(kc kube.Config) func(ctx context.Context, ns string, cen *census) (outcome, error) {
	return func(ctx context.Context, ns string, cen *census) (outcome, error) {
		var firstApply, lastApply time.Time
		applied := 0
		progress := func(e kube.Event) {
			if e.Phase == "apply" && strings.HasPrefix(e.Object, "deployment.apps/") {
				if firstApply.IsZero() {
					firstApply = e.Time
				}
				lastApply = e.Time
				applied++
			}
		}
		t0 := time.Now()
		objs, err := kube.ReadManifests(b.manifests, nil)
		if err != nil {
			return outcome{}, err
		}
		var c *kube.Client
		kc.Kubeconfig = b.cfg.kubeconfig
		if cen == nil {
			c, err = kube.New(kc)
		} else {
			// The same client kube.New makes, with a counting transport.
			rc, rerr := clientcmd.BuildConfigFromFlags("", b.cfg.kubeconfig)
			if rerr != nil {
				return outcome{}, rerr
			}
			rc.Wrap(cen.wrap)
			c, err = kube.NewForConfig(rc, "default", kc)
		}
		if err != nil {
			return outcome{}, err
		}
		res, err := c.Apply(ctx, objs, kube.ApplyOptions{Name: appName, Namespace: ns, Wait: true, Timeout: b.cfg.timeout, Progress: progress})
		t3 := time.Now()
		if err != nil {
			return outcome{}, err
		}
		created := 0
		for _, ch := range res.Changes {
			if ch.Kind == "Deployment" && ch.Action == "created" {
				created++
			}
		}
		if created != b.cfg.n || applied != b.cfg.n {
			return outcome{}, fmt.Errorf("Apply reported %d Deployments created (%d apply events), want %d", created, applied, b.cfg.n)
		}
		o := outcome{phases: []phase{
			{name: "to the first object applied: read, discovery, preflight (a LIST per kind, a dry-run PATCH each), inventory", seconds: firstApply.Sub(t0).Seconds()},
			{name: "applying the objects", seconds: lastApply.Sub(firstApply).Seconds()},
			{name: "waiting (LIST and WATCH of the Deployments and pods)", seconds: t3.Sub(lastApply).Seconds()},
		}}
		if cen != nil {
			// The applies are sent eight at a time, so the first is answered after several were sent: requests are
			// counted from the first apply (not dry run) of a Deployment sent.
			t1 := cen.firstAt("PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}")
			t2 := lastApply.Add(time.Nanosecond)
			o.phases[0].requests = cen.between(t0, t1)
			o.phases[1].requests = cen.between(t1, t2)
			o.phases[2].requests = cen.between(t2, t3)
		}
		return o, nil
	}
}

// measure runs the census (one untimed run of every contender, its requests counted), then the rounds: every
// contender once per round in a random order of the round's own (b.order), each in a fresh namespace made before and
// deleted after.
func (b *bench) measure(ctx context.Context, rep *report) error {
	cs := b.contenders()
	rep.Contenders = make([]measurement, len(cs))
	for i, c := range cs {
		rep.Contenders[i] = measurement{Key: c.key, Title: c.title, How: c.how, Manager: c.manager, Diagnostic: c.diagnostic, Processes: c.processes}
	}
	if b.cfg.census {
		for i, c := range cs {
			cen := &census{}
			d, o, err := b.once(ctx, c, "census", cen)
			if err != nil {
				return fmt.Errorf("census of %s: %w", c.title, err)
			}
			m := &rep.Contenders[i]
			m.CensusSeconds = d
			m.Routes = cen.routes()
			for _, r := range m.Routes {
				m.Requests += r
			}
			for _, p := range o.phases {
				m.CensusPhases = append(m.CensusPhases, phaseCount{Name: p.name, Seconds: p.seconds, Requests: p.requests})
			}
			benchkit.Logf("census %-22s %6.2fs %5d requests", c.key, d, m.Requests)
		}
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	for r, order := range b.order.Rounds("kube", keys, b.cfg.rounds) {
		for _, i := range order {
			d, o, err := b.once(ctx, cs[i], fmt.Sprintf("r%d", r+1), nil)
			if err != nil {
				return fmt.Errorf("round %d of %s: %w", r+1, cs[i].title, err)
			}
			rep.Contenders[i].add(d, o)
			benchkit.Logf("round %d %-22s %6.2fs", r+1, cs[i].key, d)
		}
	}
	return nil
}

// once runs a contender in a namespace of its own, made before the timer starts and deleted (waiting until it is
// gone) after the verification.
func (b *bench) once(ctx context.Context, c contender, round string, cen *census) (float64, outcome, error) {
	ns := b.namespace(c.key, round)
	if err := b.createNamespace(ctx, ns); err != nil {
		return 0, outcome{}, err
	}
	obs, err := b.observe(ctx, ns)
	if err != nil {
		return 0, outcome{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	t := time.Now()
	o, err := c.run(rctx, ns, cen)
	d := time.Since(t).Seconds()
	cancel()
	last, seen := obs.stop()
	if err == nil {
		err = b.verify(ctx, ns, c.manager)
	}
	if err == nil && seen != b.cfg.n {
		// Verified rolled out, yet the watch missed some: it ended early. The time is good, the floor unknown.
		benchkit.Logf("%s: the benchmark's watch saw %d of %d Deployments rolled out; no control-plane time for this run", ns, seen, b.cfg.n)
	} else if err == nil {
		o.allAvailable = last.Sub(t).Seconds()
	}
	// Deleted with a context of its own, so that an interrupt still removes the namespace.
	dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer dcancel()
	if derr := b.deleteNamespace(dctx, ns); err == nil {
		err = derr
	}
	return d, o, err
}
