package credstore

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/codomyrmex/containerization/errdefs"
)

// SecretsFileName is the encrypted secret store beside the credentials, sealed with the same key and format.
const SecretsFileName = "secrets.json.enc"

// MaxSecretSize bounds a secret's value.
const MaxSecretSize = 64 << 10

var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// SecretsPath is the secret store's file.
func (s *Store) SecretsPath() string { return filepath.Join(s.dir, SecretsFileName) }

// checkSecretName refuses names that are not NAME ([A-Za-z0-9][A-Za-z0-9_.-]*, at most 128).
func checkSecretName(name string) error {
	if !secretNameRE.MatchString(name) {
		return fmt.Errorf("%w: secret name %q: want [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters", errdefs.ErrInvalidArgument, name)
	}
	return nil
}

// PutSecret stores value under name, replacing what was there. The value is never logged; it must be UTF-8
// without NUL (it goes into environments), at most MaxSecretSize bytes, and not empty.
func (s *Store) PutSecret(name, value string) error {
	if err := checkSecretName(name); err != nil {
		return err
	}
	switch {
	case value == "":
		return fmt.Errorf("%w: secret %s is empty", errdefs.ErrInvalidArgument, name)
	case len(value) > MaxSecretSize:
		return fmt.Errorf("%w: secret %s is %d bytes, more than %d", errdefs.ErrInvalidArgument, name, len(value), MaxSecretSize)
	case !utf8.ValidString(value) || strings.ContainsRune(value, 0):
		return fmt.Errorf("%w: secret %s is not UTF-8 text without NUL bytes", errdefs.ErrInvalidArgument, name)
	}
	if err := s.updateAt(s.SecretsPath(), func(m map[string]entry) bool {
		m[name] = entry{Password: value}
		return true
	}); err != nil {
		return fmt.Errorf("storing secret %s: %w", name, err)
	}
	s.log.Debug("stored a secret", "name", name, "path", s.SecretsPath())
	return nil
}

// Secret returns the value stored under name and whether there was one.
func (s *Store) Secret(name string) (string, bool, error) {
	if err := checkSecretName(name); err != nil {
		return "", false, err
	}
	m, err := s.readAt(s.SecretsPath())
	if err != nil {
		return "", false, fmt.Errorf("reading secret %s: %w", name, err)
	}
	e, ok := m[name]
	return e.Password, ok, nil
}

// DeleteSecret removes the secret name and reports whether there was one.
func (s *Store) DeleteSecret(name string) (bool, error) {
	if err := checkSecretName(name); err != nil {
		return false, err
	}
	var found bool
	if err := s.updateAt(s.SecretsPath(), func(m map[string]entry) bool {
		_, found = m[name]
		delete(m, name)
		return found
	}); err != nil {
		return false, fmt.Errorf("deleting secret %s: %w", name, err)
	}
	return found, nil
}

// SecretNames returns the names of the stored secrets, sorted; never their values.
func (s *Store) SecretNames() ([]string, error) {
	m, err := s.readAt(s.SecretsPath())
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	return slices.Sorted(maps.Keys(m)), nil
}
