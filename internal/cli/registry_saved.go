package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/registry/retention"
)

// newRegistryAddCmd saves a registry under a name: the specification's ContainerRegistry.
func newRegistryAddCmd(g *globalOptions) *cobra.Command {
	var (
		reg       containerization.ContainerRegistry
		creds     credentialFlags
		retFile   string
		opts      containerization.AddRegistryOptions
		scanFlags bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --url URL",
		Short: "Save a registry under a name, its login encrypted, for operations to name in place of a URL",
		Long: `Save a registry (the specification's ContainerRegistry) under NAME: its URL, its type, its login (encrypted
as registry login encrypts one), whether a push to it is scanned (--scan-on-push) and its retention policy
(--retention FILE, checked as retention plan checks one). The registry is asked first whether it answers and
accepts the login (--no-check to skip); nothing is saved otherwise.

Every registry operation then takes --registry NAME in place of a URL. With --scan-on-push, a push to it is held
to the policy (--policy) before anything is written, and its scan and SBOM are attached to the pushed digest
after; a policy whose push gate only warns lets a refused image through, its scan marked "refused". registry
retention run NAME applies the saved retention policy.`,
		Example: `  myrmex registry add prod --url https://registry.example.com --type harbor -u ci --password-stdin --scan-on-push
  myrmex registry add local --url http://127.0.0.1:5000 --retention keep-last-5.yaml
  myrmex registry push app:1 --registry prod --policy policy.yaml`,
		Args: exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reg.URL == "" {
				return invalidf("registry add needs --url")
			}
			var err error
			if reg.Credentials, err = creds.read(g); err != nil {
				return err
			}
			reg.SecurityScanEnabled = scanFlags
			if retFile != "" {
				if reg.RetentionPolicy, err = readRetentionMap(retFile); err != nil {
					return err
				}
			}
			out, err := g.myrmex().AddRegistry(cmd.Context(), args[0], reg, opts)
			if err != nil {
				return err
			}
			return showRegistry(g, out, "saved")
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&reg.URL, "url", "", "the registry: host[:port], https://host, or http://host:port for plain HTTP")
	fl.StringVar(&reg.Type, "type", "", "registry type: dockerhub, ecr, acr, gcr, harbor or generic (default: told from the host)")
	fl.StringVar(&reg.CAFile, "ca-file", "", "PEM file of certificate authorities to trust for it besides the system's")
	fl.BoolVar(&scanFlags, "scan-on-push", false, "scan what is pushed to it, hold it to the policy first, and attach the scan and SBOM (security_scan_enabled)")
	fl.StringVar(&retFile, "retention", "", "its retention policy, YAML or JSON (registry retention run NAME applies it)")
	fl.BoolVar(&opts.Replace, "replace", false, "replace a registry saved under the same name")
	fl.BoolVar(&opts.NoCheck, "no-check", false, "save it without asking the registry whether it answers and accepts the login")
	creds.add(cmd, "", "u", "the registry")
	return cmd
}

// readRetentionMap reads a retention policy file, checks it as retention plan does, and returns it as the
// specification's retention_policy object.
func readRetentionMap(file string) (map[string]any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, invalidf("reading the retention policy: %v", err)
	}
	if _, err := retention.ParsePolicy(data); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, invalidf("retention policy %s: %v", file, err)
	}
	return m, nil
}

func newRegistryShowCmd(g *globalOptions) *cobra.Command {
	var noCatalog bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a saved registry, with its repositories read from its catalog",
		Args:  exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := g.myrmex().Registry(cmd.Context(), args[0], !noCatalog)
			if err != nil {
				return err
			}
			return showRegistry(g, out, "")
		},
	}
	cmd.Flags().BoolVar(&noCatalog, "no-catalog", false, "do not ask the registry for its repositories")
	return cmd
}

func newRegistryLsCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the saved registries",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := g.myrmex().Registries(cmd.Context())
			if err != nil {
				return err
			}
			return show(g, list, func(w io.Writer, list []containerization.ContainerRegistry) error {
				tw := newTable(w)
				fmt.Fprintln(tw, "NAME\tURL\tTYPE\tUSERNAME\tSCAN ON PUSH\tRETENTION")
				for _, r := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%t\n", r.Name, r.URL, r.Type, orDash(r.Credentials.Username),
						r.SecurityScanEnabled, r.RetentionPolicy != nil)
				}
				return tw.Flush()
			})
		},
	}
}

func newRegistryRmCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Forget a saved registry and its login (nothing in the registry is touched)",
		Args:  exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.myrmex().RemoveRegistry(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s\tremoved\n", args[0])
			return nil
		},
	}
}

// showRegistry prints a saved registry: as JSON or YAML, the specification's ContainerRegistry (the login
// masked); else a few lines.
func showRegistry(g *globalOptions, r *containerization.ContainerRegistry, verb string) error {
	if g.structured() {
		return g.encode(r)
	}
	if verb != "" {
		fmt.Fprintf(g.out, "%s %s\n", verb, r.Name)
	}
	tw := newTable(g.out)
	fmt.Fprintf(tw, "name:\t%s\n", r.Name)
	fmt.Fprintf(tw, "url:\t%s\n", r.URL)
	fmt.Fprintf(tw, "type:\t%s\n", r.Type)
	fmt.Fprintf(tw, "username:\t%s\n", orDash(r.Credentials.Username))
	fmt.Fprintf(tw, "security_scan_enabled:\t%t\n", r.SecurityScanEnabled)
	fmt.Fprintf(tw, "retention_policy:\t%t\n", r.RetentionPolicy != nil)
	fmt.Fprintf(tw, "repositories:\t%s\n", orDash(strings.Join(r.Repositories, ", ")))
	return tw.Flush()
}

func newRetentionRunCmd(g *globalOptions) *cobra.Command {
	var (
		apply bool
		jobs  int
	)
	cmd := &cobra.Command{
		Use:   "run NAME [REPO...]",
		Short: "Plan the retention policy saved with a registry (registry add --retention); --apply deletes",
		Long: `Plan the retention policy saved with the registry NAME over REPO... (else its catalog), as retention plan
does: a dry run unless --apply, which then deletes what the plan does not keep, as retention apply does.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			report, err := g.myrmex().RunRetention(cmd.Context(), args[0], args[1:], apply, jobs)
			if report != nil {
				if perr := printRetention(g, report); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "delete what the plan does not keep (default: a dry run)")
	cmd.Flags().IntVar(&jobs, "jobs", 0, "requests in flight at once (default 8)")
	return cmd
}

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
