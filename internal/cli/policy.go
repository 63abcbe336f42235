package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization/policy"
)

func newPolicyCmd(g *globalOptions) *cobra.Command {
	return group("policy", "Check a policy file, print the policy format's schema",
		newPolicyCheckCmd(g),
		newPolicySchemaCmd(g),
	)
}

// policyCheck is what `policy check` prints.
type policyCheck struct {
	File     string        `json:"file"`
	Valid    bool          `json:"valid"`
	Version  int           `json:"version"`
	Rules    []policy.Rule `json:"rules"`
	Problems []string      `json:"problems"`
}

func newPolicyCheckCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file and list its rules",
		Long: `Validate a policy file (see docs/policy.md and myrmex policy schema): a field this Myrmex does not
know, a value out of range or a malformed line is an error naming the line and the field (exit 2). A valid
policy's rules are listed, with what would make it refuse every image.`,
		Example: `  myrmex policy check policy.yaml
  myrmex policy check policy.yaml -o json`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			res := policyCheck{File: args[0], Valid: true, Version: p.Version, Rules: p.Rules(), Problems: p.Problems()}
			if res.Problems == nil {
				res.Problems = []string{}
			}
			return show(g, res, printPolicyCheck)
		},
	}
}

func printPolicyCheck(w io.Writer, r policyCheck) error {
	fmt.Fprintf(w, "%s: a valid policy (version %d)\n", r.File, r.Version)
	tw := newTable(w)
	fmt.Fprintln(tw, "RULE\tMEANS")
	for _, rule := range r.Rules {
		fmt.Fprintf(tw, "%s\t%s\n", rule.Rule, rule.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	return nil
}

func newPolicySchemaCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the policy format's JSON Schema",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := g.out.Write(policy.Schema)
			return err
		},
	}
}

// warnVerdict says on stderr what a policy found at a gate that only warns (an enforcing gate's refusal is the
// command's error), and the policy's own warnings (an expired ignore).
func (g *globalOptions) warnVerdict(v *policy.Verdict) {
	if v == nil || g.output == outputJSON {
		return
	}
	for _, w := range v.Warnings {
		fmt.Fprintf(g.errOut, "myrmex: warning: the policy: %s\n", w)
	}
	if v.Allowed || v.Mode != policy.Warn {
		return
	}
	for _, x := range v.Violations {
		fmt.Fprintf(g.errOut, "myrmex: warning: the policy (%s gate, warn only): %s\n", v.Gate, x)
	}
}
