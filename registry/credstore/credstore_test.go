package credstore_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry/credstore"
)

const canary = "canary-s3cret-pw"

// isolate keeps the caller's environment out of the test: no key or directory from the environment.
func isolate(t *testing.T) {
	t.Helper()
	t.Setenv(credstore.EnvKey, "")
	t.Setenv(credstore.EnvConfigDir, "")
}

func open(t *testing.T, opts credstore.Options) *credstore.Store {
	t.Helper()
	s, err := credstore.Open(opts)
	if err != nil {
		t.Fatalf("Open(%q) error = %v", opts.Dir, err)
	}
	return s
}

func put(t *testing.T, s *credstore.Store, registry string, c credstore.Credentials) {
	t.Helper()
	if err := s.Put(registry, c); err != nil {
		t.Fatalf("Put(%q) error = %v", registry, err)
	}
}

func newKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, credstore.KeySize)
	rand.Read(key)
	return key
}

func TestRoundTrip(t *testing.T) {
	isolate(t)
	s := open(t, credstore.Options{Dir: t.TempDir()})
	want := credstore.Credentials{Username: "alice", Password: canary}
	put(t, s, "registry.example.com:5000", want)
	put(t, s, "ghcr.io", credstore.Credentials{Token: "tok"})

	got, ok, err := s.Get("registry.example.com:5000")
	if err != nil || !ok || got != want {
		t.Errorf("Get(%q) = %#v, %v, %v, want %#v, true, nil", "registry.example.com:5000", got, ok, err, want)
	}
	// The comparison above masks the secrets when it fails; compare them apart.
	if got.Password != want.Password {
		t.Errorf("Get(%q).Password differs from what Put stored", "registry.example.com:5000")
	}
	regs, err := s.Registries()
	if wantRegs := []string{"ghcr.io", "registry.example.com:5000"}; err != nil || !slices.Equal(regs, wantRegs) {
		t.Errorf("Registries() = %v, %v, want %v, nil", regs, err, wantRegs)
	}
	if found, err := s.Delete("ghcr.io"); err != nil || !found {
		t.Errorf("Delete(%q) = %v, %v, want true, nil", "ghcr.io", found, err)
	}
	if _, ok, err := s.Get("ghcr.io"); err != nil || ok {
		t.Errorf("Get(%q) after Delete found = %v, err = %v, want false, nil", "ghcr.io", ok, err)
	}
}

func TestFileHoldsNoClearText(t *testing.T) {
	isolate(t)
	s := open(t, credstore.Options{Dir: t.TempDir()})
	put(t, s, "registry.example.com", credstore.Credentials{Username: "alice-the-user", Password: canary,
		Token: "canary-identity-token"})
	blob, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{canary, "alice-the-user", "canary-identity-token", "registry.example.com"} {
		if bytes.Contains(blob, []byte(clear)) {
			t.Errorf("%s contains %q in clear", s.Path(), clear)
		}
	}
	if !bytes.HasPrefix(blob, []byte("MYRMEXCS\x01")) {
		t.Errorf("%s starts %q, want the MYRMEXCS version 1 header", s.Path(), blob[:min(len(blob), 9)])
	}
}

func TestReopen(t *testing.T) {
	isolate(t)
	t.Run("key file", func(t *testing.T) {
		dir := t.TempDir()
		put(t, open(t, credstore.Options{Dir: dir}), "r.example", credstore.Credentials{Username: "u", Password: canary})
		got, ok, err := open(t, credstore.Options{Dir: dir}).Get("r.example")
		if err != nil || !ok || got.Password != canary {
			t.Errorf("reopened Get(%q) = %v, %v, %v, want the stored credentials", "r.example", got, ok, err)
		}
	})
	t.Run("given key", func(t *testing.T) {
		dir, key := t.TempDir(), newKey(t)
		put(t, open(t, credstore.Options{Dir: dir, Key: key}), "r.example",
			credstore.Credentials{Username: "u", Password: canary})
		if _, err := os.Stat(filepath.Join(dir, credstore.KeyFileName)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(key file) error = %v, want ErrNotExist: a given key needs no key file", err)
		}
		got, ok, err := open(t, credstore.Options{Dir: dir, Key: key}).Get("r.example")
		if err != nil || !ok || got.Password != canary {
			t.Errorf("reopened Get(%q) = %v, %v, %v, want the stored credentials", "r.example", got, ok, err)
		}
	})
}

func TestWrongKey(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	s := open(t, credstore.Options{Dir: dir, Key: newKey(t)})
	put(t, s, "r.example", credstore.Credentials{Username: "u", Password: canary})
	before, _ := os.ReadFile(s.Path())

	other := open(t, credstore.Options{Dir: dir, Key: newKey(t)})
	if _, _, err := other.Get("r.example"); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("Get(%q) with another key error = %v, want ErrUnauthorized", "r.example", err)
	} else if !strings.Contains(err.Error(), "wrong key or damaged file") {
		t.Errorf("Get(%q) with another key error = %q, want it to say %q", "r.example", err,
			"wrong key or damaged file")
	}
	if regs, err := other.Registries(); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("Registries() with another key = %v, %v, want ErrUnauthorized", regs, err)
	}
	// A write with the wrong key must not replace what it could not read.
	if err := other.Put("s.example", credstore.Credentials{Password: "x"}); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("Put(%q) with another key error = %v, want ErrUnauthorized", "s.example", err)
	}
	if after, _ := os.ReadFile(s.Path()); !bytes.Equal(before, after) {
		t.Errorf("Put with another key changed %s", s.Path())
	}
}

func TestTamperedFile(t *testing.T) {
	isolate(t)
	s := open(t, credstore.Options{Dir: t.TempDir()})
	put(t, s, "r.example", credstore.Credentials{Username: "u", Password: canary})
	orig, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what string
		at   int
	}{
		{"magic", 0},
		{"nonce", 9},
		{"ciphertext", 9 + 12},
		{"tag", len(orig) - 1},
	} {
		t.Run(tt.what, func(t *testing.T) {
			blob := slices.Clone(orig)
			blob[tt.at] ^= 0x01
			if err := os.WriteFile(s.Path(), blob, 0o600); err != nil {
				t.Fatal(err)
			}
			if c, ok, err := s.Get("r.example"); !errors.Is(err, errdefs.ErrUnauthorized) {
				t.Errorf("Get(%q) with byte %d flipped = %v, %v, %v, want ErrUnauthorized", "r.example", tt.at,
					c, ok, err)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		if err := os.WriteFile(s.Path(), orig[:20], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get("r.example"); !errors.Is(err, errdefs.ErrUnauthorized) {
			t.Errorf("Get(%q) of a truncated file error = %v, want ErrUnauthorized", "r.example", err)
		}
	})
}

func TestMissingKeyFile(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	s := open(t, credstore.Options{Dir: dir})
	put(t, s, "r.example", credstore.Credentials{Username: "u", Password: canary})
	if err := os.Remove(filepath.Join(dir, credstore.KeyFileName)); err != nil {
		t.Fatal(err)
	}
	s = open(t, credstore.Options{Dir: dir})
	if _, _, err := s.Get("r.example"); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("Get(%q) without its key file error = %v, want ErrUnauthorized", "r.example", err)
	}
	if err := s.Put("s.example", credstore.Credentials{Password: "x"}); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("Put(%q) without its key file error = %v, want ErrUnauthorized", "s.example", err)
	}
	if _, err := os.Stat(filepath.Join(dir, credstore.KeyFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Put without its key file made a new key file (Stat error = %v)", err)
	}
}

func TestKeyFileModes(t *testing.T) {
	isolate(t)
	dir := filepath.Join(t.TempDir(), "myrmex")
	s := open(t, credstore.Options{Dir: dir})
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open made %s (Stat error = %v); only a write should", dir, err)
	}
	put(t, s, "r.example", credstore.Credentials{Username: "u", Password: canary})
	for path, want := range map[string]fs.FileMode{
		dir: fs.ModeDir | 0o700,
		filepath.Join(dir, credstore.KeyFileName): 0o600,
		s.Path(): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("Stat(%q).Mode() = %v, want %v", path, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestKeyFileReadableByOthersIsRefused(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	put(t, open(t, credstore.Options{Dir: dir}), "r.example", credstore.Credentials{Username: "u", Password: canary})
	keyFile := filepath.Join(dir, credstore.KeyFileName)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := credstore.Open(credstore.Options{Dir: dir})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Open(%q) with a 0644 key file error = %v, want ErrConflict", dir, err)
	}
	if hint := "chmod 600 " + keyFile; !strings.Contains(err.Error(), hint) {
		t.Errorf("Open(%q) error = %q, want it to say how to fix it: %q", dir, err, hint)
	}
}

func TestEnvKey(t *testing.T) {
	isolate(t)
	key := newKey(t)
	t.Run("valid", func(t *testing.T) {
		t.Setenv(credstore.EnvKey, base64.StdEncoding.EncodeToString(key))
		dir := t.TempDir()
		put(t, open(t, credstore.Options{Dir: dir}), "r.example", credstore.Credentials{Username: "u", Password: canary})
		if _, err := os.Stat(filepath.Join(dir, credstore.KeyFileName)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(key file) error = %v, want ErrNotExist: the key came from %s", err, credstore.EnvKey)
		}
		got, ok, err := open(t, credstore.Options{Dir: dir, Key: key}).Get("r.example")
		if err != nil || !ok || got.Password != canary {
			t.Errorf("Get(%q) with the same key given = %v, %v, %v, want the stored credentials", "r.example",
				got, ok, err)
		}
	})
	for _, tt := range []struct{ name, value string }{
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16])},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(slices.Clone(key), 0))},
		{"not base64", "not base64!"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(credstore.EnvKey, tt.value)
			if _, err := credstore.Open(credstore.Options{Dir: t.TempDir()}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Open with %s=%q error = %v, want ErrInvalidArgument", credstore.EnvKey, tt.value, err)
			}
		})
	}
	t.Run("given key of 16 bytes", func(t *testing.T) {
		_, err := credstore.Open(credstore.Options{Dir: t.TempDir(), Key: key[:16]})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Open(Key: 16 bytes) error = %v, want ErrInvalidArgument", err)
		}
	})
}

func TestDefaultDir(t *testing.T) {
	isolate(t)
	base := t.TempDir()
	t.Setenv("HOME", filepath.Join(base, "home"))
	t.Setenv("XDG_CONFIG_HOME", "")
	for _, tt := range []struct{ env, value, want string }{
		{"HOME", filepath.Join(base, "home"), filepath.Join(base, "home", ".config", "myrmex")},
		{"XDG_CONFIG_HOME", filepath.Join(base, "xdg"), filepath.Join(base, "xdg", "myrmex")},
		{credstore.EnvConfigDir, filepath.Join(base, "mine"), filepath.Join(base, "mine")},
	} {
		t.Setenv(tt.env, tt.value) // each row adds a source that overrides the rows before it
		s := open(t, credstore.Options{})
		if got, want := s.Path(), filepath.Join(tt.want, credstore.FileName); got != want {
			t.Errorf("with %s=%q Path() = %q, want %q", tt.env, tt.value, got, want)
		}
	}
}

func TestNormalizeRegistry(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"docker.io", "index.docker.io"},
		{"index.docker.io", "index.docker.io"},
		{"registry-1.docker.io", "index.docker.io"},
		{"https://index.docker.io/v1/", "index.docker.io"},
		{"Registry.Example.COM:5000", "registry.example.com:5000"},
		{"http://localhost:5000/v2/", "localhost:5000"},
		{"ghcr.io/owner/repo", "ghcr.io"},
		{" quay.io ", "quay.io"},
	} {
		if got, err := credstore.NormalizeRegistry(tt.in); err != nil || got != tt.want {
			t.Errorf("NormalizeRegistry(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "  ", "https://", "/path", "user@host", "host:port"} {
		if got, err := credstore.NormalizeRegistry(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NormalizeRegistry(%q) = %q, %v, want ErrInvalidArgument", in, got, err)
		}
	}
}

func TestDockerHubAliasesShareOneEntry(t *testing.T) {
	isolate(t)
	s := open(t, credstore.Options{Dir: t.TempDir()})
	put(t, s, "https://index.docker.io/v1/", credstore.Credentials{Username: "alice", Password: canary})
	for _, alias := range []string{"docker.io", "index.docker.io", "registry-1.docker.io", "DOCKER.IO"} {
		if c, ok, err := s.Get(alias); err != nil || !ok || c.Username != "alice" {
			t.Errorf("Get(%q) = %v, %v, %v, want alice's credentials", alias, c, ok, err)
		}
	}
	put(t, s, "docker.io", credstore.Credentials{Username: "bob", Password: canary})
	if regs, err := s.Registries(); err != nil || !slices.Equal(regs, []string{"index.docker.io"}) {
		t.Errorf("Registries() = %v, %v, want [index.docker.io]", regs, err)
	}
}

func TestInvalidInput(t *testing.T) {
	isolate(t)
	s := open(t, credstore.Options{Dir: t.TempDir()})
	for _, tt := range []struct {
		registry string
		c        credstore.Credentials
	}{
		{"", credstore.Credentials{Username: "u", Password: "p"}},
		{"r.example", credstore.Credentials{}},
		{"r.example", credstore.Credentials{Username: "u"}},
	} {
		if err := s.Put(tt.registry, tt.c); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Put(%q, %v) error = %v, want ErrInvalidArgument", tt.registry, tt.c, err)
		}
	}
	if _, _, err := s.Get(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Get(%q) error = %v, want ErrInvalidArgument", "", err)
	}
	if _, err := s.Delete(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Delete(%q) error = %v, want ErrInvalidArgument", "", err)
	}
}

func TestDeleteMissing(t *testing.T) {
	isolate(t)
	s := open(t, credstore.Options{Dir: t.TempDir()})
	if found, err := s.Delete("r.example"); err != nil || found {
		t.Errorf("Delete(%q) on an empty store = %v, %v, want false, nil", "r.example", found, err)
	}
	put(t, s, "r.example", credstore.Credentials{Username: "u", Password: canary})
	if found, err := s.Delete("s.example"); err != nil || found {
		t.Errorf("Delete(%q) = %v, %v, want false, nil", "s.example", found, err)
	}
}

func TestResolve(t *testing.T) {
	isolate(t)
	s := open(t, credstore.Options{Dir: t.TempDir()})
	put(t, s, "registry.example.com:5000", credstore.Credentials{Username: "alice", Password: canary})
	put(t, s, "acr.example.io", credstore.Credentials{Username: "00000000-0000-0000-0000-000000000000",
		Token: "refresh-token"})
	put(t, s, "docker.io", credstore.Credentials{Username: "bob", Password: "hub-pat"})

	for _, tt := range []struct {
		ref  string
		want authn.AuthConfig
	}{
		{"registry.example.com:5000/team/app:1", authn.AuthConfig{Username: "alice", Password: canary}},
		{"acr.example.io/app@sha256:" + strings.Repeat("a", 64),
			authn.AuthConfig{Username: "00000000-0000-0000-0000-000000000000", IdentityToken: "refresh-token"}},
		{"library/busybox", authn.AuthConfig{Username: "bob", Password: "hub-pat"}},
	} {
		ref, err := name.ParseReference(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := s.Resolve(ref.Context())
		if err != nil {
			t.Fatalf("Resolve(%q) error = %v", tt.ref, err)
		}
		got, err := auth.Authorization()
		if err != nil {
			t.Fatalf("Resolve(%q).Authorization() error = %v", tt.ref, err)
		}
		if *got != tt.want {
			t.Errorf("Resolve(%q).Authorization() = %+v, want %+v", tt.ref, *got, tt.want)
		}
	}
	reg, _ := name.NewRegistry("unknown.example")
	if auth, err := s.Resolve(reg); err != nil || auth != authn.Anonymous {
		t.Errorf("Resolve(%q) = %v, %v, want authn.Anonymous", "unknown.example", auth, err)
	}
	// An unreadable store is an error, not anonymous access that would fail later and confusingly.
	broken := open(t, credstore.Options{Dir: filepath.Dir(s.Path()), Key: newKey(t)})
	if _, err := broken.Resolve(reg); !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Errorf("Resolve(%q) with the wrong key error = %v, want ErrUnauthorized", "unknown.example", err)
	}
}

// Twenty goroutines write at once through two Stores on one directory: the mutex serialises each Store, the flock
// the two of them, as it would two processes.
func TestConcurrentPut(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	stores := []*credstore.Store{open(t, credstore.Options{Dir: dir}), open(t, credstore.Options{Dir: dir})}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	var want []string
	for i := range 20 {
		reg := fmt.Sprintf("r%02d.example", i)
		want = append(want, reg)
		wg.Go(func() {
			errs <- stores[i%2].Put(reg, credstore.Credentials{Username: reg, Password: canary})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Put error = %v", err)
		}
	}
	s := open(t, credstore.Options{Dir: dir})
	if got, err := s.Registries(); err != nil || !slices.Equal(got, want) {
		t.Errorf("Registries() after 20 concurrent Puts = %v, %v, want %v", got, err, want)
	}
	for _, reg := range want {
		if c, ok, err := s.Get(reg); err != nil || !ok || c.Username != reg || c.Password != canary {
			t.Errorf("Get(%q) = %v, %v, %v, want what was put", reg, c, ok, err)
		}
	}
}

func TestSecretsNeverShow(t *testing.T) {
	isolate(t)
	c := credstore.Credentials{Username: "alice", Password: canary, Token: canary}

	printed := fmt.Sprintf("%v %+v %#v %s", c, c, c, c)
	if strings.Contains(printed, canary) {
		t.Errorf("fmt.Sprintf(%%v %%+v %%#v %%s) = %q, reveals the secret", printed)
	}
	if !strings.Contains(printed, "alice") || !strings.Contains(printed, "********") {
		t.Errorf("fmt.Sprintf(%%v %%+v %%#v %%s) = %q, want the username and masks", printed)
	}
	if got, want := fmt.Sprint(credstore.Credentials{Username: "u", Token: canary}),
		"{Username:u Password: Token:********}"; got != want {
		t.Errorf("fmt.Sprint(token only) = %q, want %q", got, want)
	}

	js, err := json.Marshal(c)
	if want := `{"username":"alice","password":"********","token":"********"}`; err != nil || string(js) != want {
		t.Errorf("json.Marshal(c) = %s, %v, want %s", js, err, want)
	}
	js, _ = json.Marshal(map[string]any{"creds": c, "ptr": &c})
	if bytes.Contains(js, []byte(canary)) {
		t.Errorf("json.Marshal(nested) = %s, reveals the secret", js)
	}

	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	logger.Info("login", "creds", c, "ptr", &c)
	// The store's own records, at debug level, through a whole login, use and logout.
	s := open(t, credstore.Options{Dir: t.TempDir(), Logger: logger})
	put(t, s, "r.example", c)
	reg, _ := name.NewRegistry("r.example")
	if _, err := s.Resolve(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete("r.example"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logged.String(), canary) {
		t.Errorf("slog JSON records = %s, reveal the secret", logged.String())
	}
	if !strings.Contains(logged.String(), `"creds":{"username":"alice","password":"********"`) {
		t.Errorf("slog JSON records = %s, want creds as a group with the username and a masked password",
			logged.String())
	}
}
