package match_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/codomyrmex/containerization/scan/inventory"
	"github.com/codomyrmex/containerization/scan/match"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// Match a bookworm libc6 and an npm package against a database imported from real advisories. The Debian
// package is looked up by its source package, glibc; DSA-5514-1 and DEBIAN-CVE-2023-4911 are one finding.
func Example() {
	dir, _ := os.MkdirTemp("", "osv-")
	defer os.RemoveAll(dir)
	if _, err := vulndb.Import(context.Background(), "testdata", vulndb.Options{Dir: dir}); err != nil {
		log.Fatal(err)
	}
	db, err := vulndb.Open(vulndb.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	pkgs := []inventory.Package{
		{Name: "libc6", Version: "2.36-9+deb12u1", SourceName: "glibc", SourceVersion: "2.36-9+deb12u1", Ecosystem: "Debian:12"},
		{Name: "lodash", Version: "4.17.20", Ecosystem: "npm"},
		{Name: "musl", Version: "1.2.4-r2", Ecosystem: "Alpine:v3.19"},
	}
	res, err := match.Match(pkgs, db, match.Options{SeverityThreshold: match.SeverityHigh})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range res.Findings {
		fmt.Printf("%s %s %s %s %s -> %q %v\n", f.Package.Name, f.CVEID, f.ID, f.Severity, f.InstalledVersion, f.FixedVersion, f.Aliases)
	}
	fmt.Println("violations:", len(res.Violations))
	for _, w := range res.Warnings {
		fmt.Println("warning:", w)
	}
	// Output:
	// libc6 CVE-2023-4911 DEBIAN-CVE-2023-4911 high 2.36-9+deb12u1 -> "2.36-9+deb12u3" [CVE-2023-4911 DSA-5514-1]
	// lodash CVE-2021-23337 GHSA-35jh-r3h4-6jhm high 4.17.20 -> "4.17.21" [CVE-2021-23337]
	// libc6 CVE-2010-4756 DEBIAN-CVE-2010-4756 low 2.36-9+deb12u1 -> "" [CVE-2010-4756]
	// violations: 2
	// warning: no advisories for ecosystem Alpine:v3.19 in the database: its 1 package was not checked
}
