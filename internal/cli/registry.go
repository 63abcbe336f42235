package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry/credstore"
)

func newRegistryCmd(g *globalOptions) *cobra.Command {
	return group("registry", "Push, pull, tag, list, copy and delete images in OCI registries; log in; apply retention",
		newRegistryPushCmd(g),
		newRegistryPullCmd(g),
		newRegistryTagCmd(g),
		newRegistryListCmd(g),
		newRegistryDeleteCmd(g),
		newRegistryCopyCmd(g),
		newRegistryLoginCmd(g),
		newRegistryLogoutCmd(g),
		newRegistryRetentionCmd(g),
		newRegistryScansCmd(g),
		newRegistryAddCmd(g),
		newRegistryShowCmd(g),
		newRegistryLsCmd(g),
		newRegistryRmCmd(g),
	)
}

// newRegistryScansCmd lists the scans attached to an image in its registry.
func newRegistryScansCmd(g *globalOptions) *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "scans REF",
		Short: "List the scans attached to an image's digest in its registry (myrmex scan --attach, registry push --attach-scan)",
		Example: `  myrmex registry scans registry.example.com/team/web:1.4
  myrmex registry scans http://127.0.0.1:5000/app@sha256:… -o json`,
		Args: exactArgs(1, "one REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			list, err := g.myrmex().AttachedScans(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			return show(g, list, func(w io.Writer, list []policy.Evidence) error {
				tw := newTable(w)
				fmt.Fprintln(tw, "EVIDENCE\tCREATED\tSCAN\tFINDINGS\tDATABASE\tSCANNER")
				for _, e := range list {
					a := e.Annotations
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Digest, e.Created.Format(time.RFC3339), a[policy.AnnotationScanType],
						a[policy.AnnotationSummary], a[policy.AnnotationDBUpdated], a[policy.AnnotationScanner])
				}
				return tw.Flush()
			})
		},
	}
	f.add(cmd)
	return cmd
}

// registryFlags are the flags every registry operation shares.
type registryFlags struct {
	url    string
	kind   string
	caFile string
	jobs   int
	creds  credentialFlags
}

func (f *registryFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "registry", "", "registry: host[:port], https://host, http://host:port for plain HTTP, or the NAME of one saved with registry add (default: the registry the image names, else Docker Hub)")
	fl.StringVar(&f.kind, "type", "", "registry type: dockerhub, ecr, acr, gcr, harbor or generic (default: told from the host)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of certificate authorities to trust besides the system's")
	fl.IntVar(&f.jobs, "jobs", 0, "blobs moved at once (default 4)")
	f.creds.add(cmd, "", "u", "the registry")
}

// options turns the flags into the library's options. A login given on the command line is used as it is;
// without one, credentials come from the keychain.
func (f *registryFlags) options(g *globalOptions) (containerization.RegistryOptions, error) {
	opts := containerization.RegistryOptions{Type: f.kind, CAFile: f.caFile, Jobs: f.jobs, Host: g.host, Logger: g.log}
	var err error
	if opts.Credentials, err = f.creds.read(g); err != nil {
		return opts, err
	}
	opts.Keychain, err = g.keychain()
	return opts, err
}

// keychain is Myrmex's encrypted store (myrmex registry login); the library asks it first, then the Docker config
// and its credential helpers, then the cloud's helper.
func (g *globalOptions) keychain() (authn.Keychain, error) {
	store, err := credstore.Open(credstore.Options{Logger: g.log})
	if err != nil {
		return nil, err
	}
	return store, nil
}

// credentialFlags are a login given on the command line. The password is read from stdin, so that it shows
// neither in the process list nor in the shell's history; --password is accepted with a warning, as docker
// accepts it.
type credentialFlags struct {
	prefix        string
	username      string
	password      string
	passwordStdin bool
}

// add adds --PREFIXusername, --PREFIXpassword-stdin and --PREFIXpassword to cmd; short is the username's
// shorthand, if any.
func (c *credentialFlags) add(cmd *cobra.Command, prefix, short, what string) {
	c.prefix = prefix
	fl := cmd.Flags()
	fl.StringVarP(&c.username, prefix+"username", short, "", "username for "+what+" (default: the stored login, else the Docker config)")
	fl.BoolVar(&c.passwordStdin, prefix+"password-stdin", false, "read the password or token for "+what+" from stdin")
	fl.StringVar(&c.password, prefix+"password", "", "password for "+what+" (insecure: use --"+prefix+"password-stdin)")
	_ = fl.MarkHidden(prefix + "password")
}

// read returns the login given, reading its password from stdin; an empty username means none was given.
func (c *credentialFlags) read(g *globalOptions) (containerization.RegistryCredentials, error) {
	user, pass, stdin := "--"+c.prefix+"username", "--"+c.prefix+"password", "--"+c.prefix+"password-stdin"
	switch {
	case c.password != "" && c.passwordStdin:
		return containerization.RegistryCredentials{}, invalidf("%s and %s: give one", pass, stdin)
	case c.username == "" && c.passwordStdin:
		return containerization.RegistryCredentials{}, invalidf("%s needs %s", stdin, user)
	case c.username == "" && c.password != "":
		return containerization.RegistryCredentials{}, invalidf("%s needs %s", pass, user)
	case c.username == "":
		return containerization.RegistryCredentials{}, nil
	case c.password == "" && !c.passwordStdin:
		return containerization.RegistryCredentials{}, invalidf("%s needs %s: myrmex does not prompt", user, stdin)
	}
	password := c.password
	if c.passwordStdin {
		b, err := io.ReadAll(io.LimitReader(g.in, 64<<10))
		if err != nil {
			return containerization.RegistryCredentials{}, fmt.Errorf("reading the password from stdin: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if password == "" {
			return containerization.RegistryCredentials{}, invalidf("%s: stdin is empty", stdin)
		}
	} else {
		fmt.Fprintf(g.errOut, "myrmex: warning: %s shows the password to every user of this machine; use %s\n", pass, stdin)
	}
	return containerization.RegistryCredentials{Username: c.username, Password: containerization.Secret(password)}, nil
}

// runRegistry runs one operation and prints its result. With -o json or yaml a failure is printed too, as the
// specification's result (success false, error_message); the error sets the exit code.
func runRegistry(cmd *cobra.Command, g *globalOptions, op, image, registryURL string, opts containerization.RegistryOptions) error {
	stop := func() {}
	if progressVerbs[op] != "" {
		opts.Progress, stop = g.progress(op)
	}
	res, err := g.myrmex().ManageContainerRegistry(cmd.Context(), op, image, registryURL, opts)
	stop() // the progress line goes before the result or the error is written
	g.warnVerdict(res.PolicyVerdict)
	if err != nil {
		if g.structured() {
			if perr := g.encode(res); perr != nil {
				return perr
			}
		}
		return err
	}
	return printRegistryResult(g, res)
}

// pastTense says what an operation did, in a result line.
var pastTense = map[string]string{
	containerization.RegistryPush:   "pushed",
	containerization.RegistryPull:   "pulled",
	containerization.RegistryTag:    "tagged",
	containerization.RegistryCopy:   "copied",
	containerization.RegistryDelete: "deleted",
}

// printRegistryResult writes a result: as JSON or YAML, the RegistryResult with the specification's field
// names; as a table, list prints one tag or repository a line, and the other operations a line per reference
// written or removed, REFERENCE DIGEST WHAT [SIZE], the digest in full so that it can be piped.
func printRegistryResult(g *globalOptions, res *containerization.RegistryResult) error {
	if g.structured() {
		return g.encode(res)
	}
	tw := newTable(g.out)
	if res.Operation == containerization.RegistryList {
		lines, what := res.Tags, "tags"
		if res.ImageName == "" {
			lines, what = res.Repositories, "repositories"
		}
		if len(lines) == 0 {
			fmt.Fprintf(g.errOut, "myrmex: %s has no %s\n", res.Reference, what)
		}
		for _, l := range lines {
			fmt.Fprintln(tw, l)
		}
		return tw.Flush()
	}
	refs := []string{res.Reference}
	if ref, err := name.ParseReference(res.Reference); err == nil {
		if _, byDigest := ref.(name.Digest); !byDigest {
			refs = refs[:0] // a line per tag; a digest's line comes first, then its tags'
		}
		for _, t := range res.Tags {
			refs = append(refs, ref.Context().Tag(t).String())
		}
	}
	if res.SignaturesCopied > 0 {
		fmt.Fprintf(g.errOut, "myrmex: %d signatures copied with it\n", res.SignaturesCopied)
	}
	for _, r := range refs {
		fmt.Fprintf(tw, "%s\t%s\t%s", r, res.ImageDigest, pastTense[res.Operation])
		if res.Operation != containerization.RegistryDelete {
			fmt.Fprintf(tw, "\t%.1f MB", res.SizeMB)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
