package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/signature"
)

// The environment variables a key's password is read from: Myrmex's, else cosign's (so that one variable serves
// both tools).
const (
	envKeyPassword    = "MYRMEX_KEY_PASSWORD"
	envCosignPassword = "COSIGN_PASSWORD"
)

// keyPassword is the password of a private key: $MYRMEX_KEY_PASSWORD, else $COSIGN_PASSWORD; set to the empty
// string, the key is not protected. myrmex does not prompt.
func keyPassword() ([]byte, error) {
	for _, env := range []string{envKeyPassword, envCosignPassword} {
		if v, ok := os.LookupEnv(env); ok {
			return []byte(v), nil
		}
	}
	return nil, invalidf("the key's password is read from $%s (or $%s): set it, to the empty string for a key without one", envKeyPassword, envCosignPassword)
}

func newKeyCmd(g *globalOptions) *cobra.Command {
	return group("key", "Make key pairs that sign images (cosign's format)", newKeyGenerateCmd(g))
}

// keyPair is what `key generate` prints.
type keyPair struct {
	PrivateKey  string `json:"private_key"`
	PublicKey   string `json:"public_key"`
	Fingerprint string `json:"fingerprint"`
}

func newKeyGenerateCmd(g *globalOptions) *cobra.Command {
	var prefix string
	var force bool
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write an ECDSA P-256 key pair that signs images: PREFIX.key (encrypted) and PREFIX.pub",
		Long: `Write a key pair as cosign generate-key-pair does, which cosign reads too: PREFIX.key, the private key
encrypted with the password in $MYRMEX_KEY_PASSWORD (else $COSIGN_PASSWORD; the empty string leaves it
unencrypted in all but name), mode 0600; PREFIX.pub, the public key (PKIX PEM) that verifies. An existing file is
not overwritten without --force (exit 4).`,
		Example: `  MYRMEX_KEY_PASSWORD=… myrmex key generate --output-key-prefix release
  myrmex sign registry.example.com/team/web:1.4 --key release.key
  myrmex verify registry.example.com/team/web:1.4 --key release.pub`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := keyPassword()
			if err != nil {
				return err
			}
			res := keyPair{PrivateKey: prefix + ".key", PublicKey: prefix + ".pub"}
			for _, f := range []string{res.PrivateKey, res.PublicKey} {
				if _, err := os.Lstat(f); err == nil && !force {
					return fmt.Errorf("%w: %s exists: remove it, or give --force", containerization.ErrAlreadyExists, f)
				}
			}
			priv, pub, err := signature.GenerateKeyPair(password)
			if err != nil {
				return err
			}
			k, err := signature.ParsePublicKey(pub, res.PublicKey)
			if err != nil {
				return err
			}
			res.Fingerprint = k.Fingerprint
			if err := writeKeyFile(res.PrivateKey, priv, 0o600); err != nil {
				return err
			}
			if err := writeKeyFile(res.PublicKey, pub, 0o644); err != nil {
				return err
			}
			return show(g, res, func(w io.Writer, r keyPair) error {
				_, err := fmt.Fprintf(w, "%s\t(private, keep it secret)\n%s\t(public, verifies: %s)\n", r.PrivateKey, r.PublicKey, r.Fingerprint)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "myrmex", "file name prefix: PREFIX.key and PREFIX.pub (cosign's flag; -o is the output format)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	return cmd
}

// writeKeyFile writes a key file with mode perm, replacing what is there (a symbolic link is replaced, not
// followed).
func writeKeyFile(file string, data []byte, perm os.FileMode) error {
	tmp := file + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("%w: writing %s: %v", containerization.ErrInvalidArgument, file, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

// signatureFlags are the registry flags of sign and verify: the image's reference names its registry.
type signatureFlags struct {
	kind   string
	caFile string
	creds  credentialFlags
}

func (f *signatureFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "type", "", "registry type: dockerhub, ecr, acr, gcr, harbor or generic (default: told from the host)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's")
	f.creds.add(cmd, "", "u", "the registry")
}

func (f *signatureFlags) options(g *globalOptions) (containerization.RegistryOptions, error) {
	opts := containerization.RegistryOptions{Type: f.kind, CAFile: f.caFile, Host: g.host, Logger: g.log}
	var err error
	if opts.Credentials, err = f.creds.read(g); err != nil {
		return opts, err
	}
	opts.Keychain, err = g.keychain()
	return opts, err
}

func newSignCmd(g *globalOptions) *cobra.Command {
	var f signatureFlags
	var key string
	var annotations []string
	cmd := &cobra.Command{
		Use:   "sign REF --key KEY",
		Short: "Sign an image in its registry with a local key, as cosign does (offline, no transparency log)",
		Long: `Sign the image REF names in its registry: the digest its tag names there (an index's, for a
multi-platform image) is signed with KEY (a key from myrmex key generate or cosign generate-key-pair, its
password in $MYRMEX_KEY_PASSWORD or $COSIGN_PASSWORD; or an unencrypted PKCS #8 key), and the signature is
appended to the image's signatures (the tag sha256-<hex>.sig in its repository), as cosign sign --key
--tlog-upload=false stores it: cosign verify --key accepts it. Signing again with the same key writes nothing.
See docs/signatures.md.`,
		Example: `  myrmex sign registry.example.com/team/web:1.4 --key release.key
  myrmex sign http://127.0.0.1:5000/app@sha256:… --key cosign.key -a built-by=ci -o json`,
		Args: exactArgs(1, "one REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return invalidf("sign needs --key")
			}
			opts := containerization.SignOptions{Key: key, Annotations: map[string]string{}}
			for _, a := range annotations {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return invalidf("-a %q: want key=value", a)
				}
				opts.Annotations[k] = v
			}
			var err error
			if opts.Registry, err = f.options(g); err != nil {
				return err
			}
			if opts.Password, err = keyPassword(); err != nil {
				// An unencrypted key needs none; an encrypted one is refused below, saying so.
				opts.Password = nil
			}
			res, err := g.myrmex().SignImage(cmd.Context(), args[0], opts)
			if err != nil {
				if errors.Is(err, signature.ErrPassword) && opts.Password == nil {
					return fmt.Errorf("%w (no password was given: it is read from $%s or $%s)", err, envKeyPassword, envCosignPassword)
				}
				return err
			}
			return show(g, res, func(w io.Writer, s *signature.Signed) error {
				what := "signed"
				if s.Existing {
					what = "signed already by this key"
				}
				_, err := fmt.Fprintf(w, "%s\t%s\t%s (%d signatures)\n", s.Image, what, s.Tag, s.Signatures)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "private key file (PEM)")
	cmd.Flags().StringArrayVarP(&annotations, "annotation", "a", nil, "key=value added to the signed payload (repeatable)")
	f.add(cmd)
	return cmd
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	var f signatureFlags
	var keys []string
	cmd := &cobra.Command{
		Use:   "verify REF --key PUB...",
		Short: "Verify an image's signatures in its registry against public keys (exit 7 when none verifies)",
		Long: `Verify the signatures stored for the digest REF names in its registry, as cosign verify --key
--insecure-ignore-tlog does: at least one must be by one of the keys (--key, repeatable: PEM files, such as
cosign.pub) over a payload naming that digest. An unsigned image, signatures by other keys only, or a payload
for another image exit 7 (policy_violation), naming why each signature was refused. See docs/signatures.md.`,
		Example: `  myrmex verify registry.example.com/team/web:1.4 --key release.pub
  myrmex verify registry.example.com/team/web:1.4 --key release.pub --key ci.pub -o json`,
		Args: exactArgs(1, "one REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keys) == 0 {
				return invalidf("verify needs --key")
			}
			opts := containerization.VerifyOptions{Keys: keys}
			var err error
			if opts.Registry, err = f.options(g); err != nil {
				return err
			}
			res, err := g.myrmex().VerifyImage(cmd.Context(), args[0], opts)
			if err != nil {
				if res != nil && g.structured() {
					if perr := g.encode(res); perr != nil {
						return perr
					}
				}
				return err
			}
			return show(g, res, func(w io.Writer, v *signature.Verification) error {
				fmt.Fprintf(w, "%s: %d of %d signatures verified\n", v.Image, len(v.Verified), v.Signatures)
				tw := newTable(w)
				fmt.Fprintln(tw, "KEY\tSOURCE\tIDENTITY")
				for _, s := range v.Verified {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, s.KeySource, s.DockerReference)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "public key file (PEM); repeat for several: one signature by any of them verifies")
	f.add(cmd)
	return cmd
}
