package inventory_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/inventory"
)

// snapshot records every file under dir with its mode and content, to show that a scan changed nothing there.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[p] = info.Mode().String()
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[p] += " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameFiles(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, v := range after {
		if before[p] != v {
			t.Errorf("%s: %s changed or appeared during the scan: %q", what, p, v)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s: %s disappeared during the scan", what, p)
		}
	}
}

// scratch gives a scan its own TMPDIR (where osv-scalibr keeps its copy of the files) and TempDir, and checks
// when the test ends that both are empty again and that nothing appeared beside them.
func scratch(t *testing.T) inventory.Options {
	t.Helper()
	root := t.TempDir()
	tmp, spool := filepath.Join(root, "tmp"), filepath.Join(root, "spool")
	for _, d := range []string{tmp, spool} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TMPDIR", tmp)
	before := snapshot(t, root)
	t.Cleanup(func() { sameFiles(t, "scan's temporary directories", before, snapshot(t, root)) })
	return inventory.Options{TempDir: spool}
}

const marker = "host-marker-7f3a9c"

func TestScanHostileLayer(t *testing.T) {
	host := t.TempDir() // files of the host a layer tries to reach
	hostPackage := filepath.Join(host, "package.json")
	if err := os.WriteFile(hostPackage, []byte(`{"name":"`+marker+`","version":"6.6.6"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	escape := t.TempDir() // where an entry named ../../…/escape/pwned would land if extracted naively
	up := strings.Repeat("../", 20)
	hostBefore, escapeBefore := snapshot(t, host), snapshot(t, escape)
	opts := scratch(t)

	hostile := tarOf(t,
		reg(up+escape[1:]+"/pwned", "written outside"),
		reg("/../../"+escape[1:]+"/pwned-too", "written outside"),
		dir("app/"), dir("app/node_modules/"),
		symlink("app/node_modules/abs/package.json", hostPackage),
		symlink("app/node_modules/shadow/package.json", "/etc/shadow"),
		symlink("etc/passwd-link", "/etc/passwd"),
		symlink("app/node_modules/rel/package.json", up+hostPackage[1:]),
		symlink("loop/a", "b"), symlink("loop/b", "a"),
		symlink("app/node_modules/loop/package.json", "../loop2/package.json"),
		symlink("app/node_modules/loop2/package.json", "../loop/package.json"),
		symlink("app/node_modules/self", "."),
		symlink("app/node_modules/empty/package.json", ""),
		hardlink("app/node_modules/hard/package.json", up+hostPackage[1:]),
		hardlink("app/node_modules/hard-abs/package.json", hostPackage),
		device("dev/evil-null", tar.TypeChar),
		device("dev/evil-sda", tar.TypeBlock),
		device("app/fifo", tar.TypeFifo),
		reg(".myrmex-omitted", `{"name":"`+marker+`-placeholder","version":"1.0.0"}`),
		reg("app/node_modules/new\nline/package.json", `{"name":"newline-pkg","version":"1.0.0"}`),
		exe("usr/local/bin/setuid", []byte("\x7fELF")),
	)
	img := imageOf(t,
		step{layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease), reg("var/lib/dpkg/status", dpkgStatus))), "ADD base"},
		step{layerOf(t, hostile), "ADD hostile.tar /"},
	)
	got, err := inventory.Scan(context.Background(), img, opts)
	if err != nil {
		t.Fatalf("Scan(hostile) = %v", err)
	}

	var names []string
	for _, p := range got.Packages {
		names = append(names, p.Name)
		if strings.Contains(p.Name, marker) {
			t.Errorf("Scan(hostile) read a host file: %+v", p)
		}
	}
	if want := "base-files bash libc6 zlib1g newline-pkg"; strings.Join(names, " ") != want {
		t.Errorf("Scan(hostile) found %q, want %q", names, want)
	}
	for _, want := range []string{
		`layer 1: "` + up + escape[1:] + `/pwned" skipped: path leaves the root`,
		`layer 1: "/../../` + escape[1:] + `/pwned-too" skipped: path leaves the root`,
		`layer 1: "app/node_modules/rel/package.json" skipped: symlink target "` + up + hostPackage[1:] + `" leaves the root`,
		`layer 1: "app/node_modules/empty/package.json" skipped: symlink without a target`,
		`layer 1: "app/node_modules/hard/package.json" skipped: hard link target path leaves the root`,
		`layer 1: "dev/evil-null" skipped: device file`,
		`layer 1: "dev/evil-sda" skipped: device file`,
		`layer 1: "app/fifo" skipped: FIFO`,
		`layer 1: ".myrmex-omitted" skipped: name reserved by the scanner`,
	} {
		found := false
		for _, w := range got.Warnings {
			found = found || w == want
		}
		if !found {
			t.Errorf("Scan(hostile).Warnings = %q, want %q among them", got.Warnings, want)
		}
	}
	if len(got.Warnings) != 9 {
		t.Errorf("Scan(hostile).Warnings = %q, want 9", got.Warnings)
	}
	sameFiles(t, "host", hostBefore, snapshot(t, host))
	sameFiles(t, "escape target", escapeBefore, snapshot(t, escape))
}

// paxNULName is a tar stream whose one entry has a name with a NUL, which only a PAX record can carry.
func paxNULName() []byte {
	return rawTar(paxEntry("app/node_modules/x/package.json", 0, "path=app/node_modules/x\x00/package.json"))
}

func TestScanInvalidLayers(t *testing.T) {
	manyEntries := make([]entry, 11)
	for i := range manyEntries {
		manyEntries[i] = dir(fmt.Sprintf("d%d/", i))
	}
	for _, tc := range []struct {
		name  string
		layer []byte
		opts  inventory.Options
		want  error
	}{
		{"NUL in a name", paxNULName(), inventory.Options{}, errdefs.ErrInvalidArgument},
		{"not a tar", []byte(strings.Repeat("this is not a tar stream\n", 50)), inventory.Options{}, errdefs.ErrInvalidArgument},
		{"truncated", tarOf(t, reg("var/lib/dpkg/status", dpkgStatus))[:1000], inventory.Options{}, errdefs.ErrInvalidArgument},
		{"too many entries", tarOf(t, manyEntries...), inventory.Options{Limits: inventory.Limits{MaxEntries: 10}}, inventory.ErrLimitExceeded},
		{"too large", tarOf(t, reg("a", strings.Repeat("x", 4096))), inventory.Options{Limits: inventory.Limits{MaxLayerSize: 4096}}, inventory.ErrLimitExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := scratch(t)
			opts.MaxEntries, opts.MaxLayerSize = tc.opts.MaxEntries, tc.opts.MaxLayerSize
			img := imageOf(t,
				step{layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease))), "ADD base"},
				step{layerOf(t, tc.layer), "ADD bad"},
			)
			_, err := inventory.Scan(context.Background(), img, opts)
			var lerr *inventory.LayerError
			if !errors.Is(err, tc.want) || !errors.As(err, &lerr) || lerr.Index != 1 {
				t.Errorf("Scan(%s) = %v, want a *LayerError for layer 1 wrapping %v", tc.name, err, tc.want)
			}
		})
	}
}

// bombLayer writes a gzip layer that holds a 1 GiB file of zeros, declared as such, between two small
// package.json files, in a few hundred kilobytes: a gzip stream may be made of members, and one member of 1 MiB
// of zeros is written 1024 times. Nothing of the size of the file is ever in memory.
func bombLayer(t *testing.T) string {
	t.Helper()
	const size = 1 << 30
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	for _, e := range []entry{reg("app/node_modules/before/package.json", `{"name":"before","version":"1.0.0"}`)} {
		tw.WriteHeader(&e.hdr)
		tw.Write(e.body)
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "app/node_modules/bomb/package.json", Mode: 0o644, Size: size})
	tw.Flush()
	tail := tarOf(t, reg("app/node_modules/after/package.json", `{"name":"after","version":"1.0.0"}`))

	member := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	zeros := member(make([]byte, 1<<20))
	p := filepath.Join(t.TempDir(), "bomb.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(member(head.Bytes()))
	for range size >> 20 {
		f.Write(zeros)
	}
	if _, err := f.Write(member(tail)); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestScanDecompressionBomb reads 1 GiB of zeros declared as a package.json, from a few hundred kilobytes: the
// file is skipped, and what the scan keeps of the layer (the cache entry, which is also what osv-scalibr copies to
// its temporary file) holds the two small files only. Time and memory are not asserted: they vary with the
// machine's load.
func TestScanDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 1 GiB of zeros twice")
	}
	p := bombLayer(t)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return os.Open(p) })
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, step{layer, "ADD bomb.tar.gz /"})

	t.Run("file skipped", func(t *testing.T) {
		opts := scratch(t)
		opts.Cache = t.TempDir()
		got, err := inventory.Scan(context.Background(), img, opts)
		if err != nil {
			t.Fatalf("Scan(bomb) = %v", err)
		}
		if len(got.Packages) != 2 || got.Packages[0].Name != "after" || got.Packages[1].Name != "before" {
			t.Errorf("Scan(bomb).Packages = %+v, want after and before", got.Packages)
		}
		want := `layer 0: "app/node_modules/bomb/package.json" skipped: 1073741824 bytes, more than the extractor reads`
		if len(got.Warnings) != 1 || got.Warnings[0] != want {
			t.Errorf("Scan(bomb).Warnings = %q, want [%q]", got.Warnings, want)
		}
		if n := dirBytes(t, opts.Cache); n == 0 || n > 16<<10 {
			t.Errorf("Scan(bomb) kept %d bytes of the layer, want one cache entry of a few kilobytes", n)
		}
	})

	t.Run("layer limit", func(t *testing.T) {
		opts := scratch(t)
		opts.MaxLayerSize = 256 << 20
		_, err := inventory.Scan(context.Background(), img, opts)
		var lerr *inventory.LayerError
		if !errors.Is(err, inventory.ErrLimitExceeded) || !errors.As(err, &lerr) || lerr.Index != 0 {
			t.Errorf("Scan(bomb, MaxLayerSize 256 MiB) = %v, want a *LayerError wrapping %v", err, inventory.ErrLimitExceeded)
		}
	})
}

// TestScanSparseFiles: a sparse entry's holes read as zeros that the stream does not hold, so that one header
// block delivered 99 MiB to the filter, osv-scalibr's temporary file and the cache (a 4 KB layer left 496 MiB in
// the cache). Sparse files are not read: one the extractors want is skipped with a warning, and still hides the
// older file at its path.
func TestScanSparseFiles(t *testing.T) {
	const size = 8 << 20
	pkg := func(name string) entry {
		return reg("app/node_modules/"+name+"/package.json", `{"name":"`+name+`","version":"1.0.0"}`)
	}
	lower := tarOf(t, pkg("gnu"), pkg("pax"), pkg("kept"))
	upper := rawTar(
		gnuSparse("app/node_modules/gnu/package.json", size),
		paxSparse("app/node_modules/pax/package.json", size),
		gnuSparse("usr/share/doc/unread", size), // wanted by no extractor: skipped without a word
	)
	img := imageOf(t, step{layerOf(t, lower), "ADD"}, step{layerOf(t, upper), "ADD sparse.tar /"})
	opts := scratch(t)
	opts.Cache = t.TempDir()
	got, err := inventory.Scan(context.Background(), img, opts)
	if err != nil {
		t.Fatalf("Scan(sparse) = %v", err)
	}
	if len(got.Packages) != 1 || got.Packages[0].Name != "kept" {
		t.Errorf("Scan(sparse).Packages = %+v, want kept only: the sparse files hide the older gnu and pax", got.Packages)
	}
	want := []string{
		`layer 1: "app/node_modules/gnu/package.json" skipped: sparse file`,
		`layer 1: "app/node_modules/pax/package.json" skipped: sparse file`,
	}
	if !slices.Equal(got.Warnings, want) {
		t.Errorf("Scan(sparse).Warnings = %q, want %q", got.Warnings, want)
	}
	if n := dirBytes(t, opts.Cache); n > 64<<10 {
		t.Errorf("Scan(sparse) left %d bytes in the cache from a layer of %d, want a few kilobytes", n, len(upper))
	}
}

// TestScanImageSize: MaxImageSize bounds the bytes read from all the layers, each under MaxLayerSize.
func TestScanImageSize(t *testing.T) {
	layer := func(name string) v1.Layer {
		return layerOf(t, tarOf(t, reg(name, strings.Repeat("x", 30<<10))))
	}
	img := imageOf(t, step{layer("a"), "ADD a"}, step{layer("b"), "ADD b"}, step{layer("c"), "ADD c"})
	opts := scratch(t)
	opts.MaxLayerSize, opts.MaxImageSize = 40<<10, 80<<10
	_, err := inventory.Scan(context.Background(), img, opts)
	var lerr *inventory.LayerError
	// The layers are read from the top down: the bottom one passes the bound.
	if !errors.Is(err, inventory.ErrLimitExceeded) || !errors.As(err, &lerr) || lerr.Index != 0 || !strings.Contains(err.Error(), "(MaxImageSize)") {
		t.Errorf("Scan(3 layers of 31 KiB, MaxImageSize 80 KiB) = %v, want a *LayerError for layer 0 wrapping %v", err, inventory.ErrLimitExceeded)
	}
	opts.MaxImageSize = 100 << 10
	if _, err := inventory.Scan(context.Background(), img, opts); err != nil {
		t.Errorf("Scan(3 layers of 31 KiB, MaxImageSize 100 KiB) = %v", err)
	}
}

// nested is a layer of directories each in the one before, depth of them: osv-scalibr spends time in the cube
// of the depth on it (depth 1000: 50 s from a layer of 2 MB, 7 KB compressed).
func nested(t testing.TB, depth int) []byte {
	var es []entry
	p := ""
	for range depth {
		p += "d/"
		es = append(es, dir(p))
	}
	return tarOf(t, es...)
}

// TestScanDeepNames: names longer than MaxPathBytes or deeper than MaxPathComponents, or links to such, fail
// the layer with a *NameError.
func TestScanDeepNames(t *testing.T) {
	deep := strings.Repeat("d/", inventory.MaxPathComponents)
	long := strings.Repeat("x", inventory.MaxPathBytes-len("app/"))
	for _, tc := range []struct {
		name  string
		layer []byte
		want  *inventory.NameError // nil for a layer that passes
	}{
		{"nested directories", nested(t, 1000), &inventory.NameError{What: "name", Bytes: 514, Components: 257}},
		{"deep file", tarOf(t, reg(deep+"package.json", "{}")), &inventory.NameError{What: "name", Bytes: 524, Components: 257}},
		{"deep symlink target", tarOf(t, symlink("l", "/"+deep+"x")), &inventory.NameError{What: "link target", Bytes: 514, Components: 257}},
		{"deep hard link target", tarOf(t, hardlink("h", deep+"x")), &inventory.NameError{What: "link target", Bytes: 513, Components: 257}},
		{"long name", tarOf(t, reg("app/"+long+"x", "")), &inventory.NameError{What: "name", Bytes: 4097, Components: 2}},
		{"long symlink target", tarOf(t, symlink("l", "/app/"+long+"x")), &inventory.NameError{What: "link target", Bytes: 4098, Components: 2}},
		{"at the bounds", tarOf(t, dir(deep), reg("app/"+long, ""), symlink("l", "/"+deep)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := imageOf(t, step{layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease))), "ADD base"},
				step{layerOf(t, tc.layer), "ADD deep"})
			_, err := inventory.Scan(context.Background(), img, scratch(t))
			if tc.want == nil {
				if err != nil {
					t.Errorf("Scan(%s) = %v", tc.name, err)
				}
				return
			}
			var lerr *inventory.LayerError
			var nerr *inventory.NameError
			if !errors.Is(err, inventory.ErrLimitExceeded) || !errors.As(err, &lerr) || lerr.Index != 1 || !errors.As(err, &nerr) ||
				nerr.What != tc.want.What || nerr.Bytes != tc.want.Bytes || nerr.Components != tc.want.Components || len(nerr.Entry) > 64 {
				t.Errorf("Scan(%s) = %v, want a *LayerError for layer 1 wrapping a *NameError like %+v", tc.name, err, *tc.want)
			}
		})
	}
}

// TestScanDeadline: a deadline that passes while a layer is read stops the scan there, whether the layer comes
// from the cache or not: the layers below are not read (osv-scalibr, which reads them, does not see the
// context).
func TestScanDeadline(t *testing.T) {
	base := layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease), reg("var/lib/dpkg/status", dpkgStatus)))
	app := layerOf(t, tarOf(t, reg("app/node_modules/a/package.json", `{"name":"a","version":"1.0.0"}`)))
	top := layerOf(t, tarOf(t, reg("app/node_modules/b/package.json", `{"name":"b","version":"1.0.0"}`)))
	cache := t.TempDir()
	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprint("warm ", warm), func(t *testing.T) {
			opts := scratch(t)
			opts.Cache = cache
			if warm {
				if _, err := inventory.Scan(context.Background(), imageOf(t, step{base, "ADD"}, step{app, "COPY"}, step{top, "COPY"}), opts); err != nil {
					t.Fatalf("Scan() = %v", err)
				}
			}
			ctx := newDeadline()
			var below atomic.Int32
			img := imageOf(t, step{counted{base, &below}, "ADD"}, step{counted{app, &below}, "COPY"}, step{expiring{top, ctx}, "COPY"})
			_, err := inventory.Scan(ctx, img, opts)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Scan(deadline passed in layer 2) = %v, want %v", err, context.DeadlineExceeded)
			}
			if n := below.Load(); n != 0 {
				t.Errorf("Scan(deadline passed in layer 2) read %d layers below it, want none", n)
			}
		})
	}
}

// TestScanDeadlineDuringAttribution: a deadline that passes while packages are attributed to their layers
// (osv-scalibr runs their extractors again on the older layers, for as long as an image has packages times layers)
// stops the scan before the next location's packages.
func TestScanDeadlineDuringAttribution(t *testing.T) {
	base := layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease), reg("var/lib/dpkg/status", dpkgStatus)))
	app := layerOf(t, tarOf(t, reg("app/node_modules/a/package.json", `{"name":"a","version":"1.0.0"}`)))
	top := layerOf(t, tarOf(t, reg("app/node_modules/b/package.json", `{"name":"b","version":"1.0.0"}`)))
	img := imageOf(t, step{base, "ADD"}, step{app, "COPY"}, step{top, "COPY"})

	// Without a deadline, each of the three locations is attributed once.
	var calls int
	restore := inventory.SetTestHookAttributed(func() { calls++ })
	res, err := inventory.Scan(context.Background(), img, scratch(t))
	restore()
	if err != nil {
		t.Fatalf("Scan() = %v", err)
	}
	if calls != 3 || len(res.Packages) < 3 {
		t.Fatalf("attributed %d locations of %d packages, want 3 locations", calls, len(res.Packages))
	}

	ctx := newDeadline()
	calls = 0
	defer inventory.SetTestHookAttributed(func() { calls++; ctx.expire() })()
	if _, err := inventory.Scan(ctx, img, scratch(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Scan(deadline passed during attribution) = %v, want %v", err, context.DeadlineExceeded)
	}
	if calls != 1 {
		t.Fatalf("attributed %d locations after the deadline passed in the first, want 1", calls)
	}
}

// TestScanLayers: the number of layers, and of history entries, is bounded.
func TestScanLayers(t *testing.T) {
	small := layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease)))
	steps := func(n int, empty int) []step {
		var s []step
		for range n {
			s = append(s, step{small, "RUN"})
		}
		for range empty {
			s = append(s, step{nil, "ENV"})
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		img    v1.Image
		opts   inventory.Options
		reason string // in the error; none for an image that passes
	}{
		{"Docker's limit", imageOf(t, steps(inventory.DefaultMaxLayers, 0)...), inventory.Options{}, ""},
		{"one more", imageOf(t, steps(inventory.DefaultMaxLayers+1, 0)...), inventory.Options{}, "128 layers, more than 127 (MaxLayers)"},
		{"MaxLayers", imageOf(t, steps(3, 0)...), inventory.Options{Limits: inventory.Limits{MaxLayers: 2}}, "3 layers, more than 2 (MaxLayers)"},
		{"history", imageOf(t, steps(1, inventory.MaxHistoryEntries)...), inventory.Options{}, "1025 history entries, more than 1024 (MaxHistoryEntries)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inventory.Scan(context.Background(), tc.img, tc.opts)
			if tc.reason == "" {
				if err != nil {
					t.Errorf("Scan(%s) = %v", tc.name, err)
				}
				return
			}
			if !errors.Is(err, inventory.ErrLimitExceeded) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Scan(%s) = %v, want %v: %s", tc.name, err, inventory.ErrLimitExceeded, tc.reason)
			}
		})
	}
}

// TestScanImageEntries: osv-scalibr keeps every entry of a layer in the layer's tree and in each view of the
// image from the layer's history entry up (40,000 directories under 121 layers: 735 MiB); MaxImageEntries
// bounds the sum, deep entries counting more.
func TestScanImageEntries(t *testing.T) {
	var dirs []entry
	for i := range 10 {
		dirs = append(dirs, dir(fmt.Sprintf("d%d/", i)))
	}
	// Layer 0 is in its own tree and 3 views (its history entry, ENV's and layer 1's); layer 1 in its own tree
	// and 1 view. 10 directories × 4 + 1 symlink × 2.
	shallow := imageOf(t, step{layerOf(t, tarOf(t, dirs...)), "ADD"}, step{nil, "ENV"}, step{layerOf(t, tarOf(t, symlink("l", "d0"))), "RUN"})
	// A directory 32 deep, its parents implied: 16 count 1, the 16 deeper ones ⌈depth²/256⌉ (47 in all); × 2.
	deep := imageOf(t, step{layerOf(t, tarOf(t, dir(strings.Repeat("a/", 32)))), "ADD"})
	for _, tc := range []struct {
		name  string
		img   v1.Image
		count int
	}{
		{"shallow", shallow, 42},
		{"deep", deep, 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := inventory.Scan(context.Background(), tc.img, inventory.Options{Limits: inventory.Limits{MaxImageEntries: tc.count}}); err != nil {
				t.Errorf("Scan(%s, MaxImageEntries %d) = %v", tc.name, tc.count, err)
			}
			_, err := inventory.Scan(context.Background(), tc.img, inventory.Options{Limits: inventory.Limits{MaxImageEntries: tc.count - 1}})
			var lerr *inventory.LayerError
			if !errors.Is(err, inventory.ErrLimitExceeded) || !errors.As(err, &lerr) || !strings.Contains(err.Error(), "(MaxImageEntries)") {
				t.Errorf("Scan(%s, MaxImageEntries %d) = %v, want a *LayerError wrapping %v", tc.name, tc.count-1, err, inventory.ErrLimitExceeded)
			}
		})
	}
}

// TestScanOpaqueMarkers: the opaque directories of the layers above are looked up per entry in a set; a list
// made 20,000 markers over 20,000 directories cost 39 s. The scan's allocations count the work, not the clock:
// the list made one (a string concatenation) per entry and marker.
func TestScanOpaqueMarkers(t *testing.T) {
	const n = 4000
	var lower, upper []entry
	for i := range n {
		d := fmt.Sprintf("opt/a-directory-name-longer-than-32-bytes-%d/", i)
		lower = append(lower, dir(d+"sub/"))
		upper = append(upper, reg(d+".wh..wh..opq", ""))
	}
	lower = append(lower, reg("app/node_modules/kept/package.json", `{"name":"kept","version":"1.0.0"}`))
	img := imageOf(t, step{layerOf(t, tarOf(t, lower...)), "ADD"}, step{layerOf(t, tarOf(t, upper...)), "RUN rm -rf /opt/*/*"})
	opts := scratch(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := inventory.Scan(context.Background(), img, opts)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Scan(opaque markers) = %v", err)
	}
	if len(got.Packages) != 1 || got.Stats.Entries != 2*n+1 {
		t.Errorf("Scan(opaque markers) = %+v, want kept, %d entries", got, 2*n+1)
	}
	// About 25 per entry with a set (190,000), one per entry and marker besides with a list (8 million).
	if allocs := after.Mallocs - before.Mallocs; allocs > 125*2*n {
		t.Errorf("Scan(opaque markers) made %d allocations, %d per entry, want them in proportion to the entries", allocs, allocs/(2*n))
	}
}

// TestScanOSReleaseLoneQuote: osv-scalibr v0.5.3 panics on an os-release line such as VERSION_ID=" (found by
// FuzzScanLayer); the line is dropped before it reads the file.
func TestScanOSReleaseLoneQuote(t *testing.T) {
	img := imageOf(t, step{layerOf(t, tarOf(t,
		reg("etc/os-release", "ID=debian\nVERSION_ID=\"\nVERSION_CODENAME=bookworm\n"),
		reg("var/lib/dpkg/status", dpkgStatus),
	)), "ADD"})
	got, err := inventory.Scan(context.Background(), img, scratch(t))
	if err != nil {
		t.Fatalf("Scan() = %v", err)
	}
	want := []string{`layer 0: "etc/os-release": line 2 ignored: its value is a lone quote`}
	if len(got.Packages) != 4 || got.OS.ID != "debian" || !slices.Equal(got.Warnings, want) {
		t.Errorf("Scan() = %+v, want the 4 Debian packages, os-release read and warnings %q", got, want)
	}
}

// TestScanManyWarnings: a layer of many bad entries makes a bounded list of warnings.
func TestScanManyWarnings(t *testing.T) {
	var devices []entry
	for i := range 150 {
		devices = append(devices, device(fmt.Sprintf("dev/d%d", i), tar.TypeChar))
	}
	img := imageOf(t, step{layerOf(t, tarOf(t, devices...)), "ADD"})
	got, err := inventory.Scan(context.Background(), img, scratch(t))
	if err != nil {
		t.Fatalf("Scan() = %v", err)
	}
	if len(got.Warnings) != 101 || got.Warnings[100] != "layer 0: 50 more warnings" {
		t.Errorf("Scan() warned %d times, ending with %q, want 100 warnings and a count of the rest", len(got.Warnings), got.Warnings[len(got.Warnings)-1])
	}
}
