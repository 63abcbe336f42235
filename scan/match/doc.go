// Package match matches an image's packages against OSV advisories: our own evaluation of the OSV schema
// (github.com/ossf/osv-schema/bindings/go) with osv-scalibr's semantic package comparing versions the way each
// ecosystem does (dpkg's rules for Debian, PEP 440 for PyPI, SemVer for npm and Go…).
//
// # What is looked up
//
// A package is looked up in its own ecosystem only ("Debian:12" records for a Debian:12 package). Debian,
// Ubuntu and Alpine advisories name source packages (glibc, not libc6), so for those ecosystems the source name
// and source version are looked up and compared, falling back to the binary's when the inventory has none; the
// finding reports the binary package, which is what is installed. An ecosystem the database does not hold is a
// warning in the Result ("no advisories for ecosystem Debian:13 in the database: its 95 packages were not
// checked"), never a silent zero.
//
// # Ranges
//
// ECOSYSTEM and SEMVER ranges are evaluated as the OSV specification's algorithm says: events sorted by version
// ("introduced: 0" first), introduced opens, fixed closes at the fixed version, last_affected closes after it,
// and limit events bound the range from above. A version listed in versions[] is affected too. GIT ranges name
// commits, which an installed package does not carry, and are ignored. Withdrawn records are skipped.
//
// The fixed version reported is the lowest fixed event above the installed version in the range that matched;
// when several ranges match it is the highest of theirs, and it is empty when any matching range has no fix
// (a last_affected bound, or no upper bound at all).
//
// # One finding per vulnerability
//
// Records that are the same vulnerability are merged into one finding: records joined by aliases, or by
// upstream when a record's upstream names a single CVE (DEBIAN-CVE-2023-4911 and DSA-5514-1 both name
// CVE-2023-4911). A record whose upstream names several CVEs (a DSA bundling them) is folded into the findings
// of the per-CVE records that matched, whose release-scoped data is more precise; it stands as its own finding
// only when none of its CVEs has one. The finding carries the preferred record: one with a fix for the
// installed version first, then an ecosystem's own record (DEBIAN-, DSA-, GO-, PYSEC-…) before a GHSA before a
// bare CVE record, then the smallest id. Every other id of the group is listed in Aliases, and the CVE among
// them is CVEID.
//
// # Severity
//
// Severity comes from the first of these that the preferred record (else another record of its group) has:
//
//  1. A CVSS v3 vector (3.0 or 3.1), then a CVSS v4 vector, then a CVSS v2 vector, with the base score
//     computed by github.com/pandatix/go-cvss: critical ≥ 9.0, high ≥ 7.0, medium ≥ 4.0, low below that. A
//     score of 0.0 (no impact) is low: the record still says the version is affected, and "unknown" would say
//     it was never rated. v3 goes before v4 because the ratings users compare against (NVD, GitHub, distribution
//     trackers) are still v3 ones, and v4 scores of the same flaw run systematically different.
//  2. The ecosystem's own rating: Debian's urgency (ecosystem_specific or database_specific "urgency": high →
//     high, medium → medium, low → low, unimportant → low, "not yet assigned" and end-of-life → unknown);
//     GitHub's database_specific.severity (CRITICAL, HIGH, MODERATE → medium, LOW); Ubuntu's priority
//     (critical, high, medium, low, negligible → low).
//  3. Otherwise unknown.
//
// Severity ranks critical > high > medium > low > unknown; a SeverityThreshold of low therefore does not
// count unknown findings as violations.
//
// # Ignoring findings
//
// Options.Ignore holds rules like the entries of Trivy's .trivyignore.yaml (see LoadIgnoreFile): a rule names a
// vulnerability by any of its ids, optionally narrowed to packages, paths and purls, with a statement and an
// expiry. An ignored finding moves to Result.Ignored with its reason; a rule past its expiry ignores nothing
// and the Result warns about it.
package match
