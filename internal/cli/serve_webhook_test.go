package cli_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/server"
)

// selfSigned writes a self-signed server certificate for hosts (IP addresses or DNS names) to dir.
func selfSigned(t *testing.T, dir, file string, hosts ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// serve webhook-config prints the ValidatingWebhookConfiguration of server.WebhookConfiguration (YAML, or JSON
// with -o json), its caBundle the CA the API server is to trust; a certificate the API server would refuse, or
// options it would, exit 2 before anything is printed. serve --admission without TLS is refused too.
func TestServeWebhookConfig(t *testing.T) {
	dir := t.TempDir()
	self := selfSigned(t, dir, "self.pem", "127.0.0.1")
	svc := selfSigned(t, dir, "svc.pem", "myrmex.tools.svc")
	caPEM, certPEM, _ := testenv.ServerPKI(t)
	caFile, certFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	selfPEM, _ := os.ReadFile(self)

	r := mustRun(t, "serve", "webhook-config", "--url", "https://127.0.0.1:8765", "--tls-cert", self)
	var got admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict([]byte(r.stdout), &got); err != nil {
		t.Fatalf("the output is not a ValidatingWebhookConfiguration: %v\n%s", err, r.stdout)
	}
	want, err := server.WebhookConfiguration(server.WebhookOptions{URL: "https://127.0.0.1:8765", Certificate: selfPEM})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(&got)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("serve webhook-config printed\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	h := got.Webhooks[0]
	if got.Kind != "ValidatingWebhookConfiguration" || got.Name != "myrmex-policy" || len(got.Webhooks) != 1 ||
		*h.ClientConfig.URL != "https://127.0.0.1:8765/v1/admission" || !bytes.Equal(h.ClientConfig.CABundle, selfPEM) ||
		*h.FailurePolicy != admissionregistrationv1.Fail || *h.TimeoutSeconds != 10 || *h.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		len(h.Rules) != 3 || !strings.Contains(r.stdout, "- deployments") || !strings.Contains(r.stdout, "- cronjobs") ||
		h.NamespaceSelector.MatchExpressions[0].Values[0] != "kube-system" {
		t.Errorf("the configuration:\n%s", r.stdout)
	}

	// In the cluster, behind a Service, with a certificate signed by a CA: the CA is the bundle, and the Service's
	// namespace is never held (the server could not start again while it is down).
	r = mustRun(t, "serve", "webhook-config", "--service", "tools/myrmex:8765", "--tls-cert", svc, "--failure-policy", "Ignore",
		"--timeout", "15s", "--namespace-label", "team=ants", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	h = got.Webhooks[0]
	if s := h.ClientConfig.Service; s == nil || s.Namespace != "tools" || s.Name != "myrmex" || *s.Port != 8765 || *s.Path != "/v1/admission" ||
		*h.FailurePolicy != admissionregistrationv1.Ignore || *h.TimeoutSeconds != 15 || h.NamespaceSelector.MatchLabels["team"] != "ants" ||
		strings.Join(h.NamespaceSelector.MatchExpressions[0].Values, ",") != "kube-system,tools" {
		t.Errorf("the configuration of a Service:\n%s", r.stdout)
	}
	r = mustRun(t, "serve", "webhook-config", "--url", "https://127.0.0.1:8765", "--tls-cert", certFile, "--ca", caFile, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, caPEM) {
		t.Errorf("with --ca, the bundle is not the CA: %v\n%s", err, r.stdout)
	}

	for _, bad := range [][]string{
		{"--url", "https://10.9.9.9:8765", "--tls-cert", self},                    // not the certificate's host
		{"--url", "https://127.0.0.1:8765", "--tls-cert", certFile, "--ca", self}, // not the CA that signed it
		{"--url", "https://127.0.0.1:8765", "--tls-cert", caFile + "x"},           // no such file
		{"--url", "http://127.0.0.1:8765", "--tls-cert", self},                    // the API server calls HTTPS only
		{"--url", "https://127.0.0.1:8765/elsewhere", "--tls-cert", self},
		{"--url", "https://127.0.0.1:8765", "--service", "tools/myrmex", "--tls-cert", self},
		{"--service", "tools", "--tls-cert", svc},
		{"--service", "tools/myrmex:99999", "--tls-cert", svc},
		{"--url", "https://127.0.0.1:8765"},
		{"--url", "https://127.0.0.1:8765", "--tls-cert", self, "--failure-policy", "Maybe"},
		{"--url", "https://127.0.0.1:8765", "--tls-cert", self, "--timeout", "45s"},
		{"--url", "https://127.0.0.1:8765", "--tls-cert", self, "--timeout", "1500ms"},
		{"--url", "https://127.0.0.1:8765", "--tls-cert", self, "--name", "Not_A_Name"},
	} {
		if r := myrmex(t, append([]string{"serve", "webhook-config"}, bad...)...); r.code != 2 || r.stdout != "" {
			t.Errorf("serve webhook-config %q = exit %d, stdout %q, stderr %q; want exit 2 and nothing printed", bad, r.code, r.stdout, r.stderr)
		}
	}
	if r := myrmex(t, "serve", "--admission", "--listen", "127.0.0.1:0", "--state", filepath.Join(dir, "state.db")); r.code != 2 || !strings.Contains(r.stderr, "--admission needs TLS") {
		t.Errorf("serve --admission without TLS = exit %d: %s", r.code, r.stderr)
	}
}
