package cli

import (
	"github.com/spf13/cobra"
)

func newContainerCmd(g *globalOptions) *cobra.Command {
	cmd := group("container", "Create, run, inspect and measure containers",
		newContainerCreateCmd(g),
		newContainerStartCmd(g),
		newContainerStopCmd(g),
		newContainerRestartCmd(g),
		newContainerRmCmd(g),
		newContainerInspectCmd(g),
		newContainerLsCmd(g),
		newContainerLogsCmd(g),
		newContainerStatsCmd(g),
	)
	cmd.Aliases = []string{"containers"}
	return cmd
}

// minArgs is cobra.MinimumNArgs with a message that names what is missing.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return &usageError{invalidf("%s needs %s", cmd.CommandPath(), what)}
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs with a message that names what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{invalidf("%s takes %s, got %d argument(s)", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}
