package cli

import (
	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
)

func newRegistryTagCmd(g *globalOptions) *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "tag REF NEWTAG...",
		Short: "Give an image in a registry more tags, without moving any blob",
		Long: `Give the image (or multi-platform index) at REF more tags in its own repository: its manifest is
written again under each NEWTAG, and no blob moves.`,
		Example: `  myrmex registry tag registry.example.com/team/web:1.4 stable 1`,
		Args:    minArgs(2, "a REF and at least one NEWTAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			opts.Tags = args[1:]
			return runRegistry(cmd, g, containerization.RegistryTag, args[0], f.url, opts)
		},
	}
	f.add(cmd)
	return cmd
}

func newRegistryListCmd(g *globalOptions) *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "list [REPO]",
		Short: "List a repository's tags, or a registry's repositories",
		Long: `List the tags of REPO, one a line, sorted; without REPO, the repositories of --registry (its catalog,
which Docker Hub, ECR and GCR do not serve, and Harbor serves to administrators only).`,
		Example: `  myrmex registry list registry.example.com/team/web
  myrmex registry list --registry http://127.0.0.1:5000`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{invalidf("%s takes at most one REPO, got %d arguments", cmd.CommandPath(), len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var repo string
			if len(args) == 1 {
				repo = args[0]
			} else if f.url == "" {
				return invalidf("list without a REPO lists a registry's repositories: give --registry")
			}
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			return runRegistry(cmd, g, containerization.RegistryList, repo, f.url, opts)
		},
	}
	f.add(cmd)
	return cmd
}

func newRegistryDeleteCmd(g *globalOptions) *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "delete REF",
		Short: "Delete a tag alone, or a manifest with every tag naming it",
		Long: `Delete REF from its registry, without asking. repo:tag deletes that tag alone: other tags of the same
image stay. repo@sha256:… deletes the manifest, and with it every tag that names it. The registry must allow
deletes (distribution: storage.delete.enabled); its garbage collection frees the blobs.`,
		Example: `  myrmex registry delete registry.example.com/team/web:1.4-rc1
  myrmex registry delete registry.example.com/team/web@sha256:4f1e…`,
		Args: exactArgs(1, "one REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			return runRegistry(cmd, g, containerization.RegistryDelete, args[0], f.url, opts)
		},
	}
	f.add(cmd)
	return cmd
}
