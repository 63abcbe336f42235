package vulndb_test

import (
	"archive/zip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/scan/vulndb"
)

// syntheticRecords and syntheticPackages shape an export like Debian's: about 50,000 DEBIAN-CVE records over
// four releases, on a few thousand source packages where a few (linux, glibc, imagemagick…) have hundreds.
const (
	syntheticRecords  = 50_000
	syntheticPackages = 4_000
)

// syntheticExport writes a Debian-like all.zip of n records and returns its path.
func syntheticExport(tb testing.TB, n int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "Debian-all.zip")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	zw := zip.NewWriter(f)
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 8, syntheticPackages-1)
	var b strings.Builder
	for i := range n {
		b.Reset()
		id := fmt.Sprintf("DEBIAN-CVE-%d-%d", 2000+i%26, 10000+i)
		pkg := fmt.Sprintf("srcpkg%d", zipf.Uint64())
		fmt.Fprintf(&b, `{"schema_version":"1.9.0","id":%q,"upstream":[%q],"published":"2023-01-01T00:00:00Z","modified":"2026-08-27T23:05:02Z",`,
			id, strings.TrimPrefix(id, "DEBIAN-"))
		fmt.Fprintf(&b, `"details":%q,`, strings.Repeat("A flaw in the parser allows a crafted input to overflow a buffer. ", 6))
		if i%2 == 0 {
			b.WriteString(`"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],`)
		}
		b.WriteString(`"affected":[`)
		for rel := 11; rel <= 14; rel++ {
			if rel > 11 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"package":{"ecosystem":"Debian:%d","name":%q,"purl":"pkg:deb/debian/%s?arch=source"},`, rel, pkg, pkg)
			if i%3 == 0 {
				b.WriteString(`"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}],"versions":[`)
				for v := range 5 + rng.IntN(55) {
					if v > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `"1.%d.%d-%d+deb%du%d"`, rel, v/10, v%10, rel, v)
				}
				b.WriteString(`],`)
			} else {
				fmt.Fprintf(&b, `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.%d.%d-1+deb%du1"}]}],`, rel, rng.IntN(9), rel)
			}
			b.WriteString(`"ecosystem_specific":{"urgency":"not yet assigned"}}`)
		}
		fmt.Fprintf(&b, `],"references":[{"type":"ADVISORY","url":"https://security-tracker.debian.org/tracker/%s"}]}`, strings.TrimPrefix(id, "DEBIAN-"))
		w, err := zw.Create(id + ".json")
		if err != nil {
			tb.Fatal(err)
		}
		w.Write([]byte(b.String()))
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return path
}

var synthetic struct {
	once sync.Once
	dir  string
	err  error
}

// syntheticDB imports the synthetic export once per test binary.
func syntheticDB(b *testing.B) vulndb.Options {
	b.Helper()
	synthetic.once.Do(func() {
		dir, err := os.MkdirTemp("", "vulndb-bench-")
		if err != nil {
			synthetic.err = err
			return
		}
		synthetic.dir = dir
		_, synthetic.err = vulndb.Import(context.Background(), syntheticExport(b, syntheticRecords), vulndb.Options{Dir: dir})
	})
	if synthetic.err != nil {
		b.Fatal(synthetic.err)
	}
	return vulndb.Options{Dir: synthetic.dir}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if synthetic.dir != "" {
		os.RemoveAll(synthetic.dir)
	}
	os.Exit(code)
}

// BenchmarkImportDebian50k imports the synthetic export and reports the peak heap while doing so and the size
// of the database on disk.
func BenchmarkImportDebian50k(b *testing.B) {
	src := syntheticExport(b, syntheticRecords)
	var jsonBytes uint64
	if zr, err := zip.OpenReader(src); err == nil {
		for _, f := range zr.File {
			jsonBytes += f.UncompressedSize64
		}
		zr.Close()
	}
	var peak uint64
	for b.Loop() {
		dir := b.TempDir()
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { peak = max(peak, samplePeakHeap(done)) })
		st, err := vulndb.Import(context.Background(), src, vulndb.Options{Dir: dir})
		close(done)
		wg.Wait()
		if err != nil || st.Total != syntheticRecords {
			b.Fatalf("Import = %+v, %v", st.Total, err)
		}
		gens, _ := filepath.Glob(filepath.Join(dir, "gen-*", "records.db"))
		if fi, err := os.Stat(gens[0]); err == nil {
			b.ReportMetric(float64(fi.Size())/1e6, "db-MB")
		}
	}
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(jsonBytes)/1e6, "json-MB")
}

// BenchmarkOpenDebian50k opens the synthetic database and loads the Debian:12 index, and reports the heap an
// open database holds then.
func BenchmarkOpenDebian50k(b *testing.B) {
	opts := syntheticDB(b)
	var held uint64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		db, err := vulndb.Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Lookup("Debian:12", "srcpkg3000"); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		db.Close()
	}
	b.ReportMetric(float64(held)/1e3, "held-kB")
}

// BenchmarkLookupDebian50k looks up packages of the synthetic Debian:12, from the busiest (over a thousand
// records) to the rarest.
func BenchmarkLookupDebian50k(b *testing.B) {
	db, err := vulndb.Open(syntheticDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, n := range []string{"srcpkg0", "srcpkg7", "srcpkg50", "srcpkg400", "srcpkg3000", "nosuchpkg"} {
		b.Run(n, func(b *testing.B) {
			count := 0
			for b.Loop() {
				recs, err := db.Lookup("Debian:12", n)
				if err != nil {
					b.Fatal(err)
				}
				count = len(recs)
			}
			b.ReportMetric(float64(count), "records")
		})
	}
}

// samplePeakHeap samples the heap until done is closed and returns the largest value seen.
func samplePeakHeap(done <-chan struct{}) uint64 {
	var peak uint64
	var ms runtime.MemStats
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		select {
		case <-done:
			return peak
		case <-t.C:
		}
	}
}
