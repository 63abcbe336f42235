package credstore

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/codomyrmex/containerization/errdefs"
)

// RegistriesFileName is the encrypted file of saved registries (myrmex registry add), beside the credentials and
// sealed with the same key and format: a saved registry's login is encrypted as a login is.
const RegistriesFileName = "registries.json.enc"

// MaxRecordData bounds the data a record keeps besides its credentials.
const MaxRecordData = 256 << 10

// A saved registry's name: a letter or digit, then letters, digits, '_' and '-', at most 64; no '.' or ':', so
// that it can never be read as a host.
var recordNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Record is a saved registry: its credentials, encrypted, and its other fields as JSON.
type Record struct {
	Credentials
	Data json.RawMessage
}

// RegistriesPath is the file of saved registries.
func (s *Store) RegistriesPath() string { return filepath.Join(s.dir, RegistriesFileName) }

// CheckRecordName refuses a name a registry cannot be saved under: want [A-Za-z0-9][A-Za-z0-9_-]*, at most 64
// characters, not "localhost".
func CheckRecordName(name string) error {
	if !recordNameRE.MatchString(name) || name == "localhost" {
		return fmt.Errorf("%w: registry name %q: want [A-Za-z0-9][A-Za-z0-9_-]*, at most 64 characters, without '.' or ':' (a name is never a host) and not localhost",
			errdefs.ErrInvalidArgument, name)
	}
	return nil
}

// PutRegistryRecord saves r under name, replacing what was there unless replace is false, when a name already
// saved is ErrAlreadyExists.
func (s *Store) PutRegistryRecord(name string, r Record, replace bool) error {
	if err := CheckRecordName(name); err != nil {
		return err
	}
	if len(r.Data) > MaxRecordData {
		return fmt.Errorf("%w: registry %s: %d bytes of data, more than %d", errdefs.ErrInvalidArgument, name, len(r.Data), MaxRecordData)
	}
	if len(r.Data) > 0 && !json.Valid(r.Data) {
		return fmt.Errorf("%w: registry %s: its data is not JSON", errdefs.ErrInvalidArgument, name)
	}
	var exists bool
	if err := s.updateAt(s.RegistriesPath(), func(m map[string]entry) bool {
		if _, exists = m[name]; exists && !replace {
			return false
		}
		m[name] = entry{Username: r.Username, Password: r.Password, Token: r.Token, Data: r.Data}
		return true
	}); err != nil {
		return fmt.Errorf("saving registry %s: %w", name, err)
	}
	if exists && !replace {
		return fmt.Errorf("%w: a registry named %s is saved already (remove it first, or replace it)", errdefs.ErrAlreadyExists, name)
	}
	s.log.Debug("saved a registry", "name", name, "path", s.RegistriesPath())
	return nil
}

// RegistryRecord returns the registry saved under name and whether there is one.
func (s *Store) RegistryRecord(name string) (Record, bool, error) {
	if err := CheckRecordName(name); err != nil {
		return Record{}, false, err
	}
	m, err := s.readAt(s.RegistriesPath())
	if err != nil {
		return Record{}, false, fmt.Errorf("reading registry %s: %w", name, err)
	}
	e, ok := m[name]
	return Record{Credentials: Credentials{Username: e.Username, Password: e.Password, Token: e.Token}, Data: e.Data}, ok, nil
}

// DeleteRegistryRecord removes the registry saved under name and reports whether there was one.
func (s *Store) DeleteRegistryRecord(name string) (bool, error) {
	if err := CheckRecordName(name); err != nil {
		return false, err
	}
	var found bool
	if err := s.updateAt(s.RegistriesPath(), func(m map[string]entry) bool {
		_, found = m[name]
		delete(m, name)
		return found
	}); err != nil {
		return false, fmt.Errorf("removing registry %s: %w", name, err)
	}
	return found, nil
}

// RegistryRecordNames returns the names of the saved registries, sorted.
func (s *Store) RegistryRecordNames() ([]string, error) {
	m, err := s.readAt(s.RegistriesPath())
	if err != nil {
		return nil, fmt.Errorf("listing registries: %w", err)
	}
	return slices.Sorted(maps.Keys(m)), nil
}
