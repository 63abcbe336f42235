package credstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/errdefs"
)

const (
	// EnvConfigDir names the environment variable that sets the configuration directory.
	EnvConfigDir = "MYRMEX_CONFIG_DIR"
	// EnvKey names the environment variable that holds the key as base64 of [KeySize] bytes.
	EnvKey = "MYRMEX_CREDENTIALS_KEY"
	// KeySize is the length of the AES-256 key in bytes.
	KeySize = 32
	// FileName is the name of the encrypted store in the configuration directory.
	FileName = "credentials.json.enc"
	// KeyFileName is the name of the key file in the configuration directory.
	KeyFileName = "credentials.key"

	lockFileName  = "credentials.lock"
	magic         = "MYRMEXCS"
	formatVersion = 1
	nonceSize     = 12 // the standard GCM nonce
)

// header starts every file and is authenticated with it.
var header = append([]byte(magic), formatVersion)

// Options configure [Open]. The zero value is the documented default for each field.
type Options struct {
	// Dir is the configuration directory that holds the store. Empty means $MYRMEX_CONFIG_DIR, else
	// $XDG_CONFIG_HOME/myrmex, else ~/.config/myrmex.
	Dir string
	// Key is the AES-256 key, KeySize bytes; the store keeps a copy. Empty means $MYRMEX_CREDENTIALS_KEY, else
	// the key file Dir/credentials.key, created on the first write.
	Key []byte
	// Logger receives debug records of what the store does, never a secret. Nil discards them.
	Logger *slog.Logger
}

// Store is the encrypted credential store in one configuration directory. It is safe for concurrent use, and
// several processes may share the directory. A *Store is an [authn.Keychain].
type Store struct {
	dir string
	log *slog.Logger

	mu  sync.Mutex // serialises read-modify-write in this process and guards key
	key []byte     // nil until read from, or written to, the key file
}

var _ authn.Keychain = (*Store)(nil)

// Open returns the store in opts.Dir, checking the key it is given or, if there is one already, the key file.
// It creates nothing: the directory and key file are made by the first write, so that resolving credentials
// (which every pull does) leaves no files behind. A missing store file is an empty store.
func Open(opts Options) (*Store, error) {
	dir, err := configDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch env := os.Getenv(EnvKey); {
	case len(opts.Key) > 0:
		if len(opts.Key) != KeySize {
			return nil, fmt.Errorf("%w: credentials key is %d bytes, want %d", errdefs.ErrInvalidArgument,
				len(opts.Key), KeySize)
		}
		s.key = bytes.Clone(opts.Key)
	case env != "":
		if s.key, err = decodeKey(env); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKey, err)
		}
	default:
		if s.key, err = s.readKeyFile(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return s, nil
}

// configDir applies the documented defaults to dir.
func configDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if d := os.Getenv(EnvConfigDir); d != "" {
		return d, nil
	}
	// The XDG base directory specification says to ignore a relative XDG_CONFIG_HOME.
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "myrmex"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: no configuration directory: set %s: %v", errdefs.ErrInvalidArgument,
			EnvConfigDir, err)
	}
	return filepath.Join(home, ".config", "myrmex"), nil
}

// Path returns the path of the encrypted store file, which need not exist yet.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// NormalizeRegistry returns the key under which the store files registry: the lowercase host[:port], without
// scheme or path, and index.docker.io for any of Docker Hub's names (docker.io, index.docker.io,
// registry-1.docker.io, https://index.docker.io/v1/). An empty or malformed registry is
// [errdefs.ErrInvalidArgument].
func NormalizeRegistry(registry string) (string, error) {
	r := strings.ToLower(strings.TrimSpace(registry))
	if _, rest, ok := strings.Cut(r, "://"); ok {
		r = rest
	}
	r, _, _ = strings.Cut(r, "/")
	if r == "" {
		return "", fmt.Errorf("%w: empty registry name %q", errdefs.ErrInvalidArgument, registry)
	}
	if _, err := name.NewRegistry(r, name.StrictValidation); err != nil {
		return "", fmt.Errorf("%w: registry %q: %v", errdefs.ErrInvalidArgument, registry, err)
	}
	switch r {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return name.DefaultRegistry, nil
	}
	return r, nil
}

// Put stores c for registry, replacing what was there. Credentials with neither password nor token are
// [errdefs.ErrInvalidArgument].
func (s *Store) Put(registry string, c Credentials) error {
	reg, err := NormalizeRegistry(registry)
	if err != nil {
		return err
	}
	if c.Password == "" && c.Token == "" {
		return fmt.Errorf("%w: credentials for %s have neither password nor token", errdefs.ErrInvalidArgument, reg)
	}
	err = s.update(func(m map[string]entry) bool {
		m[reg] = entry{Username: c.Username, Password: c.Password, Token: c.Token}
		return true
	})
	if err != nil {
		return fmt.Errorf("storing credentials for %s: %w", reg, err)
	}
	s.log.Debug("stored registry credentials", "registry", reg, "path", s.Path())
	return nil
}

// Get returns the credentials stored for registry and whether there were any.
func (s *Store) Get(registry string) (Credentials, bool, error) {
	reg, err := NormalizeRegistry(registry)
	if err != nil {
		return Credentials{}, false, err
	}
	m, err := s.read()
	if err != nil {
		return Credentials{}, false, fmt.Errorf("reading credentials for %s: %w", reg, err)
	}
	e, ok := m[reg]
	return Credentials{Username: e.Username, Password: e.Password, Token: e.Token}, ok, nil
}

// Delete removes the credentials stored for registry and reports whether there were any.
func (s *Store) Delete(registry string) (bool, error) {
	reg, err := NormalizeRegistry(registry)
	if err != nil {
		return false, err
	}
	var found bool
	err = s.update(func(m map[string]entry) bool {
		_, found = m[reg]
		delete(m, reg)
		return found
	})
	if err != nil {
		return false, fmt.Errorf("deleting credentials for %s: %w", reg, err)
	}
	s.log.Debug("deleted registry credentials", "registry", reg, "found", found, "path", s.Path())
	return found, nil
}

// Registries returns the registries that have credentials, sorted.
func (s *Store) Registries() ([]string, error) {
	m, err := s.read()
	if err != nil {
		return nil, fmt.Errorf("listing credentials: %w", err)
	}
	return slices.Sorted(maps.Keys(m)), nil
}

// Resolve makes the store an [authn.Keychain]: it returns the stored credentials of target's registry, or
// [authn.Anonymous] when there are none. Password goes to basic auth and Token to the identity token, which
// go-containerregistry exchanges for a bearer token with grant_type=refresh_token, as docker does (see
// [Credentials.Token]). A store that cannot be read is an error, not anonymous access.
func (s *Store) Resolve(target authn.Resource) (authn.Authenticator, error) {
	c, ok, err := s.Get(target.RegistryStr())
	if err != nil {
		return nil, err
	}
	s.log.Debug("resolved registry credentials", "registry", target.RegistryStr(), "found", ok)
	if !ok {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.Token,
	}), nil
}

// read returns the stored map. It needs no file lock: writers replace the file by rename, and write the key
// file before the first store file, so a reader sees a whole file whose key exists.
func (s *Store) read() (map[string]entry, error) { return s.readAt(s.Path()) }

func (s *Store) readAt(path string) (map[string]entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadAt(path)
}

// update applies change to the stored map and writes it back if change reports a change, holding the mutex
// and the file lock throughout. The caller holds neither.
func (s *Store) update(change func(map[string]entry) bool) error { return s.updateAt(s.Path(), change) }

// updateAt is update for the store file at path (the credentials, or the secrets).
func (s *Store) updateAt(path string, change func(map[string]entry) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(s.dir, lockFileName))
	if err != nil {
		return err
	}
	defer unlock()
	m, err := s.loadAt(path)
	if err != nil {
		return err
	}
	if !change(m) {
		return nil
	}
	if s.key == nil {
		if s.key, err = s.createKey(); err != nil {
			return err
		}
	}
	blob, err := seal(s.key, m)
	if err != nil {
		return err
	}
	return writeAtomic(path, blob)
}

// loadAt reads and decrypts the store file at path; s.mu is held. A missing file is an empty store.
func (s *Store) loadAt(path string) (map[string]entry, error) {
	blob, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	if s.key == nil {
		key, err := s.readKeyFile()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s exists but its key file %s does not: set %s to the key it was "+
				"written with, or remove %s and log in again", errdefs.ErrUnauthorized, path,
				s.keyPath(), EnvKey, path)
		}
		if err != nil {
			return nil, err
		}
		s.key = key
	}
	return unseal(s.key, blob, path)
}

func (s *Store) keyPath() string { return filepath.Join(s.dir, KeyFileName) }

// readKeyFile returns the key in the key file, refusing a file that others may read. A missing file is an
// error wrapping fs.ErrNotExist.
func (s *Store) readKeyFile() ([]byte, error) {
	path := s.keyPath()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: key file %s is not a regular file", errdefs.ErrConflict, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s has mode %04o, so others may read it; if nobody else has, "+
			"fix it with: chmod 600 %s", errdefs.ErrConflict, path, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, err
	}
	key, err := decodeKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// createKey returns the key file's key, writing a new random one if there is none; the file lock is held, so
// no other process is creating one at the same time.
func (s *Store) createKey() ([]byte, error) {
	key, err := s.readKeyFile()
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, KeySize)
	rand.Read(key) // never fails: crypto/rand crashes the program rather than return weak bytes
	text := base64.StdEncoding.EncodeToString(key) + "\n"
	if err := writeAtomic(s.keyPath(), []byte(text)); err != nil {
		return nil, err
	}
	s.log.Debug("created credentials key file", "path", s.keyPath())
	return key, nil
}

// decodeKey decodes a key in its base64 text form, without echoing the text in errors.
func decodeKey(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("%w: credentials key is not base64: %v", errdefs.ErrInvalidArgument, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: credentials key decodes to %d bytes, want %d", errdefs.ErrInvalidArgument,
			len(key), KeySize)
	}
	return key, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts m into the file format: header, nonce, ciphertext.
func seal(key []byte, m map[string]entry) ([]byte, error) {
	// JSON would replace bytes that are not UTF-8 with U+FFFD: credentials that would not come back as they
	// were given are refused instead.
	for reg, e := range m {
		for _, v := range []string{reg, e.Username, e.Password, e.Token} {
			if !utf8.ValidString(v) {
				return nil, fmt.Errorf("%w: credentials for %q hold bytes that are not UTF-8", errdefs.ErrInvalidArgument, strings.ToValidUTF8(reg, "?"))
			}
		}
	}
	plain, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize)
	rand.Read(nonce) // never fails, as above
	blob := append(slices.Clone(header), nonce...)
	return gcm.Seal(blob, nonce, plain, header), nil
}

// unseal decrypts a file written by seal; path is for errors.
func unseal(key, blob []byte, path string) (map[string]entry, error) {
	damaged := fmt.Errorf("%w: cannot decrypt %s: wrong key or damaged file", errdefs.ErrUnauthorized, path)
	if len(blob) < len(header) || string(blob[:len(magic)]) != magic {
		return nil, damaged
	}
	if v := blob[len(magic)]; v != formatVersion {
		return nil, fmt.Errorf("%w: %s has format version %d; this myrmex reads version %d",
			errdefs.ErrNotImplemented, path, v, formatVersion)
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	rest := blob[len(header):]
	if len(rest) < nonceSize+gcm.Overhead() {
		return nil, damaged
	}
	plain, err := gcm.Open(nil, rest[:nonceSize], rest[nonceSize:], header)
	if err != nil {
		return nil, damaged
	}
	m := map[string]entry{}
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, damaged
	}
	return m, nil
}

// writeAtomic replaces path with data: a 0600 temporary file in the same directory, synced, renamed over path,
// and the directory synced, so that a crash leaves the old file or the new one, never a part.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600 already; say so where it matters.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
