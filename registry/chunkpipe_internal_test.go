package registry

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func TestChunkPipeCarriesEveryByteInOrder(t *testing.T) {
	src := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	p := newChunkPipe(3, 64<<10)
	for round := range 2 {
		carry(t, p, src, rng)
		bufs := p.buffers()
		if len(bufs) != 4 {
			t.Fatalf("round %d: buffers() after the end = %d buffers, want all 4", round, len(bufs))
		}
		p = chunkPipeOf(bufs)
	}
}

func carry(t *testing.T, p *chunkPipe, src []byte, rng *rand.Rand) {
	t.Helper()
	go func() {
		rest := src
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(200<<10))
			if _, err := p.Write(rest[:n]); err != nil {
				p.CloseWithError(err)
				return
			}
			rest = rest[n:]
		}
		p.CloseWithError(nil)
	}()
	got, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(got, src) {
		t.Errorf("ReadAll(chunkPipe) = %d bytes, %v; want the %d bytes written, in order", len(got), err, len(src))
	}
}

func TestChunkPipeEndsBothWays(t *testing.T) {
	boom := errors.New("boom")
	// The writer's error reaches the reader after what was written before it.
	p := newChunkPipe(2, 8)
	go func() {
		_, _ = p.Write([]byte("0123456789abcdef"))
		p.CloseWithError(boom)
	}()
	if got, err := io.ReadAll(p); !errors.Is(err, boom) || string(got) != "0123456789abcdef" {
		t.Errorf("ReadAll = %q, %v; want the 16 bytes, then %v", got, err, boom)
	}

	// A reader that stops unblocks a writer whose buffers are full.
	p = newChunkPipe(2, 8)
	done := make(chan error)
	go func() {
		_, err := p.Write(make([]byte, 1<<20))
		done <- err
	}()
	p.CloseRead(boom)
	if err := <-done; !errors.Is(err, boom) {
		t.Errorf("Write after CloseRead = %v, want %v", err, boom)
	}
}
