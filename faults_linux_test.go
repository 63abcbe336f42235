package containerization_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// smallDisk mounts a tmpfs of size bytes on a fresh directory: a disk that fills up for real.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		if testenv.Required() {
			t.Fatalf("mounting a tmpfs (the tests run as root under make test): %v", err)
		}
		t.Skipf("mounting a tmpfs needs root: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// An advisory import that fills the disk fails with a clear error, and the database still opens with what it
// held before: the new generation is written beside the old and only installed once complete.
func TestFullDiskUnderTheAdvisoryDatabase(t *testing.T) {
	ctx := context.Background()
	small := advisoryDB(t, func(n string) bool { return strings.HasPrefix(n, "DSA-") })
	before, err := vulndb.Open(vulndb.Options{Dir: small})
	if err != nil {
		t.Fatal(err)
	}
	want := before.Status().Total
	before.Close()

	// A disk that holds the small database but not, beside it, a generation with one big record.
	disk := smallDisk(t, 256<<10)
	if err := os.CopyFS(disk, os.DirFS(small)); err != nil {
		t.Fatalf("copying the database onto the small disk: %v", err)
	}
	big := t.TempDir()
	details := strings.Repeat("x", 400<<10)
	rec := `{"id":"GHSA-full-disk-test","modified":"2025-01-01T00:00:00Z","details":"` + details + `",` +
		`"affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"versions":["1.0.0"]}]}`
	if err := os.WriteFile(filepath.Join(big, "GHSA-full-disk-test.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = vulndb.Import(ctx, big, vulndb.Options{Dir: disk})
	if err == nil {
		t.Fatal("Import onto a full disk succeeded; the disk is too large for the test")
	}
	if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "no space left") {
		t.Errorf("Import onto a full disk = %v, want it to say the disk is full", err)
	}
	db, err := vulndb.Open(vulndb.Options{Dir: disk})
	if err != nil {
		t.Fatalf("the database does not open after a failed import: %v", err)
	}
	defer db.Close()
	if got := db.Status().Total; got != want {
		t.Errorf("after the failed import the database holds %d records, want the %d it held", got, want)
	}
}

// A scan whose layer cache sits on a full disk still scans: the cache is an optimisation, and a cache that
// cannot be written is skipped (or the scan fails saying so), never a wrong or partial result.
func TestFullDiskUnderTheLayerCache(t *testing.T) {
	ctx := context.Background()
	eng := testenv.Engine(t)
	db := advisoryDB(t, nil)
	ref := testimages.Busybox
	full, err := containerization.ScanContainerSecurity(ctx, ref, "quick", containerization.ScanOptions{Engine: eng, DBDir: db, Cache: "-"})
	if err != nil {
		t.Fatal(err)
	}
	disk := smallDisk(t, 64<<10) // smaller than one layer's summary (about 140 KiB for busybox)
	res, err := containerization.ScanContainerSecurity(ctx, ref, "quick", containerization.ScanOptions{Engine: eng, DBDir: db, Cache: disk})
	var st syscall.Statfs_t
	_ = syscall.Statfs(disk, &st)
	t.Logf("scan with the cache on a full disk = %v; the disk has %d of %d blocks free", err, st.Bfree, st.Blocks)
	switch {
	case err == nil:
		if res.PackagesScanned != full.PackagesScanned || len(res.Vulnerabilities) != len(full.Vulnerabilities) {
			t.Errorf("scan with a full cache disk = %d packages, %d findings; without a cache %d, %d",
				res.PackagesScanned, len(res.Vulnerabilities), full.PackagesScanned, len(full.Vulnerabilities))
		}
	case !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "no space left"):
		t.Errorf("scan with a full cache disk = %v, want a result, or an error saying the disk is full", err)
	}
	// What the full disk holds is not mistaken for a cached layer by the next scan.
	again, err := containerization.ScanContainerSecurity(ctx, ref, "quick", containerization.ScanOptions{Engine: eng, DBDir: db, Cache: disk})
	if err == nil && again.PackagesScanned != full.PackagesScanned {
		t.Errorf("second scan over the full cache disk = %d packages, want %d", again.PackagesScanned, full.PackagesScanned)
	}
}
