// Package scan scans a container image for security: its packages (package inventory, through osv-scalibr),
// the vulnerabilities that affect them (package match, against a local OSV database in package vulndb: scans
// never touch the network), compliance checks on its configuration and filesystem (package compliance), and
// recommendations a person can act on.
package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/osv-scalibr/semantic"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/compliance"
	"github.com/codomyrmex/containerization/scan/inventory"
	"github.com/codomyrmex/containerization/scan/match"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// Type is a scan's scope.
type Type string

// The scan types of the specification.
const (
	// Full checks OS and language packages for vulnerabilities, and runs the compliance checks.
	Full Type = "full"
	// Quick checks OS packages (dpkg, apk, rpm) only, reusing cached layers; no compliance checks.
	Quick Type = "quick"
	// Compliance runs the compliance checks only.
	Compliance Type = "compliance"
)

// ParseType reads a scan type; empty means full.
func ParseType(s string) (Type, error) {
	switch Type(s) {
	case "":
		return Full, nil
	case Full, Quick, Compliance:
		return Type(s), nil
	}
	return "", fmt.Errorf("%w: scan type %q: want full, quick or compliance", errdefs.ErrInvalidArgument, s)
}

// ErrNoDatabase is wrapped by the error of a scan that needs advisories when there is no database to read.
var ErrNoDatabase = errors.New("no advisory database")

// DefaultMaxDBAge is the age past which a database is reported stale.
const DefaultMaxDBAge = 7 * 24 * time.Hour

// Options configures [Image]. The zero value runs a full scan against the database in its default directory.
type Options struct {
	Type Type
	// SeverityThreshold, when set, makes findings at or above it a policy violation (Report.PolicyPassed false).
	SeverityThreshold match.Severity
	// Ignore rules set findings aside, with their reason; IgnoreChecks names compliance checks to leave out of
	// the score.
	Ignore       []match.IgnoreRule
	IgnoreChecks []string
	// DB is the advisory database; nil opens the one in DBDir (default: vulndb's default directory).
	DB    *vulndb.DB
	DBDir string
	// MaxDBAge is the age past which the database is reported stale; zero means DefaultMaxDBAge.
	MaxDBAge time.Duration
	// Cache is the directory of the per-layer inventory cache; empty means the default
	// ($MYRMEX_CACHE_DIR/layers, else ~/.cache/myrmex/layers), "-" none.
	Cache string
	// Limits bound the inventory (inventory.Options.Limits); zero fields are its defaults.
	Limits inventory.Limits
	// Identity, when set, names the image's content as the caller vouches for it: the same identity means the
	// same layers (FileIdentity makes one for an archive file). With a Cache, what the scan learns from the
	// layers (the inventory and the compliance report) is kept under it, and a later scan with the same identity
	// and options reads no layer: only the advisory match runs again. Empty means none: the layers are read.
	Identity string
	// Now is the time rule expiry and database age are judged against; zero means time.Now().
	Now time.Time
}

// Report is what a scan found.
type Report struct {
	Ref      string              `json:"ref"`
	Type     Type                `json:"type"`
	OS       inventory.OS        `json:"os"`
	Packages []inventory.Package `json:"packages"`
	// Match is nil for a compliance scan; Compliance is nil for a quick scan.
	Match      *match.Result      `json:"match,omitempty"`
	Compliance *compliance.Report `json:"compliance,omitempty"`
	Database   *vulndb.Status     `json:"database,omitempty"`
	// PolicyPassed is false when a finding is at or above the severity threshold.
	PolicyPassed    bool     `json:"policy_passed"`
	Warnings        []string `json:"warnings"`
	Recommendations []string `json:"recommendations"`
	// FromCache is true when the inventory and the compliance report came from the facts an earlier scan of
	// the same Identity kept, and no layer was read.
	FromCache bool          `json:"from_cache,omitempty"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
}

// Image scans img; ref is the reference the user gave (for the `latest` tag check and the report).
func Image(ctx context.Context, img v1.Image, ref string, opts Options) (*Report, error) {
	typ := cmp.Or(opts.Type, Full)
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep := &Report{Ref: ref, Type: typ, PolicyPassed: true, Warnings: []string{}, Recommendations: []string{}, Started: now}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()

	db := opts.DB
	if typ != Compliance {
		if db == nil {
			var err error
			if db, err = OpenDB(opts.DBDir); err != nil {
				return nil, err
			}
			defer db.Close()
		}
		st := db.Status()
		rep.Database = &st
		maxAge := cmp.Or(opts.MaxDBAge, DefaultMaxDBAge)
		if st.Stale(maxAge) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the advisory database is %s old (older than %s): run `myrmex db update` or import a newer export",
				st.Age.Round(time.Hour), maxAge))
		}
	}
	var cache string
	if typ != Compliance || opts.Identity != "" {
		var err error
		if cache, err = cacheDir(opts.Cache); err != nil {
			return nil, err
		}
	}
	var key string
	if opts.Identity != "" && cache != "" {
		digest, err := img.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("reading the image's config: %w", err)
		}
		key = factsKey(opts.Identity, digest.String(), typ, ref, opts)
	}
	var fs *facts
	if key != "" {
		fs = loadFacts(cache, key)
	}
	rep.FromCache = fs != nil
	if fs == nil {
		var err error
		if fs, err = learn(ctx, img, ref, typ, cache, opts); err != nil {
			return nil, err
		}
		if key != "" {
			fs.Key = key
			storeFacts(cache, fs)
		}
	}
	rep.OS, rep.Packages, rep.Compliance = fs.OS, fs.Packages, fs.Compliance
	rep.Warnings = append(rep.Warnings, fs.Warnings...)
	if typ != Compliance {
		m, err := match.Match(fs.Packages, db, match.Options{SeverityThreshold: opts.SeverityThreshold, Ignore: opts.Ignore, Now: now})
		if err != nil {
			return nil, fmt.Errorf("matching advisories: %w", err)
		}
		rep.Match = m
		rep.Warnings = append(rep.Warnings, m.Warnings...)
		rep.PolicyPassed = len(m.Violations) == 0
	}
	rep.Recommendations = recommend(rep)
	return rep, nil
}

// learn reads what a scan of typ needs from the image's layers: the inventory (unless a compliance scan) and the
// compliance report (unless a quick scan).
func learn(ctx context.Context, img v1.Image, ref string, typ Type, cache string, opts Options) (*facts, error) {
	fs := &facts{}
	if typ != Compliance {
		inv, err := inventory.Scan(ctx, img, inventory.Options{OSOnly: typ == Quick, Cache: cache, Limits: opts.Limits})
		if err != nil {
			return nil, fmt.Errorf("listing packages: %w", err)
		}
		fs.OS, fs.Packages, fs.Warnings = inv.OS, inv.Packages, inv.Warnings
	}
	if typ != Quick {
		c, err := compliance.Check(ctx, img, ref, compliance.Options{Ignore: opts.IgnoreChecks})
		if err != nil {
			return nil, fmt.Errorf("compliance checks: %w", err)
		}
		fs.Compliance = c
	}
	return fs, nil
}

func cacheDir(dir string) (string, error) {
	switch dir {
	case "-":
		return "", nil
	case "":
		if d := os.Getenv("MYRMEX_CACHE_DIR"); d != "" {
			return filepath.Join(d, "layers"), nil
		}
		base, err := os.UserCacheDir()
		if err != nil {
			return "", nil // no cache rather than no scan
		}
		return filepath.Join(base, "myrmex", "layers"), nil
	}
	return dir, nil
}

// upgrade gathers what upgrading one package fixes.
type upgrade struct {
	name, ecosystem, from, to string
	binaries                  map[string]bool
	ids                       map[string]bool
	os                        bool
}

// recommend turns the findings and failed checks into actions: an upgrade per package, to the lowest version
// that fixes every finding it has; a rebase when many OS packages need one; the unfixed findings; and the
// remediation of each failed check.
func recommend(rep *Report) []string {
	var out []string
	if rep.Match != nil {
		ups := map[string]*upgrade{}
		unfixed := map[string]bool{}
		for _, f := range rep.Match.Findings {
			if f.FixedVersion == "" {
				unfixed[f.CVEID] = true
				continue
			}
			name := cmp.Or(f.Package.SourceName, f.Package.Name)
			from := cmp.Or(f.Package.SourceVersion, f.Package.Version)
			key := f.Package.Ecosystem + "|" + name + "|" + from
			u := ups[key]
			if u == nil {
				u = &upgrade{name: name, ecosystem: f.Package.Ecosystem, from: from, to: f.FixedVersion,
					binaries: map[string]bool{}, ids: map[string]bool{}, os: f.Package.SourceName != ""}
				ups[key] = u
			}
			u.binaries[f.Package.Name] = true
			u.ids[f.CVEID] = true
			if newer(f.FixedVersion, u.to, u.ecosystem) {
				u.to = f.FixedVersion
			}
		}
		keys := slices.Sorted(maps.Keys(ups))
		slices.SortStableFunc(keys, func(a, b string) int { return len(ups[b].ids) - len(ups[a].ids) })
		osUpgrades := 0
		for _, k := range keys {
			u := ups[k]
			what := u.name
			if bins := slices.Sorted(maps.Keys(u.binaries)); len(bins) > 1 || (len(bins) == 1 && bins[0] != u.name) {
				what += " (" + strings.Join(bins, ", ") + ")"
			}
			out = append(out, fmt.Sprintf("upgrade %s %s from %s to %s: fixes %d finding(s) (%s)", u.ecosystem, what, u.from, u.to,
				len(u.ids), strings.Join(slices.Sorted(maps.Keys(u.ids)), ", ")))
			if u.os {
				osUpgrades++
			}
		}
		if osUpgrades >= 3 && rep.OS.ID != "" {
			out = append(out, fmt.Sprintf("rebase on a newer %s base image (or upgrade its packages in the build): %d OS packages have fixed versions",
				rep.OS.PrettyName, osUpgrades))
		}
		if len(unfixed) > 0 {
			out = append(out, fmt.Sprintf("%d finding(s) have no fix yet (%s): remove the affected packages if the image does not need them, or use a smaller base",
				len(unfixed), strings.Join(first(slices.Sorted(maps.Keys(unfixed)), 5), ", ")))
		}
	}
	if rep.Compliance != nil {
		for _, c := range rep.Compliance.Failed() {
			out = append(out, fmt.Sprintf("[%s] %s: %s", c.ID, c.Title, c.Remediation))
		}
	}
	return out
}

func newer(a, b, ecosystem string) bool {
	eco, _, _ := strings.Cut(ecosystem, ":")
	va, err := semantic.Parse(a, eco)
	if err != nil {
		return false
	}
	c, err := va.CompareStr(b)
	return err == nil && c > 0
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// OpenDB opens the advisory database in dir (empty: vulndb's default directory) as Image does: a directory with
// no database is an error wrapping [ErrNoDatabase], which says how to make one.
func OpenDB(dir string) (*vulndb.DB, error) {
	db, err := vulndb.Open(vulndb.Options{Dir: dir})
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return nil, fmt.Errorf("%w: %w", ErrNoDatabase, err)
	case err != nil:
		return nil, fmt.Errorf("opening the advisory database: %w", err)
	}
	return db, nil
}
