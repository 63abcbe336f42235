package inventory

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
	"github.com/codomyrmex/containerization/internal/ctxio"
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
	DefaultMaxImageSize    = 64 << 30
	DefaultMaxEntries      = 1 << 20
	DefaultMaxImageEntries = 4 << 20
	DefaultMaxLayers       = 127 // about what Docker itself allows an image
	DefaultMaxSymlinkDepth = scalibrimage.DefaultMaxSymlinkDepth
	DefaultMaxCacheSize    = 2 << 30
)

// Bounds no image may pass, whatever the Options: past them, the scan fails with ErrLimitExceeded.
const (
	// MaxPathBytes bounds the length of an entry's name and link target, as the tar stream holds them; Linux's
	// PATH_MAX is 4096 too.
	MaxPathBytes = 4096
	// MaxPathComponents bounds the depth of an entry's name and link target: osv-scalibr spends time in the
	// square of the depth on every entry, in each view of the image (see Options.MaxImageEntries).
	MaxPathComponents = 256
	// MaxHistoryEntries bounds the entries of the image's history, empty ones (ENV, CMD…) included: osv-scalibr
	// keeps a view of the image's filesystem for each.
	MaxHistoryEntries = 1024
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

	// Limits bound what an image may make the scan hold, spend and read.
	Limits
}

// Limits bound a scan; the zero value is the defaults. Past one, the scan fails with ErrLimitExceeded.
type Limits struct {
	// MaxFileSize bounds the files handed to the extractors; larger ones are skipped with a warning. Zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// MaxLayerSize bounds the uncompressed size of a layer, against decompression bombs, and the bytes its
	// files deliver; a larger layer fails the scan with ErrLimitExceeded. Zero means DefaultMaxLayerSize.
	MaxLayerSize int64
	// MaxImageSize bounds the same, summed over the image's layers. Zero means DefaultMaxImageSize.
	MaxImageSize int64
	// MaxEntries bounds the number of tar entries in a layer; a layer with more fails the scan with
	// ErrLimitExceeded. Zero means DefaultMaxEntries.
	MaxEntries int
	// MaxImageEntries bounds what osv-scalibr holds in memory for the image: the filter's entries and the
	// directories they imply, each counted once for its layer and once for each view of the image it enters
	// (one view per history entry from its layer up, empty ones included), deep ones more (see the package
	// doc). An image past it fails the scan with ErrLimitExceeded. Zero means DefaultMaxImageEntries.
	MaxImageEntries int
	// MaxLayers bounds the image's layers; an image with more fails the scan with ErrLimitExceeded. Zero means
	// DefaultMaxLayers.
	MaxLayers int
	// MaxSymlinkDepth bounds the symlinks followed to resolve a path in the image. Zero means
	// DefaultMaxSymlinkDepth.
	MaxSymlinkDepth int
	// MaxCacheSize bounds the size of Cache on disk: past it, the entries least recently used are removed, and a
	// layer whose entry alone would pass it is not cached. Zero means DefaultMaxCacheSize.
	MaxCacheSize int64
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
	s.budget.maxBytes, s.budget.maxEntries = o.MaxImageSize, int64(o.MaxImageEntries)
	if o.Cache != "" {
		if s.cache, err = openLayerCache(o.Cache, o.MaxFileSize, o.MaxCacheSize); err != nil {
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
	if o.MaxFileSize < 0 || o.MaxLayerSize < 0 || o.MaxImageSize < 0 || o.MaxEntries < 0 || o.MaxImageEntries < 0 ||
		o.MaxLayers < 0 || o.MaxSymlinkDepth < 0 || o.MaxCacheSize < 0 {
		return bad("negative limit")
	}
	if len(o.selected()) == 0 {
		return bad("no operating system extractor among %v", o.Extractors)
	}
	o.MaxFileSize = cmp.Or(o.MaxFileSize, DefaultMaxFileSize)
	o.MaxLayerSize = cmp.Or(o.MaxLayerSize, DefaultMaxLayerSize)
	o.MaxImageSize = cmp.Or(o.MaxImageSize, DefaultMaxImageSize)
	o.MaxEntries = cmp.Or(o.MaxEntries, DefaultMaxEntries)
	o.MaxImageEntries = cmp.Or(o.MaxImageEntries, DefaultMaxImageEntries)
	o.MaxLayers = cmp.Or(o.MaxLayers, DefaultMaxLayers)
	o.MaxSymlinkDepth = cmp.Or(o.MaxSymlinkDepth, DefaultMaxSymlinkDepth)
	o.MaxCacheSize = cmp.Or(o.MaxCacheSize, DefaultMaxCacheSize)
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
	budget     budget

	wg        sync.WaitGroup
	mu        sync.Mutex
	summaries map[int]*layerSummary
	hidden    map[string]bool // the opaque directories of the layers read so far
	hiddenOf  map[int]bool    // the layers whose opaque directories are in hidden
	cached    int
	layerErr  error // the first layer that failed, as a *LayerError
	warnings  []string
}

func (s *scanner) scan(img v1.Image, exts []filesystem.Extractor) (*Result, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing the image's layers: %w", err)
	}
	if len(layers) > s.opts.MaxLayers {
		return nil, fmt.Errorf("%w: %d layers, more than %d (MaxLayers)", ErrLimitExceeded, len(layers), s.opts.MaxLayers)
	}
	cfg, _ := img.ConfigFile() // osv-scalibr does without one, and so does the scan
	if cfg != nil && len(cfg.History) > MaxHistoryEntries {
		return nil, fmt.Errorf("%w: %d history entries, more than %d (MaxHistoryEntries)", ErrLimitExceeded, len(cfg.History), MaxHistoryEntries)
	}
	views := layerViews(len(layers), cfg)
	s.summaries = make(map[int]*layerSummary, len(layers))
	s.hidden, s.hiddenOf = map[string]bool{}, map[int]bool{}
	wrapped := make([]v1.Layer, len(layers))
	for i, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, &LayerError{Index: i, Err: fmt.Errorf("reading its diff ID: %w", err)}
		}
		wrapped[i] = &filteredLayer{Layer: l, s: s, index: i, diffID: d, views: views[i]}
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
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	chain, err := simg.ChainLayers()
	if err != nil {
		return nil, fmt.Errorf("reading the image's layers: %w", err)
	}
	if err := s.attribute(&inv, chain, exts); err != nil {
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

// testHookAttributed, when set (by tests), is called after the packages of each location are attributed.
var testHookAttributed func()

// attribute finds the layer that brought each package. osv-scalibr's PopulateLayerDetails runs the extractor of
// each package again on older layers to find the first that has it, and looks at the context only when it runs
// one; an image with many packages over many layers keeps it busy for long. It is called once per package
// location (the packages of one dpkg status file together, so its cache of what each layer holds still serves
// them all), and the context is checked between calls. The walk is not counted.
func (s *scanner) attribute(inv *inventory.Inventory, chain []scalibrartifact.ChainLayer, exts []filesystem.Extractor) error {
	var order []string
	byLocation := map[string][]*extractor.Package{}
	for _, p := range inv.Packages {
		loc := p.Location.PathOrEmpty()
		if _, ok := byLocation[loc]; !ok {
			order = append(order, loc)
		}
		byLocation[loc] = append(byLocation[loc], p)
	}
	cfg := &filesystem.Config{Stats: stats.NoopCollector{}, MaxFileSize: int(s.opts.MaxFileSize)}
	for _, loc := range order {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		// The packages are pointers: PopulateLayerDetails sets their LayerMetadata in place.
		part := inventory.Inventory{Packages: byLocation[loc]}
		trace.PopulateLayerDetails(s.ctx, &part, chain, exts, cfg)
		if testHookAttributed != nil {
			testHookAttributed()
		}
	}
	return s.ctx.Err()
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
	// summaries known, once their readers are done. It does not see the context: a cancelled scan or a failed
	// layer stops it here, before the next layer is read.
	s.wg.Wait()
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	lerr := s.layerErr
	for i, sum := range s.summaries {
		if i > l.index && !s.hiddenOf[i] {
			s.hiddenOf[i] = true
			for _, d := range sum.Opaque {
				s.hidden[d] = true
			}
		}
	}
	s.mu.Unlock()
	if lerr != nil {
		return nil, lerr
	}
	rc, err := s.read(l)
	if err != nil || len(s.hidden) == 0 {
		return rc, err
	}
	pr, pw := io.Pipe()
	s.wg.Go(func() {
		defer rc.Close()
		pw.CloseWithError(hide(s.ctx, rc, pw, s.hidden))
	})
	return pr, nil
}

// read returns the filtered tar stream of a layer. A cached one serves only once the layer's content is seen to
// have the diff ID the image declares, which an image may set to anything: a warm scan reads each layer once,
// without filtering it again.
func (s *scanner) read(l *filteredLayer) (io.ReadCloser, error) {
	if s.cache != nil {
		if rc, sum, ok := s.cache.get(l.diffID); ok {
			if err := s.useCached(l, sum); err != nil {
				rc.Close()
				return nil, s.layerFailed(l, err)
			}
			return ctxio.ReadCloser(s.ctx, rc), nil
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

// useCached checks a layer found in the cache: its content against its diff ID, its summary against the limits.
func (s *scanner) useCached(l *filteredLayer, sum *layerSummary) error {
	rc, err := l.Layer.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	src, h, err := s.source(l, rc)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return err
	}
	if err := checkDiffID(h, l.diffID); err != nil {
		return err
	}
	if sum.Entries > s.opts.MaxEntries {
		return fmt.Errorf("%w: more than %d entries (MaxEntries)", ErrLimitExceeded, s.opts.MaxEntries)
	}
	if err := s.budget.spend(int64(sum.Kept), l.views); err != nil {
		return err
	}
	s.mu.Lock()
	s.summaries[l.index], s.cached = sum, s.cached+1
	s.mu.Unlock()
	return nil
}

// source is the uncompressed stream of a layer, hashed as its diff ID is.
func (s *scanner) source(l *filteredLayer, rc io.Reader) (*source, hash.Hash, error) {
	var h hash.Hash
	switch l.diffID.Algorithm {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return nil, nil, fmt.Errorf("%w: diff ID %s: unknown algorithm", errdefs.ErrInvalidArgument, l.diffID)
	}
	m := meter{what: "uncompressed", max: s.opts.MaxLayerSize, image: &s.budget.read, maxImage: s.budget.maxBytes}
	return &source{ctx: s.ctx, r: rc, m: m, hash: h}, h, nil
}

// checkDiffID compares the hash of a layer's whole stream with the diff ID the image declares.
func checkDiffID(h hash.Hash, want v1.Hash) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		return fmt.Errorf("%w: the content has diff ID %s:%s, the image declares %s", ErrDiffIDMismatch, want.Algorithm, got, want)
	}
	return nil
}

func (s *scanner) filter(l *filteredLayer, rc io.Reader, pw *io.PipeWriter) error {
	src, h, err := s.source(l, rc)
	if err != nil {
		return s.layerFailed(l, err)
	}
	f := &filter{exts: s.filterExts, maxFileSize: s.opts.MaxFileSize, maxEntries: s.opts.MaxEntries, tempDir: s.opts.TempDir,
		delivered: meter{what: "in its files", max: s.opts.MaxLayerSize, image: &s.budget.delivered, maxImage: s.budget.maxBytes},
		views:     l.views, budget: &s.budget}
	var dst io.Writer = pw
	var entry *cacheEntry
	if s.cache != nil {
		entry = s.cache.create(l.diffID)
		defer entry.discard()
		dst = io.MultiWriter(pw, entry)
	}
	if err := f.run(src, dst); err != nil {
		if errors.Is(err, io.ErrClosedPipe) { // scalibr stopped reading, for its own reason
			return err
		}
		return s.layerFailed(l, err)
	}
	// The diff ID is that of the whole stream, past the end of the tar. Only then is the layer's summary used,
	// and its entry cached under the diff ID it was checked against.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return s.layerFailed(l, err)
	}
	if err := checkDiffID(h, l.diffID); err != nil {
		return s.layerFailed(l, err)
	}
	s.mu.Lock()
	s.summaries[l.index] = &f.sum
	s.mu.Unlock()
	if entry == nil {
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
	views  int64 // its own and the views of the image its files go into (see Options.MaxImageEntries)
}

// layerViews returns, for each layer, the number of trees osv-scalibr puts its files in: the layer's own, and a
// view of the image for each history entry from the layer's up, or for each layer from it up when the history
// does not match the layers (osv-scalibr then ignores it).
func layerViews(n int, cfg *v1.ConfigFile) []int64 {
	views := make([]int64, n)
	for i := range views {
		views[i] = int64(1 + n - i)
	}
	if cfg == nil {
		return views
	}
	var idx []int // the history entry of each layer
	for i, h := range cfg.History {
		if !h.EmptyLayer {
			idx = append(idx, i)
		}
	}
	if len(idx) != n {
		return views
	}
	for i := range views {
		views[i] = int64(1 + len(cfg.History) - idx[i])
	}
	return views
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
