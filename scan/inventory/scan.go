package inventory

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	scalibrartifact "github.com/google/osv-scalibr/artifact/image"
	scalibrimage "github.com/google/osv-scalibr/artifact/image/layerscanning/image"
	"github.com/google/osv-scalibr/artifact/image/layerscanning/trace"
	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagejson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/wheelegg"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/osrelease"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	scalibrfs "github.com/google/osv-scalibr/fs"
	"github.com/google/osv-scalibr/inventory"
	scalibrlog "github.com/google/osv-scalibr/log"
	"github.com/google/osv-scalibr/plugin"
	"github.com/google/osv-scalibr/stats"

	"github.com/codomyrmex/containerization/errdefs"
)

// The extractors, by the names Options.Extractors takes.
const (
	Dpkg     = "dpkg"     // Debian and Ubuntu: /var/lib/dpkg/status and status.d
	APK      = "apk"      // Alpine: /lib/apk/db/installed
	RPM      = "rpm"      // Red Hat, Fedora, SUSE…: the rpm database
	GoBinary = "gobinary" // Go binaries: the modules and the Go version in their build information
	NPM      = "npm"      // package.json files, those under node_modules in particular
	Python   = "python"   // *.dist-info/METADATA, *.egg-info/PKG-INFO, eggs and wheels
)

var (
	allExtractors = []string{Dpkg, APK, RPM, GoBinary, NPM, Python}
	osExtractors  = []string{Dpkg, APK, RPM}
)

// Defaults of the limits of Options.
const (
	DefaultMaxFileSize     = 512 << 20
	DefaultMaxLayerSize    = 32 << 30
	DefaultMaxEntries      = 1 << 20
	DefaultMaxSymlinkDepth = scalibrimage.DefaultMaxSymlinkDepth
)

// Options tune Scan. The zero value runs every extractor with the default limits and no cache.
type Options struct {
	// Extractors names the extractors to run (Dpkg, APK, RPM, GoBinary, NPM, Python); empty means all.
	Extractors []string
	// OSOnly keeps the operating system's package databases (dpkg, apk, rpm) only: the quick scan.
	OSOnly bool

	// Cache is a directory where layers are cached by diff ID, to be reused by any later scan of any image that
	// holds them; empty means no cache. The directory may be deleted at any time.
	Cache string
	// TempDir is where a possible Go binary is held while it is examined; empty means os.TempDir().
	// osv-scalibr v0.5.3 always puts its own copy of the files it reads (a few megabytes: the package
	// databases, the manifests and the Go binaries) in os.TempDir(); Scan removes it before returning.
	TempDir string

	// MaxFileSize bounds the files handed to the extractors; larger ones are skipped with a warning. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// MaxLayerSize bounds the uncompressed size of a layer, against decompression bombs; a larger layer fails
	// the scan with ErrLimitExceeded. Zero means DefaultMaxLayerSize.
	MaxLayerSize int64
	// MaxEntries bounds the number of tar entries in a layer; a layer with more fails the scan with
	// ErrLimitExceeded. Zero means DefaultMaxEntries.
	MaxEntries int
	// MaxSymlinkDepth bounds the symlinks followed to resolve a path in the image. Zero means
	// DefaultMaxSymlinkDepth.
	MaxSymlinkDepth int
}

// Result is the inventory of an image.
type Result struct {
	// Packages are sorted by ecosystem, name, version and location.
	Packages []Package `json:"packages"`
	// OS is the distribution the image's os-release names; zero when it has none.
	OS OS `json:"os"`
	// Warnings name what the scan skipped or could not read: files too large, links leaving the root, device
	// files, files an extractor failed on.
	Warnings []string `json:"warnings,omitempty"`
	Stats    Stats    `json:"stats"`
}

// OS is a distribution, from /etc/os-release or /usr/lib/os-release.
type OS struct {
	ID         string `json:"id,omitempty"`         // "debian", "alpine"
	VersionID  string `json:"version_id,omitempty"` // "12", "3.19.1"
	Codename   string `json:"codename,omitempty"`   // "bookworm"
	PrettyName string `json:"pretty_name,omitempty"`
}

// Stats measure a scan.
type Stats struct {
	Layers       int           `json:"layers"`
	CachedLayers int           `json:"cached_layers"` // layers read from Options.Cache
	Entries      int           `json:"entries"`       // tar entries in the layers
	Walked       int           `json:"walked"`        // files and directories the extractors' walk visited
	Extracted    int           `json:"extracted"`     // files handed to an extractor
	Duration     time.Duration `json:"duration_ns"`
}

func init() {
	// osv-scalibr logs to the standard logger by default; a library stays silent, and what matters reaches the
	// caller as Result.Warnings. Set here, before any goroutine can log through it.
	scalibrlog.SetLogger(silent{})
}

// Scan lists the packages in img with the layer each came from. img may come from an engine (docker save read
// with tarball.Image), a registry, a tarball or an OCI layout: layers are read once, in a stream, and nothing
// but the files the extractors read is written to disk.
//
// A layer that cannot be read fails the scan with a *LayerError; a file that cannot be used is skipped with a
// warning in the result.
func Scan(ctx context.Context, img v1.Image, opts Options) (*Result, error) {
	start := time.Now()
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	exts, err := newExtractors(o.selected())
	if err != nil {
		return nil, err
	}
	s := &scanner{ctx: ctx, opts: o, filterExts: exts}
	if o.Cache != "" {
		if s.cache, err = openLayerCache(o.Cache, o.MaxFileSize); err != nil {
			return nil, err
		}
		// Cached layers serve any later scan, whatever its extractors.
		if s.filterExts, err = newExtractors(allExtractors); err != nil {
			return nil, err
		}
	}
	res, err := s.scan(img, exts)
	s.wg.Wait() // the layer readers have stopped writing to disk
	if err != nil {
		return nil, err
	}
	res.Stats.Duration = time.Since(start)
	return res, nil
}

func (o Options) withDefaults() (Options, error) {
	bad := func(format string, args ...any) (Options, error) {
		return o, fmt.Errorf("%w: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	for _, n := range o.Extractors {
		if !slices.Contains(allExtractors, n) {
			return bad("unknown extractor %q, want one of %v", n, allExtractors)
		}
	}
	if o.MaxFileSize < 0 || o.MaxLayerSize < 0 || o.MaxEntries < 0 || o.MaxSymlinkDepth < 0 {
		return bad("negative limit")
	}
	if len(o.selected()) == 0 {
		return bad("no operating system extractor among %v", o.Extractors)
	}
	o.MaxFileSize = cmp.Or(o.MaxFileSize, DefaultMaxFileSize)
	o.MaxLayerSize = cmp.Or(o.MaxLayerSize, DefaultMaxLayerSize)
	o.MaxEntries = cmp.Or(o.MaxEntries, DefaultMaxEntries)
	o.MaxSymlinkDepth = cmp.Or(o.MaxSymlinkDepth, DefaultMaxSymlinkDepth)
	return o, nil
}

// selected returns the names of the extractors to run.
func (o Options) selected() []string {
	names := allExtractors
	if len(o.Extractors) > 0 {
		names = o.Extractors
	}
	if o.OSOnly {
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(osExtractors, n) })
	}
	return names
}

func newExtractors(names []string) ([]filesystem.Extractor, error) {
	cfg := &cpb.PluginConfig{}
	var exts []filesystem.Extractor
	for _, n := range allExtractors { // in a fixed order, once each
		if !slices.Contains(names, n) {
			continue
		}
		var e filesystem.Extractor
		var err error
		switch n {
		case Dpkg:
			e, err = dpkg.New(cfg)
		case APK:
			e, err = apk.New(cfg)
		case RPM:
			e, err = rpm.New(cfg)
		case GoBinary:
			e, err = gobinary.New(cfg)
		case NPM:
			e, err = packagejson.New(cfg)
		case Python:
			e, err = wheelegg.New(cfg)
		}
		if err != nil {
			return nil, fmt.Errorf("setting up the %s extractor: %w", n, err)
		}
		exts = append(exts, guarded{e})
	}
	return exts, nil
}

// scanner holds the state of one Scan.
type scanner struct {
	ctx        context.Context
	opts       Options
	filterExts []filesystem.Extractor // what the layer filter keeps files for
	cache      *layerCache

	wg        sync.WaitGroup
	mu        sync.Mutex
	summaries map[int]*layerSummary
	cached    int
	layerErr  error // the first layer that failed, as a *LayerError
	warnings  []string
}

func (s *scanner) scan(img v1.Image, exts []filesystem.Extractor) (*Result, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing the image's layers: %w", err)
	}
	s.summaries = make(map[int]*layerSummary, len(layers))
	wrapped := make([]v1.Layer, len(layers))
	for i, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, &LayerError{Index: i, Err: fmt.Errorf("reading its diff ID: %w", err)}
		}
		wrapped[i] = &filteredLayer{Layer: l, s: s, index: i, diffID: d}
	}
	res := &Result{Packages: []Package{}, Stats: Stats{Layers: len(layers)}}
	if len(layers) == 0 {
		return res, nil
	}

	simg, err := scalibrimage.FromV1Image(&filteredImage{Image: img, layers: wrapped}, &scalibrimage.Config{
		MaxFileBytes:    s.opts.MaxFileSize + 1, // the filter has bounded files already
		MaxSymlinkDepth: s.opts.MaxSymlinkDepth,
	})
	if err != nil { // FromV1Image cleans up after itself on error
		return nil, s.failure(err)
	}
	defer simg.CleanUp()
	s.wg.Wait() // for the summaries of the layers
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if s.layerErr != nil {
		return nil, s.layerErr
	}

	count := &counter{}
	inv, status, err := filesystem.Run(s.ctx, &filesystem.Config{
		Extractors:  exts,
		ScanRoots:   []*scalibrfs.ScanRoot{{FS: simg.FS()}},
		Stats:       count,
		MaxFileSize: int(s.opts.MaxFileSize),
	})
	if err != nil {
		return nil, fmt.Errorf("extracting packages: %w", err)
	}
	chain, err := simg.ChainLayers()
	if err != nil {
		return nil, fmt.Errorf("reading the image's layers: %w", err)
	}
	// PopulateLayerDetails runs the extractor of each package again on older layers to find the first that has
	// it; the walk is not counted.
	trace.PopulateLayerDetails(s.ctx, &inv, chain, exts, &filesystem.Config{Stats: stats.NoopCollector{}, MaxFileSize: int(s.opts.MaxFileSize)})
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}

	if m, err := osrelease.GetOSRelease(simg.FS()); err == nil {
		res.OS = OS{ID: m["ID"], VersionID: m["VERSION_ID"], Codename: m["VERSION_CODENAME"], PrettyName: m["PRETTY_NAME"]}
	}
	res.Packages = packages(inv, imageLayers(chain))
	res.Warnings = s.layerWarnings(len(layers))
	res.Warnings = append(res.Warnings, s.warnings...)
	res.Warnings = append(res.Warnings, extractorWarnings(status)...)
	res.Stats.CachedLayers = s.cached
	for _, sum := range s.summaries {
		res.Stats.Entries += sum.Entries
	}
	res.Stats.Walked, res.Stats.Extracted = count.walked, count.extracted
	return res, nil
}

// failure prefers the error of the layer that failed to what scalibr made of it.
func (s *scanner) failure(err error) error {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.layerErr != nil {
		return s.layerErr
	}
	if cerr := s.ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("reading the image: %w", err)
}

func (s *scanner) layerWarnings(n int) []string {
	var w []string
	for i := range n {
		sum := s.summaries[i]
		if sum == nil {
			continue
		}
		for _, msg := range sum.Warnings {
			w = append(w, fmt.Sprintf("layer %d: %s", i, msg))
		}
		if sum.Unlisted > 0 {
			w = append(w, fmt.Sprintf("layer %d: %d more warnings", i, sum.Unlisted))
		}
	}
	return w
}

// open returns the filtered tar stream of a layer, from the cache or read and filtered in a goroutine, without
// what the opaque directories of the layers above hide.
func (s *scanner) open(l *filteredLayer) (io.ReadCloser, error) {
	// osv-scalibr reads the layers from the top down, one at a time: the layers above are read, and their
	// summaries known, once their readers are done.
	s.wg.Wait()
	var hidden []string
	for i, sum := range s.summaries {
		if i > l.index {
			hidden = append(hidden, sum.Opaque...)
		}
	}
	rc, err := s.read(l)
	if err != nil || len(hidden) == 0 {
		return rc, err
	}
	pr, pw := io.Pipe()
	s.wg.Go(func() {
		defer rc.Close()
		pw.CloseWithError(hide(rc, pw, hidden))
	})
	return pr, nil
}

func (s *scanner) read(l *filteredLayer) (io.ReadCloser, error) {
	if s.cache != nil {
		if rc, sum, ok := s.cache.get(l.diffID); ok {
			s.mu.Lock()
			s.summaries[l.index], s.cached = sum, s.cached+1
			s.mu.Unlock()
			return rc, nil
		}
	}
	rc, err := l.Layer.Uncompressed()
	if err != nil {
		return nil, s.layerFailed(l, err)
	}
	pr, pw := io.Pipe()
	s.wg.Go(func() {
		defer rc.Close()
		pw.CloseWithError(s.filter(l, rc, pw))
	})
	return pr, nil
}

func (s *scanner) filter(l *filteredLayer, rc io.Reader, pw *io.PipeWriter) error {
	src := &source{ctx: s.ctx, r: rc, max: s.opts.MaxLayerSize}
	f := &filter{exts: s.filterExts, maxFileSize: s.opts.MaxFileSize, maxEntries: s.opts.MaxEntries, tempDir: s.opts.TempDir}
	var dst io.Writer = pw
	var entry *cacheEntry
	diffHash := sha256.New()
	if s.cache != nil {
		entry = s.cache.create(l.diffID)
		defer entry.discard()
		src.hash = diffHash
		dst = io.MultiWriter(pw, entry)
	}
	if err := f.run(src, dst); err != nil {
		if errors.Is(err, io.ErrClosedPipe) { // scalibr stopped reading, for its own reason
			return err
		}
		return s.layerFailed(l, err)
	}
	s.mu.Lock()
	s.summaries[l.index] = &f.sum
	s.mu.Unlock()
	if entry == nil {
		return nil
	}
	// Only a layer read to its end and matching its diff ID is cached under that ID.
	if _, err := io.Copy(io.Discard, src); err != nil {
		s.warn(fmt.Sprintf("layer %d: not cached: reading past the end of its tar: %v", l.index, err))
		return nil
	}
	if got := hex.EncodeToString(diffHash.Sum(nil)); got != l.diffID.Hex {
		s.warn(fmt.Sprintf("layer %d: content has diff ID sha256:%s, not %s as the image says; not cached", l.index, got, l.diffID))
		return nil
	}
	if err := entry.commit(f.sum); err != nil {
		s.warn(fmt.Sprintf("layer %d: not cached: %v", l.index, err))
	}
	return nil
}

func (s *scanner) layerFailed(l *filteredLayer, err error) error {
	if re, ok := errors.AsType[*readError](err); ok {
		err = re.err
	}
	lerr := &LayerError{Index: l.index, DiffID: l.diffID.String(), Err: err}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.layerErr == nil {
		s.layerErr = lerr
	}
	return lerr
}

func (s *scanner) warn(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnings = append(s.warnings, msg)
}

// filteredImage is img with its layers filtered; scalibr reads the config and the layers, nothing else.
type filteredImage struct {
	v1.Image
	layers []v1.Layer
}

func (i *filteredImage) Layers() ([]v1.Layer, error) { return i.layers, nil }

type filteredLayer struct {
	v1.Layer
	s      *scanner
	index  int
	diffID v1.Hash
}

func (l *filteredLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *filteredLayer) Uncompressed() (io.ReadCloser, error) { return l.s.open(l) }

// imageLayers maps scalibr's chain layers, which include the history's empty layers (ENV, LABEL…), to the
// image's layers: a chain layer that is empty stands for the next layer that is not.
func imageLayers(chain []scalibrartifact.ChainLayer) []Layer {
	out := make([]Layer, len(chain))
	next := Layer{Index: -1}
	n := 0
	for _, c := range chain {
		if !c.Layer().IsEmpty() {
			n++
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if l := chain[i].Layer(); !l.IsEmpty() {
			n--
			next = Layer{Index: n, DiffID: l.DiffID().String(), Command: l.Command()}
		}
		out[i] = next
	}
	for i := 1; i < len(out); i++ { // empty layers at the top stand for the last layer
		if out[i].Index < 0 {
			out[i] = out[i-1]
		}
	}
	return out
}

func packages(inv inventory.Inventory, layers []Layer) []Package {
	pkgs := make([]Package, 0, len(inv.Packages))
	for _, p := range inv.Packages {
		pkg := Package{
			Name:      p.Name,
			Version:   p.Version,
			Ecosystem: p.Ecosystem().String(),
			Locations: locations(p.Location),
			Layer:     Layer{Index: -1},
		}
		if u := p.PURL(); u != nil {
			pkg.PURL = u.String()
		}
		switch m := p.Metadata.(type) {
		case *dpkgmeta.Metadata:
			// A binary package without a Source field is its own source; "Source: name (version)" names a
			// source of another version (binNMUs, say).
			pkg.SourceName = cmp.Or(m.SourceName, p.Name)
			pkg.SourceVersion = cmp.Or(m.SourceVersion, p.Version)
		case *apkmeta.Metadata:
			// Alpine's advisories name the origin package, built at the same version as its subpackages.
			pkg.SourceName = cmp.Or(m.OriginName, p.Name)
			pkg.SourceVersion = p.Version
		}
		if slices.Contains(p.Plugins, gobinary.Name) && p.Name == "go" {
			// The Go toolchain's standard library, as the Go advisories, osv-scanner and Syft name it.
			pkg.Name, pkg.PURL = "stdlib", "pkg:golang/stdlib@"+p.Version
		}
		if lm := p.LayerMetadata; lm != nil && lm.Index >= 0 && lm.Index < len(layers) {
			pkg.Layer = layers[lm.Index]
		}
		pkgs = append(pkgs, pkg)
	}
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(
			cmp.Compare(a.Ecosystem, b.Ecosystem),
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Version, b.Version),
			slices.Compare(a.Locations, b.Locations),
		)
	})
	return pkgs
}

func locations(l extractor.PackageLocation) []string {
	var locs []string
	add := func(p string) {
		if p != "" && !slices.Contains(locs, "/"+p) {
			locs = append(locs, path.Join("/", p))
		}
	}
	if l.Descriptor != nil && l.Descriptor.File != nil {
		add(l.Descriptor.File.Path)
	}
	for _, r := range l.Related {
		if r.File != nil {
			add(r.File.Path)
		}
	}
	return locs
}

func extractorWarnings(status []*plugin.Status) []string {
	var w []string
	for _, st := range status {
		if st.Status == nil {
			continue
		}
		for _, fe := range st.Status.FileErrors {
			w = append(w, fmt.Sprintf("%s: /%s: %s", st.Name, fe.FilePath, fe.ErrorMessage))
		}
	}
	slices.Sort(w)
	return w
}

// guarded is an extractor whose panics on a hostile file become an error for that file, reported among the
// warnings: osv-scalibr's parsers meet whatever bytes an image holds.
type guarded struct{ filesystem.Extractor }

func (g guarded) FileRequired(api filesystem.FileAPI) (required bool) {
	defer func() {
		if r := recover(); r != nil {
			required = false
		}
	}()
	return g.Extractor.FileRequired(api)
}

func (g guarded) Extract(ctx context.Context, in *filesystem.ScanInput) (inv inventory.Inventory, err error) {
	defer func() {
		if r := recover(); r != nil {
			inv, err = inventory.Inventory{}, fmt.Errorf("extractor failed on this file: panic: %v", r)
		}
	}()
	return g.Extractor.Extract(ctx, in)
}

// counter counts the walk's visits and extractions.
type counter struct {
	stats.NoopCollector
	walked, extracted int
}

func (c *counter) AfterInodeVisited(string) { c.walked++ }
func (c *counter) AfterExtractorRun(string, *stats.AfterExtractorStats) {
	c.extracted++
}

type silent struct{}

func (silent) Errorf(string, ...any) {}
func (silent) Error(...any)          {}
func (silent) Warnf(string, ...any)  {}
func (silent) Warn(...any)           {}
func (silent) Infof(string, ...any)  {}
func (silent) Info(...any)           {}
func (silent) Debugf(string, ...any) {}
func (silent) Debug(...any)          {}
