package vulndb

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
)

// The on-disk layout of one generation; see the package documentation.
const (
	currentFile   = "CURRENT"
	manifestFile  = "manifest.json"
	recordsFile   = "records.db"
	lockFile      = ".lock"
	genPrefix     = "gen-"
	tmpPrefix     = "tmp-"
	formatVersion = 1
	recordsMagic  = "MYRMEX-OSV 1\n"
)

// manifest is manifest.json: everything Stat reports, and where each ecosystem's index section is.
type manifest struct {
	Format       int                    `json:"format"`
	Updated      time.Time              `json:"updated"`
	Sources      []string               `json:"sources"`
	Total        int                    `json:"total"`
	Withdrawn    int                    `json:"withdrawn"`
	Invalid      int                    `json:"invalid"`
	InvalidFiles []InvalidFile          `json:"invalid_files,omitempty"`
	Skipped      int                    `json:"skipped"`
	Ecosystems   map[string]ecoManifest `json:"ecosystems"`
}

type ecoManifest struct {
	Records   int       `json:"records"`
	Withdrawn int       `json:"withdrawn"`
	Packages  int       `json:"packages"`
	Updated   time.Time `json:"updated"`
	Source    string    `json:"source"`
	// IndexOffset and IndexLength locate the ecosystem's index section in records.db.
	IndexOffset int64 `json:"index_offset"`
	IndexLength int64 `json:"index_length"`
}

// indexEntry locates the block of one package's records.
type indexEntry struct {
	name   string
	offset int64
	length int64
	count  int
}

// idEntry is one record id of an ecosystem, kept so that an import that keeps the ecosystem can count distinct
// records across ecosystems without decoding them.
type idEntry struct {
	id        string
	withdrawn bool
}

// encodeIndex writes an ecosystem's index section: the package entries sorted by name, then the record ids.
func encodeIndex(entries []indexEntry, ids []idEntry) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e.name)))
		b = append(b, e.name...)
		b = binary.AppendUvarint(b, uint64(e.offset))
		b = binary.AppendUvarint(b, uint64(e.length))
		b = binary.AppendUvarint(b, uint64(e.count))
	}
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id.id)))
		b = append(b, id.id...)
		if id.withdrawn {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

var errCorrupt = errors.New("corrupt index")

// decodeIndex reads an index section back; the record ids only when withIDs is set.
func decodeIndex(b []byte, withIDs bool) ([]indexEntry, []idEntry, error) {
	r := &byteReader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, nil, errCorrupt
	}
	entries := make([]indexEntry, 0, n)
	for range n {
		name := r.str()
		e := indexEntry{name: name, offset: int64(r.uvarint()), length: int64(r.uvarint()), count: int(r.uvarint())}
		entries = append(entries, e)
	}
	if !withIDs {
		return entries, nil, r.err
	}
	m := r.uvarint()
	if m > uint64(len(b)) {
		return nil, nil, errCorrupt
	}
	ids := make([]idEntry, 0, m)
	for range m {
		id := idEntry{id: r.str()}
		id.withdrawn = r.byte() == 1
		ids = append(ids, id)
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	return entries, ids, nil
}

type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *byteReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// encodeBlock compresses one package's records (each protobuf-encoded) into a block.
func encodeBlock(zw *flate.Writer, dst *bytes.Buffer, records [][]byte) error {
	dst.Reset()
	zw.Reset(dst)
	var hdr [binary.MaxVarintLen64]byte
	if _, err := zw.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(records)))]); err != nil {
		return err
	}
	for _, rec := range records {
		if _, err := zw.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(rec)))]); err != nil {
			return err
		}
		if _, err := zw.Write(rec); err != nil {
			return err
		}
	}
	return zw.Close()
}

// inflaters keeps flate readers for reuse: each holds tens of kilobytes of window.
var inflaters sync.Pool

// decodeBlock inflates a block and returns its records' encodings.
func decodeBlock(block []byte) ([][]byte, error) {
	var zr io.ReadCloser
	if r, ok := inflaters.Get().(io.ReadCloser); ok {
		zr = r
		zr.(flate.Resetter).Reset(bytes.NewReader(block), nil)
	} else {
		zr = flate.NewReader(bytes.NewReader(block))
	}
	raw, err := io.ReadAll(zr)
	inflaters.Put(zr)
	if err != nil {
		return nil, err
	}
	r := &byteReader{b: raw}
	n := r.uvarint()
	if n > uint64(len(raw)) {
		return nil, errCorrupt
	}
	out := make([][]byte, 0, n)
	for range n {
		l := r.uvarint()
		if r.err != nil || l > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		out = append(out, r.b[:l])
		r.b = r.b[l:]
	}
	return out, r.err
}

// readCurrent returns the current generation's directory and manifest, or an error wrapping ErrNotFound when the
// directory holds no database.
func readCurrent(dir string) (string, manifest, error) {
	// A concurrent import may swap generations between reading CURRENT and reading the manifest; read again.
	var lastErr error
	for range 3 {
		name, err := os.ReadFile(filepath.Join(dir, currentFile))
		if errors.Is(err, os.ErrNotExist) {
			return "", manifest{}, fmt.Errorf("%w: no advisory database in %s: import an export with `myrmex db import` "+
				"or download one with `myrmex db update`", errdefs.ErrNotFound, dir)
		}
		if err != nil {
			return "", manifest{}, fmt.Errorf("reading advisory database %s: %w", dir, err)
		}
		gen := filepath.Join(dir, strings.TrimSpace(string(name)))
		m, err := readManifest(gen)
		if err == nil {
			return gen, m, nil
		}
		lastErr = err
	}
	return "", manifest{}, lastErr
}

func readManifest(gen string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(gen, manifestFile))
	if err != nil {
		return m, fmt.Errorf("reading advisory database %s: %w", gen, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("reading advisory database %s: manifest: %w", gen, err)
	}
	if m.Format != formatVersion {
		return m, fmt.Errorf("%w: advisory database %s has format %d, this build reads %d: import it again",
			errdefs.ErrInvalidArgument, gen, m.Format, formatVersion)
	}
	return m, nil
}

// install moves a finished generation into place: it renames tmp to a generation name, points CURRENT at it, and
// removes the generations it replaced. The caller holds the directory's lock.
func install(dir, tmp string) error {
	gen := genPrefix + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(tmp, filepath.Join(dir, gen)); err != nil {
		return fmt.Errorf("installing advisory database: %w", err)
	}
	cur, err := os.CreateTemp(dir, currentFile+".*")
	if err != nil {
		return fmt.Errorf("installing advisory database: %w", err)
	}
	_, werr := cur.WriteString(gen + "\n")
	if serr := cur.Sync(); werr == nil {
		werr = serr
	}
	if cerr := cur.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(cur.Name(), filepath.Join(dir, currentFile))
	}
	if werr != nil {
		os.Remove(cur.Name())
		os.RemoveAll(filepath.Join(dir, gen))
		return fmt.Errorf("installing advisory database: %w", werr)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	removeStale(dir, gen)
	return nil
}

// removeStale removes every generation but keep, and temporary directories that an import which crashed left
// behind a day ago or more. Open databases keep reading their records.db, which the system frees on close.
func removeStale(dir, keep string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, genPrefix) && name != keep:
			os.RemoveAll(filepath.Join(dir, name))
		case strings.HasPrefix(name, tmpPrefix):
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
				os.RemoveAll(filepath.Join(dir, name))
			}
		}
	}
}

// recordsWriter appends blocks and index sections to a new records.db.
type recordsWriter struct {
	f   *os.File
	w   *bufio.Writer
	off int64
}

func createRecords(path string) (*recordsWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	rw := &recordsWriter{f: f, w: bufio.NewWriterSize(f, 1<<20)}
	if _, err := rw.write([]byte(recordsMagic)); err != nil {
		f.Close()
		return nil, err
	}
	return rw, nil
}

func (rw *recordsWriter) write(b []byte) (int64, error) {
	off := rw.off
	n, err := rw.w.Write(b)
	rw.off += int64(n)
	return off, err
}

func (rw *recordsWriter) close() error {
	err := rw.w.Flush()
	if serr := rw.f.Sync(); err == nil {
		err = serr
	}
	if cerr := rw.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
