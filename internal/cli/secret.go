package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/registry/credstore"
)

func newSecretCmd(g *globalOptions) *cobra.Command {
	return group("secret", "Keep secrets encrypted beside the registry logins, for environment values written secret:NAME",
		newSecretSetCmd(g), newSecretListCmd(g), newSecretRemoveCmd(g))
}

func (g *globalOptions) secrets() (*credstore.Store, error) {
	return credstore.Open(credstore.Options{Logger: g.log})
}

func newSecretSetCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME",
		Short: "Store a secret, its value read from stdin (one trailing newline dropped); never printed",
		Long: `Store a secret under NAME, encrypted with the registry logins' key (docs/containers.md). Its value is read
from stdin, so that it shows neither in the process list nor in the shell's history. A container's environment
value written secret:NAME is replaced by it at create; inspect shows <secret> in its place.`,
		Example: `  printf %s "$DB_PASSWORD" | myrmex secret set db-password
  myrmex container create api --image app:1 -e DB_PASSWORD=secret:db-password`,
		Args: exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := io.ReadAll(io.LimitReader(g.in, credstore.MaxSecretSize+2))
			if err != nil {
				return fmt.Errorf("reading the secret from stdin: %w", err)
			}
			value := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			s, err := g.secrets()
			if err != nil {
				return err
			}
			if err := s.PutSecret(args[0], value); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s\tstored\n", args[0])
			return nil
		},
	}
}

func newSecretListCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the secrets' names (never their values)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.secrets()
			if err != nil {
				return err
			}
			names, err := s.SecretNames()
			if err != nil {
				return err
			}
			if names == nil {
				names = []string{}
			}
			return show(g, names, func(w io.Writer, names []string) error {
				for _, n := range names {
					fmt.Fprintln(w, n)
				}
				return nil
			})
		},
	}
}

func newSecretRemoveCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a secret",
		Args:  exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.secrets()
			if err != nil {
				return err
			}
			found, err := s.DeleteSecret(args[0])
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("%w: no secret %s", containerization.ErrNotFound, args[0])
			}
			fmt.Fprintf(g.out, "%s\tremoved\n", args[0])
			return nil
		},
	}
}
