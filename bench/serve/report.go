package main

import (
	"fmt"
	"strings"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

func markdown(r *report) string {
	var m benchkit.Markdown
	m.Lines(r.Intro("`myrmex serve`: the API over the library, and under load", "`make bench-serve`"))
	m.Lines(r.MachineTable("Machine", r.Machine.Host,
		fmt.Sprintf("| engine | %s |", r.Machine.Engine),
		fmt.Sprintf("| containers on the engine when the load started | %d, %d of them Myrmex's (what the container list lists), the run's one included |", r.Machine.Containers, r.Machine.MyrmexContainers),
		fmt.Sprintf("| server | `%s serve --listen 127.0.0.1:0 --state TMP/server.db` (SQLite state); %s |", r.Machine.Binary, builtBy(r.Machine)),
		fmt.Sprintf("| Go (this benchmark) | %s |", r.Machine.Go)))

	m.P("## The API's overhead over the library")
	m.P("")
	m.P("One running container (busybox, `sleep 3600`), read one call at a time: through a long-lived `containerization.Client` in this process, " +
		"and through `myrmex serve` over HTTP on loopback with a read token. Each call is timed alone, from the call to its decoded answer; " +
		"every answer is checked (the right container, running; one metrics sample of it with its memory figures) outside the time. " +
		"Untimed calls first: three per contender for inspect, one for metrics. Percentiles by nearest rank over every call of every round.")
	m.P("")
	m.P("| read | contender | how | calls | p50 (ms) | p99 (ms) | mean (ms) | max (ms) | p50 by round (ms) |")
	m.P("|---|---|---|---:|---:|---:|---:|---:|---|")
	for _, p := range r.Overhead {
		for _, x := range p.Rows {
			m.P("| %s | %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %s |", p.Name, x.Title, x.How, x.Calls, x.P50Ms, x.P99Ms, x.MeanMs, x.MaxMs,
				benchkit.Floats(x.RoundP50Ms, "%.2f", " "))
		}
	}
	m.P("")
	m.P("| ratio API / library | p50 | p99 | API − library at p50 |")
	m.P("|---|---:|---:|---:|")
	for _, p := range r.Overhead {
		m.P("| %s | **%.2f** | **%.2f** | %+.2f ms |", p.Name, p.RatioP50, p.RatioP99, p.DiffP50Ms)
	}
	m.P("")

	l := r.Load
	m.P("## Load: %d clients for %s, %d runs", l.Clients, fmtSeconds(l.DurationS), len(l.Runs))
	m.P("")
	mix := make([]string, len(l.Mix))
	total := 0
	for _, x := range l.Mix {
		total += x.Weight
	}
	for i, x := range l.Mix {
		mix[i] = fmt.Sprintf("%s `GET %s` %d/%d", x.Name, x.Path, x.Weight, total)
	}
	m.P("%d clients at once, %s. Each client draws its next read at random from the mix — %s — sends it with the read token, "+
		"reads and checks its answer, and goes on until the run's time is up (a request in flight then is finished and counted). "+
		"An error is any answer outside 2xx, any transport error, and any answer that does not check out (the wrong container, no "+
		"metrics, a list without the container, a job list without the %d jobs made before the load). Throughput counts good answers; "+
		"the times are theirs. The server's memory is read from /proc/PID/status %s after each run, the clients' connections closed.",
		l.Clients, l.Transport, strings.Join(mix, ", "), l.Jobs, fmtSeconds(l.SettleS))
	m.P("")
	m.P("| run | elapsed (s) | requests | errors | throughput (good answers/s) | p50 (ms) | p99 (ms) | max (ms) | server CPU (s) |")
	m.P("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, x := range l.Runs {
		m.P("| %d | %.1f | %d | %s | %.0f | %.2f | %.2f | %.1f | %.1f |", x.Run, x.ElapsedS, x.Requests, bold(x.Errors), x.Throughput,
			x.All.P50Ms, x.All.P99Ms, x.All.MaxMs, x.ServerCPU)
	}
	m.P("")
	m.P("By route:")
	m.P("")
	m.P("| run | route | requests | errors | good answers/s | p50 (ms) | p99 (ms) | max (ms) | share of the clients' time |")
	m.P("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, x := range l.Runs {
		for _, rt := range x.Routes {
			m.P("| %d | %s | %d | %s | %.0f | %.2f | %.2f | %.1f | %.0f %% |", x.Run, rt.Name, rt.Requests, bold(rt.Errors), rt.Throughput,
				rt.P50Ms, rt.P99Ms, rt.MaxMs, 100*rt.TimeShare)
		}
	}
	m.P("")
	m.P("### The server's memory")
	m.P("")
	m.P("| when | VmRSS (MiB) | VmHWM (MiB) | threads | open files | CPU since its start (s) |")
	m.P("|---|---:|---:|---:|---:|---:|")
	for _, s := range l.Memory {
		m.P("| %s | %.1f | %.1f | %d | %d | %.1f |", s.At, s.RSSMiB, s.HWMMiB, s.Threads, s.FDs, s.CPU)
	}
	m.P("")
	if len(l.Runs) > 1 {
		m.P("From the end of run 1 to the end of run %d: VmRSS **%+.1f MiB**, VmHWM **%+.1f MiB**.", len(l.Runs), l.RSSGrowth, l.HWMGrowth)
		m.P("")
	}
	m.P("### Errors")
	m.P("")
	errs := 0
	for _, x := range l.Runs {
		errs += x.Errors
	}
	if errs == 0 {
		m.P("None.")
	} else {
		for _, x := range l.Runs {
			if x.Errors == 0 {
				continue
			}
			kinds := make([]string, 0, len(x.ErrorKinds))
			for k, n := range x.ErrorKinds {
				kinds = append(kinds, fmt.Sprintf("%s × %d", k, n))
			}
			m.P("Run %d: %s. The first of them:", x.Run, strings.Join(kinds, "; "))
			m.P("")
			for _, e := range x.FirstErrors {
				m.P("- `%s`", strings.ReplaceAll(e, "`", "'"))
			}
			m.P("")
		}
	}
	m.P("")
	m.Lines(r.Order.Markdown())
	m.P("## Setup (not timed)")
	m.P("")
	m.P("%s.", benchkit.SetupList(r.Setup, 1))
	m.P("")
	m.Lines(benchkit.NotesSection(r.Notes))
	m.Lines(benchkit.ReproduceSection("make bench-serve",
		"# or, against an engine that is up and seeded:",
		"DOCKER_HOST=unix:///run/myrmex-test/docker.sock go run ./bench/serve"+seedFlag(r)))
	return m.String()
}

func builtBy(m machine) string {
	if m.Built {
		return fmt.Sprintf("built by this run from the commit measured; myrmex %s", m.Myrmex)
	}
	return fmt.Sprintf("given with -myrmex, not built by this run; myrmex %s", m.Myrmex)
}

func bold(n int) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("**%d**", n)
}

func fmtSeconds(s float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", s), ".0") + " s" }

func seedFlag(r *report) string { return fmt.Sprintf(" -seed %d", r.Order.Seed) }
