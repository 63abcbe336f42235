package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server"
	"github.com/codomyrmex/containerization/server/state"
)

// selfSigned is a self-signed server certificate for 127.0.0.1, ::1 and localhost, and its key, in PEM.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "myrmex test server"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: its own root
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "myrmex test server"}}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// tlsServer serves h over HTTPS on loopback, and returns its URL and the certificate it presents, in PEM.
func tlsServer(t *testing.T, h http.Handler) (string, []byte) {
	t.Helper()
	hs := httptest.NewUnstartedServer(h)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return hs.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
}

// Probe, the image's HEALTHCHECK: a real server's health check answers ok, over HTTPS with its certificate pinned
// (whatever names it holds) and over plain HTTP; another certificate is ErrTLS; a server that answers anything
// but ok, too much, or a redirect is ErrUnavailable; no server is ErrUnavailable; bad input is ErrInvalidArgument.
func TestProbe(t *testing.T) {
	ctx := context.Background()
	c, err := containerization.New(ctx, containerization.Config{Host: "unix:///nonexistent/docker.sock"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	st, err := state.OpenSQLite(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(ctx, server.Config{Client: c, State: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	api, apiCert := tlsServer(t, srv.Handler())
	plain := httptest.NewServer(srv.Handler())
	t.Cleanup(plain.Close)
	otherCert, _ := selfSigned(t)

	h, err := server.Probe(ctx, api+"/v1/health", server.ProbeOptions{Certificate: apiCert})
	if err != nil || h.Status != "ok" || h.Version != containerization.Version() {
		t.Fatalf("Probe(the server, its certificate) = %+v, %v", h, err)
	}
	// A chain file: the first certificate is the one the server must present; a key before it is skipped.
	_, key := selfSigned(t)
	chain := append(append(append([]byte{}, key...), apiCert...), otherCert...)
	if _, err := server.Probe(ctx, api+"/v1/health", server.ProbeOptions{Certificate: chain}); err != nil {
		t.Errorf("Probe(the server, a key and a chain whose first certificate is its own) = %v", err)
	}
	if _, err := server.Probe(ctx, plain.URL+"/v1/health", server.ProbeOptions{}); err != nil {
		t.Errorf("Probe(plain HTTP) = %v", err)
	}

	for _, tc := range []struct {
		name, url string
		opts      server.ProbeOptions
	}{
		{"another certificate pinned", api, server.ProbeOptions{Certificate: otherCert}},
		{"the system's roots", api, server.ProbeOptions{}}, // httptest's certificate is signed by none of them
	} {
		if _, err := server.Probe(ctx, tc.url+"/v1/health", tc.opts); !errors.Is(err, errdefs.ErrTLS) {
			t.Errorf("Probe(%s) = %v, want ErrTLS", tc.name, err)
		}
	}

	answers := map[string]http.HandlerFunc{
		"/down": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"status": "ok"}`, http.StatusServiceUnavailable)
		},
		"/notok": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"status": "starting"}`)) },
		"/big": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"status": "ok", "version": "` + strings.Repeat("x", 70<<10) + `"}`))
		},
		"/moved": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/v1/health", http.StatusFound) },
	}
	mux := http.NewServeMux()
	for p, h := range answers {
		mux.Handle(p, h)
	}
	mux.Handle("/v1/health", srv.Handler())
	odd := httptest.NewServer(mux)
	t.Cleanup(odd.Close)
	for p := range answers {
		if _, err := server.Probe(ctx, odd.URL+p, server.ProbeOptions{}); !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("Probe(%s) = %v, want ErrUnavailable", p, err)
		}
	}
	if _, err := server.Probe(ctx, odd.URL+"/v1/health", server.ProbeOptions{}); err != nil {
		t.Errorf("Probe(the same server's health check) = %v", err)
	}

	// Nothing listens: unavailable, within the timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/v1/health"
	ln.Close()
	if _, err := server.Probe(ctx, closed, server.ProbeOptions{Timeout: 2 * time.Second}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Probe(nothing listening) = %v, want ErrUnavailable", err)
	}

	for _, tc := range []struct {
		url  string
		cert []byte
	}{
		{"ftp://127.0.0.1/v1/health", nil},
		{"127.0.0.1:8443/v1/health", nil},
		{"https:///v1/health", nil},
		{api + "/v1/health", []byte("not a certificate")},
		{api + "/v1/health", key},
	} {
		if _, err := server.Probe(ctx, tc.url, server.ProbeOptions{Certificate: tc.cert}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Probe(%q, %.20q) = %v, want ErrInvalidArgument", tc.url, tc.cert, err)
		}
	}
}
