// Package ctxio stops reads when a context ends: a stream that an input can make long (an image layer, a blob)
// is read through it, so that a deadline or a cancellation stops the reading itself, not only the loop around it.
package ctxio

import (
	"context"
	"io"
)

// Reader reads from R until Ctx is done, then fails with the context's error.
type Reader struct {
	Ctx context.Context
	R   io.Reader
}

func (r Reader) Read(p []byte) (int, error) {
	if err := r.Ctx.Err(); err != nil {
		return 0, err
	}
	return r.R.Read(p)
}

// ReadCloser is a [Reader] over rc that closes rc.
func ReadCloser(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	return struct {
		io.Reader
		io.Closer
	}{Reader{ctx, rc}, rc}
}
