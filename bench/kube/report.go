package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// report is everything a results file holds; the JSON file is this struct.
type report struct {
	benchkit.Header
	Machine               machine              `json:"machine"`
	N                     int                  `json:"deployments"`
	Rounds                int                  `json:"rounds"`
	Image                 string               `json:"image"`
	Manifest              string               `json:"manifest"`
	Setup                 []benchkit.SetupStep `json:"setup"`
	Contenders            []measurement        `json:"contenders"`
	Ratios                []ratio              `json:"ratios"`
	Scale                 []scalePoint         `json:"scale,omitempty"`
	ScaleRounds           int                  `json:"scale_rounds,omitempty"`
	OtherNamespacesBefore []string             `json:"other_namespaces_before"`
	OtherNamespacesAfter  []string             `json:"other_namespaces_after"`
	Notes                 []string             `json:"notes,omitempty"`
	Command               string               `json:"command"`
}

type machine struct {
	benchkit.Host
	Server        string `json:"server"`
	ServerVersion string `json:"server_version"`
	Nodes         int    `json:"nodes"`
	NodesDetail   string `json:"nodes_detail"`
	Kubectl       string `json:"kubectl"`
	KubectlPath   string `json:"kubectl_path"`
	ClientGo      string `json:"myrmex_client_go"`
	GoVersion     string `json:"go_version"`
}

// measurement is one contender's rounds, where their time went, and its census.
type measurement struct {
	Key        string       `json:"key"`
	Title      string       `json:"title"`
	How        string       `json:"how"`
	Manager    string       `json:"field_manager"`
	Diagnostic bool         `json:"diagnostic"`
	Processes  int          `json:"processes_per_run"`
	Seconds    []float64    `json:"seconds"`
	Median     float64      `json:"median_seconds"`
	Phases     []phaseTimes `json:"phases"`
	// AllAvailable is when the benchmark's own watch saw the last Deployment rolled out, from the start; Noticed is
	// the wall time beyond that: how long the contender took to notice that the control plane was done.
	AllAvailable       []float64 `json:"all_available_seconds"`
	Noticed            []float64 `json:"noticed_after_seconds"`
	MedianAllAvailable float64   `json:"median_all_available_seconds"`
	MedianNoticed      float64   `json:"median_noticed_after_seconds"`
	// The census: one untimed run with every API request counted (kubectl at -v=6, which costs it a little).
	CensusSeconds float64        `json:"census_seconds,omitempty"`
	Requests      int            `json:"census_requests,omitempty"`
	Routes        map[string]int `json:"census_routes,omitempty"`
	CensusPhases  []phaseCount   `json:"census_phases,omitempty"`
}

type phaseTimes struct {
	Name    string    `json:"name"`
	Seconds []float64 `json:"seconds"`
	Median  float64   `json:"median_seconds"`
}

type phaseCount struct {
	Name     string  `json:"name"`
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
}

func (m *measurement) add(d float64, o outcome) {
	m.Seconds = append(m.Seconds, d)
	m.Median = benchkit.Median(m.Seconds)
	if o.allAvailable > 0 {
		m.AllAvailable = append(m.AllAvailable, o.allAvailable)
		m.Noticed = append(m.Noticed, d-o.allAvailable)
		m.MedianAllAvailable, m.MedianNoticed = benchkit.Median(m.AllAvailable), benchkit.Median(m.Noticed)
	}
	for i, p := range o.phases {
		if i == len(m.Phases) {
			m.Phases = append(m.Phases, phaseTimes{Name: p.name})
		}
		m.Phases[i].Seconds = append(m.Phases[i].Seconds, p.seconds)
		m.Phases[i].Median = benchkit.Median(m.Phases[i].Seconds)
	}
}

// ratio is one median wall time over another: below 1 the first is faster, above 1 slower.
type ratio struct {
	Name       string    `json:"name"`
	Diagnostic bool      `json:"diagnostic"`
	Value      float64   `json:"value"`
	PerRound   []float64 `json:"per_round"`
}

func describe(ctx context.Context, b *bench) machine {
	m := machine{Host: benchkit.ReadHost(), Server: b.c.Server(), GoVersion: runtime.Version(), KubectlPath: b.cfg.kubectl}
	// Built from k8s.io/kubernetes by scripts/kube.sh, the binaries carry no version stamp (/version says
	// v0.0.0-master): the module version in their build information is the release.
	m.Kubectl = moduleVersion(b.cfg.kubectl, "k8s.io/kubernetes")
	if v, err := b.c.Typed().Discovery().ServerVersion(); err == nil {
		m.ServerVersion = v.GitVersion
		if strings.HasPrefix(v.GitVersion, "v0.0.0") {
			if bv := moduleVersion(filepath.Join(filepath.Dir(b.cfg.kubectl), "kube-apiserver"), "k8s.io/kubernetes"); bv != "" {
				m.ServerVersion = bv + " (kube-apiserver's build information; /version says " + v.GitVersion + ")"
			}
		}
	}
	if nodes, err := b.c.Typed().CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		var d []string
		for _, n := range nodes.Items {
			ready := "NotReady"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready = "Ready"
				}
			}
			d = append(d, fmt.Sprintf("%s (%s, %s)", n.Name, n.Status.NodeInfo.KubeletVersion, ready))
		}
		m.Nodes, m.NodesDetail = len(nodes.Items), strings.Join(d, ", ")
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "k8s.io/client-go" {
				m.ClientGo = dep.Version
				if dep.Replace != nil {
					m.ClientGo = dep.Replace.Version
				}
			}
		}
	}
	return m
}

// moduleVersion is the version of module mod in a Go binary's build information, or "".
func moduleVersion(bin, mod string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return ""
	}
	if bi.Main.Path == mod {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == mod {
			return d.Version
		}
	}
	return ""
}

func (r *report) finish() {
	r.Command = "go run ./bench/kube"
	if r.N != 50 {
		r.Command += fmt.Sprintf(" -n %d", r.N)
	}
	if r.Rounds != 3 {
		r.Command += fmt.Sprintf(" -rounds %d", r.Rounds)
	}
	if others := append(slices.Clone(r.OtherNamespacesBefore), r.OtherNamespacesAfter...); len(others) > 0 {
		slices.Sort(others)
		r.Notes = append(r.Notes, fmt.Sprintf("Other namespaces were on the API server during the run (%s before, %s after): "+
			"someone else's work (tests, say) may have shared the control plane.", list(r.OtherNamespacesBefore), list(r.OtherNamespacesAfter)))
	}
	r.Notes = append(r.Notes, r.waitNote()...)
	add := func(num, den, name string, diagnostic bool) {
		a, b := r.find(num), r.find(den)
		if a == nil || b == nil {
			return
		}
		r.Ratios = append(r.Ratios, ratio{Name: name, Diagnostic: diagnostic, Value: a.Median / b.Median, PerRound: benchkit.PerRound(a.Seconds, b.Seconds)})
	}
	add("myrmex", "kubectl-csa", "Myrmex / kubectl apply + rollout status", false)
	add("myrmex", "kubectl-ssa", "Myrmex / kubectl apply --server-side + rollout status", false)
	add("myrmex-noqps", "kubectl-csa", "Myrmex, QPS limit lifted / kubectl apply + rollout status", true)
	add("myrmex-noqps", "kubectl-ssa", "Myrmex, QPS limit lifted / kubectl apply --server-side + rollout status", true)
	add("myrmex-noqps", "myrmex", "Myrmex, QPS limit lifted / Myrmex defaults", true)
}

// waitNote says, from the census, what Myrmex's wait cost: its requests, by route and per Deployment, and their rate
// with the defaults and with the rate limit lifted, and how long each contender took to notice the end of the
// rollout. It says nothing of how the library waits: the figures do.
func (r *report) waitNote() []string {
	m := r.find("myrmex")
	if m == nil || m.Requests == 0 || len(m.CensusPhases) != 3 {
		return nil
	}
	wait := func(m *measurement) string {
		w := m.CensusPhases[2]
		return fmt.Sprintf("%d requests (%.3g per Deployment) in %.2f s, %.0f requests/s", w.Requests, float64(w.Requests)/float64(r.N),
			w.Seconds, float64(w.Requests)/w.Seconds)
	}
	pre := m.CensusPhases[0].Requests + m.CensusPhases[1].Requests
	note := fmt.Sprintf("In the census run, Myrmex's wait (after the %d requests of the preflight and the applies) made %s, "+
		"with the library's defaults.", pre, wait(m))
	if d := r.find("myrmex-noqps"); d != nil && len(d.CensusPhases) == 3 {
		note += fmt.Sprintf(" With the rate limit lifted (diagnostic): %s.", wait(d))
	}
	if len(m.Noticed) > 0 {
		note += fmt.Sprintf(" Myrmex noticed the end of the rollout %.2f s (median) after the benchmark's watch saw it", m.MedianNoticed)
		for _, k := range []string{"kubectl-csa", "kubectl-ssa", "myrmex-noqps"} {
			if c := r.find(k); c != nil && len(c.Noticed) > 0 {
				note += fmt.Sprintf("; %s %.2f s", c.Title, c.MedianNoticed)
			}
		}
		note += "."
	}
	return []string{note}
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func (r *report) find(key string) *measurement {
	for i := range r.Contenders {
		if r.Contenders[i].Key == key {
			return &r.Contenders[i]
		}
	}
	return nil
}

func (r *report) printTable(w io.Writer) {
	fmt.Fprintf(w, "%s\n%s\n\n", r.Source.Summary(), r.Order.Summary())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "contender\tmedian s\trounds\tall rolled out (watch) s\tnoticed after s\tcensus requests")
	for _, c := range r.Contenders {
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%.2f\t%.2f\t%d\n", c.Title, c.Median, benchkit.Floats(c.Seconds, "%.2f", ", "),
			c.MedianAllAvailable, c.MedianNoticed, c.Requests)
	}
	tw.Flush()
	for _, c := range r.Contenders {
		for _, p := range c.Phases {
			fmt.Fprintf(w, "  %-22s %-95s %6.2f s\n", c.Key, p.Name, p.Median)
		}
	}
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "%-90s %.2f  (%s)\n", x.Name, x.Value, benchkit.Floats(x.PerRound, "%.2f", ", "))
	}
}

func (r *report) markdown() string {
	var md benchkit.Markdown
	p := md.P
	m := r.Machine
	md.Lines(r.Intro("Kubernetes benchmark", fmt.Sprintf("`%s` against a running control plane (`scripts/kube.sh up`), or `make bench-kube`", r.Command)))
	md.Lines(r.MachineTable("Machine", m.Host,
		fmt.Sprintf("| API server | Kubernetes %s at %s, with etcd, controller manager and scheduler of scripts/kube.sh on the same machine |", m.ServerVersion, m.Server),
		fmt.Sprintf("| nodes | %d KWOK nodes: %s |", m.Nodes, m.NodesDetail),
		fmt.Sprintf("| kubectl | %s, %s |", m.Kubectl, m.KubectlPath),
		fmt.Sprintf("| Myrmex's client-go | %s |", m.ClientGo),
		fmt.Sprintf("| Go | %s |", m.GoVersion)))
	p("## Workload")
	p("")
	p("%d Deployments of one replica each, `web-001` to `web-%03d`, one manifest file each in one directory; every contender "+
		"applies all of them to a namespace of its own and waits until every one is rolled out. The namespace (and its default "+
		"service account) is made before the timer starts and deleted, waiting until it is gone, after the verification. KWOK "+
		"marks a pod ready about a second after it is scheduled; nothing is pulled or run. %d rounds, the contenders in a random "+
		"order drawn anew for every round (seed %d, below); the median is reported with every round.", r.N, r.N, r.Rounds, r.Order.Seed)
	p("")
	p("```yaml")
	p("%s```", r.Manifest)
	p("")
	p("Untimed setup: %s; per run, a namespace made and, after, deleted.", benchkit.SetupList(r.Setup, 2))
	p("")
	p("## Results")
	p("")
	p("Wall time from the start (kubectl's first process, or reading the manifests and making the client) to every Deployment rolled out. " +
		"*All rolled out, seen by a watch* is when the benchmark's own watch of the namespace (opened before the start) saw the last " +
		"Deployment rolled out: the control plane's part, the same work for every contender. *Noticed after* is the wall time beyond " +
		"it: how long the contender took to see that the control plane was done. Rows marked *diagnostic* change a Myrmex default " +
		"to find where its time goes; they are not what a user of the library gets.")
	p("")
	p("| contender | how | rounds (s) | median (s) | ms/Deployment | all rolled out, seen by a watch: rounds (s) | noticed after: rounds (s) | processes | API requests (census) |")
	p("|---|---|---|---:|---:|---|---|---:|---:|")
	for _, c := range r.Contenders {
		procs := "in-process"
		if c.Processes > 0 {
			procs = fmt.Sprint(c.Processes)
		}
		p("| %s | %s | %s | **%.2f** | %.0f | %s | %s | %s | %d |", c.Title, c.How, benchkit.Floats(c.Seconds, "%.2f", " "), c.Median,
			1000*c.Median/float64(r.N), benchkit.Floats(c.AllAvailable, "%.2f", " "), benchkit.Floats(c.Noticed, "%.2f", " "), procs, c.Requests)
	}
	p("")
	p("### Where the time goes")
	p("")
	p("| contender | phase | rounds (s) | median (s) | API requests (census) |")
	p("|---|---|---|---:|---:|")
	for _, c := range r.Contenders {
		for i, ph := range c.Phases {
			req := "–"
			if i < len(c.CensusPhases) {
				req = fmt.Sprint(c.CensusPhases[i].Requests)
			}
			p("| %s | %s | %s | %.2f | %s |", c.Key, ph.Name, benchkit.Floats(ph.Seconds, "%.2f", " "), ph.Median, req)
		}
	}
	p("")
	p("### API requests")
	p("")
	p("Counted in one untimed run of each contender before the rounds (Myrmex: a counting transport under its client-go client; "+
		"kubectl: its own request log at -v=6), by route, with the count per Deployment. `LIST` and `WATCH` are reads of a "+
		"collection; kubectl's watches stay open until the rollout is complete. %d Deployments.", r.N)
	p("")
	for _, c := range r.Contenders {
		if c.Requests == 0 {
			continue
		}
		p("- **%s**, %d requests (census run %.2f s): %s", c.Title, c.Requests, c.CensusSeconds, strings.Join(formatRoutes(c.Routes, float64(r.N)), ", "))
	}
	p("")
	r.scaleMarkdown(&md)
	md.Lines(r.Order.Markdown())
	p("## Verification")
	p("")
	p("After every run (census and rounds), the benchmark listed the namespace's Deployments with its own client: exactly the " +
		"workload's, each with `spec.replicas` 1, its generation observed, one ready, available and updated replica, and managed " +
		"fields of the contender's field manager (`kubectl-client-side-apply`, `kubectl`, `myrmex`). kubectl's apply had to report " +
		"every object created or serverside-applied and every `rollout status` \"successfully rolled out\"; Myrmex's Apply had to " +
		"return without error with every Deployment created. Any failure fails the benchmark: all runs passed.")
	p("")
	p("## Ratios")
	p("")
	p("Median wall time over median wall time: below 1 the first is faster, above 1 slower.")
	p("")
	p("| ratio | diagnostic | of the medians | round by round |")
	p("|---|---|---:|---|")
	for _, x := range r.Ratios {
		p("| %s | %v | **%.2f** | %s |", x.Name, x.Diagnostic, x.Value, benchkit.Floats(x.PerRound, "%.2f", " "))
	}
	p("")
	md.Lines(benchkit.NotesSection(r.Notes))
	md.Lines(benchkit.ReproduceSection("make bench-kube            # starts the control plane if it is not up, and stops it after only if it started it",
		r.Command+"        # against a control plane that is up (scripts/kube.sh up)"))
	return md.String()
}
