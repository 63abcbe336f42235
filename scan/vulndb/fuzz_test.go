package vulndb_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// osvSeeds are the real records of the fixtures, and records at the edges of the schema.
func osvSeeds(f *testing.F) [][]byte {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	var seeds [][]byte
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil && len(b) < 16<<10 {
			seeds = append(seeds, b)
		}
	}
	return append(seeds,
		[]byte(`{"id":"X-1","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]}`),
		[]byte(`{"id":"X-2","modified":"2025-01-01T00:00:00Z","withdrawn":"0001-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"b"},"versions":["1:2.3-4"]}]}`),
		[]byte(`{"id":"","affected":[{}]}`), []byte(`{"id":1}`), []byte(`[]`), []byte(`{"id":"X","modified":"not a time"}`),
	)
}

// FuzzParseRecord reads arbitrary bytes as an OSV record: refused, or a record that survives a round trip
// (written in its JSON form and read again, it is the same record).
func FuzzParseRecord(f *testing.F) {
	for _, s := range osvSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := vulndb.ParseRecord(data)
		if err != nil {
			return
		}
		b, err := protojson.Marshal(v)
		if err != nil {
			t.Fatalf("a parsed record does not marshal: %v", err)
		}
		again, err := vulndb.ParseRecord(b)
		if err != nil {
			t.Fatalf("the record written again does not read back: %v\n%s", err, b)
		}
		if !proto.Equal(v, again) {
			t.Fatalf("round trip changed the record:\n%v\n%v", v, again)
		}
		_ = vulndb.Withdrawn(v)
	})
}

// FuzzImport imports a zip export holding one arbitrary file beside a real record: the import succeeds, with the
// file counted as invalid or imported, or fails with an error wrapping ErrInvalidArgument; either way the
// database opens afterwards and every ecosystem it lists can be read.
func FuzzImport(f *testing.F) {
	for _, s := range osvSeeds(f) {
		f.Add(s)
	}
	good, err := os.ReadFile(filepath.Join(fixtures, "DSA-5514-1.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for name, content := range map[string][]byte{"DSA-5514-1.json": good, "FUZZ-1.json": data} {
			w, err := zw.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write(content)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(dir, "all.zip")
		if err := os.WriteFile(src, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		opts := vulndb.Options{Dir: filepath.Join(dir, "db")}
		st, err := vulndb.Import(context.Background(), src, opts)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Import = %v, want success or an error wrapping ErrInvalidArgument", err)
			}
			return
		}
		if st.Total < 1 || st.Total > 2 || st.Invalid > 1 {
			t.Fatalf("Import = %d records, %d invalid; want the real record and the fuzz file imported or counted invalid", st.Total, st.Invalid)
		}
		db, err := vulndb.Open(opts)
		if err != nil {
			t.Fatalf("the database does not open after a successful import: %v", err)
		}
		defer db.Close()
		for _, eco := range db.Ecosystems() {
			if _, err := db.Lookup(eco, "x"); err != nil {
				t.Fatalf("Lookup in %s = %v", eco, err)
			}
		}
	})
}
