package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/report"
)

// reportOptions are the flags of myrmex report.
type reportOptions struct {
	format     string
	output     string
	fromScan   string
	scanType   string
	threshold  string
	ignore     []string
	ignoreFile string
	dbDir      string
	cacheDir   string
	keys       []string
	gate       string
	caFile     string
	platform   string
	creds      credentialFlags
}

func newReportCmd(g *globalOptions) *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report [IMAGE]",
		Short: "Write the security report of an image: HTML, PDF (printed by headless Chromium) or JSON",
		Long: `Write one self-contained document about IMAGE (generate_security_report): its digest, the scan's summary
and its findings by severity, the compliance checks that failed with their remediation, the SBOM's summary, the
signatures (with --key) and the evidence attached to its digest, the policy's verdict (--policy) and, for an
image myrmex optimize made, the optimization's before and after.

IMAGE is read as myrmex scan reads it. --from-scan FILE takes a SecurityScanResult as myrmex scan -o json wrote
it (- for stdin) instead of scanning: alone, the report is that scan's; with IMAGE, the rest is gathered too.

-o html (the default) is one HTML file that loads nothing and runs no script; pdf is it printed by Debian's
chromium (MYRMEX_CHROMIUM), never to a terminal; json is the report's data. --output FILE writes it there
(- for stdout, the default). The report is written whatever its verdict; myrmex exits 0 when it was.`,
		Example: `  myrmex report myrmex.local/web:test > web.html
  myrmex report registry.example.com/team/web:1.4 -o pdf --output web.pdf --key release.pub --policy policy.yaml
  myrmex scan myapp:1.4 -o json > scan.json && myrmex report --from-scan scan.json -o pdf --output scan.pdf`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{fmt.Errorf("myrmex report takes one IMAGE, not %d", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			image := ""
			if len(args) == 1 {
				image = args[0]
			}
			return runReport(cmd, g, o, image)
		},
	}
	fl := cmd.Flags()
	// -o is the format here, as everywhere; --output is the file, as Trivy's --output is.
	fl.StringVarP(&o.format, "format", "o", report.FormatHTML, "format: html, pdf or json")
	fl.StringVar(&o.output, "output", "-", "file to write the report to, - for stdout")
	fl.StringVar(&o.fromScan, "from-scan", "", "a scan result (myrmex scan -o json) to report instead of scanning; - for stdin")
	fl.StringVar(&o.scanType, "type", "full", "scan type: full, quick or compliance")
	fl.StringVar(&o.threshold, "severity-threshold", "", "findings at or above this severity fail the report's verdict: critical, high, medium, low")
	fl.StringArrayVar(&o.ignore, "ignore", nil, "vulnerability or compliance check id to set aside (repeat for several)")
	fl.StringVar(&o.ignoreFile, "ignorefile", "", "YAML file of vulnerabilities to ignore (.trivyignore.yaml)")
	fl.StringVar(&o.dbDir, "db-dir", "", "advisory database directory (default $MYRMEX_CACHE_DIR/osv, else ~/.cache/myrmex/osv)")
	fl.StringVar(&o.cacheDir, "cache-dir", "", "per-layer package cache directory, - for none")
	fl.StringArrayVar(&o.keys, "key", nil, "public key (PEM file) whose signatures are verified (repeat for several)")
	fl.StringVar(&o.gate, "gate", "", "the policy's gate the image is held at (default: apply for an image in a registry, else create)")
	fl.StringVar(&o.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's")
	fl.StringVar(&o.platform, "platform", "", "image to scan from a multi-platform index, OS/ARCH[/VARIANT]")
	o.creds.add(cmd, "", "u", "the image's registry")
	return cmd
}

func runReport(cmd *cobra.Command, g *globalOptions, o reportOptions, image string) error {
	format, err := report.CheckFormat(o.format)
	if err != nil {
		return err
	}
	if image == "" && o.fromScan == "" {
		return invalidf("nothing to report: give an IMAGE, or --from-scan FILE")
	}
	out := g.out
	if o.output != "-" && o.output != "" {
		if st, err := os.Stat(o.output); err == nil && st.IsDir() {
			return invalidf("--output %s is a directory", o.output)
		}
	} else if format == report.FormatPDF && isTerminal(out) {
		return invalidf("a PDF is not written to a terminal: give --output FILE or redirect stdout")
	}
	if format == report.FormatPDF {
		if err := report.CheckPDF(); err != nil {
			return err // before a scan whose report could not be printed
		}
	}
	var scan *containerization.SecurityScanResult
	if o.fromScan != "" {
		if scan, err = readScanFile(g, o.fromScan); err != nil {
			return err
		}
	}
	var r *report.Report
	if image == "" {
		r = report.FromScan(scan, time.Time{})
	} else {
		ro, err := readOptions(g, image, o.caFile, o.platform, o.creds)
		if err != nil {
			return err
		}
		opts := report.Options{Scan: scan, ScanType: o.scanType, Keys: o.keys, Gate: o.gate,
			ScanOptions: containerization.ScanOptions{SeverityThreshold: o.threshold, IgnoreRules: o.ignore, IgnoreFile: o.ignoreFile,
				DBDir: o.dbDir, Cache: o.cacheDir, Registry: ro}}
		if r, err = report.Build(cmd.Context(), g.myrmex(), image, opts); err != nil {
			return err
		}
	}
	if r.ScanResult != nil {
		for _, w := range r.ScanResult.Warnings {
			fmt.Fprintf(g.errOut, "myrmex: warning: %s\n", w)
		}
	}
	doc, err := report.Render(cmd.Context(), r, format)
	if err != nil {
		return err
	}
	if o.output == "-" || o.output == "" {
		_, err = out.Write(doc)
		return err
	}
	if err := writeFileAtomic(o.output, doc); err != nil {
		return err
	}
	fmt.Fprintf(g.errOut, "myrmex: wrote the %s report of %s to %s (verdict: %s)\n", format, r.ImageName, o.output, r.Verdict)
	return nil
}

// readScanFile reads a scan result from a file, or stdin for -, within report.MaxScanSize.
func readScanFile(g *globalOptions, path string) (*containerization.SecurityScanResult, error) {
	var rd io.Reader = g.in
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, fmt.Errorf("%w: --from-scan %s: %v", containerization.ErrNotFound, path, err)
			}
			return nil, invalidf("--from-scan %s: %v", path, err)
		}
		defer f.Close()
		rd = f
	}
	res, err := report.ReadScan(rd)
	if err != nil {
		return nil, fmt.Errorf("--from-scan %s: %w", path, err)
	}
	return res, nil
}

// writeFileAtomic writes data to path through a temporary file in the same directory, renamed over it: a report
// is whole or absent.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
