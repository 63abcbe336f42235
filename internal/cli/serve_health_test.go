package cli_test

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// myrmex serve health: exit 0 and "ok VERSION" when the server answers ok (its certificate pinned with
// --tls-cert, or -o json); 5 when it answers otherwise or presents another certificate; 2 for bad input.
func TestServeHealth(t *testing.T) {
	status := "ok"
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health" || r.Header.Get("Authorization") != "" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": status, "version": "v9.9.9"})
	}))
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	hs.StartTLS()
	defer hs.Close()
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.crt")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.crt")
	// The pin compares the bytes of the certificate: any other bytes are another certificate.
	if err := os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not the server's")}), 0o600); err != nil {
		t.Fatal(err)
	}
	url := hs.URL + "/v1/health"

	if r := mustRun(t, "serve", "health", "--url", url, "--tls-cert", cert); r.stdout != "ok\tv9.9.9\n" {
		t.Errorf("serve health = %q, want ok and the version", r.stdout)
	}
	if r := mustRun(t, "-o", "json", "serve", "health", "--url", url, "--tls-cert", cert); !strings.Contains(r.stdout, `"status": "ok"`) {
		t.Errorf("serve health -o json = %q", r.stdout)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"another certificate", []string{"--url", url, "--tls-cert", other}, 5},
		{"no certificate given: the system's roots", []string{"--url", url}, 5},
		{"not a health check", []string{"--url", hs.URL + "/elsewhere", "--tls-cert", cert}, 5},
		{"no such certificate file", []string{"--url", url, "--tls-cert", filepath.Join(dir, "missing.crt")}, 2},
		{"a directory as the certificate", []string{"--url", url, "--tls-cert", dir}, 2},
		{"not an http URL", []string{"--url", "ftp://127.0.0.1/v1/health"}, 2},
		{"an argument", []string{"extra"}, 2},
	} {
		if r := myrmex(t, append([]string{"serve", "health"}, tc.args...)...); r.code != tc.code {
			t.Errorf("serve health (%s) = exit %d, want %d; stderr %s", tc.name, r.code, tc.code, r.stderr)
		}
	}
	status = "starting"
	if r := myrmex(t, "serve", "health", "--url", url, "--tls-cert", cert); r.code != 5 {
		t.Errorf("serve health of a server not ok = exit %d, want 5", r.code)
	}
}
