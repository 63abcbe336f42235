package vulndb_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/codomyrmex/containerization/scan/vulndb"
)

// Import an OSV export that is already on disk, then look up a Debian source package in one release.
func Example() {
	dir, _ := os.MkdirTemp("", "osv-")
	defer os.RemoveAll(dir)
	opts := vulndb.Options{Dir: dir}

	st, err := vulndb.Import(context.Background(), "../match/testdata", opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("records:", st.Total, "Debian:12:", st.Records("Debian:12"))

	db, err := vulndb.Open(opts)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Lookup("Debian:12", "glibc")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Println(r.GetId())
	}
	fmt.Println("has Debian:13:", db.HasEcosystem("Debian:13"), "has Alpine:v3.19:", db.HasEcosystem("Alpine:v3.19"))
	// Output:
	// records: 12 Debian:12: 5
	// DEBIAN-CVE-2010-4756
	// DEBIAN-CVE-2023-4911
	// DSA-5514-1
	// has Debian:13: true has Alpine:v3.19: false
}
