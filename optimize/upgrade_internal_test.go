package optimize

import (
	"fmt"
	"testing"
)

// upgradable keeps apt's packages with a fix, one per package at its highest fixed version with every advisory,
// and never a name apt would read as an option or a version.
func TestUpgradable(t *testing.T) {
	got := upgradable([]Fix{
		{Package: "libssl3", Installed: "3.0.11-1", Fixed: "3.0.13-1", Ecosystem: "Debian:12", IDs: []string{"CVE-1"}},
		{Package: "libssl3", Installed: "3.0.11-1", Fixed: "3.0.15-1", Ecosystem: "Debian:12", IDs: []string{"CVE-2"}},
		{Package: "libssl3", Installed: "3.0.11-1", Fixed: "3.0.12-1", Ecosystem: "Debian:12", IDs: []string{"CVE-1", "CVE-3"}},
		{Package: "bash", Installed: "5.2-2", Fixed: "5.2-3", Ecosystem: "Ubuntu:22.04:LTS", IDs: []string{"CVE-4"}},
		{Package: "musl", Installed: "1.2.4-r2", Fixed: "1.2.4-r3", Ecosystem: "Alpine:v3.19", IDs: []string{"CVE-5"}},
		{Package: "zlib1g", Installed: "1.2", Fixed: "", Ecosystem: "Debian:12", IDs: []string{"CVE-6"}},
		{Package: "-oAPT::Get::AllowUnauthenticated=true", Installed: "1", Fixed: "2", Ecosystem: "Debian:12"},
		{Package: "curl=7.0", Installed: "1", Fixed: "2", Ecosystem: "Debian:12"},
		{Package: "Upper", Installed: "1", Fixed: "2", Ecosystem: "Debian:12"},
	})
	want := []Fix{
		{Package: "bash", Installed: "5.2-2", Fixed: "5.2-3", Ecosystem: "Ubuntu:22.04:LTS", IDs: []string{"CVE-4"}},
		{Package: "libssl3", Installed: "3.0.11-1", Fixed: "3.0.15-1", Ecosystem: "Debian:12", IDs: []string{"CVE-1", "CVE-2", "CVE-3"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("upgradable = %+v\nwant %+v", got, want)
	}
	many := make([]Fix, maxFixes+5)
	for i := range many {
		many[i] = Fix{Package: fmt.Sprintf("p%d", i), Fixed: "2", Ecosystem: "Debian:12"}
	}
	if n := len(upgradable(many)); n != maxFixes {
		t.Errorf("%d fixes kept, want at most %d", n, maxFixes)
	}
	for _, c := range []struct {
		v, fixed string
		want     bool
	}{{"1.0-2", "1.0-2", true}, {"1.0-10", "1.0-9", true}, {"1:0.9", "2.0", true}, {"1.0~rc1", "1.0", false}, {"junk version!", "1.0", false}} {
		if got := atLeast(c.v, c.fixed); got != c.want {
			t.Errorf("atLeast(%q, %q) = %v", c.v, c.fixed, got)
		}
	}
}
