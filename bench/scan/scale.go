package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
