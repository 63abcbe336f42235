package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
)

// The scale images: the same packages at every size, and filler that every scanner must read through.
//
// The first layer is the Debian test image's package-bearing files, merged from its layers in order (later
// layers win, whiteouts delete): directories and links, the os-release files, the dpkg database, every
// package.json, Python's *.dist-info and *.egg-info metadata, and every Go binary (a file holding Go's build
// information). The filler layers that follow are tars of 8 MB files of bytes from a seeded ChaCha8 stream, under
// /opt/filler/LAYER/, which no scanner finds a package in and gzip cannot shrink; their number makes the size.
// So the images differ only in the bytes there are to read, and a scanner's time and memory against the size
// show how its cost grows with the image, not with what it finds.

const (
	fillerFileBytes  = 8 << 20
	fillerLayerBytes = 96 << 20
)

// scaleEpoch dates every entry and history line, so that the same seed makes the same image.
var scaleEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// packageFile says whether a scanner reads the file for packages.
func packageFile(p string, head []byte) bool {
	base := path.Base(p)
	dir := path.Dir(p)
	switch {
	case p == "etc/os-release" || p == "usr/lib/os-release" || p == "etc/debian_version":
		return true
	case strings.HasPrefix(p, "var/lib/dpkg/"):
		return true
	case base == "package.json":
		return true
	case strings.HasSuffix(dir, ".dist-info") || strings.HasSuffix(dir, ".egg-info") || strings.HasSuffix(base, ".egg-info"):
		return true
	}
	return bytes.Contains(head, []byte("\xff Go buildinf:"))
}

// scaleEntry is one file of the package layer.
type scaleEntry struct {
	hdr  *tar.Header
	body []byte
}

// packageLayer merges the package-bearing files of img's layers into one uncompressed tar.
func packageLayer(img v1.Image) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	files := map[string]scaleEntry{}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			p := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
			if p == "" {
				continue
			}
			if b := path.Base(p); strings.HasPrefix(b, ".wh.") {
				gone := path.Join(path.Dir(p), strings.TrimPrefix(b, ".wh."))
				for k := range files {
					if k == gone || strings.HasPrefix(k, gone+"/") || (b == ".wh..wh..opq" && strings.HasPrefix(k, path.Dir(p)+"/")) {
						delete(files, k)
					}
				}
				continue
			}
			h := *hdr
			h.Name = p
			switch hdr.Typeflag {
			case tar.TypeDir, tar.TypeSymlink:
				files[p] = scaleEntry{hdr: &h}
			case tar.TypeReg:
				if hdr.Size > 64<<20 {
					continue
				}
				body, err := io.ReadAll(tr)
				if err != nil {
					rc.Close()
					return nil, err
				}
				if packageFile(p, body) {
					files[p] = scaleEntry{hdr: &h, body: body}
				} else {
					delete(files, p)
				}
			}
		}
		rc.Close()
	}
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, k := range names {
		e := files[k]
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fillerLayer is a tar of n bytes of seeded random files under opt/filler/INDEX/, made anew on every open.
func fillerLayer(seed uint64, index int, n int64) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		left := n // every open makes the whole layer again
		go func() {
			var key [32]byte
			copy(key[:], fmt.Sprintf("myrmex scale %d %d", seed, index))
			rng := rand.NewChaCha8(key)
			tw := tar.NewWriter(pw)
			dir := fmt.Sprintf("opt/filler/%03d/", index)
			err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: scaleEpoch})
			for f := 0; err == nil && left > 0; f++ {
				size := min(left, fillerFileBytes)
				left -= size
				if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%sdata-%04d.bin", dir, f), Mode: 0o644, Size: size, ModTime: scaleEpoch}); err != nil {
					break
				}
				_, err = io.CopyN(tw, rng, size)
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	})
}

// writeScaleArchive writes a docker-archive of about size bytes of uncompressed layers, tagged ref, to out: the
// package layer of base, then filler. It returns the layers' uncompressed size and their number.
func writeScaleArchive(base v1.Image, size int64, ref, out string, seed uint64) (int64, int, error) {
	pkgs, err := packageLayer(base)
	if err != nil {
		return 0, 0, fmt.Errorf("the package layer: %w", err)
	}
	if int64(len(pkgs)) >= size {
		return 0, 0, fmt.Errorf("the package layer alone is %d bytes, more than the %d asked for", len(pkgs), size)
	}
	pl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(pkgs)), nil })
	if err != nil {
		return 0, 0, err
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return 0, 0, err
	}
	adds := []mutate.Addendum{{Layer: pl, History: v1.History{Created: v1.Time{Time: scaleEpoch}, CreatedBy: "myrmex bench/scan: the Debian test image's package files"}}}
	total := int64(len(pkgs))
	for i := 0; total < size; i++ {
		// A tar adds a 512-byte header per file and two zero blocks at the end: count the payload only.
		n := min(size-total, fillerLayerBytes)
		l, err := fillerLayer(seed, i, n)
		if err != nil {
			return 0, 0, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: scaleEpoch}, CreatedBy: fmt.Sprintf("myrmex bench/scan: filler %d", i+1)}})
		total += n
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return 0, 0, err
	}
	// The base's OS and architecture, without its history (the layers are not its layers).
	img, err = mutate.ConfigFile(img, withPlatform(img, cf))
	if err != nil {
		return 0, 0, err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return 0, 0, err
	}
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		return 0, 0, err
	}
	return total, len(adds), nil
}

func withPlatform(img v1.Image, base *v1.ConfigFile) *v1.ConfigFile {
	cf, err := img.ConfigFile()
	if err != nil || cf == nil {
		cf = &v1.ConfigFile{}
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = base.OS, base.Architecture, base.Variant
	cf.Config.Env = base.Config.Env
	cf.Created = v1.Time{Time: scaleEpoch}
	return cf
}

// scalePoint is the scale part at one image size.
type scalePoint struct {
	MB         int           `json:"mb"`            // the size asked for: the layers' uncompressed bytes / 10^6
	Layers     int           `json:"layers"`        // the package layer and the filler layers
	Archive    int64         `json:"archive_bytes"` // the docker-archive file, gzip layers
	Contenders []measurement `json:"contenders"`
}

// scaleContenders are the scans of the scale part: each of Myrmex's cold scans beside the peer doing the same
// work (the full scan beside Grype, the inventory beside Syft). Their checks against the Debian image's first runs
// are off (b.ref is empty meanwhile); scale checks that every size gives the same counts instead.
func (b *bench) scaleContenders() []contender {
	return []contender{
		b.myrmex("full", "Myrmex full scan, cold", kindFull, "", nil),
		b.grypeScan("grype", "Grype, cold"),
		b.myrmex("inventory-cold", "Myrmex inventory, cold", kindInventory, "", nil),
		b.syftScan("syft-cold", "Syft, cold", ""),
	}
}

// scale makes an image of each -scale size from the Debian test image's packages and filler, and runs the scale
// contenders on it, in a random order per round. Every contender must find as many packages (and findings) at
// every size: the images differ only in the bytes to read.
func (b *bench) scale(ctx context.Context) ([]scalePoint, error) {
	base, err := tarball.ImageFromPath(b.archive, nil)
	if err != nil {
		return nil, err
	}
	archive, ref := b.archive, b.ref
	defer func() { b.archive, b.ref = archive, ref }()
	b.ref = map[string]*scanOutput{}
	var out []scalePoint
	first := map[string]int{} // per contender: the packages found at the first size
	for _, mb := range b.cfg.scaleMB {
		t := time.Now()
		file := filepath.Join(b.tmp, fmt.Sprintf("scale-%d.tar", mb))
		_, layers, err := writeScaleArchive(base, int64(mb)*1_000_000, fmt.Sprintf("myrmex.local/bench-scale:%d", mb), file, 1)
		if err != nil {
			return nil, fmt.Errorf("the %d MB image: %w", mb, err)
		}
		fi, err := os.Stat(file)
		if err != nil {
			return nil, err
		}
		benchkit.Logf("scale: the %d MB image, %d layers, archive %.1f MB, made in %.1fs", mb, layers, float64(fi.Size())/1e6, time.Since(t).Seconds())
		b.archive = file
		cs := b.scaleContenders()
		ms, err := b.roundsOf(ctx, fmt.Sprintf("scale %d MB", mb), b.cfg.scaleRound, cs)
		os.Remove(file)
		if err != nil {
			return nil, fmt.Errorf("scale %d MB: %w", mb, err)
		}
		for _, m := range ms {
			if f, ok := first[m.Key]; !ok {
				first[m.Key] = m.Packages[0]
			} else if f != m.Packages[0] {
				return nil, fmt.Errorf("scale %d MB: %s found %d packages, at %d MB %d", mb, m.Title, m.Packages[0], b.cfg.scaleMB[0], f)
			}
		}
		out = append(out, scalePoint{MB: mb, Layers: layers, Archive: fi.Size(), Contenders: ms})
	}
	return out, nil
}

// figures draws the scale part: time and peak memory against the image's size.
func (r *report) figures() []benchkit.Figure {
	if len(r.Scale) == 0 {
		return nil
	}
	t := benchkit.Figure{Name: "scale-time", Title: "Scans of images of growing size: time", XLabel: "image size (MB, uncompressed layers)", YLabel: "median seconds"}
	m := benchkit.Figure{Name: "scale-memory", Title: "Scans of images of growing size: peak memory", XLabel: "image size (MB, uncompressed layers)", YLabel: "median peak RSS (MB)"}
	for i, c := range r.Scale[0].Contenders {
		ts, ms := benchkit.Series{Name: c.Title}, benchkit.Series{Name: c.Title}
		for _, pt := range r.Scale {
			if i < len(pt.Contenders) {
				x := float64(pt.MB)
				ts.X, ts.Y = append(ts.X, x), append(ts.Y, pt.Contenders[i].Median)
				ms.X, ms.Y = append(ms.X, x), append(ms.Y, pt.Contenders[i].MedianMaxRSSMB)
			}
		}
		t.Series, m.Series = append(t.Series, ts), append(m.Series, ms)
	}
	return []benchkit.Figure{t, m}
}

func (r *report) scaleMarkdown(md *benchkit.Markdown) {
	if len(r.Scale) == 0 {
		return
	}
	p := md.P
	p("## Scale: images of %s", scaleSizes(r.Scale))
	p("")
	p("Each image is one layer of the Debian test image's package files (merged from its layers: the dpkg database, " +
		"os-release, package.json files, Python metadata, Go binaries) and filler layers of seeded incompressible bytes up to the " +
		"size, saved as a docker-archive: the same packages at every size, only more bytes to read. Myrmex's cold full scan beside " +
		"Grype, its cold inventory beside Syft, each in a child process with an empty cache, in a random order per round; " +
		"the median round. Every contender found as many packages at every size.")
	p("")
	for _, f := range r.figures() {
		p("![%s](%s)", f.Title, benchkit.FigureFile("scan", r.Started, f.Name))
		p("")
	}
	p("| size (MB) | layers | archive (MB) | contender | rounds (s) | median (s) | CPU (s) | peak RSS (MB) | packages |")
	p("|---:|---:|---:|---|---|---:|---:|---:|---:|")
	for _, pt := range r.Scale {
		for _, x := range pt.Contenders {
			p("| %d | %d | %.1f | %s | %s | **%.2f** | %.2f | **%.0f** | %s |", pt.MB, pt.Layers, float64(pt.Archive)/1e6, x.Title,
				benchkit.Floats(x.Rounds, "%.2f", " "), x.Median, x.MedianCPU, x.MedianMaxRSSMB, x.packages())
		}
	}
	p("")
}

func scaleSizes(ps []scalePoint) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d MB", p.MB)
	}
	return strings.Join(s, ", ")
}
