package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// scaleKeys are the contenders of the scale part: Myrmex and kubectl's server-side apply, the peer doing the same
// work with the fewest requests.
var scaleKeys = []string{"myrmex", "kubectl-ssa"}

// scalePoint is the scale part at one number of Deployments.
type scalePoint struct {
	N          int           `json:"deployments"`
	Contenders []measurement `json:"contenders"`
}

// scale applies and waits for N Deployments at each -scale count, with Myrmex and with kubectl apply
// --server-side + rollout status: a census (every API request counted) and then the rounds, in a random order per
// round, each contender in a namespace of its own as in the main part.
func (b *bench) scale(ctx context.Context) ([]scalePoint, error) {
	var out []scalePoint
	for _, n := range b.cfg.scale {
		sb := *b
		sb.cfg.n, sb.names = n, nil
		sb.tmp = filepath.Join(b.tmp, fmt.Sprintf("scale-%d", n))
		if err := sb.setup(&report{}); err != nil {
			return nil, err
		}
		var cs []contender
		for _, c := range sb.contenders() {
			if slices.Contains(scaleKeys, c.key) {
				cs = append(cs, c)
			}
		}
		ms := make([]measurement, len(cs))
		keys := make([]string, len(cs))
		for i, c := range cs {
			ms[i] = measurement{Key: c.key, Title: c.title, How: c.how, Manager: c.manager, Processes: c.processes}
			keys[i] = c.key
			cen := &census{}
			d, _, err := sb.once(ctx, c, fmt.Sprintf("s%d-census", n), cen)
			if err != nil {
				return nil, fmt.Errorf("scale %d: census of %s: %w", n, c.title, err)
			}
			ms[i].CensusSeconds, ms[i].Routes = d, cen.routes()
			for _, r := range ms[i].Routes {
				ms[i].Requests += r
			}
			benchkit.Logf("scale %d census %-14s %6.2fs %5d requests", n, c.key, d, ms[i].Requests)
		}
		for r, order := range b.order.Rounds(fmt.Sprintf("scale %d", n), keys, b.cfg.scaleRounds) {
			for _, i := range order {
				d, o, err := sb.once(ctx, cs[i], fmt.Sprintf("s%d-r%d", n, r+1), nil)
				if err != nil {
					return nil, fmt.Errorf("scale %d, round %d of %s: %w", n, r+1, cs[i].title, err)
				}
				ms[i].add(d, o)
				benchkit.Logf("scale %d round %d %-14s %6.2fs", n, r+1, cs[i].key, d)
			}
		}
		out = append(out, scalePoint{N: n, Contenders: ms})
	}
	return out, nil
}

// figures draws the scale part: time and API requests against the number of Deployments.
func (r *report) figures() []benchkit.Figure {
	if len(r.Scale) == 0 {
		return nil
	}
	t := benchkit.Figure{Name: "scale-time", Title: "Apply and wait for N Deployments: time", XLabel: "Deployments (N)", YLabel: "median seconds"}
	q := benchkit.Figure{Name: "scale-requests", Title: "Apply and wait for N Deployments: API requests", XLabel: "Deployments (N)", YLabel: "API requests (census)"}
	for i, c := range r.Scale[0].Contenders {
		ts, qs := benchkit.Series{Name: c.Title}, benchkit.Series{Name: c.Title}
		for _, pt := range r.Scale {
			if i < len(pt.Contenders) {
				x := float64(pt.N)
				ts.X, ts.Y = append(ts.X, x), append(ts.Y, pt.Contenders[i].Median)
				qs.X, qs.Y = append(qs.X, x), append(qs.Y, float64(pt.Contenders[i].Requests))
			}
		}
		t.Series, q.Series = append(t.Series, ts), append(q.Series, qs)
	}
	return []benchkit.Figure{t, q}
}

func (r *report) scaleMarkdown(md *benchkit.Markdown) {
	if len(r.Scale) == 0 {
		return
	}
	p := md.P
	ns := make([]string, len(r.Scale))
	for i, pt := range r.Scale {
		ns[i] = fmt.Sprint(pt.N)
	}
	p("## Scale: %s Deployments", strings.Join(ns, ", "))
	p("")
	p("The same Deployments as above, N of them, applied and waited for by Myrmex and by `kubectl apply --server-side` + "+
		"`rollout status`: at each N a census (one untimed run, every API request counted), then %d rounds in a random order "+
		"drawn anew for every round; the median round.", r.ScaleRounds)
	p("")
	for _, f := range r.figures() {
		p("![%s](%s)", f.Title, benchkit.FigureFile("kube", r.Started, f.Name))
		p("")
	}
	p("| N | contender | rounds (s) | median (s) | noticed after (s) | API requests (census) |")
	p("|---:|---|---|---:|---:|---:|")
	for _, pt := range r.Scale {
		for _, x := range pt.Contenders {
			p("| %d | %s | %s | **%.2f** | %.2f | %d |", pt.N, x.Title, benchkit.Floats(x.Seconds, "%.2f", " "), x.Median, x.MedianNoticed, x.Requests)
		}
	}
	p("")
}
