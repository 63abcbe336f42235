package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/registry/retention"
)

func newRegistryRetentionCmd(g *globalOptions) *cobra.Command {
	return group("retention", "Plan and apply Harbor-style tag retention policies",
		newRetentionCmd(g, false),
		newRetentionCmd(g, true),
		newRetentionRunCmd(g),
	)
}

// retentionOptions are the flags of retention plan and apply.
type retentionOptions struct {
	registryFlags
	file string
}

func newRetentionCmd(g *globalOptions, apply bool) *cobra.Command {
	var o retentionOptions
	cmd := &cobra.Command{
		Use:   "plan -f POLICY --registry URL [REPO...]",
		Short: "Say what a retention policy keeps and deletes, deleting nothing",
		Long: `Read the repositories (REPO..., else the registry's catalog) and decide for each artifact whether the
policy keeps it: a dry run. The policy (YAML or JSON) says what to keep, never what to delete:

  rules:
    - repositories: {pattern: "team-a/**"}
      tags: {pattern: "v*"}
      retain: {most_recently_pushed: 5}   # or pushed_within_days: N, or always: true

stdout gets REPOSITORY DIGEST TAGS PUSHED KEEP/DELETE REASON, a line per artifact; notes go to stderr.`,
		RunE: func(cmd *cobra.Command, repos []string) error {
			return runRetention(cmd, g, o, repos, apply)
		},
	}
	if apply {
		cmd.Use = "apply -f POLICY --registry URL [REPO...]"
		cmd.Short = "Delete what a retention policy does not keep"
		cmd.Long = `Plan as retention plan does, then delete by digest every artifact the plan does not keep, after
checking that its tags are still those the plan saw (an artifact tagged since is skipped). If the plan could
not read everything, nothing is deleted. Nothing is asked: run retention plan first to see what goes. stdout
gets the plan's table, with what became of each artifact.`
	}
	o.add(cmd)
	cmd.Flags().Lookup("registry").Usage = "registry to read: host[:port], https://host, or http://host:port for plain HTTP (required)"
	cmd.Flags().Lookup("jobs").Usage = "requests in flight at once (default 8)"
	cmd.Flags().StringVarP(&o.file, "file", "f", "", "retention policy, YAML or JSON (- for stdin)")
	return cmd
}

func runRetention(cmd *cobra.Command, g *globalOptions, o retentionOptions, repos []string, apply bool) error {
	op := "retention plan"
	if apply {
		op = "retention apply"
	}
	if o.file == "" {
		return invalidf("%s needs a policy: -f FILE", op)
	}
	if o.url == "" {
		return invalidf("%s needs --registry", op)
	}
	if o.file == "-" && o.creds.passwordStdin {
		return invalidf("-f - and --password-stdin: stdin holds one of them")
	}
	policy, err := readPolicy(g, o.file)
	if err != nil {
		return err
	}
	opts, err := o.retentionOptions(cmd.Context(), g, repos)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return &containerization.RegistryError{Op: op, Registry: opts.Registry, Err: err}
	}

	ctx := cmd.Context()
	report, err := retention.Plan(ctx, policy, opts)
	if err == nil && apply {
		report, err = retention.Apply(ctx, report, opts)
	}
	if report != nil {
		if perr := printRetention(g, report); perr != nil {
			return perr
		}
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

func readPolicy(g *globalOptions, file string) (retention.Policy, error) {
	var (
		data []byte
		err  error
	)
	if file == "-" {
		data, err = io.ReadAll(g.in)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return retention.Policy{}, invalidf("reading the policy: %v", err)
	}
	return retention.ParsePolicy(data)
}

// retentionOptions turns the flags into retention's options: the registry, and go-containerregistry's options
// for its transport and credentials (the login given, else the keychain).
func (f *registryFlags) retentionOptions(ctx context.Context, g *globalOptions, repos []string) (retention.Options, error) {
	kind, err := registry.ParseKind(f.kind)
	if err != nil {
		return retention.Options{}, err
	}
	ep, err := registry.ParseEndpoint(f.url, kind)
	if err != nil {
		return retention.Options{}, err
	}
	ro := registry.Options{Kind: ep.Kind, Jobs: f.jobs, Logger: g.log}
	if f.caFile != "" {
		if ro.RootCAs, err = registry.LoadCAFile(f.caFile); err != nil {
			return retention.Options{}, err
		}
	}
	c, err := f.creds.read(g)
	if err != nil {
		return retention.Options{}, err
	}
	if c.Username != "" {
		ro.Auth = &authn.AuthConfig{Username: c.Username, Password: string(c.Password)}
	} else if ro.Keychain, err = g.keychain(); err != nil {
		return retention.Options{}, err
	}
	ropts := ro.RemoteOptions(ctx, ep)
	return retention.Options{
		Registry: ep.Host, Insecure: ep.PlainHTTP, Repositories: repos, Remote: ropts, Concurrency: f.jobs,
	}, nil
}

// printRetention writes a report: as JSON or YAML, whole; as a table, a line per artifact, then its notes and
// counts on stderr.
func printRetention(g *globalOptions, r *retention.Report) error {
	if g.structured() {
		return g.encode(r)
	}
	tw := newTable(g.out)
	fmt.Fprintln(tw, "REPOSITORY\tDIGEST\tTAGS\tPUSHED\tKEEP/DELETE\tREASON")
	for _, a := range r.Artifacts {
		tags := strings.Join(a.Tags, ",")
		if tags == "" {
			tags = "<none>"
		}
		pushed := "unknown"
		if !a.PushedAt.IsZero() {
			pushed = a.PushedAt.UTC().Format("2006-01-02 15:04")
		}
		reason := a.Reason
		if a.Error != "" {
			reason += " (" + a.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Repository,
			shortID(strings.TrimPrefix(a.Digest, "sha256:")), tags, pushed, action(r, a), reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(g.errOut, "myrmex: note: %s\n", n)
	}
	if r.DryRun {
		fmt.Fprintf(g.errOut, "myrmex: plan: %d kept, %d to delete (dry run: nothing deleted)\n", r.Kept, r.Deleted)
	} else {
		fmt.Fprintf(g.errOut, "myrmex: applied: %d kept, %d deleted, %d skipped, %d failed\n", r.Kept, r.Deleted, r.Skipped, r.Failed)
	}
	return nil
}

// action says what the plan decided for an artifact, or after apply what became of it.
func action(r *retention.Report, a retention.Decision) string {
	switch {
	case a.Keep:
		return "keep"
	case r.DryRun:
		return "delete"
	case a.Deleted:
		return "deleted"
	case a.Skipped:
		return "skipped"
	}
	return "failed"
}
