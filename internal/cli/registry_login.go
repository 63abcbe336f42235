package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/registry/credstore"
)

// loginStatus is what login and logout print.
type loginStatus struct {
	Operation   string `json:"operation"` // login or logout
	RegistryURL string `json:"registry_url"`
	Username    string `json:"username,omitempty"`
	// Changed is false for a logout from a registry Myrmex had no login for.
	Changed bool `json:"changed"`
	// Store is the encrypted file that holds the logins.
	Store string `json:"store"`
}

func newRegistryLoginCmd(g *globalOptions) *cobra.Command {
	var (
		creds        credentialFlags
		kind, caFile string
	)
	cmd := &cobra.Command{
		Use:   "login [REGISTRY]",
		Short: "Check a login with the registry, then save it encrypted in Myrmex's credential store",
		Long: `Log in to REGISTRY (default Docker Hub): the username and password (or access token) are checked with
the registry first, and saved only if it accepts them, encrypted (AES-256-GCM) in the store of
$MYRMEX_CONFIG_DIR, else ~/.config/myrmex. The key is $MYRMEX_CREDENTIALS_KEY (base64 of 32 bytes), else a 0600
key file beside the store. Registry commands given no --username use the saved login first, then the Docker
config. The password is read from stdin: myrmex never prompts, and never prints it.`,
		Example: `  echo "$TOKEN" | myrmex registry login ghcr.io --username me --password-stdin
  aws ecr get-login-password | myrmex registry login 123456789012.dkr.ecr.eu-west-1.amazonaws.com -u AWS --password-stdin`,
		Args: maxOneRegistry,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := creds.read(g)
			if err != nil {
				return err
			}
			if c.Username == "" {
				return invalidf("login needs --username and --password-stdin: myrmex does not prompt")
			}
			return runLogin(cmd.Context(), g, registryArg(args), kind, caFile, c)
		},
	}
	cmd.Flags().StringVar(&kind, "type", "", "registry type: dockerhub, ecr, acr, gcr, harbor or generic (default: told from the host)")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's")
	creds.add(cmd, "", "u", "the registry")
	return cmd
}

func newRegistryLogoutCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [REGISTRY]",
		Short: "Remove a registry's login from Myrmex's credential store",
		Long: `Remove the login saved for REGISTRY (default Docker Hub) by myrmex registry login. The Docker config is
left alone. Logging out of a registry with no saved login succeeds and says so.`,
		Args: maxOneRegistry,
		RunE: func(cmd *cobra.Command, args []string) error {
			host, err := credstore.NormalizeRegistry(registryArg(args))
			if err != nil {
				return &containerization.RegistryError{Op: "logout", Registry: registryArg(args), Err: err}
			}
			store, err := credstore.Open(credstore.Options{Logger: g.log})
			if err != nil {
				return err
			}
			found, err := store.Delete(host)
			if err != nil {
				return &containerization.RegistryError{Op: "logout", Registry: host, Err: err}
			}
			st := loginStatus{Operation: "logout", RegistryURL: host, Changed: found, Store: store.Path()}
			if g.structured() {
				return g.encode(st)
			}
			if !found {
				fmt.Fprintf(g.out, "not logged in to %s\n", host)
				return nil
			}
			fmt.Fprintf(g.out, "logged out of %s\n", host)
			return nil
		},
	}
}

func maxOneRegistry(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return &usageError{invalidf("%s takes at most one REGISTRY, got %d arguments", cmd.CommandPath(), len(args))}
	}
	return nil
}

// registryArg is the REGISTRY argument, Docker Hub when there is none.
func registryArg(args []string) string {
	if len(args) == 0 {
		return "docker.io"
	}
	return args[0]
}

// runLogin checks c with the registry and saves it. Nothing is saved unless the registry accepts it.
func runLogin(ctx context.Context, g *globalOptions, registryURL, kind, caFile string, c containerization.RegistryCredentials) error {
	fail := func(err error) error {
		return &containerization.RegistryError{Op: "login", Registry: registryURL, Err: err}
	}
	k, err := registry.ParseKind(kind)
	if err != nil {
		return fail(err)
	}
	ep, err := registry.ParseEndpoint(registryURL, k)
	if err != nil {
		return fail(err)
	}
	store, err := credstore.Open(credstore.Options{Logger: g.log})
	if err != nil {
		return fail(err)
	}
	if err := checkLogin(ctx, ep, c, caFile); err != nil {
		return fail(err)
	}
	if err := store.Put(ep.Host, credstore.Credentials{Username: c.Username, Password: string(c.Password)}); err != nil {
		return fail(err)
	}
	st := loginStatus{Operation: "login", RegistryURL: ep.Host, Username: c.Username, Changed: true, Store: store.Path()}
	if g.structured() {
		return g.encode(st)
	}
	fmt.Fprintf(g.out, "logged in to %s as %s\n", ep.Host, c.Username)
	return nil
}

// checkLogin asks the registry whether it accepts c, as docker login does.
func checkLogin(ctx context.Context, ep registry.Endpoint, c containerization.RegistryCredentials, caFile string) error {
	opts := registry.Options{Auth: &authn.AuthConfig{Username: c.Username, Password: string(c.Password)}}
	if caFile != "" {
		pool, err := registry.LoadCAFile(caFile)
		if err != nil {
			return err
		}
		opts.RootCAs = pool
	}
	return loginError(registry.Ping(ctx, ep, opts), ep.Host)
}

// loginError classifies an error of the login check as every registry call does, except that refused
// credentials need no advice to log in.
func loginError(err error, host string) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w: %s refused the username or password (HTTP %d)", containerization.ErrUnauthorized, host, terr.StatusCode)
	}
	return err
}
