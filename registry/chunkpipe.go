package registry

import (
	"errors"
	"io"
	"sync"
)

// chunkPipe is an io.Pipe with a bounded buffer: up to n chunks of size bytes written and not yet read. It lets
// the two sides of a streamed transfer (the engine's save and the gzip, the gzip and the upload) run apart
// by a few MiB instead of in lockstep, which on a busy machine makes each side wait for the other to be
// scheduled.
type chunkPipe struct {
	full, free chan []byte
	cur        []byte // the writer's chunk being filled
	rd, rdBuf  []byte // the reader's rest of a chunk, and the chunk to give back
	werr       error  // why the writer closed (nil: io.EOF), set before full is closed

	once sync.Once
	done chan struct{} // closed when the reader closes
	rerr error         // why the reader closed, set before done is closed
}

func newChunkPipe(n, size int) *chunkPipe {
	bufs := make([][]byte, n+1)
	for i := range bufs {
		bufs[i] = make([]byte, 0, size)
	}
	return chunkPipeOf(bufs)
}

// chunkPipeOf is a chunkPipe over bufs (at least two), taken back from an earlier pipe with buffers.
func chunkPipeOf(bufs [][]byte) *chunkPipe {
	p := &chunkPipe{full: make(chan []byte, len(bufs)-1), free: make(chan []byte, len(bufs)), done: make(chan struct{})}
	for _, b := range bufs {
		p.free <- b
	}
	return p
}

// buffers returns the pipe's buffers for another pipe, once its reader has read to the end; nil if some are
// still out (the pipe ended otherwise).
func (p *chunkPipe) buffers() [][]byte {
	var bufs [][]byte
	for {
		select {
		case b := <-p.free:
			bufs = append(bufs, b)
		default:
			if len(bufs) != cap(p.free) {
				return nil
			}
			return bufs
		}
	}
}

func (p *chunkPipe) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if p.cur == nil {
			select {
			case p.cur = <-p.free:
				p.cur = p.cur[:0]
			case <-p.done:
				return written, p.rerr
			}
		}
		n := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur, b, written = p.cur[:len(p.cur)+n], b[n:], written+n
		if len(p.cur) == cap(p.cur) {
			if err := p.send(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (p *chunkPipe) send() error {
	select {
	case p.full <- p.cur:
		p.cur = nil
		return nil
	case <-p.done:
		return p.rerr
	}
}

// CloseWithError ends the writer's side: the reader gets what was written, then err (io.EOF when nil).
func (p *chunkPipe) CloseWithError(err error) error {
	if p.cur != nil && len(p.cur) > 0 && err == nil {
		if serr := p.send(); serr != nil {
			err = serr
		}
	}
	if err == nil {
		err = io.EOF
	}
	p.werr = err
	close(p.full)
	return nil
}

func (p *chunkPipe) Read(b []byte) (int, error) {
	if len(p.rd) == 0 {
		if p.rdBuf != nil {
			p.free <- p.rdBuf
			p.rdBuf = nil
		}
		c, ok := <-p.full
		if !ok {
			return 0, p.werr
		}
		p.rd, p.rdBuf = c, c
	}
	n := copy(b, p.rd)
	p.rd = p.rd[n:]
	return n, nil
}

// CloseRead ends the reader's side: the writer's next write fails with err (io.ErrClosedPipe when nil).
func (p *chunkPipe) CloseRead(err error) {
	p.once.Do(func() {
		if err == nil {
			err = io.ErrClosedPipe
		}
		p.rerr = err
		close(p.done)
	})
}

// readAhead reads rc into a chunkPipe on a goroutine of its own, so that the engine's save keeps streaming
// while the push compresses and uploads; Close stops it and waits for it.
type readAhead struct {
	p    *chunkPipe
	rc   io.ReadCloser
	quit chan struct{}
}

func newReadAhead(rc io.ReadCloser, n, size int) *readAhead {
	r := &readAhead{p: newChunkPipe(n, size), rc: rc, quit: make(chan struct{})}
	go func() {
		defer close(r.quit)
		_, err := io.Copy(r.p, rc)
		r.p.CloseWithError(err)
	}()
	return r
}

func (r *readAhead) Read(b []byte) (int, error) { return r.p.Read(b) }

func (r *readAhead) Close() error {
	r.p.CloseRead(errReadAheadClosed)
	err := r.rc.Close() // unblocks a read of the engine's stream
	<-r.quit
	return err
}

var errReadAheadClosed = errors.New("read ahead closed")
