package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
)

func newContainerLsCmd(g *globalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list", "ps"},
		Short:   "List Myrmex's containers, in every state",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := g.manageOptions(nil)
			opts.Foreign = all
			res, err := g.myrmex().ManageContainers(cmd.Context(), containerization.OpList, "", nil, opts)
			if err != nil {
				return err
			}
			list := res.Containers
			if list == nil {
				list = []engine.Container{}
			}
			if g.structured() {
				return g.encode(list)
			}
			if len(list) == 0 && !all {
				fmt.Fprintln(g.errOut, "myrmex: no containers of Myrmex's (--all includes the others)")
			}
			tw := newTable(g.out)
			fmt.Fprintln(tw, "NAME\tID\tIMAGE\tSTATE\tSTATUS\tPORTS")
			for _, c := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, shortID(c.ID), c.Image, c.State, c.Status, strings.Join(c.Ports, ", "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include containers that Myrmex did not create")
	return cmd
}
