package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization/server"
)

func newWebhookConfigCmd(g *globalOptions) *cobra.Command {
	var o server.WebhookOptions
	var certFile, caFile string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "webhook-config (--url https://HOST:PORT | --service NAMESPACE/NAME[:PORT]) --tls-cert FILE [--ca FILE]",
		Short: "Print the ValidatingWebhookConfiguration that registers the server as the cluster's admission webhook",
		Long: `Print the ValidatingWebhookConfiguration (YAML; JSON with -o json) that makes the Kubernetes API server send
the server (myrmex serve --admission, over TLS) every create and update of Pods, Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs, CronJobs and ReplicationControllers, to be held to the policy at the apply gate.
Its caBundle is --ca, the CA that signed the server's certificate (--tls-cert), else that certificate itself,
which the API server then trusts as it is (print the configuration again when it is renewed). The certificate
must be valid for the host the API server dials. Apply the output with kubectl apply -f -. See docs/server.md.`,
		Example: `  myrmex serve webhook-config --url https://10.0.0.5:8765 --tls-cert server.pem | kubectl apply -f -
  myrmex serve webhook-config --service myrmex/myrmex:8765 --tls-cert tls.crt --ca ca.crt --failure-policy Ignore`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if certFile == "" {
				return invalidf("--tls-cert is required: the server's certificate, whose CA the API server is to trust")
			}
			var err error
			if o.Certificate, err = readPEM(certFile); err != nil {
				return err
			}
			if caFile != "" {
				if o.CA, err = readPEM(caFile); err != nil {
					return err
				}
			}
			if timeout%time.Second != 0 {
				return invalidf("--timeout %s: whole seconds", timeout)
			}
			o.TimeoutSeconds = int32(min(timeout/time.Second, 1<<20))
			wc, err := server.WebhookConfiguration(o)
			if err != nil {
				return err
			}
			if g.output == outputJSON {
				return g.encode(wc)
			}
			saved := g.output
			g.output = outputYAML // a manifest: YAML unless JSON is asked for
			defer func() { g.output = saved }()
			return g.encode(wc)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.URL, "url", "", "where the API server reaches the server: https://HOST:PORT")
	fl.StringVar(&o.Service, "service", "", "the server's Service, when it runs in the cluster: NAMESPACE/NAME[:PORT] (port 443)")
	fl.StringVar(&certFile, "tls-cert", "", "the server's TLS certificate (PEM), as myrmex serve --tls-cert")
	fl.StringVar(&caFile, "ca", "", "the CA certificate that signed it (PEM); default: trust the certificate itself")
	fl.StringVar(&o.Name, "name", "myrmex-policy", "the configuration's name")
	fl.StringVar(&o.FailurePolicy, "failure-policy", "Fail", "when the server does not answer: Fail (deny) or Ignore (admit unchecked)")
	fl.DurationVar(&timeout, "timeout", 10*time.Second, "how long the API server waits for the server (1s to 30s; above the server's own 8s)")
	fl.StringToStringVar(&o.NamespaceLabels, "namespace-label", nil, "hold only the namespaces with these labels (KEY=VALUE, repeatable)")
	fl.StringSliceVar(&o.ExcludeNamespaces, "exclude-namespace", []string{"kube-system"}, "namespaces never held (the Service's own is added)")
	return cmd
}

// maxPEM bounds a certificate file.
const maxPEM = 1 << 20

func readPEM(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, invalidf("%v", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxPEM {
		return nil, invalidf("%s: not a certificate file (a regular file of at most %d bytes)", path, maxPEM)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, invalidf("%v", err)
	}
	return b, nil
}
