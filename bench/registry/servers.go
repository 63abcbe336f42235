package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/registry"
)

// distribution is a CNCF distribution server (Debian's docker-registry) on 127.0.0.1: plain HTTP, no
// authentication, filesystem storage in a directory of its own under the run's, deletion enabled.
type distribution struct {
	bin, parent, name string

	host    string // 127.0.0.1:PORT
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func startDistribution(ctx context.Context, bin, parent, name string) (*distribution, error) {
	d := &distribution{bin: bin, parent: parent, name: name}
	return d, d.start(ctx)
}

func (d *distribution) start(ctx context.Context) error {
	dir, err := os.MkdirTemp(d.parent, d.name+"-")
	if err != nil {
		return err
	}
	d.dir = dir
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.host = l.Addr().String()
	l.Close()
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	conf, err := json.Marshal(map[string]any{ // JSON is YAML
		"version": "0.1",
		"log":     map[string]any{"level": "warn", "formatter": "text"},
		"storage": map[string]any{
			"filesystem":  map[string]any{"rootdirectory": filepath.Join(dir, "data")},
			"delete":      map[string]any{"enabled": true},
			"maintenance": map[string]any{"uploadpurging": map[string]any{"enabled": false}},
		},
		"http": map[string]any{"addr": d.host, "secret": hex.EncodeToString(secret)},
	})
	if err != nil {
		return err
	}
	confFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		return err
	}
	logOut, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return err
	}
	// Not tied to ctx: the registry is stopped by its pid in stop, after the round that uses it.
	d.cmd = exec.Command(d.bin, "serve", confFile)
	d.cmd.Stdout, d.cmd.Stderr = logOut, logOut
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") { // they would override the configuration file
			d.cmd.Env = append(d.cmd.Env, kv)
		}
	}
	if err := d.cmd.Start(); err != nil {
		logOut.Close()
		return fmt.Errorf("starting %s: %w", d.bin, err)
	}
	d.exited = make(chan struct{})
	go func() {
		d.waitErr = d.cmd.Wait()
		logOut.Close()
		close(d.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-d.exited:
			return fmt.Errorf("registry %s exited before answering (%v): %s", d.name, d.waitErr, d.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + d.host + "/v2/")
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = resp.Status
	}
	return fmt.Errorf("registry %s at %s did not answer within 10s (last: %s): %s", d.name, d.host, last, d.logTail())
}

func (d *distribution) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "registry.log"))
	return benchkit.LastLines(b, 20)
}

// stop ends the server, by its pid (SIGTERM, then SIGKILL after 5s), and removes its storage.
func (d *distribution) stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
	return os.RemoveAll(d.dir)
}

// fresh replaces the server by an empty one on a new port, so that no client (dockerd's layer metadata
// included) knows any blob of it and every push uploads every blob.
func (d *distribution) fresh(ctx context.Context) error {
	if err := d.stop(); err != nil {
		return err
	}
	return d.start(ctx)
}

func (d *distribution) endpoint() registry.Endpoint {
	ep, err := registry.ParseEndpoint("http://"+d.host, "")
	if err != nil {
		panic(err) // 127.0.0.1:PORT always parses
	}
	return ep
}

// cpu is the CPU seconds the server has used since it started.
func (d *distribution) cpu() float64 {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	s, _ := procCPU(d.cmd.Process.Pid)
	return s
}
