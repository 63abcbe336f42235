package credstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/codomyrmex/containerization/errdefs"
)

// fuzzKey returns a fixed key whose bytes start at first, so that every fuzz worker process has the same keys.
func fuzzKey(first byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = first + byte(i)
	}
	return k
}

var (
	fuzzKeyA = fuzzKey(1)   // the key the authentic seeds are sealed with
	fuzzKeyB = fuzzKey(101) // a key that sealed nothing
)

// fuzzSealWithNonce is seal with a chosen nonce, so that the seeds are the same in every worker process.
func fuzzSealWithNonce(t testing.TB, key []byte, m map[string]entry, nonce []byte) []byte {
	t.Helper()
	plain, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	blob := append(slices.Clone(header), nonce...)
	return gcm.Seal(blob, nonce, plain, header)
}

// fuzzAuthenticBlobs are files sealed with fuzzKeyA: the only inputs that may open under it.
func fuzzAuthenticBlobs(t testing.TB) [][]byte {
	maps := []map[string]entry{
		{},
		{"index.docker.io": {Username: "alice", Password: "s3cret"}},
		{"ghcr.io": {Username: "bot", Token: "ghp_token"}, "127.0.0.1:5000": {Username: "u", Password: "p"}},
		{"myreg.azurecr.io": {Username: "00000000-0000-0000-0000-000000000000", Token: "eyJhbGciOi..."}},
	}
	var out [][]byte
	for i, m := range maps {
		nonce := bytes.Repeat([]byte{byte(i + 1)}, nonceSize)
		out = append(out, fuzzSealWithNonce(t, fuzzKeyA, m, nonce))
	}
	return out
}

// fuzzIsRefusal reports whether err is one of the typed errors unseal refuses a file with.
func fuzzIsRefusal(err error) bool {
	return errors.Is(err, errdefs.ErrUnauthorized) || errors.Is(err, errdefs.ErrNotImplemented)
}

// fuzzAddSealedFiles seeds f with the authentic files and damaged copies of them, and other odd files.
func fuzzAddSealedFiles(f *testing.F, authentic [][]byte) {
	for _, b := range authentic {
		f.Add(b)
		f.Add(b[:len(b)-1])                             // truncated tag
		f.Add(append(slices.Clone(b), 0))               // trailing byte
		f.Add(append([]byte("MYRMEXCS\x02"), b[9:]...)) // another version
		flipped := slices.Clone(b)
		flipped[len(flipped)/2] ^= 0x80
		f.Add(flipped)
	}
	f.Add([]byte{})
	f.Add([]byte("MYRMEXCS"))
	f.Add([]byte("MYRMEXCS\x01"))
	f.Add(append([]byte("MYRMEXCS\x01"), make([]byte, nonceSize+16)...))
	f.Add([]byte(`{"index.docker.io":{"username":"a","password":"b"}}`))
	f.Add([]byte("myrmexcs\x01 not the magic"))
}

// FuzzUnseal opens arbitrary bytes as a sealed file. Under a key that sealed nothing they never open: unseal
// refuses them with an error wrapping errdefs.ErrUnauthorized (or ErrNotImplemented for another format version)
// and yields no credentials. Under the key that sealed the seeds, only a file byte-for-byte equal to one it
// sealed opens.
func FuzzUnseal(f *testing.F) {
	authentic := fuzzAuthenticBlobs(f)
	fuzzAddSealedFiles(f, authentic)
	f.Fuzz(func(t *testing.T, blob []byte) {
		m, err := unseal(fuzzKeyB, blob, "fuzz")
		if err == nil || m != nil {
			t.Fatalf("unseal under a key that sealed nothing = %v, %v", m, err)
		}
		if !fuzzIsRefusal(err) {
			t.Fatalf("unseal error %v wraps neither ErrUnauthorized nor ErrNotImplemented", err)
		}

		m, err = unseal(fuzzKeyA, blob, "fuzz")
		isAuthentic := slices.ContainsFunc(authentic, func(a []byte) bool { return bytes.Equal(a, blob) })
		switch {
		case err != nil && !fuzzIsRefusal(err):
			t.Fatalf("unseal error %v wraps neither ErrUnauthorized nor ErrNotImplemented", err)
		case err != nil && isAuthentic:
			t.Fatalf("an authentic file does not open: %v", err)
		case err == nil && !isAuthentic:
			t.Fatalf("a file the key never sealed opens to %v", m)
		case err == nil && m == nil:
			t.Fatal("unseal returned a nil map without an error")
		}
	})
}

// FuzzStoreOpen writes arbitrary bytes as the store's file, credentials.json.enc, and reads it through the
// public Store under a key that sealed nothing: Get and Registries refuse it with an error wrapping
// errdefs.ErrUnauthorized (or ErrNotImplemented for another format version), and yield no credentials.
func FuzzStoreOpen(f *testing.F) {
	fuzzAddSealedFiles(f, fuzzAuthenticBlobs(f))
	f.Fuzz(func(t *testing.T, blob []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), blob, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Options{Dir: dir, Key: fuzzKeyB})
		if err != nil {
			t.Fatal(err)
		}
		if c, ok, err := s.Get("index.docker.io"); err == nil || ok || c != (Credentials{}) {
			t.Fatalf("Get from a file sealed with another key = %v, %v, %v", c, ok, err)
		} else if !fuzzIsRefusal(err) {
			t.Fatalf("Get error %v wraps neither ErrUnauthorized nor ErrNotImplemented", err)
		}
		if regs, err := s.Registries(); err == nil || regs != nil {
			t.Fatalf("Registries from a file sealed with another key = %v, %v", regs, err)
		} else if !fuzzIsRefusal(err) {
			t.Fatalf("Registries error %v wraps neither ErrUnauthorized nor ErrNotImplemented", err)
		}
	})
}

// fuzzCredentials are (registry, username, password, token) values: real ones and awkward ones.
var fuzzCredentials = [][4]string{
	{"index.docker.io", "alice", "s3cret", ""},
	{"https://index.docker.io/v1/", "alice", "", "identity-token"},
	{"Registry.Example.COM:5000/path", "user@example.com", "p@ss:w0rd/with\"quotes\\", ""},
	{"127.0.0.1:5000", "", "pw", "tok"},
	{"[::1]:5000", "ü n i c ö d e", "密码🔑", ""},
	{"ghcr.io", "bot", strings.Repeat("x", 4096), ""},
	{"myreg.azurecr.io", "00000000-0000-0000-0000-000000000000", "", "eyJhbGciOiJSUzI1NiJ9.e30.sig"},
	{"host", "tab\tnew\nline", "nul\x00byte", "\u2028\u2029"},
	{"", "a", "b", ""},
	{"http://", "a", "b", ""},
	{"bad host", "a", "b", ""},
	{"registry-1.docker.io", "a", "<html>&amp;</html>", ""},
}

// FuzzSealRoundTrip checks that seal then unseal returns exactly the credentials sealed, for arbitrary
// registry names, usernames, passwords and tokens, that the sealed file shows no secret in clear, and that
// NormalizeRegistry (the store's key for a registry) is idempotent and lowercase, refusing with
// errdefs.ErrInvalidArgument.
func FuzzSealRoundTrip(f *testing.F) {
	for _, s := range fuzzCredentials {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, registry, username, password, token string) {
		key := registry
		if reg, err := NormalizeRegistry(registry); err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("NormalizeRegistry(%q) error %v does not wrap ErrInvalidArgument", registry, err)
			}
		} else {
			again, err := NormalizeRegistry(reg)
			if err != nil || again != reg {
				t.Fatalf("NormalizeRegistry(%q) = %q, but NormalizeRegistry(%q) = %q, %v", registry, reg, reg, again, err)
			}
			if reg != strings.ToLower(reg) {
				t.Fatalf("NormalizeRegistry(%q) = %q is not lowercase", registry, reg)
			}
			key = reg
		}

		m := map[string]entry{key: {Username: username, Password: password, Token: token}}
		blob, err := seal(fuzzKeyA, m)
		valid := utf8.ValidString(key) && utf8.ValidString(username) && utf8.ValidString(password) && utf8.ValidString(token)
		if !valid {
			// JSON cannot carry them unchanged: refused, never stored altered.
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("seal of credentials that are not UTF-8 = %v, want ErrInvalidArgument", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("seal: %v", err)
		}
		for _, secret := range []string{password, token} {
			if len(secret) >= 16 && bytes.Contains(blob, []byte(secret)) {
				t.Fatalf("the sealed file holds the secret %q in clear", secret)
			}
		}
		got, err := unseal(fuzzKeyA, blob, "fuzz")
		if err != nil {
			t.Fatalf("unseal of a fresh seal: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("seal/unseal round trip changed the credentials:\nsealed %q\nopened %q", m, got)
		}
	})
}
