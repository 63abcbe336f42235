package cli

import (
	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
)

func newContainerInspectCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show the engine's full view of a container (JSON unless -o yaml)",
		Args:  exactArgs(1, "one container NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.myrmex().ManageContainers(cmd.Context(), containerization.OpInspect, args[0], nil, g.manageOptions(nil)); err != nil {
				return err
			}
			// The engine's own view, as docker inspect shows it (the library's result has Myrmex's shape).
			eng, err := g.engine(cmd.Context())
			if err != nil {
				return err
			}
			raw, err := eng.Inspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.output == outputTable {
				// The engine's view is a tree, not rows: the default is JSON.
				g.output = outputJSON
			}
			return g.encode(raw)
		},
	}
}
