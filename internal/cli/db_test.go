package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/internal/cli"
)

// advisoryFixtures copies the real OSV records of the repository's fixtures into one directory: an import
// replaces only the ecosystems it holds, so they go in together. It returns the directory and the record count.
func advisoryFixtures(t *testing.T) (string, int) {
	t.Helper()
	dir := t.TempDir()
	n := 0
	for _, src := range []string{"../../scan/match/testdata", "../../testdata/osv"} {
		files, err := filepath.Glob(filepath.Join(src, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no fixtures in %s: %v", src, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return dir, n
}

// dbStatus is the part of db status -o json that the tests read.
type dbStatus struct {
	Dir        string   `json:"dir"`
	Total      int      `json:"total"`
	Withdrawn  int      `json:"withdrawn"`
	AgeHours   *float64 `json:"age_hours"`
	Ecosystems []struct {
		Name     string `json:"name"`
		Records  int    `json:"records"`
		Packages int    `json:"packages"`
	} `json:"ecosystems"`
}

func readDBStatus(t *testing.T, args ...string) dbStatus {
	t.Helper()
	r := mustRun(t, append([]string{"db", "status", "-o", "json"}, args...)...)
	var st dbStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("db status -o json: %v\n%s", err, r.stdout)
	}
	return st
}

func (st dbStatus) names() []string {
	var out []string
	for _, e := range st.Ecosystems {
		out = append(out, e.Name)
	}
	return out
}

func TestDB(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("MYRMEX_CACHE_DIR", cache)
	src, records := advisoryFixtures(t)

	if r := myrmex(t, "db", "status"); r.code != cli.ExitNotFound || r.stdout != "" {
		t.Errorf("db status before any import = exit %d, stdout %q; want %d and nothing", r.code, r.stdout, cli.ExitNotFound)
	}

	// Without --db-dir, the database lives under $MYRMEX_CACHE_DIR.
	r := mustRun(t, "db", "import", src)
	for _, want := range []string{"ECOSYSTEM", "Debian:12", "npm", "PyPI", "Go"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("db import stdout has no %q:\n%s", want, r.stdout)
		}
	}
	st := readDBStatus(t)
	if st.Dir != filepath.Join(cache, "osv") {
		t.Errorf("db status dir = %q, want %q", st.Dir, filepath.Join(cache, "osv"))
	}
	if st.Total != records || st.Withdrawn != 1 {
		t.Errorf("db status total %d, withdrawn %d; want the %d fixture records, one withdrawn (GHSA-c5pj-mqfh-rvc3)", st.Total, st.Withdrawn, records)
	}
	for _, eco := range []string{"Debian:11", "Debian:12", "npm", "Go", "PyPI"} {
		if !slices.Contains(st.names(), eco) {
			t.Errorf("db status ecosystems = %q, want %s among them", st.names(), eco)
		}
	}
	if st.AgeHours == nil || *st.AgeHours < 0 || *st.AgeHours > 1 {
		t.Errorf("db status age_hours = %v, want a fresh database's", st.AgeHours)
	}

	// The table: a summary, then a line per ecosystem.
	r = mustRun(t, "db", "status")
	if !strings.Contains(r.stdout, "Total:") || !strings.Contains(r.stdout, "ECOSYSTEM   RECORDS   PACKAGES   IMPORTED") {
		t.Errorf("db status table:\n%s", r.stdout)
	}

	// --db-dir keeps a database elsewhere; an import replaces only the ecosystems it holds.
	other := filepath.Join(t.TempDir(), "osv")
	npmOnly := t.TempDir()
	for _, f := range []string{"GHSA-35jh-r3h4-6jhm.json", "GHSA-xvch-5gv4-984h.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(npmOnly, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "db", "import", npmOnly, "--db-dir", other)
	if st := readDBStatus(t, "--db-dir", other); !slices.Equal(st.names(), []string{"npm"}) || st.Total != 2 {
		t.Errorf("db status --db-dir %s = %q, %d records; want npm alone, 2 records", other, st.names(), st.Total)
	}
	mustRun(t, "db", "import", npmOnly)
	if st := readDBStatus(t); st.Total != records-1 || !slices.Contains(st.names(), "Debian:12") {
		// The fixtures hold three npm records; the npm-only import replaced them with its two.
		t.Errorf("after importing npm alone: %q, %d records; want Debian kept and %d records", st.names(), st.Total, records-1)
	}

	// An export with no record is refused, and the database stays as it was.
	if r := myrmex(t, "db", "import", t.TempDir()); r.code != cli.ExitUsage {
		t.Errorf("db import of an empty directory = exit %d, want %d; stderr:\n%s", r.code, cli.ExitUsage, r.stderr)
	}
	if r := myrmex(t, "db", "import", filepath.Join(t.TempDir(), "missing.zip")); r.code != cli.ExitNotFound {
		t.Errorf("db import of a missing file = exit %d, want %d; stderr:\n%s", r.code, cli.ExitNotFound, r.stderr)
	}
	if st := readDBStatus(t); st.Total != records-1 {
		t.Errorf("after failed imports: %d records, want %d", st.Total, records-1)
	}
}

func TestDBUpdateOffline(t *testing.T) {
	t.Setenv("MYRMEX_CACHE_DIR", t.TempDir())
	src, records := advisoryFixtures(t)
	mustRun(t, "db", "import", src)

	// A port nothing listens on: the update must fail at once, say what to do instead, and change nothing.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	l.Close()
	for _, args := range [][]string{{"npm"}, {}} {
		// A refused connection is the answer: the update fails with it, not with the context's deadline after
		// retrying (a generous one, so that a loaded machine cannot trip it).
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		var out, errb bytes.Buffer
		code := cli.Main(ctx, append([]string{"db", "update", "--base-url", base}, args...), strings.NewReader(""), &out, &errb)
		cancel()
		r := result{stdout: out.String(), stderr: errb.String(), code: code}
		if r.code != cli.ExitUnavailable || r.stdout != "" {
			t.Errorf("db update %q offline = exit %d, stdout %q; want %d and nothing", args, r.code, r.stdout, cli.ExitUnavailable)
		}
		if !strings.Contains(r.stderr, "myrmex db import") {
			t.Errorf("db update %q offline stderr = %q, want the advice to import an export", args, r.stderr)
		}
	}
	if st := readDBStatus(t); st.Total != records {
		t.Errorf("after a failed update: %d records, want %d", st.Total, records)
	}

	// Nothing to refresh and no ecosystem named: a usage error.
	t.Setenv("MYRMEX_CACHE_DIR", t.TempDir())
	if r := myrmex(t, "db", "update", "--base-url", base); r.code != cli.ExitUsage {
		t.Errorf("db update without a database or ecosystems = exit %d, want %d; stderr:\n%s", r.code, cli.ExitUsage, r.stderr)
	}
}
