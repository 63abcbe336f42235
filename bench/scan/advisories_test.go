package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/scan/vulndb"
)

// TestGenerateExport makes the export twice and imports it: the same bytes each time, at least 50,000 records over
// the four families with every fixture inside, and Myrmex's import takes every record.
func TestGenerateExport(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	sums := make([][32]byte, 2)
	var ex *export
	for i := range sums {
		dir := t.TempDir()
		if ex, err = generateExport(root, dir); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		for _, z := range ex.zips {
			b, err := os.ReadFile(z)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
		}
		copy(sums[i][:], h.Sum(nil))
	}
	if sums[0] != sums[1] {
		t.Errorf("generateExport made two different exports")
	}
	if len(ex.records) < 50_000 {
		t.Errorf("generateExport made %d records, want at least 50,000", len(ex.records))
	}
	for _, fam := range []string{"Debian", "npm", "PyPI", "Go"} {
		if ex.counts[fam] < 1000 {
			t.Errorf("generateExport: %d %s records, want thousands", ex.counts[fam], fam)
		}
	}
	ids := map[string]int{}
	for _, r := range ex.records {
		ids[r.ID]++
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("record id %s made %d times", id, n)
		}
	}
	for _, f := range []string{"DEBIAN-CVE-2025-6141", "GHSA-35jh-r3h4-6jhm", "GO-2021-0113", "GHSA-xvch-5gv4-984h"} {
		if ids[f] != 1 {
			t.Errorf("fixture %s is %d times in the export, want once", f, ids[f])
		}
	}

	db := t.TempDir()
	var total int
	for _, z := range ex.zips {
		st, err := vulndb.Import(context.Background(), z, vulndb.Options{Dir: db})
		if err != nil {
			t.Fatalf("vulndb.Import(%s) = %v", z, err)
		}
		total = st.Total
		if st.Invalid != 0 {
			t.Errorf("vulndb.Import(%s): %d invalid records: %v", z, st.Invalid, st.InvalidFiles)
		}
	}
	if total != len(ex.records) {
		t.Errorf("the database holds %d records, the export %d", total, len(ex.records))
	}
}

// TestGrypeWorkspace converts records of each kind into vunnel's formats: the fields Grype's builder reads.
func TestGrypeWorkspace(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var ex export
	for _, f := range []string{"DEBIAN-CVE-2025-6141", "GHSA-j8r2-6x86-q33q", "GHSA-2p57-rm9w-gvfp", "GO-2021-0113", "DSA-5514-1"} {
		b, err := os.ReadFile(filepath.Join(root, "scan/match/testdata", f+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var r osvRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		ex.records = append(ex.records, r)
	}
	ws := t.TempDir()
	conv, err := writeGrypeWorkspace(&ex, ws)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"debian": 3, "github": 2, "govulndb": 1}; !equalMaps(conv.Items, want) {
		t.Errorf("writeGrypeWorkspace items = %v, want %v", conv.Items, want)
	}
	if !slices.Equal(conv.Skipped, []string{"DSA-5514-1"}) {
		t.Errorf("writeGrypeWorkspace skipped %v, want [DSA-5514-1]", conv.Skipped)
	}
	read := func(provider string) string {
		b, err := os.ReadFile(filepath.Join(ws, provider, "results", "00000.json"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for provider, want := range map[string][]string{
		"debian": {`"NamespaceName":"debian:12"`, `"Name":"ncurses"`, `"Version":""`, `"Version":"6.5+20251115-2"`, `"Name":"CVE-2025-6141"`, schemaOS},
		"github": {`"range":"\u003e= 2.3.0, \u003c 2.31.0"`, `"identifier":"2.31.0"`, `"range":"\u003c= 2.0.1"`, `"identifier":"None"`,
			`"namespace":"github:python"`, `"CVE":["CVE-2023-32681"]`, schemaGitHub},
		"govulndb": {`"id":"GO-2021-0113"`, `"fixed":"0.3.7"`, schemaOSV},
	} {
		got := read(provider)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("the %s workspace lacks %s:\n%s", provider, w, got)
			}
		}
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
