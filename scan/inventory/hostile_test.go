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
	"sync"
	"testing"
	"time"

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
	block := func(name string, typ byte, size int) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Size: int64(size), Mode: 0o644, Format: tar.FormatUSTAR})
		return b.Bytes()[:512]
	}
	rec := "path=app/node_modules/x\x00/package.json\n"
	rec = fmt.Sprintf("%d %s", len(rec)+3, rec)
	body := make([]byte, 512)
	copy(body, rec)
	hdr := block("PaxHeaders/x", tar.TypeReg, len(rec))
	// A USTAR writer will not make a PAX header: set the type by hand and fix the checksum.
	hdr[156] = tar.TypeXHeader
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(hdr, body...)
	out = append(out, block("app/node_modules/x/package.json", tar.TypeReg, 0)...)
	return append(out, make([]byte, 1024)...)
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
		{"too many entries", tarOf(t, manyEntries...), inventory.Options{MaxEntries: 10}, inventory.ErrLimitExceeded},
		{"too large", tarOf(t, reg("a", strings.Repeat("x", 4096))), inventory.Options{MaxLayerSize: 4096}, inventory.ErrLimitExceeded},
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

// peak samples the heap in use and the bytes under dir until stop is called.
func peak(dir string) (stop func() (heap uint64, disk int64)) {
	var heap uint64
	var disk int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			heap = max(heap, m.HeapAlloc)
			var n int64
			filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if info, err := d.Info(); err == nil {
						n += info.Size()
					}
				}
				return nil
			})
			disk = max(disk, n)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() (uint64, int64) {
		close(done)
		wg.Wait()
		return heap, disk
	}
}

func TestScanDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 1 GiB of zeros three times")
	}
	p := bombLayer(t)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return os.Open(p) })
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, step{layer, "ADD bomb.tar.gz /"})

	t.Run("file skipped", func(t *testing.T) {
		opts := scratch(t)
		runtime.GC()
		stop := peak(filepath.Dir(opts.TempDir))
		got, err := inventory.Scan(context.Background(), img, opts)
		heap, disk := stop()
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
		t.Logf("peak heap %d MiB, peak temporary files %d KiB, %v", heap>>20, disk>>10, got.Stats.Duration)
		if heap > 300<<20 {
			t.Errorf("Scan(bomb) peaked at %d MiB of heap, want under 300", heap>>20)
		}
		if disk > 1<<20 {
			t.Errorf("Scan(bomb) wrote %d KiB of temporary files, want under 1 MiB", disk>>10)
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
