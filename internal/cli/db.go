package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization/internal/human"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

func newDBCmd(g *globalOptions) *cobra.Command {
	return group("db", "Fill and inspect the local OSV advisory database that scans match against",
		newDBImportCmd(g),
		newDBUpdateCmd(g),
		newDBStatusCmd(g),
	)
}

// dbFlags are the flags every db command shares.
type dbFlags struct {
	dir string
}

func (f *dbFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dir, "db-dir", "", "advisory database directory (default $MYRMEX_CACHE_DIR/osv, else ~/.cache/myrmex/osv)")
}

func (f *dbFlags) options(g *globalOptions) vulndb.Options {
	return vulndb.Options{Dir: f.dir, Logger: g.log}
}

func newDBImportCmd(g *globalOptions) *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "import FILE|DIR",
		Short: "Import an OSV export (a zip such as osv.dev's all.zip, or a directory of records) into the database",
		Long: `Import OSV advisories from FILE, a zip of OSV JSON records (osv.dev publishes all.zip and
<ECOSYSTEM>/all.zip at https://osv-vulnerabilities.storage.googleapis.com), a directory searched recursively
for *.json records, or one record. The ecosystems the export holds replace the database's; the others stay,
so import every ecosystem of a set at once (Debian:12, npm, Go, PyPI…) or one after the other. A failed import
leaves the database as it was. Files that are not OSV records are counted and named on stderr. stdout gets the
database's status, as db status prints it.`,
		Example: `  myrmex db import ./all.zip
  myrmex db import ./advisories/ --db-dir /var/cache/myrmex/osv`,
		Args: exactArgs(1, "one FILE or DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := vulndb.Import(cmd.Context(), args[0], f.options(g))
			if err != nil {
				return err
			}
			return printDBStatus(g, st)
		},
	}
	f.add(cmd)
	return cmd
}

func newDBUpdateCmd(g *globalOptions) *cobra.Command {
	var (
		f       dbFlags
		baseURL string
	)
	cmd := &cobra.Command{
		Use:   "update [ECOSYSTEM...]",
		Short: "Download osv.dev's exports of the ecosystems and import them",
		Long: `Download <base-url>/<ECOSYSTEM>/all.zip for each ECOSYSTEM (Debian, Alpine, npm, Go, PyPI…, as osv.dev
names them) and import them together; without ECOSYSTEM, refresh those the database holds. Nothing changes
unless every download succeeds. This is the only command that uses the network for advisories: without one it
fails at once (exit 5); download the exports elsewhere and use db import.`,
		Example: `  myrmex db update Debian npm Go PyPI
  myrmex db update
  myrmex db update Debian --base-url https://mirror.example.com/osv`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := f.options(g)
			opts.BaseURL = baseURL
			st, err := vulndb.Update(cmd.Context(), args, opts)
			if err != nil {
				return err
			}
			return printDBStatus(g, st)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&baseURL, "base-url", vulndb.DefaultBaseURL, "where the exports are downloaded from: osv.dev's bucket, or a mirror of it")
	return cmd
}

func newDBStatusCmd(g *globalOptions) *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the advisory database's ecosystems, record counts and age",
		Long: `Show where the advisory database is, how old its data is (by its least recently imported ecosystem,
which is what makes a scan warn that it is stale), and per ecosystem its records, packages and import time.
Exit 3 when there is no database yet.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := vulndb.Stat(f.options(g))
			if err != nil {
				return err
			}
			return printDBStatus(g, st)
		},
	}
	f.add(cmd)
	return cmd
}

// dbStatusView is a database's status as db prints it in JSON or YAML: vulndb.Status with its age in words and
// in hours (as a scan result's database.age_hours), where the Status would give nanoseconds.
type dbStatusView struct {
	vulndb.Status
	Age      string  `json:"age"`
	AgeHours float64 `json:"age_hours"`
}

// printDBStatus writes a database's status: the status itself as JSON or YAML, else a summary and a line per
// ecosystem. Files an import could not read are named on stderr.
func printDBStatus(g *globalOptions, st vulndb.Status) error {
	if st.Invalid > 0 {
		fmt.Fprintf(g.errOut, "myrmex: warning: %d file(s) were not OSV records and were skipped\n", st.Invalid)
		for _, f := range st.InvalidFiles {
			fmt.Fprintf(g.errOut, "myrmex:   %s: %s\n", f.Name, f.Error)
		}
	}
	if g.structured() {
		return g.encode(dbStatusView{Status: st, Age: st.Age.Round(time.Second).String(), AgeHours: st.Age.Hours()})
	}
	tw := newTable(g.out)
	fmt.Fprintf(tw, "Database:\t%s\n", st.Dir)
	fmt.Fprintf(tw, "Updated:\t%s\n", st.Updated.Local().Format(time.DateTime))
	fmt.Fprintf(tw, "Age:\t%s (its oldest ecosystem's import)\n", human.Age(st.Age))
	fmt.Fprintf(tw, "Total:\t%d records", st.Total)
	if st.Withdrawn > 0 {
		fmt.Fprintf(tw, " (%d withdrawn)", st.Withdrawn)
	}
	fmt.Fprintln(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(g.out)
	tw = newTable(g.out)
	fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS\tPACKAGES\tIMPORTED")
	for _, e := range st.Ecosystems {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", e.Name, e.Records, e.Packages, e.Updated.Local().Format(time.DateTime))
	}
	return tw.Flush()
}
