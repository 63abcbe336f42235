package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization/server"
)

// maxCertFile bounds the certificate file the health check reads: a chain is a few KiB.
const maxCertFile = 1 << 20

func newServeHealthCmd(g *globalOptions) *cobra.Command {
	var rawURL, certFile string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health [--url URL] [--tls-cert FILE]",
		Short: "Ask a server's health check; exit 0 when it answers ok (the HEALTHCHECK of the server's image)",
		Long: `Ask GET URL (a server's /v1/health, no token) and exit 0 when the server answers ok, else 5: the
HEALTHCHECK of the server's container image, which holds no other HTTP client (docs/deploy.md).

With --tls-cert (the server's own certificate file), the server must present exactly that certificate,
whatever names it holds: a server checks itself on 127.0.0.1 without a CA bundle. Without it, an https URL is
verified against the system's roots.`,
		Example: `  myrmex serve health
  myrmex serve health --url https://127.0.0.1:8443/v1/health --tls-cert /etc/myrmex/tls/tls.crt`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts server.ProbeOptions
			opts.Timeout = timeout
			if certFile != "" {
				b, err := readBounded(certFile, maxCertFile)
				if err != nil {
					return err
				}
				opts.Certificate = b
			}
			h, err := server.Probe(cmd.Context(), rawURL, opts)
			if err != nil {
				return err
			}
			return show(g, h, func(w io.Writer, h *server.Health) error {
				_, err := fmt.Fprintf(w, "%s\t%s\n", h.Status, h.Version)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&rawURL, "url", "http://127.0.0.1:8765/v1/health", "the server's health check")
	fl.StringVar(&certFile, "tls-cert", "", "the certificate (PEM) the server must present: its own --tls-cert")
	fl.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// readBounded reads a regular file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, invalidf("%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > max {
		return nil, invalidf("%s: want a regular file of at most %d bytes", path, max)
	}
	return io.ReadAll(io.LimitReader(f, max))
}
