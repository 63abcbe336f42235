package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// defaultStatePath is the server's state database: $MYRMEX_STATE_DIR/server.db, else $XDG_STATE_HOME/myrmex,
// else ~/.local/state/myrmex.
// MYRMEX_SERVE_STATE, when set, names it instead: a path, or a postgres:// URL (kept out of the command line,
// where other users of the machine would see its password).
func defaultStatePath() string {
	if v := os.Getenv("MYRMEX_SERVE_STATE"); v != "" {
		return v
	}
	if d := os.Getenv("MYRMEX_STATE_DIR"); d != "" {
		return filepath.Join(d, "server.db")
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "myrmex", "server.db")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "server.db"
	}
	return filepath.Join(home, ".local", "state", "myrmex", "server.db")
}

func newServeCmd(g *globalOptions) *cobra.Command {
	var listen, statePath, certFile, keyFile, runner string
	var maxJobs int
	var lease time.Duration
	var admission bool
	var metricsInterval time.Duration
	var metricsForeign bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the API over HTTP: the six functions, jobs with progress streams, tokens, audit (docs/server.md)",
		Long: `Serve Myrmex's HTTP API (docs/server.md) on --listen: loopback unless TLS is given (--tls-cert and
--tls-key), since the API drives the engine. Every route but GET /v1/health needs a token made with
myrmex serve token create; --admission also serves the Kubernetes admission webhook, POST /v1/admission, which
the API server calls without a token (it needs TLS; serve webhook-config prints its registration). State
(tokens, jobs, the audit log) is kept in --state: a SQLite file for one server, or a PostgreSQL database
(postgres://…, or MYRMEX_SERVE_STATE) that several replicas share, each job run by one of them. SIGINT or
SIGTERM stops the server (exit 0); its running jobs go back to the queue.`,
		Example: `  myrmex serve token create ci --scope operate --expires 720h
  myrmex serve --listen 127.0.0.1:8765`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			tls := certFile != "" || keyFile != ""
			if tls && (certFile == "" || keyFile == "") {
				return invalidf("--tls-cert and --tls-key go together")
			}
			if err := server.CheckListen(listen, tls); err != nil {
				return err
			}
			if maxJobs < 1 || maxJobs > 256 {
				return invalidf("--max-jobs %d: want 1 to 256", maxJobs)
			}
			if lease < time.Second || lease > time.Hour {
				return invalidf("--job-lease %s: want 1s to 1h", lease)
			}
			ctx := cmd.Context()
			st, err := state.Open(ctx, statePath)
			if err != nil {
				return err
			}
			defer st.Close()
			if admission && !tls {
				return invalidf("--admission needs TLS (--tls-cert and --tls-key): the Kubernetes API server calls webhooks over HTTPS only")
			}
			if admission && g.policy == nil {
				fmt.Fprintln(g.errOut, "myrmex: --admission without a policy (--policy, $MYRMEX_POLICY): the webhook admits everything")
			}
			srv, err := server.New(ctx, server.Config{Client: g.myrmex(), State: st, Logger: g.log, Runner: runner, MaxJobs: maxJobs, JobLease: lease,
				Admission: server.AdmissionConfig{Enabled: admission}, MetricsInterval: metricsInterval, MetricsForeign: metricsForeign})
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("%w: listening on %s: %v", containerization.ErrUnavailable, listen, err)
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
			fmt.Fprintf(g.errOut, "myrmex: serving the API on %s://%s (state %s)\n", map[bool]string{true: "https", false: "http"}[tls], ln.Addr(), state.Redact(statePath))
			done := make(chan error, 1)
			go func() {
				if tls {
					done <- hs.ServeTLS(ln, certFile, keyFile)
				} else {
					done <- hs.Serve(ln)
				}
			}()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx)
				g.stopped = true // a server's signal to stop is its normal end: exit 0
				return nil
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8765", "address to listen on (a non-loopback one needs TLS)")
	cmd.PersistentFlags().StringVar(&statePath, "state", defaultStatePath(), "the state: a SQLite file, or a PostgreSQL URL (postgres://…) shared by replicas")
	fl.StringVar(&runner, "runner", "", "this server's name among replicas (default: host, pid and a random part)")
	fl.IntVar(&maxJobs, "max-jobs", 4, "jobs this server runs at once; the others wait queued")
	fl.DurationVar(&lease, "job-lease", 15*time.Second, "how long after a replica stops answering its running jobs are taken over")
	fl.StringVar(&certFile, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&keyFile, "tls-key", "", "TLS private key (PEM)")
	fl.BoolVar(&admission, "admission", false, "serve the Kubernetes admission webhook, POST /v1/admission (no token; needs TLS): see serve webhook-config")
	fl.DurationVar(&metricsInterval, "metrics-interval", server.DefaultMetricsInterval, "how often /metrics samples the running containers (a negative one: never)")
	fl.BoolVar(&metricsForeign, "metrics-all", false, "/metrics samples every running container of the engine, not only Myrmex's")
	cmd.AddCommand(newTokenCmd(g, &statePath), newServeHealthCmd(g), newWebhookConfigCmd(g))
	return cmd
}

func newTokenCmd(g *globalOptions, statePath *string) *cobra.Command {
	open := func(cmd *cobra.Command) (*state.Store, error) { return state.Open(cmd.Context(), *statePath) }
	var scope string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create NAME --scope read|operate|admin [--expires 720h]",
		Short: "Make an API token; its value is printed once, and only its hash is kept",
		Args:  exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := state.ParseScope(scope)
			if err != nil {
				return err
			}
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			value, t, err := st.CreateToken(cmd.Context(), args[0], sc, ttl, time.Now())
			if err != nil {
				return err
			}
			if g.structured() {
				return g.encode(struct {
					*state.Token
					Value string `json:"value"`
				}{t, value})
			}
			fmt.Fprintln(g.out, value)
			fmt.Fprintf(g.errOut, "myrmex: token %s (%s) expires %s; it is not shown again\n", t.Name, t.Scope, t.Expires.Format(time.RFC3339))
			return nil
		},
	}
	create.Flags().StringVar(&scope, "scope", "read", "read, operate or admin")
	create.Flags().DurationVar(&ttl, "expires", 30*24*time.Hour, "how long it is valid (at most a year)")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the API tokens (names, scopes, expiry; never their values)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			list, err := st.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			return show(g, list, func(w io.Writer, list []state.Token) error {
				tw := newTable(w)
				fmt.Fprintln(tw, "NAME\tSCOPE\tEXPIRES\tLAST USED")
				for _, t := range list {
					last := "never"
					if !t.LastUsed.IsZero() {
						last = t.LastUsed.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Scope, t.Expires.Format(time.RFC3339), last)
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API token",
		Args:  exactArgs(1, "one NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s\trevoked\n", args[0])
			return nil
		},
	}
	return group("token", "Make, list and revoke the API's tokens", create, ls, revoke)
}
