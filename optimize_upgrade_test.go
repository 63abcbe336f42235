package containerization_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// upgradeDB holds one advisory per test package: myrmex-demo fixed in 1.0-2 (which the image's repository has),
// myrmex-stuck fixed in 1.0-3 (which it has not).
func upgradeDB(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for i, p := range []struct{ name, fixed string }{{testimages.UpgradablePackage, "1.0-2"}, {testimages.UpgradableStuck, "1.0-3"}} {
		rec := fmt.Sprintf(`{"schema_version":"1.6.0","id":"DEBIAN-CVE-2099-000%[1]d","aliases":["CVE-2099-000%[1]d"],
"modified":"2026-11-01T00:00:00Z","summary":"a flaw in %[2]s",
"affected":[{"package":{"ecosystem":"Debian:12","name":"%[2]s"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"%[3]s"}]}],
"ecosystem_specific":{"urgency":"high"}}]}`, i+1, p.name, p.fixed)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("DEBIAN-CVE-2099-000%d.json", i+1)), []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if _, err := vulndb.Import(context.Background(), src, vulndb.Options{Dir: dir}); err != nil {
		t.Fatalf("vulndb.Import() = %v", err)
	}
	return dir
}

// The security type upgrades the vulnerable OS packages that have a fix in the image's own repositories (one
// fixed, one whose fix the repository lacks), says so when the repositories cannot be reached, and refuses an
// upgrade that changes what the probe sees.
func TestOptimizeUpgradesPackages(t *testing.T) {
	eng := testenv.Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := testimages.EnsureUpgradable(ctx, eng, testimages.DebianOptions{}); err != nil {
		t.Fatalf("EnsureUpgradable = %v", err)
	}
	db := upgradeDB(t)
	opts := func(target string, probe optimize.Probe) containerization.OptimizeOptions {
		t.Cleanup(func() { (&optimize.Optimizer{Engine: eng}).Remove(target) })
		return containerization.OptimizeOptions{Probe: probe, Sensor: testenv.Sensor(t), Engine: eng, OptimizedImage: target,
			Scan: containerization.ScanOptions{DBDir: db, Cache: t.TempDir()}}
	}
	hello := optimize.Probe{Run: &optimize.CommandCheck{Cmd: []string{"/usr/bin/myrmex-demo"}, Output: "hello from myrmex-demo"}}

	res, err := containerization.OptimizeContainers(ctx, testimages.Upgradable, "security", opts("myrmex.local/upgradable:hardened", hello))
	if err != nil {
		t.Fatalf("OptimizeContainers(security) = %v", err)
	}
	up := res.Upgrades
	if up == nil || up.Skipped != "" || up.Manager != "apt" {
		t.Fatalf("upgrades = %+v", up)
	}
	wantUp := []optimize.PackageUpgrade{{Package: "myrmex-demo", From: "1.0-1", To: "1.0-2", Fixed: "1.0-2", IDs: []string{"CVE-2099-0001"}}}
	wantStuck := []optimize.PackageUpgrade{{Package: "myrmex-stuck", From: "1.0-1", Fixed: "1.0-3"}}
	if fmt.Sprint(up.Upgraded) != fmt.Sprint(wantUp) || fmt.Sprint(up.NotFixed) != fmt.Sprint(wantStuck) {
		t.Errorf("upgraded %+v, not fixed %+v; want %+v and %+v", up.Upgraded, up.NotFixed, wantUp, wantStuck)
	}
	if b, a := res.SecurityBefore, res.SecurityAfter; b == nil || a == nil || b.Scanned != "full" || b.Vulnerabilities != 2 || a.Vulnerabilities != 1 {
		t.Errorf("scans before %+v, after %+v: want 2 then 1 vulnerabilities", b, a)
	}
	if !res.Verified || !slices.Contains(res.SecurityImprovements, "upgraded myrmex-demo 1.0-1 → 1.0-2: fixes CVE-2099-0001") {
		t.Errorf("verified %v, improvements %q", res.Verified, res.SecurityImprovements)
	}
	// The optimized image holds the new version (its scan finds only the stuck package); the original the old.
	for ref, want := range map[string][]string{res.OptimizedImage: {"myrmex-stuck"}, testimages.Upgradable: {"myrmex-demo", "myrmex-stuck"}} {
		sr, err := containerization.ScanContainerSecurity(ctx, ref, "full", containerization.ScanOptions{Engine: eng, DBDir: db, Cache: t.TempDir()})
		if err != nil {
			t.Fatalf("scanning %s: %v", ref, err)
		}
		var got []string
		for _, v := range sr.Vulnerabilities {
			got = append(got, v.Package)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: vulnerable packages %q, want %q", ref, got, want)
		}
	}

	// The repositories cannot be reached: nothing is upgraded, the result says why, the hardening goes on.
	res, err = containerization.OptimizeContainers(ctx, testimages.UpgradableOffline, "security", opts("myrmex.local/upgradable:offline-hardened", hello))
	if err != nil {
		t.Fatalf("OptimizeContainers(offline) = %v", err)
	}
	if up := res.Upgrades; up == nil || !strings.Contains(up.Skipped, "cannot be reached") || !strings.Contains(up.Log, "Could not connect") || len(up.Upgraded) > 0 {
		t.Errorf("offline upgrades = %+v", up)
	}
	if !res.Verified || res.SecurityAfter == nil || res.SecurityAfter.Vulnerabilities != 2 || res.User == "" {
		t.Errorf("offline: verified %v, after %+v, user %q", res.Verified, res.SecurityAfter, res.User)
	}

	// An upgrade that changes what the probe sees is refused, with the way out; nothing is written.
	version := optimize.Probe{Run: &optimize.CommandCheck{Cmd: []string{"cat", "/usr/share/myrmex-demo/VERSION"}, Output: "1.0-1"}}
	target := "myrmex.local/upgradable:refused"
	res, err = containerization.OptimizeContainers(ctx, testimages.Upgradable, "security", opts(target, version))
	if !errors.Is(err, containerization.ErrPolicyViolation) || !strings.Contains(err.Error(), "--no-upgrade") {
		t.Fatalf("OptimizeContainers(probe sees the version) = %+v, %v; want ErrPolicyViolation naming --no-upgrade", res, err)
	}
	if ok, _ := eng.ImageExists(ctx, target); ok {
		t.Errorf("%s was written", target)
	}
	// NoUpgrade: the same probe passes, the packages stay.
	o := opts(target, version)
	o.NoUpgrade = true
	res, err = containerization.OptimizeContainers(ctx, testimages.Upgradable, "security", o)
	if err != nil || res.Upgrades != nil || res.SecurityAfter == nil || res.SecurityAfter.Vulnerabilities != 2 {
		t.Errorf("OptimizeContainers(NoUpgrade) = %+v, %v", res, err)
	}
}
