package vulndb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
)

// record is an npm record that affects packages p0, p1… and shares details among them.
func record(id, details string, packages int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id": %q, "modified": "2024-01-01T00:00:00Z", "details": %q, "affected": [`, id, details)
	for i := range packages {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"package": {"ecosystem": "npm", "name": "p%d"}, "versions": ["1.0.%d"]}`, i, i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func writeRecord(t *testing.T, dir, id string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, id+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImportSpoolsSharedFieldsOnce adds a record of 300 packages and 100 KiB of details: the spool holds the
// details once, not once per package, and a lookup of any of the packages still returns the whole record,
// narrowed to that package's entry.
func TestImportSpoolsSharedFieldsOnce(t *testing.T) {
	const packages = 300
	details := strings.Repeat("A flaw. ", 100<<10/8)
	rec := record("AMP-1", details, packages)

	b, err := newBuilder(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.spool.Close()
	if err := b.add("AMP-1.json", rec); err != nil || b.valid != 1 {
		t.Fatalf("add(AMP-1) = %v, %d valid; want it added", err, b.valid)
	}
	if limit := int64(len(details)) + 32<<10; b.spoolOff > limit {
		t.Errorf("add(record of %d KiB, %d packages) spooled %d KiB, want at most %d KiB",
			len(rec)>>10, packages, b.spoolOff>>10, limit>>10)
	}

	opts := Options{Dir: t.TempDir()}
	if _, err := Import(context.Background(), writeRecord(t, t.TempDir(), "AMP-1", rec), opts); err != nil {
		t.Fatal(err)
	}
	db, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, name := range []string{"p0", "p17", "p299"} {
		recs, err := db.Lookup("npm", name)
		if err != nil || len(recs) != 1 {
			t.Fatalf("Lookup(npm, %s) = %d records, %v; want AMP-1", name, len(recs), err)
		}
		r := recs[0]
		if r.GetId() != "AMP-1" || r.GetDetails() != details || r.GetModified() == nil ||
			len(r.GetAffected()) != 1 || r.GetAffected()[0].GetPackage().GetName() != name {
			t.Errorf("Lookup(npm, %s) = %s with %d bytes of details and %d affected entries, want AMP-1 whole, narrowed to %[1]s",
				name, r.GetId(), len(r.GetDetails()), len(r.GetAffected()))
		}
	}
}

// TestImportRejectsAmplifyingRecords imports, next to a good record, one with more than maxAffected affected
// entries and one whose copies (one per package, each with the shared fields) would take more than maxFiled:
// both are rejected as invalid records are, and the good one is imported.
func TestImportRejectsAmplifyingRecords(t *testing.T) {
	src := t.TempDir()
	writeRecord(t, src, "GOOD-1", record("GOOD-1", "fine", 3))
	writeRecord(t, src, "MANY-1", record("MANY-1", "", maxAffected+1))
	// The reported case: 1 MiB of details shared by 300 packages, 300 MiB once filed under each.
	writeRecord(t, src, "WIDE-1", record("WIDE-1", strings.Repeat("A", 1<<20), 300))

	opts := Options{Dir: t.TempDir()}
	st, err := Import(context.Background(), src, opts)
	if err != nil {
		t.Fatal(err)
	}
	var invalid []string
	for _, f := range st.InvalidFiles {
		invalid = append(invalid, f.Name)
	}
	if st.Total != 1 || st.Invalid != 2 || strings.Join(invalid, " ") != "MANY-1.json WIDE-1.json" {
		t.Errorf("Import = %d records, %d invalid %v; want GOOD-1 only, MANY-1 and WIDE-1 rejected", st.Total, st.Invalid, st.InvalidFiles)
	}
}

// TestImportSpoolBound adds records to a builder whose spool bound is lowered to 1 MiB: the record that would
// pass it stops the import with ErrLimitExceeded.
func TestImportSpoolBound(t *testing.T) {
	b, err := newBuilder(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.spool.Close()
	b.maxSpool = 1 << 20
	details := strings.Repeat("x", 600<<10)
	if err := b.add("A-1.json", record("A-1", details, 2)); err != nil {
		t.Fatalf("add(first 600 KiB) = %v, want it added", err)
	}
	err = b.add("B-1.json", record("B-1", details, 2))
	if !errors.Is(err, ErrLimitExceeded) || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("add(past the spool bound) = %v, want %v", err, ErrLimitExceeded)
	}
	if b.spoolOff > b.maxSpool {
		t.Errorf("spool holds %d bytes, past its bound of %d", b.spoolOff, b.maxSpool)
	}
}

// TestImportWaitsForTheLockUntilTheDeadline holds the database's lock, as an import installing its generation
// does, and gives it up only after the deadline of another import, which must end with the deadline and change
// nothing.
func TestImportWaitsForTheLockUntilTheDeadline(t *testing.T) {
	opts := Options{Dir: t.TempDir()}
	unlock, err := lock(context.Background(), filepath.Join(opts.Dir, lockFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	go func() {
		<-ctx.Done()
		unlock()
	}()
	src := writeRecord(t, t.TempDir(), "GOOD-1", record("GOOD-1", "fine", 1))
	if _, err := Import(ctx, src, opts); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Import(lock held past the deadline) = %v, want %v", err, context.DeadlineExceeded)
	}
	if _, err := Stat(opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Stat after an import that timed out = %v, want still no database", err)
	}
}
