package ctxio_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/internal/ctxio"
)

type closer struct {
	io.Reader
	closed bool
}

func (c *closer) Close() error { c.closed = true; return nil }

// Reads pass through while the context lives, fail with its error once it ends, and Close reaches the source.
func TestReadStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &closer{Reader: strings.NewReader("abcdef")}
	rc := ctxio.ReadCloser(ctx, src)
	buf := make([]byte, 3)
	if n, err := rc.Read(buf); n != 3 || err != nil || string(buf) != "abc" {
		t.Fatalf("Read = %d %q %v, want 3 abc", n, buf[:n], err)
	}
	cancel()
	if n, err := rc.Read(buf); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %d, %v; want 0, context.Canceled", n, err)
	}
	if err := rc.Close(); err != nil || !src.closed {
		t.Fatalf("Close = %v, source closed %v", err, src.closed)
	}
}
