package inventory

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The layer cache keeps, for each layer by diff ID, the filter's output (a tar stream holding only what the
// extractors read) and its summary. An entry is written only for a layer whose content was hashed to its diff
// ID, and used only for a layer whose content hashes to it again: an image may declare any diff ID for any
// content. Layers found there are read (to be hashed) but not filtered again, whatever image they come in;
// extraction and layer attribution then run over them as over fresh layers, so a cached scan gives the same
// result as a cold one.
//
// An entry is one file, written to a temporary name and renamed into place: the tar, then the summary in JSON,
// then the JSON's length and a magic number. A reader checks the magic, the key and the SHA-256 of the tar
// before using an entry; anything else is a miss. A hit sets the entry's modification time: past the cache's
// size, the entries modified longest ago go first.

const (
	cacheFormat = "myrmex-inventory-layer/2"
	cacheMagic  = "MYRMEXL1"
	cacheSubdir = "inventory-layers"
	maxMetaSize = 1 << 20
	// staleTemp is the age past which a temporary entry is taken for one a crashed scan left.
	staleTemp = 24 * time.Hour
)

type cacheMeta struct {
	Key       string       `json:"key"`
	DiffID    string       `json:"diff_id"`
	TarSize   int64        `json:"tar_size"`
	TarSHA256 string       `json:"tar_sha256"`
	Summary   layerSummary `json:"summary"`
}

type layerCache struct {
	dir string
	key string // everything besides the diff ID that the filter's output depends on
	max int64  // bytes on disk

	mu sync.Mutex // trim
}

func openLayerCache(root string, maxFileSize, maxSize int64) (*layerCache, error) {
	dir := filepath.Join(root, cacheSubdir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the layer cache: %w", err)
	}
	key := fmt.Sprintf("%s; osv-scalibr %s; max file size %d; os-release %d; names %d bytes, %d components",
		cacheFormat, scalibrVersion(), maxFileSize, maxOSReleaseSize, MaxPathBytes, MaxPathComponents)
	c := &layerCache{dir: dir, key: key, max: maxSize}
	c.trim() // in case the bound is lower than the last scan's
	return c, nil
}

// trim removes the entries least recently used until the cache is within its size, and the temporary entries
// of crashed scans. Entries in use stay readable: their files are open.
func (c *layerCache) trim() {
	c.mu.Lock()
	defer c.mu.Unlock()
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		size int64
		used time.Time
	}
	var entries []file
	var total int64
	for _, de := range des {
		info, err := de.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		p := filepath.Join(c.dir, de.Name())
		if strings.HasPrefix(de.Name(), ".tmp-") && time.Since(info.ModTime()) > staleTemp {
			os.Remove(p)
			continue
		}
		total += info.Size()
		if strings.HasSuffix(de.Name(), ".layer") {
			entries = append(entries, file{p, info.Size(), info.ModTime()})
		}
	}
	if total <= c.max {
		return
	}
	slices.SortFunc(entries, func(a, b file) int { return a.used.Compare(b.used) })
	for _, e := range entries {
		if total <= c.max {
			break
		}
		if err := os.Remove(e.path); err == nil || errors.Is(err, os.ErrNotExist) {
			total -= e.size
		}
	}
}

func (c *layerCache) path(diffID v1.Hash) string {
	sum := sha256.Sum256([]byte(c.key + "\x00" + diffID.String()))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+".layer")
}

// get returns the cached tar of a layer and its summary, or ok false on a miss, including a damaged entry.
func (c *layerCache) get(diffID v1.Hash) (rc io.ReadCloser, sum *layerSummary, ok bool) {
	f, err := os.Open(c.path(diffID))
	if err != nil {
		return nil, nil, false
	}
	meta, err := c.check(f, diffID)
	if err != nil {
		f.Close()
		return nil, nil, false
	}
	now := time.Now()
	os.Chtimes(f.Name(), now, now) // used: last to be evicted
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, 0, meta.TarSize), f}, &meta.Summary, true
}

func (c *layerCache) check(f *os.File, diffID v1.Hash) (*cacheMeta, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	var trailer [8 + len(cacheMagic)]byte
	if size < int64(len(trailer)) {
		return nil, errors.New("short entry")
	}
	if _, err := f.ReadAt(trailer[:], size-int64(len(trailer))); err != nil {
		return nil, err
	}
	if string(trailer[8:]) != cacheMagic {
		return nil, errors.New("bad magic")
	}
	metaLen := binary.BigEndian.Uint64(trailer[:8])
	if metaLen > maxMetaSize || int64(metaLen) > size-int64(len(trailer)) {
		return nil, errors.New("bad length")
	}
	tarSize := size - int64(len(trailer)) - int64(metaLen)
	raw := make([]byte, metaLen)
	if _, err := f.ReadAt(raw, tarSize); err != nil {
		return nil, err
	}
	var meta cacheMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, err
	}
	if meta.Key != c.key || meta.DiffID != diffID.String() || meta.TarSize != tarSize {
		return nil, errors.New("entry for another key")
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, tarSize)); err != nil {
		return nil, err
	}
	if hex.EncodeToString(h.Sum(nil)) != meta.TarSHA256 {
		return nil, errors.New("checksum mismatch")
	}
	return &meta, nil
}

// errEntryTooLarge drops an entry that would take more than the whole cache.
var errEntryTooLarge = errors.New("larger than the cache's size (MaxCacheSize)")

// create starts a new entry. Its writes never fail: an entry that could not be written, or would not fit in the
// cache, is dropped at commit while the scan goes on.
func (c *layerCache) create(diffID v1.Hash) *cacheEntry {
	f, err := os.CreateTemp(c.dir, ".tmp-*")
	return &cacheEntry{cache: c, diffID: diffID, f: f, err: err, hash: sha256.New()}
}

type cacheEntry struct {
	cache  *layerCache
	diffID v1.Hash
	f      *os.File
	hash   hash.Hash
	n      int64
	err    error
}

func (e *cacheEntry) Write(p []byte) (int, error) {
	if e.err == nil && e.n+int64(len(p)) > e.cache.max {
		e.err = errEntryTooLarge
		e.discard() // its disk space now
	}
	if e.err == nil {
		_, e.err = e.f.Write(p)
		e.hash.Write(p)
		e.n += int64(len(p))
	}
	return len(p), nil
}

// commit adds the summary and moves the entry into place. The caller discards the entry in any case: a no-op
// after a commit.
func (e *cacheEntry) commit(sum layerSummary) error {
	if e.err != nil {
		return e.err
	}
	meta, err := json.Marshal(cacheMeta{
		Key: e.cache.key, DiffID: e.diffID.String(), TarSize: e.n, TarSHA256: hex.EncodeToString(e.hash.Sum(nil)), Summary: sum,
	})
	if err != nil {
		return err
	}
	if len(meta) > maxMetaSize { // a reader would take it for a damaged entry
		return errors.New("its summary is too large")
	}
	var trailer bytes.Buffer
	trailer.Write(meta)
	binary.Write(&trailer, binary.BigEndian, uint64(len(meta)))
	trailer.WriteString(cacheMagic)
	if _, err := e.f.Write(trailer.Bytes()); err != nil {
		return err
	}
	if err := e.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(e.f.Name(), e.cache.path(e.diffID)); err != nil {
		return err
	}
	e.f = nil
	e.cache.trim()
	return nil
}

// discard drops an entry that was not committed.
func (e *cacheEntry) discard() {
	if e.f != nil {
		e.f.Close()
		os.Remove(e.f.Name())
		e.f = nil
	}
}

// scalibrVersion is the version of osv-scalibr linked in: its extractors decide what the filter keeps.
var scalibrVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/google/osv-scalibr" {
				if d.Replace != nil {
					return d.Replace.Path + "@" + d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "unknown"
})
