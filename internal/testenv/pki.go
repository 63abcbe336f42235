package testenv

import "testing"

// ServerPKI is the tests' CA and a server certificate it signed for 127.0.0.1, ::1 and localhost, with its key
// (PEM, the key PKCS#8): the certificate the test registries serve, made once per test binary with crypto/x509.
func ServerPKI(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	p, err := testPKI()
	if err != nil {
		t.Fatalf("making the test CA: %v", err)
	}
	return p.caPEM, p.certPEM, p.keyPEM
}
