package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
)

// limit is one of the machine's ceilings, measured in this process on one goroutine (two for loopback): how fast
// it can hash, gzip, gunzip, move bytes over loopback TCP and write them to disk. MBpsCPU, per CPU second, is the
// figure that other load on the machine does not inflate; a contender cannot beat the sum of the work it does at
// these rates divided by the cores it keeps busy.
type limit struct {
	Key        string  `json:"key"`
	Title      string  `json:"title"`
	InBytes    int64   `json:"in_bytes"`
	OutBytes   int64   `json:"out_bytes,omitempty"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	MBps       float64 `json:"mb_per_s"`     // input bytes, 10^6 per wall second
	MBpsCPU    float64 `json:"mb_per_cpu_s"` // input bytes, 10^6 per CPU second of this process
	Note       string  `json:"note,omitempty"`
}

// loopbackBytes is what the loopback measurement moves: enough for a second or more of copying.
const loopbackBytes = 1 << 30

// limitTries is how many times each limit is measured; the fastest is kept, as a ceiling should be.
const limitTries = 2

// measureLimits measures the ceilings on the image's own layers (uncompressed, as docker save holds them).
func measureLimits(ctx context.Context, layers [][]byte, dir string) ([]limit, error) {
	var in int64
	for _, l := range layers {
		in += int64(len(l))
	}
	all := func(w io.Writer) (int64, error) {
		for _, l := range layers {
			if _, err := w.Write(l); err != nil {
				return 0, err
			}
		}
		return in, nil
	}
	// gz compresses the layers with a writer from newW into dst.
	gz := func(newW func(io.Writer) (io.WriteCloser, error), dst io.Writer) (int64, int64, error) {
		c := &counter{w: dst}
		zw, err := newW(c)
		if err != nil {
			return 0, 0, err
		}
		if _, err := all(zw); err != nil {
			return 0, 0, err
		}
		err = zw.Close()
		return in, c.n, err
	}
	std := func(level int) func(io.Writer) (io.WriteCloser, error) {
		return func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, level) }
	}
	klaus := func(level int) func(io.Writer) (io.WriteCloser, error) {
		return func(w io.Writer) (io.WriteCloser, error) { return kgzip.NewWriterLevel(w, level) }
	}
	toDiscard := func(newW func(io.Writer) (io.WriteCloser, error)) func() (int64, int64, error) {
		return func() (int64, int64, error) { return gz(newW, io.Discard) }
	}
	var level1 bytes.Buffer // gunzip's input, made before it is timed
	steps := []struct {
		key, title, note string
		prep             func() error // untimed
		fn               func() (in, out int64, err error)
	}{
		{"sha256", "crypto/sha256", "every blob is hashed by its writer and again by the registry", nil, func() (int64, int64, error) {
			n, err := all(sha256.New())
			return n, 0, err
		}},
		{"gzip-1", "compress/gzip, level 1 (BestSpeed)", "go-containerregistry's level: Myrmex and crane gzip with it", nil, toDiscard(std(gzip.BestSpeed))},
		{"gzip-6", "compress/gzip, level 6 (default)", "dockerd's level on docker push", nil, toDiscard(std(gzip.DefaultCompression))},
		{"klauspost-gzip-1", "klauspost/compress/gzip, level 1", "what Myrmex compresses layers with by default (registry/compress.go, registry/stream.go)", nil, toDiscard(klaus(kgzip.BestSpeed))},
		{"klauspost-gzip-6", "klauspost/compress/gzip, level 6", "what Myrmex compresses layers with at --gzip-level 6", nil, toDiscard(klaus(kgzip.DefaultCompression))},
		{"gunzip", "compress/gzip, decompress (the level-1 stream)", "dockerd's gunzip on pull and load (it uses unpigz only when installed)",
			func() error {
				level1.Reset()
				_, _, err := gz(std(gzip.BestSpeed), &level1)
				return err
			},
			func() (int64, int64, error) {
				zr, err := gzip.NewReader(bytes.NewReader(level1.Bytes()))
				if err != nil {
					return 0, 0, err
				}
				n, err := io.Copy(io.Discard, zr)
				return int64(level1.Len()), n, err
			}},
		{"klauspost-gunzip", "klauspost/compress/gzip, decompress (the same stream)", "Myrmex's gunzip on pull (registry/load.go), which hands dockerd uncompressed layers",
			nil, // level1 is gunzip's input, made above
			func() (int64, int64, error) {
				zr, err := kgzip.NewReader(bytes.NewReader(level1.Bytes()))
				if err != nil {
					return 0, 0, err
				}
				n, err := io.Copy(io.Discard, zr)
				return int64(level1.Len()), n, err
			}},
		{"loopback", "loopback TCP, 127.0.0.1", "io.Copy of 1 GiB over one connection; CPU is sender's and receiver's", nil, func() (int64, int64, error) {
			n, err := loopback()
			return n, 0, err
		}},
		{"disk", "disk write + fsync", "the image's bytes to a file in the run's directory, where the registries keep their blobs", nil, func() (int64, int64, error) {
			n, err := diskWrite(filepath.Join(dir, "limits-disk.tmp"), all)
			return n, 0, err
		}},
	}
	var out []limit
	for _, s := range steps {
		if s.prep != nil {
			if err := s.prep(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.title, err)
			}
		}
		var best limit
		for range limitTries {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			debug.FreeOSMemory()
			start, cpu := time.Now(), selfCPU()
			inBytes, outBytes, err := s.fn()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.title, err)
			}
			l := limit{Key: s.key, Title: s.title, InBytes: inBytes, OutBytes: outBytes, Seconds: time.Since(start).Seconds(),
				CPUSeconds: selfCPU() - cpu, Note: s.note}
			l.MBps, l.MBpsCPU = float64(inBytes)/1e6/l.Seconds, float64(inBytes)/1e6/l.CPUSeconds
			if best.Seconds == 0 || l.Seconds < best.Seconds {
				best = l
			}
		}
		out = append(out, best)
		benchkit.Logf("limit  %-46s %8.1f MB/s, %8.1f MB per CPU second", s.title, best.MBps, best.MBpsCPU)
	}
	level1 = bytes.Buffer{}
	return out, nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// loopback copies loopbackBytes from one end of a 127.0.0.1 TCP connection to the other.
func loopback() (int64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, io.LimitReader(zeros{}, loopbackBytes))
		done <- err
	}()
	c, err := l.Accept()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	n, err := io.Copy(io.Discard, c)
	if werr := <-done; werr != nil {
		return n, werr
	}
	if err == nil && n != loopbackBytes {
		err = fmt.Errorf("received %d bytes, want %d", n, loopbackBytes)
	}
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func diskWrite(file string, all func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	defer os.Remove(file)
	n, err := all(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
