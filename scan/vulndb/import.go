package vulndb

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/proto"

	"github.com/codomyrmex/containerization/errdefs"
)

// maxRecordSize bounds one record's JSON, so that a hostile export cannot exhaust memory with one entry.
const maxRecordSize = 32 << 20

// Bounds on what an export makes an import write. A record is filed once for each package it affects, every copy
// with the record's shared fields (details, references…), so that a lookup reads one block; a small record
// shared by many packages would otherwise fill the disk.
const (
	// maxAffected bounds the affected entries of one record; a record with more is rejected as invalid. Real
	// records have one entry per package and release, far fewer.
	maxAffected = 10_000
	// maxFiled bounds the bytes of one record's copies, before compression; a record past it (1 MiB of details
	// shared by 300 packages, say) is rejected as invalid. Real records take far less: a few kilobytes for
	// bench_test.go's Debian-shaped ones.
	maxFiled = 64 << 20
	// maxSpoolBytes bounds the spool of one import, which holds each record's shared fields once and each
	// package's affected entries (about the size of the export's JSON: 90 MB for the 126 MB of bench_test.go's
	// Debian-shaped export); an export past it fails with ErrLimitExceeded.
	maxSpoolBytes = 16 << 30
)

// ErrLimitExceeded means an export is too large to import (over 16 GiB of records once read): the import stopped
// rather than fill the disk, and the database is left as it was. It wraps errdefs.ErrInvalidArgument.
var ErrLimitExceeded = fmt.Errorf("advisory import limit exceeded: %w", errdefs.ErrInvalidArgument)

// maxInvalidListed is how many invalid files a Status names; all of them are counted.
const maxInvalidListed = 50

// InvalidFile is a file of an import that could not be read as an OSV record.
type InvalidFile struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// Import reads an OSV export into the database: src is a zip (osv.dev's all.zip or <ecosystem>/all.zip, whose
// entries are <ID>.json), a directory searched recursively for *.json records, or one .json record. The
// ecosystems the export holds replace the database's; the others stay (unless the previous database cannot be
// read, which an import then replaces whole: that is how a damaged database is repaired). Files that are not OSV records are
// counted in the Status and do not stop the import, as are records past the import's bounds (10,000 affected
// entries, 64 MiB once filed under each package); an export with no record at all is refused with an error
// wrapping errdefs.ErrInvalidArgument, one whose records take more than 16 GiB with ErrLimitExceeded, and the
// database is left as it was. Imports into one directory run one after the other from the moment they read the
// current database, so that each builds on the last; ctx bounds the wait too.
func Import(ctx context.Context, src string, opts Options) (Status, error) {
	return importSources(ctx, []source{{path: src, label: src}}, opts)
}

type source struct{ path, label string }

func importSources(ctx context.Context, srcs []source, opts Options) (Status, error) {
	dir, err := opts.dir()
	if err != nil {
		return Status{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Status{}, fmt.Errorf("creating advisory database %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(dir, tmpPrefix)
	if err != nil {
		return Status{}, fmt.Errorf("creating advisory database %s: %w", dir, err)
	}
	installed := false
	defer func() {
		if !installed {
			os.RemoveAll(tmp)
		}
	}()

	b, err := newBuilder(tmp, opts.logger())
	if err != nil {
		return Status{}, err
	}
	defer b.spool.Close()
	var labels []string
	for _, s := range srcs {
		labels = append(labels, s.label)
		if err := b.read(ctx, s); err != nil {
			return Status{}, err
		}
	}
	if b.valid == 0 {
		return Status{}, fmt.Errorf("%w: importing %s: no OSV record that names a package (%d invalid files, %d records naming none)",
			errdefs.ErrInvalidArgument, strings.Join(labels, ", "), b.invalid, b.skipped)
	}

	// From reading the current generation to installing the new one, which builds on it, no other import may
	// install: it would be lost.
	unlock, err := lock(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return Status{}, fmt.Errorf("locking advisory database %s: %w", dir, err)
	}
	defer unlock()
	prevGen, prev, err := readCurrent(dir)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			b.log.Debug("previous advisory database unreadable: replacing it whole", "err", err)
		}
		prevGen = ""
	}
	m, err := b.finish(ctx, prevGen, prev)
	if err != nil {
		return Status{}, err
	}
	m.Sources = labels
	if err := writeManifest(tmp, m); err != nil {
		return Status{}, err
	}
	if err := install(dir, tmp); err != nil {
		return Status{}, err
	}
	installed = true
	return statusOf(dir, m, time.Now()), nil
}

// builder collects the records of an import. Records go to a spool file as they are read: the fields that do not
// depend on the package once, then the affected entries of each (ecosystem, package) group; memory holds only
// where each is. finish then writes records.db group by group.
type builder struct {
	tmp      string
	spool    *os.File
	spoolW   *bufio.Writer
	spoolOff int64
	maxSpool int64 // maxSpoolBytes, but for the tests
	seq      int
	// groups: ecosystem → normalized package name → the spooled records of that package.
	groups    map[string]map[string][]span
	ecoSource map[string]string
	source    string

	valid, invalid, skipped int
	invalidFiles            []InvalidFile

	buf []byte
	log *slog.Logger
}

// span locates one record of a group in the spool: its shared fields and the group's affected entries, whose
// encodings put together make the record narrowed to the group.
type span struct {
	shared    int64
	sharedLen int
	offset    int64
	length    int
	id        string
	modified  int64
	seq       int
	withdrawn bool
}

func newBuilder(tmp string, log *slog.Logger) (*builder, error) {
	f, err := os.Create(filepath.Join(tmp, "spool"))
	if err != nil {
		return nil, fmt.Errorf("creating advisory database: %w", err)
	}
	return &builder{
		tmp: tmp, spool: f, spoolW: bufio.NewWriterSize(f, 1<<20), maxSpool: maxSpoolBytes,
		groups: map[string]map[string][]span{}, ecoSource: map[string]string{}, log: log,
	}, nil
}

func (b *builder) read(ctx context.Context, s source) error {
	b.source = s.label
	fi, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: importing %s: no such file or directory", errdefs.ErrNotFound, s.path)
	}
	if err != nil {
		return fmt.Errorf("importing %s: %w", s.path, err)
	}
	if fi.IsDir() {
		return b.readDir(ctx, s.path)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("importing %s: %w", s.path, err)
	}
	magic := make([]byte, 4)
	n, _ := io.ReadFull(f, magic)
	f.Close()
	switch {
	case bytes.Equal(magic[:n], []byte("PK\x03\x04")):
		return b.readZip(ctx, s.path)
	case strings.EqualFold(filepath.Ext(s.path), ".json"):
		data, err := readLimited(s.path)
		if err != nil {
			b.reject(filepath.Base(s.path), err)
			return nil
		}
		return b.add(filepath.Base(s.path), data)
	}
	return fmt.Errorf("%w: importing %s: not a zip nor an OSV .json record", errdefs.ErrInvalidArgument, s.path)
}

func (b *builder) readDir(ctx context.Context, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("importing %s: %w", dir, err)
		}
		if d.IsDir() || !strings.EqualFold(filepath.Ext(path), ".json") {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		data, err := readLimited(path)
		if err != nil {
			b.reject(rel, err)
			return nil
		}
		return b.add(rel, data)
	})
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimited(f)
}

func readAllLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("larger than %d MiB", maxRecordSize>>20)
	}
	return data, nil
}

func (b *builder) readZip(ctx context.Context, path string) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("%w: importing %s: %v", errdefs.ErrInvalidArgument, path, err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.EqualFold(filepath.Ext(f.Name), ".json") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.UncompressedSize64 > maxRecordSize {
			b.reject(f.Name, fmt.Errorf("larger than %d MiB", maxRecordSize>>20))
			continue
		}
		rc, err := f.Open()
		if err != nil {
			b.reject(f.Name, err)
			continue
		}
		data, err := readAllLimited(rc)
		rc.Close()
		if err != nil {
			b.reject(f.Name, err)
			continue
		}
		if err := b.add(f.Name, data); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) reject(name string, err error) {
	b.invalid++
	if len(b.invalidFiles) < maxInvalidListed {
		msg := err.Error()
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		b.invalidFiles = append(b.invalidFiles, InvalidFile{Name: name, Error: msg})
	}
	b.log.Debug("invalid OSV record", "file", name, "err", err)
}

var marshal = proto.MarshalOptions{Deterministic: true}

// add parses one record and spools it: its shared fields once, then the affected entries of each (ecosystem,
// package) it names. A record that cannot be read, or breaks maxAffected or maxFiled, is counted; only a failure
// to write the spool, or a spool past its bound, is returned.
func (b *builder) add(name string, data []byte) error {
	v, err := ParseRecord(data)
	if err != nil {
		b.reject(name, err)
		return nil
	}
	if v.GetId() == "" {
		b.reject(name, errors.New("no id"))
		return nil
	}
	if n := len(v.GetAffected()); n > maxAffected {
		b.reject(name, fmt.Errorf("%d affected entries, more than %d", n, maxAffected))
		return nil
	}
	type key struct{ eco, name string }
	groups := map[key][]*osvschema.Affected{}
	var order []key
	for _, a := range v.GetAffected() {
		eco, pkg := a.GetPackage().GetEcosystem(), a.GetPackage().GetName()
		if eco == "" || pkg == "" {
			continue
		}
		k := key{eco, NormalizeName(eco, pkg)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], a)
	}
	if len(groups) == 0 {
		b.skipped++
		return nil
	}

	// b.buf gets the record without its affected entries, then each group's entries; group i's end at ends[i].
	all := v.Affected
	v.Affected = nil
	b.buf, err = marshal.MarshalAppend(b.buf[:0], v)
	v.Affected = all
	if err != nil {
		return fmt.Errorf("importing %s: %w", name, err)
	}
	sharedLen := len(b.buf)
	ends := make([]int, len(order))
	for i, k := range order {
		if b.buf, err = marshal.MarshalAppend(b.buf, &osvschema.Vulnerability{Affected: groups[k]}); err != nil {
			return fmt.Errorf("importing %s: %w", name, err)
		}
		ends[i] = len(b.buf)
	}
	if filed := int64(len(order))*int64(sharedLen) + int64(len(b.buf)-sharedLen); filed > maxFiled {
		b.reject(name, fmt.Errorf("filed under its %d packages it would take %d MiB, more than %d MiB",
			len(order), filed>>20, maxFiled>>20))
		return nil
	}
	if b.spoolOff+int64(len(b.buf)) > b.maxSpool {
		return fmt.Errorf("%w: importing %s: the records take more than %d MiB", ErrLimitExceeded, b.source, b.maxSpool>>20)
	}
	if _, err = b.spoolW.Write(b.buf); err != nil {
		return fmt.Errorf("importing: writing the spool: %w", err)
	}

	b.valid++
	b.seq++
	var modified int64
	if v.GetModified() != nil {
		modified = v.GetModified().AsTime().UnixNano()
	}
	withdrawn := Withdrawn(v)
	start := sharedLen
	for i, k := range order {
		byName := b.groups[k.eco]
		if byName == nil {
			byName = map[string][]span{}
			b.groups[k.eco] = byName
			b.ecoSource[k.eco] = b.source
		}
		byName[k.name] = append(byName[k.name], span{
			shared: b.spoolOff, sharedLen: sharedLen, offset: b.spoolOff + int64(start), length: ends[i] - start,
			id: v.GetId(), modified: modified, seq: b.seq, withdrawn: withdrawn,
		})
		start = ends[i]
	}
	b.spoolOff += int64(len(b.buf))
	return nil
}

// readSpan returns the encoding of a spooled record narrowed to one group.
func (b *builder) readSpan(s span) ([]byte, error) {
	buf := make([]byte, s.sharedLen+s.length)
	if s.offset == s.shared+int64(s.sharedLen) { // the record's first group follows its shared fields
		_, err := b.spool.ReadAt(buf, s.shared)
		return buf, err
	}
	if _, err := b.spool.ReadAt(buf[:s.sharedLen], s.shared); err != nil {
		return nil, err
	}
	_, err := b.spool.ReadAt(buf[s.sharedLen:], s.offset)
	return buf, err
}

// finish writes records.db: the imported ecosystems, then those of the previous generation that the import does
// not replace, copied block by block.
func (b *builder) finish(ctx context.Context, prevGen string, prev manifest) (manifest, error) {
	if err := b.spoolW.Flush(); err != nil {
		return manifest{}, fmt.Errorf("writing advisory database: %w", err)
	}
	now := time.Now().UTC()
	m := manifest{
		Format: formatVersion, Updated: now, Invalid: b.invalid, InvalidFiles: b.invalidFiles, Skipped: b.skipped,
		Ecosystems: map[string]ecoManifest{},
	}
	rw, err := createRecords(filepath.Join(b.tmp, recordsFile))
	if err != nil {
		return manifest{}, fmt.Errorf("writing advisory database: %w", err)
	}
	done := false
	defer func() {
		if !done {
			rw.f.Close()
		}
	}()
	zw, _ := flate.NewWriter(nil, flate.BestSpeed)
	all := map[string]bool{} // record id → withdrawn, over every ecosystem
	for _, eco := range sortedKeys(b.groups) {
		if err := ctx.Err(); err != nil {
			return manifest{}, err
		}
		entries, ids, err := b.writeEcosystem(ctx, rw, zw, eco)
		if err != nil {
			return manifest{}, fmt.Errorf("writing advisory database: %w", err)
		}
		em := ecoManifest{Packages: len(entries), Updated: now, Source: b.ecoSource[eco]}
		if err := writeIndex(rw, &em, entries, ids, all); err != nil {
			return manifest{}, fmt.Errorf("writing advisory database: %w", err)
		}
		m.Ecosystems[eco] = em
	}
	if prevGen != "" {
		if err := b.keep(ctx, rw, prevGen, prev, &m, all); err != nil {
			return manifest{}, err
		}
	}
	for _, w := range all {
		m.Total++
		if w {
			m.Withdrawn++
		}
	}
	done = true
	if err := rw.close(); err != nil {
		return manifest{}, fmt.Errorf("writing advisory database: %w", err)
	}
	os.Remove(b.spool.Name())
	return m, nil
}

func writeIndex(rw *recordsWriter, em *ecoManifest, entries []indexEntry, ids []idEntry, all map[string]bool) error {
	idx := encodeIndex(entries, ids)
	off, err := rw.write(idx)
	if err != nil {
		return err
	}
	em.IndexOffset, em.IndexLength = off, int64(len(idx))
	em.Records, em.Withdrawn = len(ids), 0
	for _, id := range ids {
		if id.withdrawn {
			em.Withdrawn++
		}
		all[id.id] = id.withdrawn
	}
	return nil
}

// writeEcosystem writes one block per package of an ecosystem. When an export holds a record twice (the same id
// in two files), the one modified last is kept.
func (b *builder) writeEcosystem(ctx context.Context, rw *recordsWriter, zw *flate.Writer, eco string) ([]indexEntry, []idEntry, error) {
	byName := b.groups[eco]
	seen := map[string]bool{}
	var entries []indexEntry
	var block bytes.Buffer
	for _, name := range sortedKeys(byName) {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		latest := map[string]span{}
		for _, s := range byName[name] {
			if cur, ok := latest[s.id]; !ok || s.modified > cur.modified || (s.modified == cur.modified && s.seq > cur.seq) {
				latest[s.id] = s
			}
		}
		recs := make([][]byte, 0, len(latest))
		for _, id := range sortedKeys(latest) {
			s := latest[id]
			buf, err := b.readSpan(s)
			if err != nil {
				return nil, nil, err
			}
			recs = append(recs, buf)
			seen[id] = seen[id] || s.withdrawn
		}
		if err := encodeBlock(zw, &block, recs); err != nil {
			return nil, nil, err
		}
		off, err := rw.write(block.Bytes())
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, indexEntry{name: name, offset: off, length: int64(block.Len()), count: len(recs)})
	}
	ids := make([]idEntry, 0, len(seen))
	for _, id := range sortedKeys(seen) {
		ids = append(ids, idEntry{id: id, withdrawn: seen[id]})
	}
	return entries, ids, nil
}

// keep copies the previous generation's ecosystems that this import does not hold.
func (b *builder) keep(ctx context.Context, rw *recordsWriter, prevGen string, prev manifest, m *manifest, all map[string]bool) error {
	f, err := os.Open(filepath.Join(prevGen, recordsFile))
	if err != nil {
		return fmt.Errorf("reading previous advisory database: %w", err)
	}
	defer f.Close()
	ecos := sortedKeys(prev.Ecosystems)
	for _, eco := range ecos {
		if _, replaced := m.Ecosystems[eco]; replaced {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		em := prev.Ecosystems[eco]
		idx := make([]byte, em.IndexLength)
		if _, err := f.ReadAt(idx, em.IndexOffset); err != nil {
			return fmt.Errorf("reading previous advisory database: %s: %w", eco, err)
		}
		entries, ids, err := decodeIndex(idx, true)
		if err != nil {
			return fmt.Errorf("reading previous advisory database: %s: %w", eco, err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
		for i, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			blk := make([]byte, e.length)
			if _, err := f.ReadAt(blk, e.offset); err != nil {
				return fmt.Errorf("reading previous advisory database: %s: %w", eco, err)
			}
			if entries[i].offset, err = rw.write(blk); err != nil {
				return fmt.Errorf("writing advisory database: %w", err)
			}
		}
		if err := writeIndex(rw, &em, entries, ids, all); err != nil {
			return fmt.Errorf("writing advisory database: %w", err)
		}
		m.Ecosystems[eco] = em
	}
	return nil
}
