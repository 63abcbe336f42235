package server_test

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/server/state"
)

// A client that opens a log stream and never reads it: once its buffers are full the server's writes block. The
// server must drop it rather than hold its stream slot, its goroutines and its engine connection for ever.
func TestLiveStreamDropsAClientThatStopsReading(t *testing.T) {
	e := newEnv(t)
	name := "myrmex-r5-stall-" + time.Now().Format("150405")
	// 32 MB of 16 KB lines at once, then quiet: far more than the sockets' buffers hold.
	e.noisy(t, name, `l=$(head -c 16000 /dev/zero | tr '\0' x); i=0; while [ $i -lt 2000 ]; do echo $l; i=$((i+1)); done; sleep 3600`)
	waitGoroutines(t, 0, time.Minute, "before the stream")
	// A small receive buffer: the kernel does not grow it (to 32 MB here) for a reader that never reads.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/containers/%s/logs/stream?tail=0 HTTP/1.1\r\nHost: myrmex\r\nAuthorization: Bearer %s\r\n\r\n", name, e.tokens[state.ScopeRead])
	for end := time.Now().Add(time.Minute); liveGoroutines() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the stream did not start")
		}
	}
	waitGoroutines(t, 0, 3*time.Minute, "a client that never reads")
}
