package vulndb

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Status describes a database: where it is, how old its data is and what it holds.
type Status struct {
	// Dir is the database directory.
	Dir string `json:"dir"`
	// Updated is when the database last changed (an import or an update).
	Updated time.Time `json:"updated"`
	// Oldest is when the least recently refreshed ecosystem was imported; Age and Stale go by it, so that a
	// fresh npm import does not hide a Debian import a year old.
	Oldest time.Time `json:"oldest"`
	// Age is how long ago Oldest was, when the Status was read.
	Age time.Duration `json:"age"`
	// Ecosystems lists each ecosystem with its record count, sorted by name.
	Ecosystems []EcosystemStatus `json:"ecosystems"`
	// Total counts distinct records; a record that affects several ecosystems counts once.
	Total int `json:"total"`
	// Withdrawn counts the records among Total that their publisher withdrew; matching skips them.
	Withdrawn int `json:"withdrawn"`
	// Invalid counts the files of the last import that were not OSV records; InvalidFiles names the first ones.
	Invalid      int           `json:"invalid"`
	InvalidFiles []InvalidFile `json:"invalid_files,omitempty"`
	// Skipped counts the records of the last import that name no package, so there is nothing to match them on.
	Skipped int `json:"skipped"`
	// Sources are the files or URLs of the last import.
	Sources []string `json:"sources"`
}

// EcosystemStatus describes one ecosystem of a database.
type EcosystemStatus struct {
	Name     string    `json:"name"`
	Records  int       `json:"records"`
	Packages int       `json:"packages"`
	Updated  time.Time `json:"updated"`
	Source   string    `json:"source"`
}

// Stale reports whether the database's oldest data is older than maxAge, or the database is empty.
func (s Status) Stale(maxAge time.Duration) bool {
	return s.Oldest.IsZero() || s.Age > maxAge
}

// Records returns the record count of an ecosystem, 0 when the database does not hold it.
func (s Status) Records(ecosystem string) int {
	for _, e := range s.Ecosystems {
		if e.Name == ecosystem {
			return e.Records
		}
	}
	return 0
}

// Stat reads the status of the database in opts.Dir without opening it. When there is no database it returns an
// error wrapping errdefs.ErrNotFound.
func Stat(opts Options) (Status, error) {
	dir, err := opts.dir()
	if err != nil {
		return Status{}, err
	}
	_, m, err := readCurrent(dir)
	if err != nil {
		return Status{}, err
	}
	return statusOf(dir, m, time.Now()), nil
}

func statusOf(dir string, m manifest, now time.Time) Status {
	s := Status{
		Dir: dir, Updated: m.Updated, Total: m.Total, Withdrawn: m.Withdrawn, Invalid: m.Invalid,
		InvalidFiles: m.InvalidFiles, Skipped: m.Skipped, Sources: m.Sources,
		Ecosystems: make([]EcosystemStatus, 0, len(m.Ecosystems)),
	}
	for _, name := range sortedKeys(m.Ecosystems) {
		e := m.Ecosystems[name]
		s.Ecosystems = append(s.Ecosystems, EcosystemStatus{
			Name: name, Records: e.Records, Packages: e.Packages, Updated: e.Updated, Source: e.Source,
		})
		if s.Oldest.IsZero() || e.Updated.Before(s.Oldest) {
			s.Oldest = e.Updated
		}
	}
	if !s.Oldest.IsZero() {
		s.Age = now.Sub(s.Oldest)
	}
	return s
}

func writeManifest(gen string, m manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("writing advisory database: %w", err)
	}
	f, err := os.Create(filepath.Join(gen, manifestFile))
	if err != nil {
		return fmt.Errorf("writing advisory database: %w", err)
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing advisory database: %w", err)
	}
	return nil
}
