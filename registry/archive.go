package registry

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/codomyrmex/containerization/errdefs"
)

// maxArchiveEntries bounds the entries of a docker save archive indexed by readableArchive: an image's archive
// holds a few per layer.
const maxArchiveEntries = 100_000

// readableArchive wraps img, go-containerregistry's image of the docker save archive file, for reading its
// layers' content (a scan, an analysis): Layers needs no manifest, where go-containerregistry's hashes every
// compressed layer to write one, a whole pass over the archive before the first layer is read; each layer's
// Uncompressed reads its entry of the file directly, gunzipped by klauspost's gzip (faster than the standard
// library's), and its DiffID is the config's (a scan checks the content against it). What needs the compressed
// blob (Digest, Compressed, Size, MediaType) is go-containerregistry's, computed when first asked. When the
// archive is not as expected (an image it cannot match to one manifest entry, layer entries that are not plain
// files), img is returned as it is.
func readableArchive(ctx context.Context, img v1.Image, file string) (v1.Image, error) {
	cfgName, err := img.ConfigName()
	if err != nil {
		return img, nil
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return img, nil
	}
	entries, err := indexArchive(ctx, file)
	if err != nil {
		return nil, err
	}
	mf, ok := entries["manifest.json"]
	if !ok || mf.size > 16<<20 {
		return img, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.NewDecoder(io.NewSectionReader(f, mf.offset, mf.size)).Decode(&manifest); err != nil {
		return img, nil
	}
	for _, m := range manifest {
		// docker save names the config HEX.json (20.10) or blobs/sha256/HEX (25), go-containerregistry sha256:HEX.
		base := strings.TrimPrefix(strings.TrimSuffix(path.Base(m.Config), ".json"), cfgName.Algorithm+":")
		if base != cfgName.Hex || len(m.Layers) != len(cfg.RootFS.DiffIDs) {
			continue
		}
		layers := make([]v1.Layer, len(m.Layers))
		for i, p := range m.Layers {
			e, ok := entries[path.Clean(p)]
			if !ok {
				return img, nil
			}
			layers[i] = &archiveLayer{img: img, file: file, entry: e, diffID: cfg.RootFS.DiffIDs[i]}
		}
		return &archiveImage{Image: img, layers: layers}, nil
	}
	return img, nil
}

// archiveEntry is where a plain file's content lies in the archive.
type archiveEntry struct{ offset, size int64 }

// maxArchiveName bounds the names (and link targets) indexArchive keeps: docker save's are under 200 bytes;
// maxArchiveNames the bytes of all of them.
const (
	maxArchiveName  = 4096
	maxArchiveNames = 16 << 20
)

// indexArchive lists the archive's plain files, with symbolic links followed (docker 25's archives link layer
// paths to blobs), by reading its headers only: archive/tar seeks past the content. A name given twice is its
// last entry's, as when docker load extracts the archive. Left out, so that a layer stored so is read by
// go-containerregistry's tar reader instead: sparse files (their bytes in the archive are not their content),
// and names or link targets longer than maxArchiveName.
func indexArchive(ctx context.Context, file string) (map[string]archiveEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type item struct {
		entry  archiveEntry
		link   string // a symbolic link's target, as a name in the archive
		isLink bool
	}
	items := map[string]item{}
	names := 0
	tr := tar.NewReader(&ctxFile{ctx: ctx, File: f})
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n > maxArchiveEntries {
			return nil, fmt.Errorf("%w: archive %s: more than %d entries", errdefs.ErrInvalidArgument, file, maxArchiveEntries)
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%w: archive %s: %v", errdefs.ErrInvalidArgument, file, err)
		}
		if len(h.Name) > maxArchiveName || len(h.Linkname) > maxArchiveName {
			continue
		}
		if names += len(h.Name) + len(h.Linkname); names > maxArchiveNames {
			return nil, fmt.Errorf("%w: archive %s: its names take more than %d bytes", errdefs.ErrInvalidArgument, file, maxArchiveNames)
		}
		name := path.Clean(h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			if sparse(h) {
				delete(items, name)
				continue
			}
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			items[name] = item{entry: archiveEntry{offset: off, size: h.Size}}
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			items[name] = item{link: path.Clean(strings.TrimPrefix(target, "/")), isLink: true}
		default:
			delete(items, name) // a later entry of another type replaces the file
		}
	}
	entries := make(map[string]archiveEntry, len(items))
	for name, it := range items {
		for hops := 0; it.isLink && hops < 8; hops++ {
			it = items[it.link] // a link to nothing ends as the zero item: left out
		}
		if !it.isLink && it.entry.offset > 0 {
			entries[name] = it.entry
		}
	}
	return entries, nil
}

// sparse says whether a regular file's header makes it sparse (PAX's GNU.sparse records; GNU's old sparse
// format has a type of its own).
func sparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// ctxFile is the archive's file, read for its headers, honouring the context: a run of metadata headers is
// read inside one call of tar.Reader.Next.
type ctxFile struct {
	ctx context.Context
	*os.File
}

func (c *ctxFile) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.File.Read(p)
}

// archiveImage is an archive's image whose layers read the archive directly; see readableArchive.
type archiveImage struct {
	v1.Image
	layers []v1.Layer
}

func (a *archiveImage) Layers() ([]v1.Layer, error) { return a.layers, nil }

// archiveLayer is one layer of an archiveImage.
type archiveLayer struct {
	img    v1.Image
	file   string
	entry  archiveEntry
	diffID v1.Hash

	once  sync.Once
	inner v1.Layer
	err   error
}

func (l *archiveLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Uncompressed reads the layer's entry, gunzipped when it is gzip; other compressions are go-containerregistry's.
func (l *archiveLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.file)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, l.entry.offset, l.entry.size), 256<<10)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &archiveReader{Reader: gz, close: func() error { return errors.Join(gz.Close(), f.Close()) }}, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd: // zstd
		f.Close()
		inner, err := l.layer()
		if err != nil {
			return nil, err
		}
		return inner.Uncompressed()
	}
	return &archiveReader{Reader: br, close: f.Close}, nil
}

// layer is go-containerregistry's layer, for what needs the compressed blob.
func (l *archiveLayer) layer() (v1.Layer, error) {
	l.once.Do(func() { l.inner, l.err = l.img.LayerByDiffID(l.diffID) })
	return l.inner, l.err
}

func (l *archiveLayer) Digest() (v1.Hash, error) {
	inner, err := l.layer()
	if err != nil {
		return v1.Hash{}, err
	}
	return inner.Digest()
}

func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	inner, err := l.layer()
	if err != nil {
		return nil, err
	}
	return inner.Compressed()
}

func (l *archiveLayer) Size() (int64, error) {
	inner, err := l.layer()
	if err != nil {
		return 0, err
	}
	return inner.Size()
}

func (l *archiveLayer) MediaType() (types.MediaType, error) {
	inner, err := l.layer()
	if err != nil {
		return "", err
	}
	return inner.MediaType()
}

type archiveReader struct {
	io.Reader
	close func() error
}

func (r *archiveReader) Close() error { return r.close() }
