// Package cli is the myrmex command: a cobra tree whose commands parse flags into an options struct and call the
// containerization library. It holds no container logic of its own. stdout carries results only (tables, JSON
// or YAML); errors, hints and --debug records go to stderr. [Main] runs the tree and maps the error to one of
// the exit codes below.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/policy"
)

// Exit codes of myrmex. An error that falls in more than one category takes the first row that matches:
//
//	code  meaning
//	0     success
//	1     error not otherwise classified
//	2     usage error or invalid argument (flag parse errors, ErrInvalidArgument)
//	3     not found (ErrNotFound)
//	4     already exists or conflict (ErrAlreadyExists, ErrConflict)
//	5     engine, registry or API unavailable, or its TLS certificate not trusted (ErrUnavailable, ErrTLS)
//	6     unauthorized (ErrUnauthorized)
//	7     policy violation (ErrPolicyViolation; myrmex scan --exit-code N makes it N)
//	8     not implemented (ErrNotImplemented)
//	9     rollout failed: a pod cannot start, a deadline passed, or the wait timed out (ErrRolloutFailed)
//	130   interrupted (SIGINT or SIGTERM cancelled the command)
//
// A command given several names carries on after a failure and exits with the code of the first one.
const (
	ExitOK             = 0
	ExitError          = 1
	ExitUsage          = 2
	ExitNotFound       = 3
	ExitConflict       = 4
	ExitUnavailable    = 5
	ExitUnauthorized   = 6
	ExitPolicy         = 7
	ExitNotImplemented = 8
	ExitRolloutFailed  = 9
	ExitInterrupted    = 130
)

// usageError is a command line that cobra or a flag parser rejected before any command ran.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitError is an error whose exit code the user chose (myrmex scan --exit-code N, as Trivy's --exit-code).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode maps an error to its exit code (see [ExitOK] for the table; the categories are errdefs.Kinds).
func ExitCode(err error) int {
	var usage *usageError
	var chosen *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &chosen):
		return chosen.code
	case errors.As(err, &usage) && !errors.Is(err, context.Canceled):
		return ExitUsage
	}
	return errdefs.KindOf(err).ExitCode
}

// jsonOutput reports whether the command that ran was asked for JSON (-o json, the root's flag or its own).
func jsonOutput(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flag("output")
	if ff := cmd.Flag("format"); ff != nil { // report: -o is --format, --output its file
		f = ff
	}
	return f != nil && f.Value.String() == outputJSON
}

// reported is an error whose details the command has already written to stderr (one line per failed name); Main
// prints nothing more for it.
type reported struct{ err error }

func (e *reported) Error() string { return e.err.Error() }
func (e *reported) Unwrap() error { return e.err }

// Main runs myrmex with args (without the program name) and returns the exit code. A cancelled ctx (SIGINT)
// ends the running command and exits 130.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globalOptions{in: stdin, out: stdout, errOut: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	cmd, err := root.ExecuteContextC(ctx)
	if g.client != nil {
		_ = g.client.Close()
	}
	if err == nil {
		if ctx.Err() != nil && !g.stopped {
			return ExitInterrupted // logs --follow ends quietly when interrupted
		}
		return ExitOK
	}
	if !g.started {
		// Cobra refused the command line (unknown command or flag, wrong number of arguments) before any
		// command ran.
		err = &usageError{err}
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		// The library reports some cancellations in its own words (an engine that stopped answering mid-call).
		err = fmt.Errorf("%w: %w", context.Canceled, err)
	}
	var done *reported
	if jsonOutput(cmd) {
		// For callers outside Go: the specification's error class and a stable code, on one line.
		obj := containerization.NewErrorObject(err)
		var usage *usageError
		if errors.As(err, &usage) && !errors.Is(err, context.Canceled) {
			obj.Code = "invalid_argument"
		}
		b, _ := json.Marshal(struct {
			Error containerization.ErrorObject `json:"error"`
		}{obj})
		fmt.Fprintf(stderr, "%s\n", b)
	} else if !errors.As(err, &done) {
		fmt.Fprintf(stderr, "myrmex: %v\n", err)
	}
	var usage *usageError
	if errors.As(err, &usage) && cmd != nil && !jsonOutput(cmd) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ExitCode(err)
}

// globalOptions are the root's persistent flags and the process's streams, shared by every command.
type globalOptions struct {
	host   string
	output string
	debug  bool
	// stopped is set by a command whose normal end is a signal (serve): Main then exits 0, not 130.
	stopped bool
	// policyFile is --policy (else $MYRMEX_POLICY); policy the policy read from it, held at every gate.
	policyFile string
	policy     *policy.Policy

	in          io.Reader
	out, errOut io.Writer
	log         *slog.Logger // nil unless --debug, so that the library stays silent
	client      *containerization.Client
	started     bool // a command's RunE was reached: its errors are not usage errors
}

func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "myrmex",
		Short: "Build, run, scan, ship and deploy containers",
		Long: `Myrmex builds images on BuildKit (lint, scan and gate included), creates, runs, inspects and measures
containers on a Docker-compatible engine (Docker or Podman's Docker socket), scans images for vulnerabilities and
compliance, pushes, pulls, tags, copies, lists and deletes images in OCI registries with retention policies, and
deploys to Kubernetes with server-side apply, waits that fail fast, scale, rollback and delete, as the Codomyrmex
containerization API specifies.

Results go to stdout (-o table, json or yaml, with the specification's field names); errors and hints go to
stderr, and with -o json a failure is also a JSON object there ({"error": {"class", "code", "message", "op",
"subject"}}). Exit codes: 0 ok, 1 error, 2 usage or invalid argument, 3 not found, 4 already exists or conflict,
5 engine or registry unavailable or its certificate not trusted, 6 unauthorized, 7 policy violation,
8 not implemented, 9 rollout failed, 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.started = true
			if !g.debug {
				// client-go logs through klog (discovery retries, say) on stderr, beside Myrmex's own error.
				klog.SetLogger(logr.Discard())
			}
			if g.debug {
				g.log = slog.New(slog.NewTextHandler(g.errOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
				g.log.Debug("running", "command", cmd.CommandPath(), "args", args, "host", g.host, "output", g.output)
			}
			switch g.output {
			case outputTable, outputJSON, outputYAML:
			default:
				return fmt.Errorf("%w: -o %q: want table, json or yaml", containerization.ErrInvalidArgument, g.output)
			}
			if g.policyFile == "" {
				g.policyFile = os.Getenv("MYRMEX_POLICY")
			}
			// policy check reads the file it is given; a broken policy in the environment must not stop it.
			if g.policyFile != "" && !strings.HasPrefix(cmd.CommandPath(), "myrmex policy") {
				p, err := policy.Load(g.policyFile)
				if err != nil {
					return err
				}
				g.policy = p
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.CompletionOptions.HiddenDefaultCmd = true

	pf := root.PersistentFlags()
	pf.StringVar(&g.host, "host", "", "engine address, such as unix:///run/docker.sock or tcp://host:2376 (default $DOCKER_HOST, else the platform's socket)")
	pf.StringVarP(&g.output, "output", "o", outputTable, "output format: table, json or yaml")
	pf.BoolVar(&g.debug, "debug", false, "log debug records to stderr")
	pf.StringVar(&g.policyFile, "policy", "", "policy file held at every gate: build, push, container create and start, kube apply (default $MYRMEX_POLICY; see docs/policy.md)")

	root.AddCommand(newVersionCmd(g), newContainerCmd(g), newRegistryCmd(g), newScanCmd(g), newDBCmd(g), newBuildCmd(g), newKubeCmd(g), newOptimizeCmd(g), newPolicyCmd(g), newSecretCmd(g),
		newPipelineCmd(g), newReportCmd(g), newKeyCmd(g), newSignCmd(g), newVerifyCmd(g), newServeCmd(g))
	return root
}

// group makes a command that only holds subcommands: bare, it prints its help; with an unknown subcommand, it
// is a usage error (cobra would print the help and succeed).
func group(use, short string, children ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(children...)
	return cmd
}

// engine connects to the engine for a command that makes several calls. The caller closes it.
func (g *globalOptions) engine(ctx context.Context) (*engine.Client, error) {
	return g.myrmex().Engine(ctx)
}

// myrmex is the process's one Client, made on first use (after the flags are parsed: --host, --debug) and
// closed by Main.
func (g *globalOptions) myrmex() *containerization.Client {
	if g.client == nil {
		// New fails only for a cancelled context; a client over no context still answers each call's own.
		cfg := containerization.Config{Host: g.host, Logger: g.log, Policy: g.policy}
		// The secret store opens without reading anything: a damaged store fails only a create that names a secret.
		if s, err := g.secrets(); err == nil {
			cfg.Secrets, cfg.Registries = s, s
		}
		// The gates that reach a registry on their own (signatures at create and start) log in as the registry
		// commands do: Myrmex's store first.
		if k, err := g.keychain(); err == nil {
			cfg.Keychain = k
		}
		g.client, _ = containerization.New(context.Background(), cfg)
	}
	return g.client
}

// manageOptions are the library options every lifecycle call shares.
func (g *globalOptions) manageOptions(eng *engine.Client) containerization.ManageOptions {
	return containerization.ManageOptions{Engine: eng, Host: g.host, Logger: g.log}
}

// fail writes one failure to stderr, as Main would. With -o json it writes nothing: each failure is in the
// results on stdout, and Main writes the first as the one JSON error object on stderr.
func (g *globalOptions) fail(err error) {
	if g.output == outputJSON {
		return
	}
	fmt.Fprintf(g.errOut, "myrmex: %v\n", err)
}

// invalidf makes an error wrapping [containerization.ErrInvalidArgument], for input the CLI itself rejects.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", containerization.ErrInvalidArgument, fmt.Sprintf(format, args...))
}
