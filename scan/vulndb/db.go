package vulndb

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/proto"
)

// DB is an open advisory database. It is safe for concurrent use, and reads the generation that was current
// when it was opened even if an import replaces it meanwhile.
type DB struct {
	dir      string
	gen      string // the generation's directory
	manifest manifest
	f        *os.File

	mu   sync.Mutex
	ecos map[string]*ecoIndex
}

type ecoIndex struct {
	once    sync.Once
	err     error
	entries []indexEntry // sorted by name
}

// Open opens the database in opts.Dir. When there is none it returns an error wrapping errdefs.ErrNotFound
// that says how to make one.
func Open(opts Options) (*DB, error) {
	dir, err := opts.dir()
	if err != nil {
		return nil, err
	}
	for range 3 {
		gen, m, err := readCurrent(dir)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(filepath.Join(gen, recordsFile))
		if os.IsNotExist(err) {
			continue // replaced between reading CURRENT and opening; read CURRENT again
		}
		if err != nil {
			return nil, fmt.Errorf("opening advisory database %s: %w", dir, err)
		}
		return &DB{dir: dir, gen: gen, manifest: m, f: f, ecos: map[string]*ecoIndex{}}, nil
	}
	return nil, fmt.Errorf("opening advisory database %s: it keeps changing under us", dir)
}

// Current reports whether db still reads the database's current generation: false once an import or update has
// replaced it (a long-lived holder then opens it again), or when it can no longer be read.
func (db *DB) Current() bool {
	name, err := os.ReadFile(filepath.Join(db.dir, currentFile))
	return err == nil && filepath.Join(db.dir, strings.TrimSpace(string(name))) == db.gen
}

// Close releases the database's file.
func (db *DB) Close() error { return db.f.Close() }

// Status describes the database as it was when opened.
func (db *DB) Status() Status { return statusOf(db.dir, db.manifest, time.Now()) }

// Ecosystems lists the ecosystems the database holds, sorted.
func (db *DB) Ecosystems() []string { return sortedKeys(db.manifest.Ecosystems) }

// HasEcosystem reports whether the database holds records for the ecosystem, matched exactly ("Debian:12").
// Packages of an ecosystem it does not hold cannot be checked, which the caller must say.
func (db *DB) HasEcosystem(ecosystem string) bool {
	_, ok := db.manifest.Ecosystems[ecosystem]
	return ok
}

// Lookup returns the records that name the package in the ecosystem, each narrowed to its affected entries for
// that package and ecosystem; the rest of a record is as published. Names are compared as NormalizeName says.
// Withdrawn records are returned too (see Withdrawn). An ecosystem the database does not hold gives no records
// and no error; ask HasEcosystem to tell the two apart.
func (db *DB) Lookup(ecosystem, name string) ([]*osvschema.Vulnerability, error) {
	idx, err := db.index(ecosystem)
	if err != nil || idx == nil {
		return nil, err
	}
	name = NormalizeName(ecosystem, name)
	i := sort.Search(len(idx.entries), func(i int) bool { return idx.entries[i].name >= name })
	if i == len(idx.entries) || idx.entries[i].name != name {
		return nil, nil
	}
	e := idx.entries[i]
	block := make([]byte, e.length)
	if _, err := db.f.ReadAt(block, e.offset); err != nil {
		return nil, fmt.Errorf("looking up %s in %s: %w", name, ecosystem, err)
	}
	encoded, err := decodeBlock(block)
	if err != nil {
		return nil, fmt.Errorf("looking up %s in %s: %w", name, ecosystem, err)
	}
	out := make([]*osvschema.Vulnerability, 0, len(encoded))
	for _, b := range encoded {
		v := new(osvschema.Vulnerability)
		if err := proto.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("looking up %s in %s: %w", name, ecosystem, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// index loads an ecosystem's index section the first time it is asked for.
func (db *DB) index(ecosystem string) (*ecoIndex, error) {
	em, ok := db.manifest.Ecosystems[ecosystem]
	if !ok {
		return nil, nil
	}
	db.mu.Lock()
	idx := db.ecos[ecosystem]
	if idx == nil {
		idx = &ecoIndex{}
		db.ecos[ecosystem] = idx
	}
	db.mu.Unlock()
	idx.once.Do(func() {
		b := make([]byte, em.IndexLength)
		if _, err := db.f.ReadAt(b, em.IndexOffset); err != nil {
			idx.err = fmt.Errorf("reading the index of %s: %w", ecosystem, err)
			return
		}
		entries, _, err := decodeIndex(b, false)
		if err != nil {
			idx.err = fmt.Errorf("reading the index of %s: %w", ecosystem, err)
			return
		}
		idx.entries = entries
	})
	return idx, idx.err
}
