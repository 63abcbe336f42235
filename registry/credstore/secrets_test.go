package credstore_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry/credstore"
)

// Secrets round-trip through their own file, sealed with the credentials' key, never in clear; names and values
// are checked; the credentials are untouched.
func TestSecrets(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	s := open(t, credstore.Options{Dir: dir})
	put(t, s, "registry.example.com", credstore.Credentials{Username: "u", Password: "p"})
	if err := s.PutSecret("db-password", canary); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSecret("api.token", "second"); err != nil {
		t.Fatal(err)
	}
	v, ok, err := open(t, credstore.Options{Dir: dir}).Secret("db-password")
	if err != nil || !ok || v != canary {
		t.Errorf("Secret = %q, %v, %v", v, ok, err)
	}
	if names, err := s.SecretNames(); err != nil || !slices.Equal(names, []string{"api.token", "db-password"}) {
		t.Errorf("SecretNames = %q, %v", names, err)
	}
	if regs, err := s.Registries(); err != nil || !slices.Equal(regs, []string{"registry.example.com"}) {
		t.Errorf("Registries = %q, %v (secrets must not show as registries)", regs, err)
	}
	blob, err := os.ReadFile(s.SecretsPath())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte(canary)) || bytes.Contains(blob, []byte("db-password")) || !bytes.HasPrefix(blob, []byte("MYRMEXCS\x01")) {
		t.Errorf("%s is not sealed", s.SecretsPath())
	}
	if fi, _ := os.Stat(s.SecretsPath()); fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s has mode %v", s.SecretsPath(), fi.Mode())
	}
	// Another key cannot read them.
	other := open(t, credstore.Options{Dir: dir, Key: newKey(t)})
	if _, _, err := other.Secret("db-password"); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("Secret with another key = %v, want ErrUnauthorized", err)
	}
	if found, err := s.DeleteSecret("db-password"); err != nil || !found {
		t.Errorf("DeleteSecret = %v, %v", found, err)
	}
	if _, ok, _ := s.Secret("db-password"); ok {
		t.Error("the deleted secret is still there")
	}
	for _, c := range []struct{ name, value string }{
		{"", "x"}, {"-flag", "x"}, {"a b", "x"}, {strings.Repeat("n", 129), "x"}, {"ok", ""}, {"ok", "a\x00b"},
		{"ok", "\xff"}, {"ok", strings.Repeat("v", credstore.MaxSecretSize+1)},
	} {
		if err := s.PutSecret(c.name, c.value); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("PutSecret(%.20q, %.20q) = %v, want ErrInvalidArgument", c.name, c.value, err)
		}
	}
}
