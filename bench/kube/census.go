package main

import (
	"bufio"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// census counts the API requests of one untimed run of a contender, by route. Myrmex's requests are counted by a
// transport under its client-go client, as they are sent (after client-go's rate limiter); kubectl's are read from
// its own request log (-v=6 writes one line per response).
type census struct {
	mu       sync.Mutex
	requests []request
}

type request struct {
	at    time.Time
	route string
}

func (c *census) add(route string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, request{at: time.Now(), route: route})
}

// routes is the number of requests per route.
func (c *census) routes() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for _, r := range c.requests {
		m[r.route]++
	}
	return m
}

// between counts the requests sent in [from, to).
func (c *census) between(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.requests {
		if !r.at.Before(from) && r.at.Before(to) {
			n++
		}
	}
	return n
}

// firstAt is when the first request of route was sent, or the zero time.
func (c *census) firstAt(route string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.requests {
		if r.route == route {
			return r.at
		}
	}
	return time.Time{}
}

// wrap is a rest.Config WrapTransport that counts every request.
func (c *census) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		c.add(route(r.Method, r.URL))
		return rt.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var (
	// kubectl -v=6 (structured): "Response" verb="GET" url="https://…" status="200 OK" milliseconds=3
	klogResponse = regexp.MustCompile(`"Response" verb="([A-Z]+)" url="([^"]+)"`)
	// older klog text: GET https://… 200 OK in 3 milliseconds
	klogText = regexp.MustCompile(`\] (GET|POST|PUT|PATCH|DELETE|HEAD) (https?://\S+) \d{3}`)
)

// addKubectlLog counts the requests of a kubectl -v=6 log.
func (c *census) addKubectlLog(log string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		m := klogResponse.FindStringSubmatch(sc.Text())
		if m == nil {
			m = klogText.FindStringSubmatch(sc.Text())
		}
		if m == nil {
			continue
		}
		u, err := url.Parse(m[2])
		if err != nil {
			continue
		}
		c.add(route(m[1], u))
		n++
	}
	return n
}

// route names a request without its namespace and object names: "GET /apis/apps/v1/namespaces/{ns}/deployments/{name}",
// with LIST and WATCH for reads of collections, and "(dry run)" for server-side dry runs.
func route(method string, u *url.URL) string {
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	var rest []string
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		rest = segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		rest = segs[3:]
	}
	collection := false
	switch {
	case len(rest) >= 3 && rest[0] == "namespaces": // namespaces/NS/resource[/name[/sub]]
		rest[1] = "{ns}"
		if len(rest) >= 4 {
			rest[3] = "{name}"
		}
		collection = len(rest) == 3
	case len(rest) == 2 && rest[0] == "namespaces":
		rest[1] = "{name}"
	case len(rest) >= 2:
		rest[1] = "{name}"
	case len(rest) == 1:
		collection = true
	}
	q := u.Query()
	verb := method
	switch {
	case method == http.MethodGet && q.Get("watch") == "true" || method == http.MethodGet && q.Get("watch") == "1":
		verb = "WATCH"
	case method == http.MethodGet && collection:
		verb = "LIST"
	}
	p := "/" + strings.Join(segs, "/")
	if strings.HasPrefix(p, "/openapi/") {
		p = "/openapi/…" // one schema per group version
	}
	s := verb + " " + p
	if q.Get("dryRun") != "" {
		s += " (dry run)"
	}
	return s
}

// formatRoutes lists routes by count, highest first, as "ROUTE ×N".
func formatRoutes(m map[string]int, per float64) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		if per > 0 {
			out[i] = fmt.Sprintf("`%s` ×%d (%.3g per Deployment)", k, m[k], float64(m[k])/per)
		} else {
			out[i] = fmt.Sprintf("`%s` ×%d", k, m[k])
		}
	}
	return out
}
