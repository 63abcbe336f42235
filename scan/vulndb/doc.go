// Package vulndb keeps a local database of OSV advisories, so that scans match packages against advisories
// without touching the network.
//
// The database is filled from osv.dev's published exports: [Import] reads an export that is already on disk (a
// zip such as all.zip or Debian/all.zip, a directory of OSV JSON records, or one record), and [Update] downloads
// <BaseURL>/<ecosystem>/all.zip for each ecosystem asked for and imports it. Without a network, Update fails at
// once with an error that wraps [errdefs.ErrUnavailable] and says to import an export instead.
//
// # Ecosystems
//
// Records are filed under the ecosystem their affected[].package.ecosystem names, as written: "Debian:12",
// "Alpine:v3.19", "npm", "Go", "PyPI". A lookup matches the ecosystem exactly; there is no fall-back from
// "Debian:13" to "Debian:12" or to "Debian", because Debian's fixed versions are per release and a fix in one
// release says nothing about another. A caller that finds [DB.HasEcosystem] false for a package's ecosystem
// must say that those packages were not checked (the matcher turns it into a warning).
//
// An import replaces the ecosystems it contains and keeps the others: importing Debian/all.zip and then
// npm/all.zip leaves both; importing Debian/all.zip again replaces every Debian:N it holds.
//
// # Store
//
// Dir holds generations. A generation is a directory with manifest.json (what [Stat] reads: ecosystems,
// counts, times, sources) and records.db, one file holding every record grouped by ecosystem and package name:
// each (ecosystem, package) group is one deflate-compressed block of protobuf-encoded records, and each
// ecosystem has an index section (package names sorted, with the offset of their block, and the ids of its
// records). A record that affects several ecosystems or packages is stored in each group, narrowed to the
// affected entries of that group, so a lookup reads one block and decodes only what it returns.
//
// An import spools the export's records, then, holding a lock on the directory, reads the current generation,
// builds the new one in a temporary directory from the records and the ecosystems it keeps, renames it into place
// and rewrites the CURRENT file (a temporary file renamed over it): a failed or interrupted import leaves the
// previous database as it was, and concurrent imports of different ecosystems all count. [Open] keeps records.db open, so a database
// stays readable while another process replaces it.
//
// # Measured
//
// On a synthetic Debian-shaped export (bench_test.go: 50,000 records over Debian:11–14, 4,000 source packages
// with a Zipf spread, 126 MB of JSON), an import takes about 5.5 s on two cores with a peak heap of 62 MB, and
// records.db is 18 MB. Opening the database and loading the Debian:12 index keeps 250 kB; a lookup takes
// 14 µs for a package with one record, 125 µs for 16, and 11 ms for the busiest package's 1,287. One JSON file
// per record was the alternative: parsing OSV JSON costs about 56 µs a record (protojson, measured during the
// import) against 8 µs for the stored protobuf, before a file open per record, and 50,000 small files take
// more disk than the whole records.db.
package vulndb
