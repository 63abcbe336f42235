//go:build linux

package sensor

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// R2-10. lookupUser (sensor_linux.go:336) is meant to resolve USER "the way the engine does", but differs from
// moby/sys/user (what dockerd uses) wherever the files are unusual, so the profiled program runs under another
// identity than the real one, or the profiling run fails where docker runs the image:
//   - one pass matches the name OR the UID field as a string: USER "1000" takes a line named "1000" (UID 0 here);
//   - "01000" is not matched against UID 1000's line: the program runs with GID 0 instead of 1000;
//   - lines are not trimmed, and need 6 fields: " app:…" and "app:x:1000:1000" are "no user app";
//   - readDB's bufio.Scanner stops silently at a line over 64 KiB (a large group): groups after it do not exist.
func TestHostileLookupUserAsTheEngine(t *testing.T) {
	dir := t.TempDir()
	passwdFile, groupFile = filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	t.Cleanup(func() { passwdFile, groupFile = "/etc/passwd", "/etc/group" })
	big := "big:x:5000:" + strings.Repeat("u", 70<<10)
	write := func(passwd, group string) {
		_ = os.WriteFile(passwdFile, []byte(passwd), 0o644)
		_ = os.WriteFile(groupFile, []byte(group), 0o644)
	}
	write("root:x:0:0:root:/root:/bin/sh\n1000:x:0:0::/:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n  short:x:1001:1001\n",
		"root:x:0:\n"+big+"\napp:x:1000:\nstaff:x:50:short\n")
	for _, c := range []struct {
		spec     string
		uid, gid int
		groups   []int
	}{
		{"1000", 1000, 1000, nil},
		{"01000", 1000, 1000, nil},
		{"short", 1001, 1001, []int{50}},
		{"app:staff", 1000, 50, nil},
	} {
		id, err := lookupUser(c.spec)
		if err != nil || id.uid != c.uid || id.gid != c.gid {
			t.Errorf("USER %q: uid %d gid %d, %v; the engine runs it as %d:%d", c.spec, id.uid, id.gid, err, c.uid, c.gid)
			continue
		}
		for _, g := range c.groups {
			if !slices.Contains(id.groups, g) {
				t.Errorf("USER %q: groups %v, want %d among them", c.spec, id.groups, g)
			}
		}
	}
}

// R2-11. httpProbe records the client's error whole: net/http quotes a malformed status line (up to 10 MiB) in it,
// and the error of a URL after the first is kept as it is, so one answer makes the JSON longer than probe.go reads (len(checks)*8*MaxBody+4096, probe.go:464): the probe
// ends with "unexpected end of JSON input" instead of a failed check.
func TestHostileHTTPErrorBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req := make([]byte, 4096)
				n, _ := c.Read(req)
				if strings.HasPrefix(string(req[:n]), "GET /ok ") {
					_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
					return
				}
				_, _ = c.Write([]byte("XYZ" + strings.Repeat("\x01", 1<<20) + "\r\n\r\n"))
			}()
		}
	}()
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	httpProbe([]string{"--timeout", "5s", "http://" + ln.Addr().String() + "/ok", "http://" + ln.Addr().String() + "/bad"})
	os.Stdout = stdout
	w.Close()
	out := <-done
	var res []HTTPResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil || len(res) != 2 || res[1].Error == "" {
		t.Fatalf("output %d bytes: %v", len(out), err)
	}
	if limit := 2*8*MaxBody + 4096; len(out) > limit {
		t.Errorf("one answer is %d bytes of JSON; probe.go reads at most %d", len(out), limit)
	}
}

// R2-13. watcher.loop (sensor_linux.go:184) looks at quit only when a read finds the queue empty: while the
// program's orphans (the sensor kills only its child) keep opening files faster than the events are read, stop
// never returns, the report is never written, and the engine kills the sensor 15 s later ("the sensor left no
// report"). A file read as the fanotify fd stands for a queue that never empties.
func TestHostileStopWithBusyQueue(t *testing.T) {
	p := filepath.Join(t.TempDir(), "queue")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil { // zeros: no event, and never the end
		t.Skip(err)
	}
	f.Close()
	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{fd: fd, done: make(chan struct{}), quit: make(chan struct{}), rep: Report{Files: map[string]string{}}}
	go w.loop()
	stopped := make(chan Report, 1)
	go func() {
		var rep Report
		w.stop(&rep)
		stopped <- rep
	}()
	select {
	case rep := <-stopped:
		if !rep.Overflow {
			t.Errorf("stopped with events left unread, and the report does not say it is incomplete")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return: no report would be written")
	}
}
