package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/crypto/bcrypt"
)

// DistributionBinary is the CNCF distribution server from Debian's docker-registry package, which
// `scripts/engine.sh up` installs.
const DistributionBinary = "/usr/bin/docker-registry"

// DistributionUser is the user name of a [Distribution] registry that requires authentication.
const DistributionUser = "myrmex"

// Registry is a registry running for one test.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Scheme is "http" or "https".
	Scheme string
	// RootCAs holds the CA that signed the registry's certificate; nil for a plain-HTTP registry.
	RootCAs *x509.CertPool
	// CAFile is the PEM file of that CA, for clients configured by file; empty for a plain-HTTP registry.
	CAFile string
	// Username and Password are the basic-auth credentials; both empty when the registry needs none.
	Username string
	Password string

	transport *http.Transport
	faults    *faultCounters // set by FaultProxy only
	proc      *distributionProc
}

// Transport returns a transport that trusts the registry's CA. The registry closes its idle connections when
// the test ends.
func (r *Registry) Transport() http.RoundTripper {
	if r.transport == nil { // a Registry this package did not make
		return newTransport(r.RootCAs)
	}
	return r.transport
}

// Ref returns the reference of repoAndTag ("repo:tag" or "repo@sha256:…") in the registry.
func (r *Registry) Ref(repoAndTag string) string { return r.Host + "/" + repoAndTag }

// URL returns the base URL of the registry, "SCHEME://HOST".
func (r *Registry) URL() string { return r.Scheme + "://" + r.Host }

func newTransport(roots *x509.CertPool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// InProcess starts go-containerregistry's in-memory registry on 127.0.0.1: plain HTTP, no authentication, and
// manifest deletion allowed. It stops when the test ends; its request log is shown if the test failed.
func InProcess(t testing.TB) *Registry {
	t.Helper()
	var logBuf bytes.Buffer // written under the log.Logger's lock, read after Close has waited for the handlers
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(&logBuf, "", log.Ltime))))
	r := &Registry{Host: srv.Listener.Addr().String(), Scheme: "http", transport: newTransport(nil)}
	t.Cleanup(func() {
		srv.Close()
		r.transport.CloseIdleConnections()
		if t.Failed() {
			t.Logf("in-process registry %s, last requests:\n%s", r.Host, tail(logBuf.Bytes(), 30))
		}
	})
	return r
}

// DistributionOptions configures [Distribution]. The zero value is a registry with TLS and basic authentication.
type DistributionOptions struct {
	// PlainHTTP serves plain HTTP instead of TLS.
	PlainHTTP bool
	// NoAuth lets anyone push and pull.
	NoAuth bool
	// Password is the password of [DistributionUser]; empty means a random one.
	Password string
	// NoDelete leaves deletion disabled, distribution's default: it answers a DELETE with 405 UNSUPPORTED.
	NoDelete bool
}

// Distribution starts the CNCF distribution registry ([DistributionBinary]) on 127.0.0.1 with filesystem storage
// in a temporary directory and deletion enabled. By default it serves TLS with a certificate signed by a test CA
// and requires basic authentication as [DistributionUser]; see [DistributionOptions].
//
// It skips the test when the binary is missing, or fails it when the components are [Required]. The server is
// stopped when the test ends, and the end of its log is shown if the test failed.
func Distribution(t testing.TB, opts DistributionOptions) *Registry {
	t.Helper()
	if _, err := os.Stat(DistributionBinary); err != nil {
		if Required() {
			t.Fatalf("the tests need the distribution registry (apt-get install docker-registry): %v", err)
		}
		t.Skipf("no distribution registry (run `scripts/engine.sh up`, which installs it): %v", err)
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	r := &Registry{Host: net.JoinHostPort("127.0.0.1", port), Scheme: "http"}

	httpConf := map[string]any{"addr": r.Host, "secret": randomHex(16)}
	if !opts.PlainHTTP {
		pki, err := testPKI()
		if err != nil {
			t.Fatalf("making a test CA: %v", err)
		}
		r.Scheme, r.RootCAs, r.CAFile = "https", pki.roots, filepath.Join(dir, "ca.pem")
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		writeFile(t, r.CAFile, pki.caPEM)
		writeFile(t, certFile, pki.certPEM)
		writeFile(t, keyFile, pki.keyPEM)
		httpConf["tls"] = map[string]any{"certificate": certFile, "key": keyFile}
	}
	conf := map[string]any{
		"version": "0.1",
		"log":     map[string]any{"level": "warn", "formatter": "text"},
		"storage": map[string]any{
			"filesystem":  map[string]any{"rootdirectory": filepath.Join(dir, "data")},
			"delete":      map[string]any{"enabled": !opts.NoDelete},
			"maintenance": map[string]any{"uploadpurging": map[string]any{"enabled": false}},
		},
		"http": httpConf,
	}
	if !opts.NoAuth {
		r.Username, r.Password = DistributionUser, opts.Password
		if r.Password == "" {
			r.Password = randomHex(12)
		}
		// The registry checks the hash on every request: the minimum cost keeps a push from spending seconds on it.
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("hashing the registry password: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		writeFile(t, htpasswd, fmt.Appendf(nil, "%s:%s\n", r.Username, hash))
		conf["auth"] = map[string]any{"htpasswd": map[string]any{"realm": "myrmex-test", "path": htpasswd}}
	}
	// JSON is YAML, and the standard library writes it.
	confJSON, err := json.Marshal(conf)
	if err != nil {
		t.Fatalf("encoding the registry configuration: %v", err)
	}
	r.transport = newTransport(r.RootCAs)
	confFile := filepath.Join(dir, "config.yml")
	writeFile(t, confFile, confJSON)

	r.proc = &distributionProc{t: t, conf: confFile, logFile: filepath.Join(dir, "registry.log"), r: r, opts: opts}
	t.Cleanup(func() {
		r.transport.CloseIdleConnections()
		r.proc.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("distribution registry %s, end of %s:\n%s", r.Host, r.proc.logFile, r.proc.logTail())
		}
	})
	r.proc.start()
	return r
}

// distributionProc is the process of a [Distribution] registry, which a test may kill and start again.
type distributionProc struct {
	t             testing.TB
	conf, logFile string
	r             *Registry
	opts          DistributionOptions

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func (p *distributionProc) logTail() string {
	b, _ := os.ReadFile(p.logFile)
	return tail(b, 30)
}

// start starts the registry (appending to its log) and waits until it answers on its port.
func (p *distributionProc) start() {
	t := p.t
	t.Helper()
	logOut, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("creating the registry log: %v", err)
	}
	cmd := exec.Command(DistributionBinary, "serve", p.conf)
	cmd.Stdout, cmd.Stderr = logOut, logOut
	cmd.Env = registryEnv()
	if err := cmd.Start(); err != nil {
		logOut.Close()
		t.Fatalf("starting %s: %v", DistributionBinary, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logOut.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()

	r := p.r
	want := http.StatusOK
	if !p.opts.NoAuth {
		want = http.StatusUnauthorized
	}
	client := &http.Client{Transport: r.Transport(), Timeout: time.Second}
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			p.mu.Lock()
			werr := p.waitErr
			p.mu.Unlock()
			t.Fatalf("distribution registry exited before answering (%v), end of its log:\n%s", werr, p.logTail())
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == want {
			return
		}
		last = resp.Status
	}
	t.Fatalf("GET %s/v2/ did not answer %d within 10s (last: %s), end of the registry log:\n%s", r.URL(), want, last, p.logTail())
}

// stop signals the process (only the one this test started, by its pid) and waits for it; a process that does
// not stop within 5s of SIGTERM is killed.
func (p *distributionProc) stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Kill kills a [Distribution] registry at once (SIGKILL), as a crash would, in the middle of whatever it does.
func (r *Registry) Kill() {
	if r.proc == nil {
		panic("testenv: Kill of a registry that is not a Distribution one")
	}
	r.proc.stop(syscall.SIGKILL)
	r.transport.CloseIdleConnections()
}

// Restart starts a killed [Distribution] registry again, on the same port with the same storage, and waits
// until it answers.
func (r *Registry) Restart() {
	if r.proc == nil {
		panic("testenv: Restart of a registry that is not a Distribution one")
	}
	r.proc.t.Helper()
	r.proc.start()
}

// registryEnv is the environment without REGISTRY_* variables, which would override the configuration file.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pki is a CA and a server certificate for 127.0.0.1 and localhost that it signed.
type pki struct {
	roots                  *x509.CertPool
	caPEM, certPEM, keyPEM []byte
}

// testPKI makes the CA and certificate once per test binary: generating keys is the slow part.
var testPKI = sync.OnceValues(func() (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "myrmex test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	p := &pki{
		roots:   x509.NewCertPool(),
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	p.roots.AddCert(ca)
	return p, nil
})

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
