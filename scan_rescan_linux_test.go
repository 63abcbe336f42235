package containerization_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testimages"
)

// TestRescanOfAnArchiveFollowsItsFile scans a docker save archive of the real Debian image twice with one cache,
// then saves busybox over the same path and scans again: the re-scan of the unchanged file reports what the first
// scan did, and the scan of the rewritten file reports busybox, not what the cache kept for the path.
func TestRescanOfAnArchiveFollowsItsFile(t *testing.T) {
	ctx := context.Background()
	img, opts := debianImage(t)
	opts.DBDir = advisoryDB(t, nil)
	dir, err := os.MkdirTemp("", "myrmex-rescan-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "image.tar")
	if err := opts.Engine.SaveImageFile(ctx, img.Ref, file); err != nil {
		t.Fatal(err)
	}
	src := "docker-archive:" + file
	first, err := containerization.ScanContainerSecurity(ctx, src, "full", opts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(%s) = %v", src, err)
	}
	again, err := containerization.ScanContainerSecurity(ctx, src, "full", opts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(%s), again = %v", src, err)
	}
	if first.PackagesScanned == 0 || len(first.Vulnerabilities) == 0 || first.ComplianceScore == nil || again.ComplianceScore == nil {
		t.Fatalf("first scan: %d packages, %d vulnerabilities, compliance %v (again: %v), want all of them", first.PackagesScanned,
			len(first.Vulnerabilities), first.ComplianceScore, again.ComplianceScore)
	}
	if again.PackagesScanned != first.PackagesScanned || !reflect.DeepEqual(findingsOf(again.Vulnerabilities), findingsOf(first.Vulnerabilities)) ||
		!reflect.DeepEqual(again.Compliance, first.Compliance) || *again.ComplianceScore != *first.ComplianceScore {
		t.Errorf("re-scan: %d packages, %v, compliance %v; want the first scan's %d, %v, %v", again.PackagesScanned,
			findingsOf(again.Vulnerabilities), *again.ComplianceScore, first.PackagesScanned, findingsOf(first.Vulnerabilities), *first.ComplianceScore)
	}
	entries, _ := filepath.Glob(filepath.Join(opts.Cache, "scan-facts", "*.json"))
	if len(entries) != 1 {
		t.Errorf("the cache holds %d scan facts after two scans of one file, want 1", len(entries))
	}

	if err := opts.Engine.SaveImageFile(ctx, testimages.Busybox, file); err != nil {
		t.Fatal(err)
	}
	other, err := containerization.ScanContainerSecurity(ctx, src, "full", opts)
	if err != nil {
		t.Fatalf("ScanContainerSecurity(%s) of busybox = %v", src, err)
	}
	if other.PackagesScanned == first.PackagesScanned || len(other.Vulnerabilities) != 0 {
		t.Errorf("scan of busybox saved over the archive: %d packages, %d vulnerabilities; want busybox's, not the Debian image's %d",
			other.PackagesScanned, len(other.Vulnerabilities), first.PackagesScanned)
	}
}
