package inventory_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/internal/testenv"
)

// entry is one tar entry of a test layer.
type entry struct {
	hdr  tar.Header
	body []byte
}

func reg(name, body string) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, []byte(body)}
}

func exe(name string, body []byte) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(body))}, body}
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func device(name string, typ byte) entry {
	return entry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o666, Devmajor: 1, Devminor: 3}}
}

// ustarBlock is the header block of an entry as a USTAR (or, with format, GNU) writer makes it.
func ustarBlock(name string, typ byte, size int64, format tar.Format) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Size: size, Mode: 0o644, Format: format})
	return b.Bytes()[:512]
}

// checksum sets the checksum of a header block edited by hand.
func checksum(blk []byte) []byte {
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return blk
}

// paxEntry is a PAX extended header carrying records, then the header of a regular file of size bytes, without
// its content: what a Go tar writer will not write (GNU.sparse records, a NUL in a name).
func paxEntry(name string, size int64, records ...string) []byte {
	var body []byte
	for _, kv := range records {
		r := " " + kv + "\n"
		n := len(r) + 1 // a record's length counts its own digits
		for len(fmt.Sprint(n))+len(r) != n {
			n = len(fmt.Sprint(n)) + len(r)
		}
		body = append(body, fmt.Sprint(n)+r...)
	}
	hdr := ustarBlock("PaxHeaders/x", tar.TypeReg, int64(len(body)), tar.FormatUSTAR)
	hdr[156] = tar.TypeXHeader // a USTAR writer will not make a PAX header
	out := append(checksum(hdr), body...)
	out = append(out, make([]byte, (512-len(body)%512)%512)...)
	return append(out, ustarBlock(name, tar.TypeReg, size, tar.FormatUSTAR)...)
}

// gnuSparse is an old GNU sparse entry (type 'S') of size bytes, all of it a hole: one header block, which a tar
// reader expands to size zeros.
func gnuSparse(name string, size int64) []byte {
	blk := ustarBlock(name, tar.TypeReg, 0, tar.FormatGNU)
	blk[156] = tar.TypeGNUSparse
	copy(blk[386:398], fmt.Sprintf("%011o\x00", size)) // one data fragment of no bytes, at the end
	copy(blk[398:410], fmt.Sprintf("%011o\x00", 0))
	copy(blk[483:495], fmt.Sprintf("%011o\x00", size)) // the real size
	return checksum(blk)
}

// paxSparse is a PAX (GNU format 0.1) sparse entry of size bytes, all of it a hole.
func paxSparse(name string, size int64) []byte {
	return paxEntry(name, 0, "GNU.sparse.major=0", "GNU.sparse.minor=1", fmt.Sprintf("GNU.sparse.size=%d", size),
		"GNU.sparse.numblocks=1", fmt.Sprintf("GNU.sparse.map=%d,0", size))
}

// rawTar ends raw entries as a tar stream.
func rawTar(entries ...[]byte) []byte {
	return append(bytes.Join(entries, nil), make([]byte, 1024)...)
}

// tarOf writes entries as a tar stream.
func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.ModTime = time.Unix(1700000000, 0)
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("WriteHeader(%q) = %v", hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatalf("writing %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf makes a layer of a tar stream, as go-containerregistry reads one from a tarball.
func layerOf(t testing.TB, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatalf("LayerFromOpener: %v", err)
	}
	return l
}

// step is a history entry of a test image: a layer, or an empty layer (ENV, CMD…) when layer is nil.
type step struct {
	layer     v1.Layer
	createdBy string
}

// counted is a layer that counts the times its content is read.
type counted struct {
	v1.Layer
	reads *atomic.Int32
}

func (c counted) Uncompressed() (io.ReadCloser, error) {
	c.reads.Add(1)
	return c.Layer.Uncompressed()
}

// expiring is a layer whose reading to its end makes ctx pass its deadline: a deadline that falls at a known
// point of the scan, whatever the machine's speed.
type expiring struct {
	v1.Layer
	ctx *deadline
}

func (e expiring) Uncompressed() (io.ReadCloser, error) {
	rc, err := e.Layer.Uncompressed()
	return readCloser{rc, e.ctx.expire}, err
}

type readCloser struct {
	io.ReadCloser
	atEOF func()
}

func (r readCloser) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF {
		r.atEOF()
	}
	return n, err
}

// deadline is a context whose deadline passes when expire is called.
type deadline struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newDeadline() *deadline {
	return &deadline{Context: context.Background(), done: make(chan struct{})}
}

func (d *deadline) expire()                     { d.once.Do(func() { close(d.done) }) }
func (d *deadline) Done() <-chan struct{}       { return d.done }
func (d *deadline) Deadline() (time.Time, bool) { return time.Unix(1700000000, 0), true }
func (d *deadline) Err() error {
	select {
	case <-d.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func imageOf(t testing.TB, steps ...step) v1.Image {
	t.Helper()
	img := empty.Image
	var history []v1.History
	for _, s := range steps {
		h := v1.History{CreatedBy: s.createdBy, Created: v1.Time{Time: time.Unix(1700000000, 0)}}
		if s.layer == nil {
			h.EmptyLayer = true
		} else {
			var err error
			if img, err = mutate.AppendLayers(img, s.layer); err != nil {
				t.Fatalf("AppendLayers: %v", err)
			}
		}
		history = append(history, h)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.History = history
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// goBinary is a Go program built once for the tests, with go-units v0.5.0 as a dependency from the module cache
// (it is one of this module's own), without network (GOPROXY=off). Where the module cache lacks it, the binary
// is built on the standard library only and the tests that look for its modules are weaker: allowed on a
// developer's machine, with a note in the log, but an error under CI or MYRMEX_REQUIRE_ENGINE.
type goBinary struct {
	path       string
	goVersion  string // "1.26.8"
	depVersion string // "0.5.0", or empty when built without the dependency
	fallback   string // why it was built without the dependency
}

var buildDir string

var builtGo = sync.OnceValues(func() (goBinary, error) {
	src := filepath.Join(buildDir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return goBinary{}, err
	}
	out := filepath.Join(buildDir, "hello")
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return goBinary{}, err
	}
	b := goBinary{path: out, goVersion: strings.TrimPrefix(strings.TrimSpace(string(goVersion)), "go"), depVersion: "0.5.0"}
	build := func(mod, main string) error {
		os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644)
		os.WriteFile(filepath.Join(src, "main.go"), []byte(main), 0o644)
		os.Remove(filepath.Join(src, "go.sum"))
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
		return nil
	}
	err = build("module example.com/hello\n\ngo 1.22\n\nrequire github.com/docker/go-units v0.5.0\n",
		"package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/docker/go-units\"\n)\n\nfunc main() { fmt.Println(units.HumanSize(1e6)) }\n")
	if err != nil {
		if testenv.Required() {
			return b, fmt.Errorf("building with github.com/docker/go-units v0.5.0 from the module cache (GOPROXY=off): %w", err)
		}
		b.depVersion, b.fallback = "", err.Error()
		err = build("module example.com/hello\n\ngo 1.22\n", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n")
	}
	return b, err
})

func TestMain(m *testing.M) {
	var err error
	if buildDir, err = os.MkdirTemp("", "inventory-test-go-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(buildDir)
	os.Exit(code)
}
