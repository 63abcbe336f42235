package vulndb_test

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// fixtures are the matcher's real advisories, in OSV form.
const fixtures = "../match/testdata"

// fixtureZip builds an export like osv.dev's all.zip from the fixtures whose ids start with one of prefixes (all
// when none), plus extra entries.
func fixtureZip(t *testing.T, extra map[string]string, prefixes ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	files, err := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		if len(prefixes) > 0 && !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(name)
		w.Write(data)
	}
	for name, data := range extra {
		w, _ := zw.Create(name)
		w.Write([]byte(data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func ids(t *testing.T, db *vulndb.DB, eco, name string) []string {
	t.Helper()
	recs, err := db.Lookup(eco, name)
	if err != nil {
		t.Fatalf("Lookup(%q, %q) = %v", eco, name, err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.GetId())
	}
	return out
}

func TestImportZipLookupAndStatus(t *testing.T) {
	opts := vulndb.Options{Dir: t.TempDir()}
	src := fixtureZip(t, map[string]string{
		"BROKEN-1.json":  `{"id": "BROKEN-1", "affected": [`,
		"NOID.json":      `{"summary": "a record without an id"}`,
		"NOPKG-1.json":   `{"id": "NOPKG-1", "modified": "2024-01-01T00:00:00Z"}`,
		"README.txt":     "not a record, not counted",
		"Debian/x.json/": "",
	})
	st, err := vulndb.Import(context.Background(), src, opts)
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	if st.Total != 12 || st.Withdrawn != 1 || st.Invalid != 2 || st.Skipped != 1 {
		t.Errorf("Import: total %d withdrawn %d invalid %d skipped %d, want 12, 1, 2, 1", st.Total, st.Withdrawn, st.Invalid, st.Skipped)
	}
	var invalid []string
	for _, f := range st.InvalidFiles {
		invalid = append(invalid, f.Name)
	}
	slices.Sort(invalid)
	if !slices.Equal(invalid, []string{"BROKEN-1.json", "NOID.json"}) {
		t.Errorf("InvalidFiles = %v, want BROKEN-1.json and NOID.json", st.InvalidFiles)
	}
	want := map[string]int{"Debian:10": 1, "Debian:11": 6, "Debian:12": 5, "Debian:13": 3, "Debian:14": 1, "Go": 3, "PyPI": 1, "npm": 2}
	for eco, n := range want {
		if got := st.Records(eco); got != n {
			t.Errorf("Records(%q) = %d, want %d", eco, got, n)
		}
	}
	if len(st.Ecosystems) != len(want) {
		t.Errorf("Ecosystems = %v, want %d of them", st.Ecosystems, len(want))
	}
	if st.Stale(time.Hour) || !st.Stale(-time.Second) {
		t.Errorf("Stale(1h) = %v, Stale(-1s) = %v for a fresh import", st.Stale(time.Hour), st.Stale(-time.Second))
	}

	stat, err := vulndb.Stat(opts)
	if err != nil || stat.Total != 12 || !slices.Equal(stat.Sources, []string{src}) {
		t.Errorf("Stat = %+v, %v; want the import's status", stat, err)
	}

	db, err := vulndb.Open(opts)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer db.Close()
	if got := db.Ecosystems(); !slices.Equal(got, []string{"Debian:10", "Debian:11", "Debian:12", "Debian:13", "Debian:14", "Go", "PyPI", "npm"}) {
		t.Errorf("Ecosystems() = %v", got)
	}
	tests := []struct {
		eco, name string
		want      []string
	}{
		{"Debian:12", "glibc", []string{"DEBIAN-CVE-2010-4756", "DEBIAN-CVE-2023-4911", "DSA-5514-1"}},
		{"Debian:11", "openssl", []string{"DEBIAN-CVE-2022-0778", "DSA-5103-1"}},
		{"Debian:12", "openssl", []string{"DEBIAN-CVE-2022-0778"}},
		{"Debian:12", "libc6", nil}, // advisories name the source package
		{"Go", "golang.org/x/text", []string{"GHSA-ppp9-7jff-5vj2", "GO-2021-0113"}},
		{"Go", "github.com/opencontainers/runc", []string{"GHSA-c5pj-mqfh-rvc3"}}, // withdrawn, still stored
		{"PyPI", "Requests", []string{"GHSA-j8r2-6x86-q33q"}},                     // PEP 503 names
		{"npm", "Lodash", nil}, // npm names are exact
		{"Alpine:v3.19", "musl", nil},
	}
	for _, tt := range tests {
		if got := ids(t, db, tt.eco, tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("Lookup(%q, %q) = %v, want %v", tt.eco, tt.name, got, tt.want)
		}
	}

	recs, _ := db.Lookup("Debian:12", "glibc")
	for _, r := range recs {
		if len(r.GetAffected()) != 1 || r.GetAffected()[0].GetPackage().GetEcosystem() != "Debian:12" {
			t.Errorf("Lookup(Debian:12, glibc): %s keeps %d affected entries, want only its Debian:12 one", r.GetId(), len(r.GetAffected()))
		}
		if r.GetId() == "DEBIAN-CVE-2023-4911" && r.GetAffected()[0].GetRanges()[0].GetEvents()[1].GetFixed() != "2.36-9+deb12u3" {
			t.Errorf("Lookup(Debian:12, glibc): DEBIAN-CVE-2023-4911 lost its fixed version: %v", r.GetAffected()[0])
		}
	}
	if !db.HasEcosystem("Debian:12") || db.HasEcosystem("Debian") || db.HasEcosystem("Alpine:v3.19") {
		t.Errorf("HasEcosystem: Debian:12 %v, Debian %v, Alpine:v3.19 %v; want true, false, false",
			db.HasEcosystem("Debian:12"), db.HasEcosystem("Debian"), db.HasEcosystem("Alpine:v3.19"))
	}
}

func TestImportKeepsOtherEcosystemsAndReplacesItsOwn(t *testing.T) {
	ctx := context.Background()
	opts := vulndb.Options{Dir: t.TempDir()}
	if _, err := vulndb.Import(ctx, fixtureZip(t, nil, "GHSA-35jh", "GHSA-2p57"), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := vulndb.Import(ctx, fixtureZip(t, nil, "DEBIAN-", "DSA-"), opts); err != nil {
		t.Fatal(err)
	}
	// A newer Debian export that holds fewer records for Debian:12 replaces the old one.
	st, err := vulndb.Import(ctx, fixtureZip(t, nil, "DEBIAN-CVE-2023-4911"), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"npm": 2, "Debian:10": 1, "Debian:11": 1, "Debian:12": 1, "Debian:13": 1, "Debian:14": 1}
	for eco, n := range want {
		if got := st.Records(eco); got != n {
			t.Errorf("after three imports, Records(%q) = %d, want %d", eco, got, n)
		}
	}
	// Debian:10 and Debian:14 are not in the last export: they stay as the previous import left them.
	if st.Total != 2+1+1+1 {
		t.Errorf("Total = %d, want 5 (lodash, ip, DEBIAN-CVE-2023-4911, DSA-5103-1 for Debian:10, DEBIAN-CVE-2025-6141 for Debian:14)", st.Total)
	}
	db, err := vulndb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := ids(t, db, "npm", "lodash"); !slices.Equal(got, []string{"GHSA-35jh-r3h4-6jhm"}) {
		t.Errorf("Lookup(npm, lodash) after a Debian import = %v", got)
	}
	if got := ids(t, db, "Debian:12", "glibc"); !slices.Equal(got, []string{"DEBIAN-CVE-2023-4911"}) {
		t.Errorf("Lookup(Debian:12, glibc) after the new export = %v, want only what it holds", got)
	}
	if got := ids(t, db, "Debian:14", "ncurses"); !slices.Equal(got, []string{"DEBIAN-CVE-2025-6141"}) {
		t.Errorf("Lookup(Debian:14, ncurses) = %v, want the kept ecosystem's record", got)
	}
}

func TestImportDirectoryKeepsTheLatestOfDuplicates(t *testing.T) {
	dir := t.TempDir()
	rec := func(modified, fixed string) string {
		return `{"id": "GHSA-35jh-r3h4-6jhm", "modified": "` + modified + `", "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
		"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "` + fixed + `"}]}]}]}`
	}
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "old.json"), []byte(rec("2021-05-06T16:05:51Z", "4.17.20")), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "b", "new.json"), []byte(rec("2024-02-13T18:08:58Z", "4.17.21")), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.md"), []byte("# not a record"), 0o644)

	opts := vulndb.Options{Dir: t.TempDir()}
	st, err := vulndb.Import(context.Background(), dir, opts)
	if err != nil || st.Total != 1 || st.Invalid != 0 {
		t.Fatalf("Import(dir) = %+v, %v; want one record", st, err)
	}
	db, err := vulndb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, _ := db.Lookup("npm", "lodash")
	if len(recs) != 1 || recs[0].GetAffected()[0].GetRanges()[0].GetEvents()[1].GetFixed() != "4.17.21" {
		t.Errorf("Lookup(npm, lodash) = %v, want the record modified last", recs)
	}
}

func TestFailedImportLeavesTheDatabase(t *testing.T) {
	ctx := context.Background()
	opts := vulndb.Options{Dir: t.TempDir()}
	before, err := vulndb.Import(ctx, filepath.Join(fixtures, "GHSA-35jh-r3h4-6jhm.json"), opts)
	if err != nil {
		t.Fatal(err)
	}

	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "x.json"), []byte("{not json"), 0o644)
	notZip := filepath.Join(junk, "export.tar")
	os.WriteFile(notZip, []byte("ustar"), 0o644)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		src  string
		want error
	}{
		{"nothing but invalid records", ctx, junk, errdefs.ErrInvalidArgument},
		{"not an export", ctx, notZip, errdefs.ErrInvalidArgument},
		{"missing", ctx, filepath.Join(junk, "nope.zip"), errdefs.ErrNotFound},
		{"cancelled", cancelled, fixtures, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := vulndb.Import(tt.ctx, tt.src, opts); !errors.Is(err, tt.want) {
				t.Errorf("Import(%q) = %v, want %v", tt.src, err, tt.want)
			}
			after, err := vulndb.Stat(opts)
			if err != nil || after.Total != before.Total || !after.Updated.Equal(before.Updated) {
				t.Errorf("after a failed import, Stat = %+v, %v; want the database as it was", after, err)
			}
		})
	}
	ents, _ := os.ReadDir(opts.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "tmp-") {
			t.Errorf("failed imports left %s behind", e.Name())
		}
	}
}

func TestOpenWithoutDatabase(t *testing.T) {
	opts := vulndb.Options{Dir: t.TempDir()}
	if _, err := vulndb.Open(opts); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "myrmex db import") {
		t.Errorf("Open(empty dir) = %v, want ErrNotFound saying how to import", err)
	}
	if _, err := vulndb.Stat(opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Stat(empty dir) = %v, want ErrNotFound", err)
	}
}

func TestOpenDatabaseOutlivesReplacement(t *testing.T) {
	ctx := context.Background()
	opts := vulndb.Options{Dir: t.TempDir()}
	if _, err := vulndb.Import(ctx, fixtureZip(t, nil), opts); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !db.Current() {
		t.Error("Current() = false on a database just opened")
	}
	if _, err := vulndb.Import(ctx, fixtureZip(t, nil, "GHSA-35jh"), opts); err != nil {
		t.Fatal(err)
	}
	if db.Current() {
		t.Error("Current() = true after an import replaced the generation")
	}
	gens, _ := filepath.Glob(filepath.Join(opts.Dir, "gen-*"))
	if len(gens) != 1 {
		t.Errorf("generations after two imports = %v, want only the current one", gens)
	}
	if got := ids(t, db, "Debian:12", "ncurses"); !slices.Equal(got, []string{"DEBIAN-CVE-2025-6141"}) {
		t.Errorf("Lookup on a database opened before a new import = %v, want its own generation's records", got)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("MYRMEX_CACHE_DIR", "/cache/m")
	t.Setenv("XDG_CACHE_HOME", "/cache/xdg")
	t.Setenv("HOME", "/home/u")
	for _, tt := range []struct {
		unset []string
		want  string
	}{
		{nil, "/cache/m/osv"},
		{[]string{"MYRMEX_CACHE_DIR"}, "/cache/xdg/myrmex/osv"},
		{[]string{"MYRMEX_CACHE_DIR", "XDG_CACHE_HOME"}, "/home/u/.cache/myrmex/osv"},
	} {
		for _, u := range tt.unset {
			t.Setenv(u, "")
		}
		if got, err := vulndb.DefaultDir(); err != nil || got != tt.want {
			t.Errorf("DefaultDir() with %v unset = %q, %v; want %q", tt.unset, got, err, tt.want)
		}
	}
}

func TestUpdateWithoutNetworkFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	opts := vulndb.Options{Dir: t.TempDir(), BaseURL: closed}
	// A refused connection is the answer: the update fails with it, not with the context's deadline after
	// retrying (a generous one, so that a loaded machine cannot trip it).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = vulndb.Update(ctx, []string{"Debian"}, opts)
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "myrmex db import") {
		t.Errorf("Update(unreachable) = %v, want ErrUnavailable saying to import an export", err)
	}
	if _, err := vulndb.Stat(opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Stat after a failed update = %v, want still no database", err)
	}
	if _, err := vulndb.Update(context.Background(), nil, opts); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Update(no ecosystems, empty database) = %v, want ErrInvalidArgument", err)
	}
}

// TestUpdateStopsAtTheDeadline downloads from servers that never answer, or stop halfway through the body: the
// update ends with the context's deadline and leaves no database.
func TestUpdateStopsAtTheDeadline(t *testing.T) {
	for name, handler := range map[string]http.HandlerFunc{
		"no answer": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		"body stalls": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("PK\x03\x04"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(handler)
			defer srv.Close()
			opts := vulndb.Options{Dir: t.TempDir(), BaseURL: srv.URL, HTTPClient: srv.Client()}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, err := vulndb.Update(ctx, []string{"npm"}, opts); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Update(%s) = %v, want %v", name, err, context.DeadlineExceeded)
			}
			if _, err := vulndb.Stat(opts); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("Stat after Update(%s) = %v, want still no database", name, err)
			}
		})
	}
}

// TestConcurrentImportsKeepEveryEcosystem runs imports of distinct ecosystems into one database at the same
// time: each builds on what the others installed, so that every ecosystem is there afterwards.
func TestConcurrentImportsKeepEveryEcosystem(t *testing.T) {
	const n = 6
	var srcs, want []string
	for i := range n {
		eco := fmt.Sprintf("Eco%d", i)
		src := filepath.Join(t.TempDir(), eco+"-1.json")
		rec := fmt.Sprintf(`{"id": "%s-1", "affected": [{"package": {"ecosystem": %q, "name": "pkg"}}]}`, eco, eco)
		if err := os.WriteFile(src, []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
		srcs, want = append(srcs, src), append(want, eco)
	}
	for round := range 3 {
		opts := vulndb.Options{Dir: t.TempDir()}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, src := range srcs {
			wg.Go(func() { _, errs[i] = vulndb.Import(context.Background(), src, opts) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: concurrent Import = %v", round, err)
		}
		st, err := vulndb.Stat(opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range st.Ecosystems {
			got = append(got, e.Name)
		}
		if !slices.Equal(got, want) || st.Total != n {
			t.Errorf("round %d: after %d concurrent imports, ecosystems %v (%d records), want %v (%d)", round, n, got, st.Total, want, n)
		}
	}
}

func TestUpdateFromServer(t *testing.T) {
	exports := map[string]string{
		"/npm/all.zip": fixtureZip(t, nil, "GHSA-35jh", "GHSA-2p57"),
		"/Go/all.zip":  fixtureZip(t, nil, "GO-", "GHSA-ppp9", "GHSA-c5pj"),
	}
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		path, ok := exports[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, path)
	}))
	defer srv.Close()

	ctx := context.Background()
	opts := vulndb.Options{Dir: t.TempDir(), BaseURL: srv.URL, HTTPClient: srv.Client()}
	st, err := vulndb.Update(ctx, []string{"npm", "Go"}, opts)
	if err != nil {
		t.Fatalf("Update = %v", err)
	}
	if st.Records("npm") != 2 || st.Records("Go") != 3 || st.Total != 5 {
		t.Errorf("Update: npm %d, Go %d, total %d; want 2, 3, 5", st.Records("npm"), st.Records("Go"), st.Total)
	}
	if !slices.Equal(st.Sources, []string{srv.URL + "/Go/all.zip", srv.URL + "/npm/all.zip"}) {
		t.Errorf("Sources = %v, want the two URLs", st.Sources)
	}

	// With no ecosystems, Update refreshes the families the database holds.
	got = nil
	if _, err := vulndb.Update(ctx, nil, opts); err != nil || !slices.Equal(got, []string{"/Go/all.zip", "/npm/all.zip"}) {
		t.Errorf("Update(nil) = %v, fetched %v; want Go and npm again", err, got)
	}
	if _, err := vulndb.Update(ctx, []string{"npm", "NoSuchEcosystem"}, opts); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Update(NoSuchEcosystem) = %v, want ErrNotFound", err)
	}
	if st, err := vulndb.Stat(opts); err != nil || st.Total != 5 {
		t.Errorf("Stat after a failed update = %+v, %v; want the database as it was", st, err)
	}
}

func TestWithdrawnAndNames(t *testing.T) {
	for _, tt := range []struct {
		json string
		want bool
	}{
		{`{"id": "GHSA-c5pj-mqfh-rvc3", "withdrawn": "2024-06-05T18:30:34Z"}`, true},
		// Debian's converter writes the zero instant where a record is not withdrawn.
		{`{"id": "DEBIAN-CVE-2014-9586", "published": "0001-01-01T00:00:00Z", "withdrawn": "0001-01-01T00:00:00Z"}`, false},
		{`{"id": "DEBIAN-CVE-2023-4911", "unknown_field": [1, 2], "severity": [{"type": "CVSS_V5", "score": "x"}]}`, false},
	} {
		v, err := vulndb.ParseRecord([]byte(tt.json))
		if err != nil {
			t.Fatalf("ParseRecord(%s) = %v", tt.json, err)
		}
		if got := vulndb.Withdrawn(v); got != tt.want {
			t.Errorf("Withdrawn(%s) = %v, want %v", v.GetId(), got, tt.want)
		}
	}
	for in, want := range map[string]string{"Requests": "requests", "zope.interface": "zope-interface", "Foo__Bar-.baz": "foo-bar-baz"} {
		if got := vulndb.NormalizeName("PyPI", in); got != want {
			t.Errorf("NormalizeName(PyPI, %q) = %q, want %q", in, got, want)
		}
	}
	if got := vulndb.NormalizeName("npm", "Lodash"); got != "Lodash" {
		t.Errorf("NormalizeName(npm, Lodash) = %q, want it unchanged", got)
	}
}

func TestCorruptDatabaseIsAnErrorNotACrash(t *testing.T) {
	opts := vulndb.Options{Dir: t.TempDir()}
	if _, err := vulndb.Import(context.Background(), fixtureZip(t, nil), opts); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(opts.Dir, "gen-*", "records.db"))
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over every block but keep the indexes, which sit at the end.
	for i := len("MYRMEX-OSV 1\n"); i < len(data)/2; i++ {
		data[i] ^= 0x5a
	}
	os.WriteFile(files[0], data, 0o644)
	db, err := vulndb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	failed := 0
	for _, eco := range db.Ecosystems() {
		for _, name := range []string{"glibc", "openssl", "ncurses", "lodash", "ip", "golang.org/x/text", "requests"} {
			if _, err := db.Lookup(eco, name); err != nil {
				failed++
			}
		}
	}
	if failed == 0 {
		t.Errorf("Lookup on a scribbled database never failed")
	}
}
