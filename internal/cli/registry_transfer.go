package cli

import (
	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
)

func newRegistryPushCmd(g *globalOptions) *cobra.Command {
	var (
		f      registryFlags
		to     string
		tags   []string
		level  int
		attach bool
	)
	cmd := &cobra.Command{
		Use:   "push IMAGE",
		Short: "Push an image from the engine, an OCI layout or a docker save tarball to a registry",
		Long: `Push IMAGE to a registry: an image in the engine's store (myrmex.local/web:test), an OCI layout
(oci:DIR or oci:DIR:TAG; an index is pushed whole), or a docker save tarball (docker-archive:FILE). It goes to
--to (REPO:TAG, or a full reference naming its registry), else to its own repository and tag; in --registry
when given. Blobs the registry has are skipped, and the manifest goes last, so a failed push leaves the tag as
it was. stdout gets a line per tag written: REFERENCE DIGEST pushed SIZE.`,
		Example: `  myrmex registry push myrmex.local/web:test --registry registry.example.com --to team/web:1.4 --tag latest
  myrmex registry push oci:./build/layout --to http://127.0.0.1:5000/app:dev
  echo "$TOKEN" | myrmex registry push app:1 --registry ghcr.io --to me/app:1 -u me --password-stdin`,
		Args: exactArgs(1, "one IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			// A destination that names its registry (with http:// for plain HTTP) speaks for itself.
			opts.Destination, opts.Tags, opts.GzipLevel, opts.AttachScan = to, tags, level, attach
			return runRegistry(cmd, g, containerization.RegistryPush, args[0], f.url, opts)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&to, "to", "", "destination REPO:TAG or full reference (default: the image's own repository and tag)")
	cmd.Flags().BoolVar(&attach, "attach-scan", false, "scan the pushed image and attach the scan to its digest in the registry")
	cmd.Flags().StringArrayVarP(&tags, "tag", "t", nil, "another tag for the pushed image (repeat for several)")
	cmd.Flags().IntVar(&level, "gzip-level", 0, "gzip level of the layers Myrmex compresses (an image from the engine or a docker save tarball): 1 fastest (default) to 9 smallest; docker push uses 6")
	return cmd
}

func newRegistryPullCmd(g *globalOptions) *cobra.Command {
	var (
		f        registryFlags
		platform string
		via      string
	)
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image from a registry into the engine",
		Long: `Pull REF (repo:tag or repo@sha256:…, in --registry or the registry it names) into the engine's store,
under the registry's name. From a multi-platform index, --platform picks the image (default linux/amd64). An
image pulled by digest is named with the digest's first 12 hex digits as its tag. The engine pulls the image
itself, by the digest Myrmex read, when it reaches and trusts the registry; else Myrmex fetches the image and
loads it into the engine (--via engine or --via load to have only one; the result's "via" says which).`,
		Example: `  myrmex registry pull registry.example.com/team/web:1.4
  myrmex registry pull team/web:1.4 --registry http://127.0.0.1:5000 --platform linux/arm64`,
		Args: exactArgs(1, "one REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			opts.Platform, opts.PullVia = platform, via
			return runRegistry(cmd, g, containerization.RegistryPull, args[0], f.url, opts)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&platform, "platform", "", "image of a multi-platform index to pull: os/arch[/variant] (default linux/amd64)")
	cmd.Flags().StringVar(&via, "via", "", "how the image reaches the engine: engine (its own pull), load (Myrmex fetches, the engine loads); default: the engine when it can")
	return cmd
}

func newRegistryCopyCmd(g *globalOptions) *cobra.Command {
	var (
		f       registryFlags
		dstKind string
		dst     credentialFlags
		sigs    bool
	)
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image registry to registry, keeping its digest (indexes whole)",
		Long: `Copy SRC to DST, both full references (http://host:port/repo:tag for a plain-HTTP registry), without
an engine: the digest is kept, multi-platform indexes are copied whole, and blobs DST has are skipped.
--username and --password-stdin log in to SRC's registry, --dest-username and --dest-password-stdin to DST's;
without them, both come from the stored logins and the Docker config. Only one password can come from stdin.
--signatures copies the image's signatures too, as cosign copy does (docs/signatures.md).`,
		Example: `  myrmex registry copy registry.example.com/team/web:1.4 mirror.example.com/team/web:1.4
  myrmex registry copy http://127.0.0.1:5000/app:dev registry.example.com/app:dev --dest-username ci --dest-password-stdin`,
		Aliases: []string{"cp"},
		Args:    exactArgs(2, "SRC and DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.creds.passwordStdin && dst.passwordStdin {
				return invalidf("--password-stdin and --dest-password-stdin: stdin holds one password; log in to one registry first (myrmex registry login)")
			}
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			if opts.DestinationCredentials, err = dst.read(g); err != nil {
				return err
			}
			opts.Destination, opts.DestinationType, opts.CopySignatures = args[1], dstKind, sigs
			return runRegistry(cmd, g, containerization.RegistryCopy, args[0], f.url, opts)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&dstKind, "dest-type", "", "destination registry type (default: told from the host)")
	dst.add(cmd, "dest-", "", "the destination registry")
	cmd.Flags().BoolVar(&sigs, "signatures", false, "copy the image's signatures too (cosign's sha256-<hex>.sig), added to the destination's")
	return cmd
}
