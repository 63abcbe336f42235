package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// rawAPIVersion is the Engine API version the raw contender speaks: the oldest the engines Myrmex supports
// answer to, and what the brief asks for.
const rawAPIVersion = "v1.41"

// rawAPI is plain net/http over the engine socket: no client library, no version negotiation, no tracing. It is
// the floor for what any client can do, and the benchmark's own independent view of the engine, used to verify
// every contender's work and to clean up.
type rawAPI struct {
	hc   *http.Client
	base string // http://docker/v1.41
	host string
}

// newRawAPI connects to host (a unix:// or tcp:// address, as DOCKER_HOST writes it), keeping up to idle
// connections open so that a concurrent caller does not redial for every request.
func newRawAPI(host string, idle int) (*rawAPI, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("engine address %q: %w", host, err)
	}
	tr := &http.Transport{MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	base := "http://docker/" + rawAPIVersion
	switch u.Scheme {
	case "unix":
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", u.Path)
		}
	case "tcp", "http":
		base = "http://" + u.Host + "/" + rawAPIVersion
	default:
		return nil, fmt.Errorf("engine address %q: the raw API contender speaks unix:// and plain tcp:// only", host)
	}
	return &rawAPI{hc: &http.Client{Transport: tr}, base: base, host: host}, nil
}

// do sends one request and decodes a JSON answer into out (when not nil). Any status outside want is an error
// carrying the engine's message.
func (a *rawAPI) do(ctx context.Context, method, path string, body, out any, want ...int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	if !slices.Contains(want, res.StatusCode) {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, strings.TrimSpace(string(msg)))
	}
	if out != nil {
		return json.NewDecoder(res.Body).Decode(out)
	}
	_, err = io.Copy(io.Discard, res.Body)
	return err
}

// rawCreate is the body of POST /containers/create: the same container every contender makes.
type rawCreate struct {
	Image  string
	Cmd    []string
	Labels map[string]string
}

// cycle creates, starts, stops and removes one container, as four Engine API calls, and returns its ID.
func (a *rawAPI) cycle(ctx context.Context, name string, spec rawCreate, stopTimeout int) (string, error) {
	var created struct{ ID string }
	if err := a.do(ctx, http.MethodPost, "/containers/create?name="+url.QueryEscape(name), spec, &created, http.StatusCreated); err != nil {
		return "", err
	}
	id := created.ID
	if err := a.do(ctx, http.MethodPost, "/containers/"+id+"/start", nil, nil, http.StatusNoContent); err != nil {
		return id, err
	}
	if err := a.do(ctx, http.MethodPost, fmt.Sprintf("/containers/%s/stop?t=%d", id, stopTimeout), nil, nil, http.StatusNoContent); err != nil {
		return id, err
	}
	return id, a.do(ctx, http.MethodDelete, "/containers/"+id, nil, nil, http.StatusNoContent)
}

// listed is one line of GET /containers/json.
type listed struct {
	ID     string   `json:"Id"`
	Names  []string `json:"Names"`
	State  string   `json:"State"`
	Labels map[string]string
}

// list returns the containers, in every state, that carry label=value.
func (a *rawAPI) list(ctx context.Context, label, value string) ([]listed, error) {
	f, _ := json.Marshal(map[string][]string{"label": {label + "=" + value}})
	var out []listed
	err := a.do(ctx, http.MethodGet, "/containers/json?all=1&filters="+url.QueryEscape(string(f)), nil, &out, http.StatusOK)
	return out, err
}

// removeAll force-removes every container that carries label=value and returns how many it removed.
func (a *rawAPI) removeAll(ctx context.Context, label, value string) (int, error) {
	cs, err := a.list(ctx, label, value)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []string
	for _, c := range cs {
		err := a.do(ctx, http.MethodDelete, "/containers/"+c.ID+"?force=1&v=1", nil, nil, http.StatusNoContent, http.StatusNotFound)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("removing containers: %s", strings.Join(errs, "; "))
	}
	return n, nil
}
