package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/internal/human"
	"github.com/codomyrmex/containerization/registry"
)

// The formats of scan's -o besides table, json and yaml.
const (
	outputSARIF     = "sarif"
	outputCycloneDX = "cyclonedx"
)

// scanOptions are the flags of myrmex scan.
type scanOptions struct {
	output     string
	scanType   string
	attach     bool
	threshold  string
	ignore     []string
	ignoreFile string
	dbDir      string
	cacheDir   string
	exitCode   int
	caFile     string
	platform   string
	creds      credentialFlags
}

func newScanCmd(g *globalOptions) *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Scan an image for vulnerabilities and compliance, offline, against the local advisory database",
		Long: `Scan IMAGE: list its packages (dpkg, apk, rpm, Go binaries, npm, Python), match them against the local
OSV advisory database (myrmex db import or update fill it; a scan never touches the network for advisories),
run the CIS Docker Benchmark and Dockle checks on its configuration and filesystem, and say what to upgrade.

IMAGE is an image in the engine (else the registry it names), docker://REF (a registry only),
docker-archive:FILE (a docker save tarball) or oci:DIR[:TAG] (an OCI layout).

--type full checks OS and language packages and runs the compliance checks; quick checks OS packages only;
compliance runs the checks only. With --severity-threshold, a finding at or above it fails the policy: the
result is printed as usual and myrmex exits 7, or --exit-code N. As with Trivy, --exit-code without a threshold
fails on any finding. --ignore takes vulnerability ids (CVE, GHSA, DSA…) and check ids (CIS-DI-0001…);
--ignorefile a .trivyignore.yaml with a statement and expiry per entry.

-o table (the default) prints a summary, the findings most severe first, the failed checks and the
recommendations; json and yaml the specification's SecurityScanResult; sarif a SARIF 2.1.0 log for GitHub code
scanning; cyclonedx a CycloneDX 1.5 BOM of the affected packages with their vulnerabilities. Warnings (an
ecosystem missing from the database, a stale database, files skipped) go to stderr.`,
		Example: `  myrmex db import ./osv-all.zip
  myrmex scan myrmex.local/web:test
  myrmex scan docker-archive:./app.tar --severity-threshold high -o sarif > myrmex.sarif
  myrmex scan registry.example.com/team/web:1.4 --type quick --ignore CVE-2010-4756 --exit-code 1`,
		Args: exactArgs(1, "one IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, g, o, args[0])
		},
	}
	fl := cmd.Flags()
	// scan's -o shadows the root's: it has two formats more, which no other command has.
	fl.StringVarP(&o.output, "output", "o", outputTable, "output format: table, json, yaml, sarif or cyclonedx")
	fl.StringVar(&o.scanType, "type", "full", "scan type: full, quick or compliance")
	fl.StringVar(&o.threshold, "severity-threshold", "", "fail the policy on findings at or above this severity: critical, high, medium, low, or unknown for any")
	fl.StringArrayVar(&o.ignore, "ignore", nil, "vulnerability or compliance check id to set aside (repeat for several)")
	fl.StringVar(&o.ignoreFile, "ignorefile", "", "YAML file of vulnerabilities to ignore, with a statement and expiry each (.trivyignore.yaml)")
	fl.StringVar(&o.dbDir, "db-dir", "", "advisory database directory (default $MYRMEX_CACHE_DIR/osv, else ~/.cache/myrmex/osv)")
	fl.StringVar(&o.cacheDir, "cache-dir", "", "per-layer package cache directory, - for none (default $MYRMEX_CACHE_DIR/layers, else ~/.cache/myrmex/layers)")
	fl.IntVar(&o.exitCode, "exit-code", ExitPolicy, "exit code when the policy fails (0 to succeed anyway); without --severity-threshold, any finding fails it")
	fl.StringVar(&o.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's, for an image read from a registry")
	fl.StringVar(&o.platform, "platform", "", "image to scan from a multi-platform index, OS/ARCH[/VARIANT] (default linux/amd64)")
	fl.BoolVar(&o.attach, "attach", false, "store the scan in the image's registry, referring to its digest (an image read from a registry)")
	o.creds.add(cmd, "", "u", "the image's registry")
	return cmd
}

func runScan(cmd *cobra.Command, g *globalOptions, o scanOptions, image string) error {
	switch o.output {
	case outputTable, outputJSON, outputYAML, outputSARIF, outputCycloneDX:
		g.output = o.output
	default:
		return invalidf("-o %q: want table, json, yaml, sarif or cyclonedx", o.output)
	}
	if o.exitCode < 0 || o.exitCode > 255 {
		return invalidf("--exit-code %d: want 0 to 255", o.exitCode)
	}
	if o.threshold == "" && cmd.Flags().Changed("exit-code") {
		o.threshold = "unknown" // Trivy's --exit-code alone fails on any finding; unknown ranks lowest
	}
	ro, err := readOptions(g, image, o.caFile, o.platform, o.creds)
	if err != nil {
		return err
	}
	opts := containerization.ScanOptions{
		SeverityThreshold: o.threshold, IgnoreRules: o.ignore, IgnoreFile: o.ignoreFile,
		DBDir: o.dbDir, Cache: o.cacheDir, Host: g.host, Logger: g.log, Registry: ro, Attach: o.attach,
	}

	res, err := g.myrmex().ScanContainerSecurity(cmd.Context(), image, o.scanType, opts)
	if res == nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(g.errOut, "myrmex: warning: %s\n", w)
	}
	if res.Evidence != nil && !g.structured() {
		fmt.Fprintf(g.errOut, "myrmex: attached the scan to %s as %s\n", res.ImageDigest, res.Evidence.Digest)
	}
	if perr := printScan(g, res, o); perr != nil {
		return perr
	}
	return policyExit(g, err, o.exitCode)
}

// readOptions are the registry options of a command that reads one image (scan, optimize analyze).
func readOptions(g *globalOptions, image, caFile, platform string, creds credentialFlags) (containerization.RegistryOptions, error) {
	ro := containerization.RegistryOptions{CAFile: caFile, Platform: platform, Host: g.host, Logger: g.log}
	var err error
	if ro.Credentials, err = creds.read(g); err != nil {
		return ro, err
	}
	if !strings.HasPrefix(image, registry.SourceOCI) && !strings.HasPrefix(image, registry.SourceArchive) {
		// Only an image read from a registry needs credentials: a damaged store must not stop a local command.
		if ro.Keychain, err = g.keychain(); err != nil {
			return ro, err
		}
	}
	return ro, nil
}

// policyExit is the end of a command whose result was printed: a policy violation exits with the command's
// --exit-code (0 says so on stderr), any other error as usual.
func policyExit(g *globalOptions, err error, code int) error {
	if !errors.Is(err, containerization.ErrPolicyViolation) {
		return err
	}
	if code == ExitOK {
		fmt.Fprintf(g.errOut, "myrmex: %v (--exit-code 0: exiting 0)\n", err)
		return nil
	}
	return &exitError{code: code, err: err}
}

// printScan writes a scan result in the format of -o.
func printScan(g *globalOptions, res *containerization.SecurityScanResult, o scanOptions) error {
	switch g.output {
	case outputJSON, outputYAML:
		return g.encode(res)
	case outputSARIF:
		return g.encode(sarifOf(res))
	case outputCycloneDX:
		return g.encode(cycloneDXOf(res))
	}
	return printScanTable(g.out, res, o.threshold)
}

// severityRank orders severities most severe first; unknown and anything else go last.
var severityRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3}

// rank is k's place in ranks; anything ranks does not know goes last.
func rank(ranks map[string]int, k string) int {
	if r, ok := ranks[k]; ok {
		return r
	}
	return len(ranks)
}

// sortedFindings returns the findings most severe first, then by score, id and package.
func sortedFindings(vs []containerization.Vulnerability) []containerization.Vulnerability {
	out := slices.Clone(vs)
	slices.SortStableFunc(out, func(a, b containerization.Vulnerability) int {
		return cmp.Or(cmp.Compare(rank(severityRank, a.Severity), rank(severityRank, b.Severity)), cmp.Compare(b.Score, a.Score),
			strings.Compare(a.CVEID, b.CVEID), strings.Compare(a.Package, b.Package))
	})
	return out
}

// checkRank orders compliance levels most severe first.
var checkRank = map[string]int{"FATAL": 0, "WARN": 1, "INFO": 2}

// failedChecks are the compliance checks that failed and were not set aside, most severe first.
func failedChecks(res *containerization.SecurityScanResult) []containerization.ComplianceCheck {
	var out []containerization.ComplianceCheck
	for _, c := range res.Compliance {
		if !c.Passed && !c.Ignored {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b containerization.ComplianceCheck) int {
		return cmp.Compare(rank(checkRank, a.Level), rank(checkRank, b.Level))
	})
	return out
}

// printScanTable writes the result for a person: a summary, the findings most severe first, the failed checks
// and the recommendations.
func printScanTable(w io.Writer, res *containerization.SecurityScanResult, threshold string) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Image:\t%s\n", res.ImageName)
	fmt.Fprintf(tw, "Scan type:\t%s (%.1fs)\n", res.ScanType, res.ScanDuration)
	if res.ScanType != "compliance" {
		fmt.Fprintf(tw, "Packages scanned:\t%d\n", res.PackagesScanned)
	}
	if d := res.Database; d != nil {
		fmt.Fprintf(tw, "Database:\t%d records, %s old\n", d.Records, human.Age(time.Duration(d.AgeHours*float64(time.Hour))))
	}
	if res.ScanType != "compliance" {
		fmt.Fprintf(tw, "Vulnerabilities:\t%s\n", counts(res))
	}
	if len(res.Ignored) > 0 {
		var ids []string
		for _, v := range res.Ignored {
			ids = append(ids, v.CVEID+" in "+v.Package)
		}
		fmt.Fprintf(tw, "Ignored:\t%s\n", strings.Join(ids, ", "))
	}
	if res.ComplianceScore != nil {
		fmt.Fprintf(tw, "Compliance score:\t%g/100\n", *res.ComplianceScore)
	}
	if threshold != "" {
		policy := "passed"
		if !res.PolicyPassed {
			policy = "failed"
		}
		if threshold == "unknown" {
			threshold = "any finding"
		}
		fmt.Fprintf(tw, "Policy:\t%s (threshold %s)\n", policy, threshold)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(res.Vulnerabilities) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tLAYER\tTITLE")
		for _, v := range sortedFindings(res.Vulnerabilities) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(v.Severity), v.CVEID, v.Package, v.Version,
				cmp.Or(v.FixedVersion, "-"), cmp.Or(shortID(strings.TrimPrefix(v.Layer, "sha256:")), "-"), title(v.Description, 60))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if failed := failedChecks(res); len(failed) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "CHECK\tLEVEL\tTITLE")
		for _, c := range failed {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Level, c.Title)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(res.Recommendations) > 0 {
		fmt.Fprintln(w, "\nRecommendations:")
		for _, r := range res.Recommendations {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	return nil
}

// counts says how many findings there are of each severity: "1 critical, 2 high, 0 medium, 3 low".
func counts(res *containerization.SecurityScanResult) string {
	if len(res.Vulnerabilities) == 0 {
		return "none found"
	}
	s := fmt.Sprintf("%d critical, %d high, %d medium, %d low", res.CriticalCount, res.HighCount, res.MediumCount, res.LowCount)
	if res.UnknownCount > 0 {
		s += fmt.Sprintf(", %d unknown", res.UnknownCount)
	}
	return s
}

// title is the first line of a description, cut to n characters.
func title(description string, n int) string {
	line, _, _ := strings.Cut(strings.TrimSpace(description), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return line
}
