package optimize_test

// Hostile inputs to optimize.Rewrite (rewrite.go, minify.go), from a review that built them: each failed before
// the fix it names. Every test builds its image by hand; none needs an engine.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/optimize"
)

// ---- helpers -------------------------------------------------------------------------------------------------

type elfSec struct {
	name  string
	typ   uint32
	flags uint64
	link  uint32
	data  []byte
}

const (
	shtStrtab      = 3
	shtDynamic     = 6
	shfCompressed  = 0x800
	elfcompressZst = 2
	dtNeeded       = 1
)

// buildELF makes a minimal ELF64 little-endian shared object: an optional PT_INTERP and the given sections (a
// null section first and a .shstrtab last are added).
func buildELF(interp string, secs []elfSec) []byte {
	le := binary.LittleEndian
	var shstr bytes.Buffer
	shstr.WriteByte(0)
	names := make([]uint32, len(secs)+1)
	for i, s := range secs {
		names[i] = uint32(shstr.Len())
		shstr.WriteString(s.name + "\x00")
	}
	names[len(secs)] = uint32(shstr.Len())
	shstr.WriteString(".shstrtab\x00")
	all := append(append([]elfSec(nil), secs...), elfSec{typ: shtStrtab, data: shstr.Bytes()})

	phnum := 0
	if interp != "" {
		phnum = 1
	}
	off := 64 + 56*phnum
	var body bytes.Buffer
	interpOff := off
	if interp != "" {
		body.WriteString(interp + "\x00")
	}
	offs := make([]int, len(all))
	for i, s := range all {
		for (off+body.Len())%8 != 0 {
			body.WriteByte(0)
		}
		offs[i] = off + body.Len()
		body.Write(s.data)
	}
	for (off+body.Len())%8 != 0 {
		body.WriteByte(0)
	}
	shoff := off + body.Len()

	out := make([]byte, 64)
	copy(out, "\x7fELF\x02\x01\x01")
	le.PutUint16(out[16:], 3)  // ET_DYN
	le.PutUint16(out[18:], 62) // EM_X86_64
	le.PutUint32(out[20:], 1)
	if phnum > 0 {
		le.PutUint64(out[32:], 64)
	}
	le.PutUint64(out[40:], uint64(shoff))
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[56:], uint16(phnum))
	le.PutUint16(out[58:], 64)
	le.PutUint16(out[60:], uint16(len(all)+1))
	le.PutUint16(out[62:], uint16(len(all)))
	if interp != "" {
		ph := make([]byte, 56)
		le.PutUint32(ph[0:], 3) // PT_INTERP
		le.PutUint64(ph[8:], uint64(interpOff))
		le.PutUint64(ph[32:], uint64(len(interp)+1))
		le.PutUint64(ph[40:], uint64(len(interp)+1))
		out = append(out, ph...)
	}
	out = append(out, body.Bytes()...)
	out = append(out, make([]byte, 64)...) // null section
	for i, s := range all {
		sh := make([]byte, 64)
		le.PutUint32(sh[0:], names[i])
		le.PutUint32(sh[4:], s.typ)
		le.PutUint64(sh[8:], s.flags)
		le.PutUint64(sh[24:], uint64(offs[i]))
		le.PutUint64(sh[32:], uint64(len(s.data)))
		le.PutUint32(sh[40:], s.link)
		le.PutUint64(sh[48:], 1)
		if s.typ == shtDynamic {
			le.PutUint64(sh[56:], 16)
		}
		out = append(out, sh...)
	}
	return out
}

func dyn(pairs ...uint64) []byte {
	b := make([]byte, 8*len(pairs))
	for i, v := range pairs {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return b
}

// neededELF is a shared object whose DT_NEEDED entries name libs (in order, duplicates allowed).
func neededELF(libs ...string) []byte {
	str := []byte{0}
	offs := map[string]uint64{}
	var d []uint64
	for _, l := range libs {
		o, ok := offs[l]
		if !ok {
			o = uint64(len(str))
			offs[l] = o
			str = append(append(str, l...), 0)
		}
		d = append(d, dtNeeded, o)
	}
	d = append(d, 0, 0)
	return buildELF("", []elfSec{{name: ".dynstr", typ: shtStrtab, data: str}, {name: ".dynamic", typ: shtDynamic, link: 1, data: dyn(d...)}})
}

// zstdZeros is a zstd frame of n zero bytes made of RLE blocks (4 bytes per 128 KiB).
func zstdZeros(n int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38} // magic, no content size, window 128 KiB
	for n > 0 {
		sz := min(n, 128<<10)
		n -= sz
		h := uint32(sz)<<3 | 1<<1 // RLE block
		if n == 0 {
			h |= 1 // last block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

// allocDuring is the bytes fn allocates (the Go heap's cumulative allocations).
func allocDuring(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func mustRewrite(t *testing.T, img v1.Image, opts optimize.RewriteOptions) {
	t.Helper()
	res, err := optimize.Rewrite(context.Background(), img, opts)
	if err != nil {
		t.Fatalf("Rewrite = %v", err)
	}
	res.Close()
}

// rawTar writes ustar headers by hand (for what archive/tar's Writer refuses to write: PAX sparse records).
type rawTar struct{ bytes.Buffer }

func (r *rawTar) header(name string, typ byte, size int) {
	var h [512]byte
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], "00000000000\x00")
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	r.Write(h[:])
}

func (r *rawTar) data(b []byte) {
	r.Write(b)
	if pad := (512 - len(b)%512) % 512; pad > 0 {
		r.Write(make([]byte, pad))
	}
}

func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for n != len(strconv.Itoa(n))+len(rec) {
		n = len(strconv.Itoa(n)) + len(rec)
	}
	return strconv.Itoa(n) + rec
}

// sparseEntry adds a PAX 1.0 sparse file of realsize bytes that are all a hole: 1 KiB of stream.
func (r *rawTar) sparseEntry(name string, realsize int) {
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") + paxRecord("GNU.sparse.name", name) +
		paxRecord("GNU.sparse.realsize", strconv.Itoa(realsize))
	r.header("PaxHeaders/"+name, tar.TypeXHeader, len(pax))
	r.data([]byte(pax))
	r.header("GNUSparseFile.0/"+name, tar.TypeReg, 512)
	r.data([]byte("0\n")) // a sparse map of no data fragments
}

// ---- 1. ELF parsing amplification ------------------------------------------------------------------------------

// readELF (rewrite.go:430) calls debug/elf's DynString, which copies the string of every DT_NEEDED entry before
// the list is cut to 4096 (rewrite.go:436): 4096 entries naming one 256 KiB string are 1 GiB of allocations from
// a 320 KiB file, and the count of entries is bounded only by the file (16 bytes each). No profile is needed: every
// regular file of every layer goes through readELF, in a lossless rewrite too.
func TestRewriteHostileELFNeededStringsAmplify(t *testing.T) {
	long := strings.Repeat("a", 256<<10)
	libs := make([]string, 4096)
	for i := range libs {
		libs[i] = long
	}
	bin := neededELF(libs...)
	img := layered(t, hdrs(t, reg("bin/app"), bin))
	got := allocDuring(func() { mustRewrite(t, img, optimize.RewriteOptions{}) })
	if limit := uint64(64 * len(bin)); got > limit {
		t.Errorf("a %d KiB ELF made Rewrite allocate %d MiB (want at most %d MiB)", len(bin)>>10, got>>20, limit>>20)
	}
}

// A section with SHF_COMPRESSED is decompressed whole by debug/elf's Section.Data (its Chdr names the size): a
// zstd .dynamic of RLE blocks is 256 MiB of allocations, three times (DT_NEEDED, DT_RUNPATH, DT_RPATH), from a
// 12 KiB file; nothing bounds ch_size (a 1 MiB file makes 32 GiB).
func TestRewriteHostileELFCompressedSectionBomb(t *testing.T) {
	const size = 256 << 20
	chdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(chdr[0:], elfcompressZst)
	binary.LittleEndian.PutUint64(chdr[8:], size)
	binary.LittleEndian.PutUint64(chdr[16:], 8)
	bin := buildELF("", []elfSec{
		{name: ".dynstr", typ: shtStrtab, data: []byte("\x00libc.so.6\x00")},
		{name: ".dynamic", typ: shtDynamic, flags: shfCompressed, link: 1, data: append(chdr, zstdZeros(size)...)},
	})
	img := layered(t, hdrs(t, reg("bin/app"), bin))
	got := allocDuring(func() { mustRewrite(t, img, optimize.RewriteOptions{}) })
	if got > 64<<20 {
		t.Errorf("a %d KiB ELF made Rewrite allocate %d MiB (want at most 64 MiB)", len(bin)>>10, got>>20)
	}
}

// ---- 2. Sparse files: declared sizes are not added up ------------------------------------------------------------

// charge (rewrite.go:362) checks each entry's declared size alone against MaxLayerSize and MaxImageSize, never
// their sum; a sparse entry's stream is tiny, and writeBody (rewrite.go:701) writes it expanded. Analyze refuses
// this image; Rewrite writes 8 times MaxImageSize to TempDir (with the defaults: up to MaxEntries × 32 GiB).
func TestRewriteHostileSparseSizesNotSummed(t *testing.T) {
	var r rawTar
	for i := range 8 {
		r.sparseEntry(fmt.Sprintf("f%d", i), 900<<10)
	}
	r.Write(make([]byte, 1024))
	img := layered(t, layerOf(t, r.Bytes()))
	lim := optimize.AnalyzeOptions{MaxLayerSize: 1 << 20, MaxImageSize: 1 << 20}
	if _, err := optimize.Analyze(context.Background(), img, lim); !errors.Is(err, optimize.ErrLimitExceeded) {
		t.Fatalf("Analyze = %v, want ErrLimitExceeded (the check the rewrite should share)", err)
	}
	res, err := optimize.Rewrite(context.Background(), img, optimize.RewriteOptions{Limits: lim})
	if err == nil {
		defer res.Close()
		ls, _ := res.Image.Layers()
		rc, _ := ls[0].Uncompressed()
		sz, _ := io.Copy(io.Discard, rc)
		rc.Close()
		t.Errorf("Rewrite wrote a layer of %d bytes, past MaxImageSize %d; want ErrLimitExceeded", sz, lim.MaxImageSize)
	} else if !errors.Is(err, optimize.ErrLimitExceeded) {
		t.Errorf("Rewrite = %v, want ErrLimitExceeded", err)
	}
}

// ---- 3. Symlink resolution ---------------------------------------------------------------------------------------

// resolve (minify.go:309) copies the whole rest of the path at every hop: a link whose target is itself repeated
// (a legal 4095-byte target: l -> l/l/…/l) makes 40 hops of up to 82,000 components, 27 MiB and ~10 ms per
// resolve, once per profile path through it (up to sensor.MaxPaths = 1M: 27 TB) and per link per pass.
func TestRewriteHostileSymlinkResolveAmplifies(t *testing.T) {
	target := strings.Repeat("l/", 2047) + "l"
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("/l/x%d", i)] = "read"
	}
	img := layered(t, hdrs(t, symlink("l", target), reg("keep"), []byte("k")))
	got := allocDuring(func() { mustRewrite(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: files}}) })
	if got > 256<<20 {
		t.Errorf("200 profile paths through one 4 KiB link: Rewrite allocated %d MiB (want at most 256 MiB)", got>>20)
	}
}

// A symlink target longer than PATH_MAX cannot be made on Linux; Rewrite keeps it (and every other header string:
// xattrs, uname, gname) in memory for every entry of every layer, and resolve splits it at each hop.
func TestRewriteHostileSymlinkTargetPastPathMax(t *testing.T) {
	img := layered(t, hdrs(t, symlink("l", strings.Repeat("x/", 64<<10))))
	res, err := optimize.Rewrite(context.Background(), img, optimize.RewriteOptions{})
	if err == nil {
		res.Close()
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Rewrite of a 128 KiB symlink target = %v, want ErrInvalidArgument", err)
	}
}

// Profile paths come from the container (probe.go:567 bounds the report at 256 MiB, not its paths): a 2 MiB
// profile path of link components through l -> / is 40 copies of a 1M-component slice (640 MiB).
func TestRewriteHostileProfilePathUnbounded(t *testing.T) {
	img := layered(t, hdrs(t, symlink("l", "/"), reg("keep"), []byte("k")))
	p := "/" + strings.Repeat("l/", 1<<20) + "keep"
	got := allocDuring(func() {
		mustRewrite(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{p: "read"}}})
	})
	if got > 64<<20 {
		t.Errorf("one 2 MiB profile path: Rewrite allocated %d MiB (want at most 64 MiB)", got>>20)
	}
}

// ---- 4. Unbounded work in minify, without a context check --------------------------------------------------------

// Each case makes minify do quadratic work in a loop that never looks at ctx: Rewrite should return soon after
// the deadline.
func TestRewriteHostileMinifyHonoursContext(t *testing.T) {
	cases := map[string]func(t *testing.T) (v1.Image, optimize.RewriteOptions){
		// minify.go:93: the links loop runs to a fixpoint over every link; a chain /x/dK/l -> /x/dK+1 in
		// ascending name order keeps one link per pass: N passes of N resolves.
		"links fixpoint": func(t *testing.T) (v1.Image, optimize.RewriteOptions) {
			const n = 3000
			var e []any
			e = append(e, dir("x/"))
			for i := range n {
				e = append(e, dir(fmt.Sprintf("x/d%05d/", i)), symlink(fmt.Sprintf("x/d%05d/l", i), fmt.Sprintf("/x/d%05d", i+1)))
			}
			e = append(e, dir(fmt.Sprintf("x/d%05d/", n)), reg(fmt.Sprintf("x/d%05d/f", n)), []byte("f"))
			return layered(t, hdrs(t, e...)), optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{fmt.Sprintf("/x/d%05d/f", n): "read"}}}
		},
		// minify.go:256-275: every DT_NEEDED name (4096, duplicates kept) not found on the search path keeps
		// every file of that base name under a lib directory: 4096 × N keepPath.
		"needed × byName": func(t *testing.T) (v1.Image, optimize.RewriteOptions) {
			const n = 3000
			libs := make([]string, 4096)
			for i := range libs {
				libs[i] = "libx.so"
			}
			e := []any{reg("app"), neededELF(libs...)}
			for i := range n {
				e = append(e, reg(fmt.Sprintf("opt/lib%d/libx.so", i)), []byte("x"))
			}
			return layered(t, hdrs(t, e...)), optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/app": "exec"}}}
		},
		// minify.go:68: every volume of the (hostile) configuration walks its tree: V volumes that clean to /
		// are V walks of the whole image.
		"volumes × tree": func(t *testing.T) (v1.Image, optimize.RewriteOptions) {
			const n, v = 5000, 5000
			var e []any
			for i := range n {
				e = append(e, reg(fmt.Sprintf("d/f%d", i)), []byte("x"))
			}
			img := layered(t, hdrs(t, e...))
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			cf = cf.DeepCopy()
			cf.Config.Volumes = map[string]struct{}{}
			for i := range v {
				cf.Config.Volumes[fmt.Sprintf("/%d/..", i)] = struct{}{}
			}
			if img, err = mutate.ConfigFile(img, cf); err != nil {
				t.Fatal(err)
			}
			return img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/d/f0": "read"}}}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			img, opts := mk(t)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			res, err := optimize.Rewrite(ctx, img, opts)
			took := time.Since(start)
			if err == nil {
				res.Close()
			}
			// Not a speed check: a loop that ignores the context runs on for minutes on these shapes; one that
			// honours it stops soon after the deadline, however busy the machine.
			if took > 30*time.Second || err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Rewrite with a 300 ms deadline took %v and returned %v; want an answer (or the deadline's error), not a runaway", took.Round(time.Millisecond), err)
			}
		})
	}
}

// ---- 5. Keep skips the dependencies of what it keeps ------------------------------------------------------------

// choose (rewrite.go:488) leaves files under Keep marked kept; minify's keepTree then reaches keep (minify.go:136),
// which returns early for a node already kept, before it queues the ELF object's dependencies: a kept executable
// loses its libraries.
func TestRewriteHostileKeepKeepsDependencies(t *testing.T) {
	img := layered(t, hdrs(t, dir("opt/tool/"), reg("opt/tool/run"), neededELF("libk.so.1"), dir("usr/lib/"), reg("usr/lib/libk.so.1"), []byte("lib"),
		reg("usr/lib/libother.so.1"), []byte("other"), dir("bin/"), reg("bin/main"), []byte("#!/bin/sh\n")))
	_, files := rewrite(t, img, optimize.RewriteOptions{Keep: []string{"/opt/tool"}, Profile: &optimize.Profile{Files: map[string]string{"/bin/main": "exec"}}})
	if _, ok := files["opt/tool/run"]; !ok {
		t.Fatalf("opt/tool/run is gone; it is under Keep")
	}
	if _, ok := files["usr/lib/libk.so.1"]; !ok {
		t.Errorf("usr/lib/libk.so.1 is gone: the kept /opt/tool/run needs it")
	}
}

// ---- 6. One name twice in a layer --------------------------------------------------------------------------------

// bodies (rewrite.go:652) writes every occurrence of a kept name of the final layer ("final" compares the layer,
// not the entry), so the output holds the name twice, every copy's bytes counted; and a hard link's copy
// (materialize, rewrite.go:659) takes the first occurrence of its target, not the one before the link.
func TestRewriteHostileSameNameTwiceInALayer(t *testing.T) {
	t.Run("written twice", func(t *testing.T) {
		img := layered(t, hdrs(t, reg("a"), bytes.Repeat([]byte("1"), 1000), reg("a"), []byte("2")))
		_, files := rewrite(t, img, optimize.RewriteOptions{}) // contents() fails on a name written twice
		if files["a"].body != "2" {
			t.Errorf("a = %q, want 2", files["a"].body)
		}
	})
	t.Run("link overwritten later", func(t *testing.T) {
		img := layered(t, hdrs(t, reg("a"), []byte("1"), hardlink("b", "a"), reg("a"), []byte("2")))
		rewrite(t, img, optimize.RewriteOptions{})
	})
	t.Run("link copies the wrong occurrence", func(t *testing.T) {
		img := layered(t, hdrs(t, reg("a"), []byte("1"), reg("a"), []byte("2"), hardlink("b", "a")))
		_, files := rewrite(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/b": "read"}}})
		if g := files["b"]; g.typ != tar.TypeReg || g.body != "2" {
			t.Errorf("b = %+v, want a file holding 2 (the a that was there when b was linked)", g)
		}
	})
}

// ---- 7. Header fields the new layer cannot encode -------------------------------------------------------------------

// cleanHeader (rewrite.go:379) copies Mode, Devmajor and Devminor as read; a GNU base-256 field the PAX writer
// cannot encode fails tw.WriteHeader with archive/tar's error, not ErrInvalidArgument as Rewrite documents.
func TestRewriteHostileUnencodableHeaderIsInvalidArgument(t *testing.T) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 1 << 40, Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	res, err := optimize.Rewrite(context.Background(), layered(t, layerOf(t, b.Bytes())), optimize.RewriteOptions{})
	if err == nil {
		res.Close()
	}
	if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Rewrite = %v, want ErrInvalidArgument (or the mode masked to its permission bits)", err)
	}
}

// ---- What held (these pass before and after the fixes) -----------------------------------------------------------

// validLayer checks the one layer of a rewrite: no name twice, every parent written before its children, every
// hard link's target written (as a file) before the link.
func validLayer(t *testing.T, res *optimize.RewriteResult) {
	t.Helper()
	ls, _ := res.Image.Layers()
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	seen := map[string]byte{"": tar.TypeDir}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if _, dup := seen[name]; dup {
			t.Errorf("%s written twice", name)
		}
		parent := ""
		if i := strings.LastIndex(name, "/"); i >= 0 {
			parent = name[:i]
		}
		if seen[parent] != tar.TypeDir {
			t.Errorf("%s written before its directory %q", name, parent)
		}
		if h.Typeflag == tar.TypeLink && seen[h.Linkname] != tar.TypeReg {
			t.Errorf("%s is a hard link to %s, not a file written before it", name, h.Linkname)
		}
		seen[name] = h.Typeflag
	}
}

func TestRewriteHostileWhatHeld(t *testing.T) {
	ctx := context.Background()
	ok := func(t *testing.T, img v1.Image, opts optimize.RewriteOptions) map[string]got {
		t.Helper()
		res, files := rewrite(t, img, opts)
		validLayer(t, res)
		return files
	}
	refused := func(t *testing.T, img v1.Image, opts optimize.RewriteOptions, want error) {
		t.Helper()
		res, err := optimize.Rewrite(ctx, img, opts)
		if err == nil {
			res.Close()
		}
		if !errors.Is(err, want) {
			t.Errorf("Rewrite = %v, want %v", err, want)
		}
	}
	t.Run("symlink loop in a profile path", func(t *testing.T) {
		img := layered(t, hdrs(t, symlink("a", "b"), symlink("b", "/a/x"), reg("f"), []byte("f")))
		files := ok(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/a/x/y": "read", "/f": "read"}}})
		if _, ok := files["f"]; !ok {
			t.Errorf("f is gone")
		}
	})
	t.Run("hard-link cycle, link to a directory, to itself", func(t *testing.T) {
		refused(t, layered(t, hdrs(t, hardlink("a", "b"), hardlink("b", "a"))), optimize.RewriteOptions{}, errdefs.ErrInvalidArgument)
		refused(t, layered(t, hdrs(t, dir("d/"), hardlink("l", "d"))), optimize.RewriteOptions{}, errdefs.ErrInvalidArgument)
		refused(t, layered(t, hdrs(t, hardlink("l", "l"))), optimize.RewriteOptions{}, errdefs.ErrInvalidArgument)
	})
	t.Run("directory, file, directory", func(t *testing.T) {
		img := layered(t, hdrs(t, dir("d/"), reg("d/f"), []byte("f")), hdrs(t, reg("d"), []byte("file")), hdrs(t, dir("d/"), reg("d/g"), []byte("g")))
		files := ok(t, img, optimize.RewriteOptions{})
		if _, ok := files["d/f"]; ok {
			t.Errorf("d/f came back under the new directory")
		}
		if files["d/"].typ != tar.TypeDir || files["d/g"].body != "g" {
			t.Errorf("d = %+v, d/g = %+v", files["d/"], files["d/g"])
		}
	})
	t.Run("opaque marker after the layer's own entries", func(t *testing.T) {
		img := layered(t, hdrs(t, dir("d/"), reg("d/old"), []byte("o")), hdrs(t, dir("d/"), reg("d/new"), []byte("n"), reg("d/.wh..wh..opq"), []byte{}))
		files := ok(t, img, optimize.RewriteOptions{})
		if _, ok := files["d/old"]; ok {
			t.Errorf("d/old stayed under an opaque directory")
		}
		if _, ok := files["d/new"]; !ok {
			t.Errorf("d/new is gone: the marker hides the layers below only")
		}
	})
	t.Run("parent is a symlink or a file", func(t *testing.T) {
		img := layered(t, hdrs(t, symlink("s", "/etc"), reg("f"), []byte("f"), dir("etc/"), reg("etc/passwd"), []byte("p")),
			hdrs(t, reg("s/x"), []byte("x"), reg("f/y"), []byte("y")))
		files := ok(t, img, optimize.RewriteOptions{})
		if files["s/"].typ != tar.TypeDir || files["s/x"].body != "x" || files["f/y"].body != "y" {
			t.Errorf("s = %+v, s/x = %+v, f/y = %+v: want directories holding them, as overlayfs shows them", files["s/"], files["s/x"], files["f/y"])
		}
		if _, ok := files["etc/x"]; ok {
			t.Errorf("etc/x written through the link")
		}
	})
	t.Run("implied directories count against MaxImageEntries", func(t *testing.T) {
		img := layered(t, hdrs(t, reg(strings.Repeat("d/", 200)+"f"), []byte("f")))
		refused(t, img, optimize.RewriteOptions{Limits: optimize.AnalyzeOptions{MaxImageEntries: 100}}, optimize.ErrLimitExceeded)
	})
	t.Run("a declared size past MaxLayerSize", func(t *testing.T) {
		var r rawTar
		r.header("big", tar.TypeReg, 2<<20)
		img := layered(t, layerOf(t, r.Bytes()))
		refused(t, img, optimize.RewriteOptions{Limits: optimize.AnalyzeOptions{MaxLayerSize: 1 << 20}}, optimize.ErrLimitExceeded)
	})
	t.Run("a context already ended", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := optimize.Rewrite(c, layered(t, hdrs(t, reg("f"), []byte("f"))), optimize.RewriteOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Rewrite = %v, want context.Canceled", err)
		}
	})
	t.Run("hard links across layers and to dropped targets", func(t *testing.T) {
		img := layered(t, hdrs(t, reg("a"), []byte("A0"), hardlink("b", "a"), dir("tmp/"), reg("tmp/t"), []byte("T"), hardlink("c", "tmp/t")),
			hdrs(t, reg("a"), []byte("A1")))
		files := ok(t, img, optimize.RewriteOptions{})
		if files["a"].body != "A1" || files["b"].body != "A0" || files["c"].body != "T" {
			t.Errorf("a = %+v, b = %+v, c = %+v; want A1, A0 and T as files", files["a"], files["b"], files["c"])
		}
	})
}
