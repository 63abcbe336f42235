package optimize

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/ctxio"
	"github.com/codomyrmex/containerization/scan/compliance"
)

// Defaults of AnalyzeOptions, and the bounds no image may pass.
const (
	DefaultMaxEntries      = 1 << 20 // tar entries in one layer
	DefaultMaxImageEntries = 4 << 20 // entries across the layers
	DefaultMaxLayerSize    = 32 << 30
	DefaultMaxImageSize    = 64 << 30
	DefaultMaxLayers       = 127 // about what Docker itself allows an image
	DefaultMaxItems        = 50

	MaxNameBytes = compliance.MaxNameBytes // bytes of an entry's name, cleaned against the root (PATH_MAX)
	MaxNameDepth = compliance.MaxNameDepth // components of an entry's name
)

// ErrLimitExceeded refuses an image past one of the bounds of AnalyzeOptions. It wraps ErrInvalidArgument.
var ErrLimitExceeded = fmt.Errorf("image analysis limit exceeded: %w", errdefs.ErrInvalidArgument)

// ErrInvalidThreshold refuses a Gate threshold outside its range. It wraps ErrInvalidArgument.
var ErrInvalidThreshold = fmt.Errorf("invalid threshold: %w", errdefs.ErrInvalidArgument)

// AnalyzeOptions bound Analyze. The zero value is the defaults.
type AnalyzeOptions struct {
	MaxEntries      int   // tar entries in one layer
	MaxImageEntries int   // tar entries in all the layers together
	MaxLayerSize    int64 // bytes a layer's entries deliver (sparse entries are not read)
	MaxImageSize    int64 // the same over the image
	MaxLayers       int
	// MaxItems bounds the lists of the result (wasted items, dive's inefficient files), largest first.
	MaxItems int
}

func (o AnalyzeOptions) withDefaults() (AnalyzeOptions, error) {
	if o.MaxEntries < 0 || o.MaxImageEntries < 0 || o.MaxLayerSize < 0 || o.MaxImageSize < 0 || o.MaxLayers < 0 || o.MaxItems < 0 {
		return o, fmt.Errorf("%w: negative limit", errdefs.ErrInvalidArgument)
	}
	o.MaxEntries = cmp.Or(o.MaxEntries, DefaultMaxEntries)
	o.MaxImageEntries = cmp.Or(o.MaxImageEntries, DefaultMaxImageEntries)
	o.MaxLayerSize = cmp.Or(o.MaxLayerSize, DefaultMaxLayerSize)
	o.MaxImageSize = cmp.Or(o.MaxImageSize, DefaultMaxImageSize)
	o.MaxLayers = cmp.Or(o.MaxLayers, DefaultMaxLayers)
	o.MaxItems = cmp.Or(o.MaxItems, DefaultMaxItems)
	return o, nil
}

// Analysis is what an image holds and what of it is waste.
//
// SizeBytes, UserSizeBytes, Efficiency, WastedBytes, UserWastedPercent and Inefficient are dive's figures,
// computed as dive computes them (github.com/wagoodman/dive, dive/filetree/efficiency.go and
// dive/image/analysis.go): for every path that is a leaf of a layer's own tree, the sizes it has in each layer
// where it is one (a whiteout counts the size of the directory it deletes, 0 for a file); the efficiency is the
// sum of each path's smallest size over the sum of all its sizes, and the wasted bytes are the sum of all sizes
// of the paths found in more than one layer. Waste is Myrmex's own account of what a rewrite could drop.
type Analysis struct {
	Layers []LayerAnalysis `json:"layers"`

	SizeBytes         int64             `json:"size_bytes"`          // the layers' sizes added up
	UserSizeBytes     int64             `json:"user_size_bytes"`     // the same without the first layer
	Efficiency        float64           `json:"efficiency"`          // 0 to 1; 1 is no waste
	WastedBytes       int64             `json:"wasted_bytes"`        // dive's inefficient bytes
	UserWastedPercent float64           `json:"user_wasted_percent"` // WastedBytes over UserSizeBytes, as a fraction
	Inefficient       []InefficientPath `json:"inefficient_files"`   // largest first, at most MaxItems
	InefficientCount  int               `json:"inefficient_count"`   // all of them
	Waste             Waste             `json:"waste"`
	Items             []WastedItem      `json:"wasted_items"`  // largest first, at most MaxItems
	Files             int               `json:"files"`         // regular files in the image as it runs
	ContentBytes      int64             `json:"content_bytes"` // their bytes
}

// LayerAnalysis is one layer: its size as dive counts it (the sizes its tar entries declare), the history
// entry that made it, and the bytes of it that are waste.
type LayerAnalysis struct {
	Index       int    `json:"index"`
	DiffID      string `json:"diff_id"`
	CreatedBy   string `json:"created_by"`
	SizeBytes   int64  `json:"size_bytes"`
	Entries     int    `json:"entries"`
	WastedBytes int64  `json:"wasted_bytes"` // this layer's bytes counted in Waste
}

// InefficientPath is a path found in more than one layer, with all its sizes added up (dive's file references).
type InefficientPath struct {
	Path       string `json:"path"`
	Count      int    `json:"count"`
	TotalBytes int64  `json:"total_bytes"`
}

// Waste adds up, by kind, the bytes that an image rewritten without them would not carry.
type Waste struct {
	Overwritten   int64 `json:"overwritten"`    // file bodies replaced by a later layer
	Deleted       int64 `json:"deleted"`        // file bodies deleted by a later layer (whiteouts, opaque directories)
	PackageCaches int64 `json:"package_caches"` // package-manager caches and lists left in the image
	Temporary     int64 `json:"temporary"`      // files left in /tmp and /var/tmp
	Duplicates    int64 `json:"duplicates"`     // second and further copies of the same content
	Total         int64 `json:"total"`
}

// Kinds of WastedItem.
const (
	KindOverwritten  = "overwritten"
	KindDeleted      = "deleted"
	KindPackageCache = "package_cache"
	KindTemporary    = "temporary"
	KindDuplicate    = "duplicate"
)

// WastedItem is one path's waste: a file, or a directory's files added up when they share a reason.
type WastedItem struct {
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	Layer  int    `json:"layer"` // the layer holding the bytes
	Bytes  int64  `json:"bytes"`
	Files  int    `json:"files"`
	Reason string `json:"reason"`
}

// Analyze reads every layer of img once, from the bottom up, and returns its layers, dive's efficiency figures
// and the waste a rewrite could drop. Layers are read through ctx; an image past the bounds of opts is refused
// with ErrLimitExceeded, an entry name past MaxNameBytes or MaxNameDepth with a *compliance.NameError (an
// ErrInvalidArgument), and a layer that is not a tar stream with ErrInvalidArgument.
func Analyze(ctx context.Context, img v1.Image, opts AnalyzeOptions) (*Analysis, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing the image's layers: %w", err)
	}
	if len(layers) > o.MaxLayers {
		return nil, fmt.Errorf("%w: %d layers, more than %d (MaxLayers)", ErrLimitExceeded, len(layers), o.MaxLayers)
	}
	cfg, _ := img.ConfigFile() // an image without one has no history to show
	a := &Analysis{}
	w := &walker{ctx: ctx, opts: o, a: a, root: newDir(), dive: map[string]*diveData{}, created: createdBy(cfg, len(layers))}
	for i, l := range layers {
		if err := w.layer(i, l); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	if err := w.finish(); err != nil {
		return nil, err
	}
	return a, nil
}

// createdBy maps the history's entries that made a layer to the layers, in order, as dive does ("(missing)" when
// the history has fewer).
func createdBy(cfg *v1.ConfigFile, n int) []string {
	out := make([]string, n)
	i := 0
	if cfg != nil {
		for _, h := range cfg.History {
			if h.EmptyLayer {
				continue
			}
			if i == n {
				break
			}
			out[i] = h.CreatedBy
			i++
		}
	}
	for ; i < n; i++ {
		out[i] = "(missing)"
	}
	return out
}

// vnode is a path of the image as it runs, after the layers read so far.
type vnode struct {
	typ    byte
	size   int64 // the size its tar header declares
	layer  int
	hash   [sha256.Size]byte
	hashed bool // hash holds the body (regular files that are not sparse)
	// body is shared by a regular file and its hard links: its bytes are waste only once no name holds them.
	body   *body
	linked bool // a hard link: dive counts it 0 bytes
	// diveDir is whether dive's view of the image holds a directory here: in dive's view a path has what the
	// highest layer whose tree holds it says, and a layer's tree also holds, as nodes without a type, the
	// directories that lead to its entries. A whiteout of a path that is no directory there counts 0 bytes.
	diveDir    bool
	explicitIn int               // the layer whose entry named it last; -1 for a directory only implied
	children   map[string]*vnode // directories only
}

func newDir() *vnode {
	return &vnode{typ: tar.TypeDir, children: map[string]*vnode{}, layer: -1, explicitIn: -1}
}

func (n *vnode) isDir() bool { return n.typ == tar.TypeDir }

// body is the content of a regular file, shared by its names.
type body struct{ names int }

// diveData is one path of dive's efficiency map.
type diveData struct {
	count      int
	cumulative int64
	min        int64
}

type walker struct {
	ctx      context.Context
	opts     AnalyzeOptions
	a        *Analysis
	root     *vnode
	dive     map[string]*diveData
	created  []string
	entries  int   // entries and implied directories, across the image (MaxImageEntries)
	bytes    int64 // of the layers' streams, across the image
	declared int64 // sizes the entries declare, across the image
	visits   int
}

// entry is one tar entry of the layer being read.
type entry struct {
	path   string // cleaned against the root
	link   string // a hard link's target, cleaned against the root
	typ    byte
	size   int64
	hash   [sha256.Size]byte
	hashed bool
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	// The records by which archive/tar reads a PAX entry as sparse (formats 0.0, 0.1 and 1.0).
	for _, k := range []string{"GNU.sparse.major", "GNU.sparse.map", "GNU.sparse.numblocks"} {
		if _, ok := hdr.PAXRecords[k]; ok {
			return true
		}
	}
	return false
}

func (w *walker) tick() error {
	if w.visits++; w.visits%4096 == 0 {
		return w.ctx.Err()
	}
	return nil
}

// read returns the entries of a layer, the bodies of its regular files hashed. Every byte of the stream counts
// against MaxLayerSize and MaxImageSize (headers, bodies skipped or read), and so does every size an entry
// declares (a sparse file declares more than its stream holds; dive counts what it declares).
func (w *walker) read(l v1.Layer) ([]entry, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := &countingReader{r: ctxio.Reader{Ctx: w.ctx, R: rc}}
	tr := tar.NewReader(cr)
	var out []entry
	var declared int64
	over := func() error {
		switch {
		case cr.n > w.opts.MaxLayerSize || declared > w.opts.MaxLayerSize:
			return fmt.Errorf("%w: the layer holds more than %d bytes (MaxLayerSize)", ErrLimitExceeded, w.opts.MaxLayerSize)
		case w.bytes+cr.n > w.opts.MaxImageSize || w.declared+declared > w.opts.MaxImageSize:
			return fmt.Errorf("%w: the image holds more than %d bytes (MaxImageSize)", ErrLimitExceeded, w.opts.MaxImageSize)
		}
		return nil
	}
	for {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			w.bytes += cr.n
			w.declared += declared
			return out, nil
		}
		if err := over(); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, streamErr(w.ctx, err)
		}
		if len(out) == w.opts.MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries in the layer (MaxEntries)", ErrLimitExceeded, w.opts.MaxEntries)
		}
		if err := w.count(1); err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		}
		if hdr.Size < 0 {
			return nil, fmt.Errorf("%w: entry %q declares a negative size", errdefs.ErrInvalidArgument, hdr.Name)
		}
		if declared += min(hdr.Size, w.opts.MaxLayerSize+1); declared > w.opts.MaxLayerSize {
			return nil, over()
		}
		p, err := compliance.CleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if base, ok := strings.CutPrefix(path.Base(p), whiteoutPrefix); ok && (base == "" || base == "." || base == "..") {
			// containerd refuses them too: cleaned, they would delete the directory or its parent.
			return nil, fmt.Errorf("%w: %q is not a whiteout of anything", errdefs.ErrInvalidArgument, hdr.Name)
		}
		e := entry{path: p, typ: hdr.Typeflag, size: hdr.Size}
		if e.typ == tar.TypeLink {
			if e.link, err = compliance.CleanName(hdr.Linkname); err != nil {
				return nil, err
			}
		}
		if e.typ == tar.TypeRegA {
			e.typ = tar.TypeReg
		}
		if e.typ == tar.TypeReg && !isSparse(hdr) {
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				if lerr := over(); lerr != nil {
					return nil, lerr
				}
				return nil, fmt.Errorf("%s: %w", p, streamErr(w.ctx, err))
			}
			if err := over(); err != nil {
				return nil, err
			}
			copy(e.hash[:], h.Sum(nil))
			e.hashed = true
		} else if e.typ == tar.TypeGNUSparse {
			e.typ = tar.TypeReg
		}
		out = append(out, e)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// count charges n nodes (entries, and the directories they imply in each view) to MaxImageEntries.
func (w *walker) count(n int) error {
	if w.entries += n; w.entries > w.opts.MaxImageEntries {
		return fmt.Errorf("%w: more than %d entries and the directories they imply (MaxImageEntries)", ErrLimitExceeded, w.opts.MaxImageEntries)
	}
	return nil
}

func streamErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("%w: the layer is not a valid tar stream: %v", errdefs.ErrInvalidArgument, err)
}

const whiteoutPrefix, opaqueMarker = ".wh.", ".wh..wh..opq"

// layer reads layer i and lays it over the view: first its whiteouts and opaque markers, which hide what the
// layers below hold whatever their place in the tar stream, then its entries.
func (w *walker) layer(i int, l v1.Layer) error {
	entries, err := w.read(l)
	if err != nil {
		return err
	}
	la := LayerAnalysis{Index: i, CreatedBy: w.created[i], Entries: len(entries)}
	if d, err := l.DiffID(); err == nil {
		la.DiffID = d.String()
	}
	for _, e := range entries {
		la.SizeBytes += e.size
	}
	w.a.Layers = append(w.a.Layers, la)
	if err := w.diveLayer(entries); err != nil {
		return err
	}

	for _, e := range entries {
		if err := w.tick(); err != nil {
			return err
		}
		dir, base := path.Split(e.path)
		switch {
		case base == opaqueMarker:
			if n := w.lookup(path.Clean(dir)); n != nil && n.isDir() {
				for name, c := range n.children {
					if err := w.drop(path.Join(dir, name), c, KindDeleted); err != nil {
						return err
					}
				}
				clear(n.children)
			}
		case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
			// Other .wh..wh. names are aufs bookkeeping, not deletions.
		case strings.HasPrefix(base, whiteoutPrefix):
			target := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
			if parent := w.lookup(path.Dir(target)); parent != nil && parent.isDir() {
				if c := parent.children[path.Base(target)]; c != nil {
					delete(parent.children, path.Base(target))
					if err := w.drop(target, c, KindDeleted); err != nil {
						return err
					}
				}
			}
		}
	}
	for _, e := range entries {
		if err := w.tick(); err != nil {
			return err
		}
		if e.path == "/" || strings.HasPrefix(path.Base(e.path), whiteoutPrefix) {
			continue
		}
		parent, err := w.mkdirs(path.Dir(e.path), i)
		if err != nil {
			return err
		}
		name := path.Base(e.path)
		old := parent.children[name]
		if old == nil {
			if err := w.count(1); err != nil {
				return err
			}
		}
		n := &vnode{typ: e.typ, size: e.size, layer: i, hash: e.hash, hashed: e.hashed, diveDir: e.typ == tar.TypeDir, explicitIn: i}
		switch e.typ {
		case tar.TypeReg:
			n.body = &body{names: 1}
		case tar.TypeLink:
			// Another name for a file the layers hold: its bytes are the target's, where the target has them.
			if t := w.lookup(e.link); t != nil && t.typ == tar.TypeReg && t.body != nil {
				n.typ, n.size, n.layer, n.hash, n.hashed, n.body, n.linked = tar.TypeReg, t.size, t.layer, t.hash, t.hashed, t.body, true
				t.body.names++
			}
		}
		if e.typ == tar.TypeDir {
			n.children = map[string]*vnode{}
			if old != nil && old.isDir() {
				n.children, old = old.children, nil // a directory over a directory keeps what is inside
			}
		}
		if old != nil {
			if err := w.drop(e.path, old, KindOverwritten); err != nil {
				return err
			}
		}
		parent.children[name] = n
	}
	// The directories that lead to the layer's whiteouts and opaque markers are in its tree too.
	for _, e := range entries {
		if strings.HasPrefix(path.Base(e.path), whiteoutPrefix) {
			if err := w.implied(path.Dir(e.path), i); err != nil {
				return err
			}
		}
	}
	return nil
}

// implied marks the directories leading to p, and p, as nodes of layer i's tree that no entry of the layer
// names (so no directory in dive's view), unless an entry of the layer does name them.
func (w *walker) implied(p string, i int) error {
	if err := w.tick(); err != nil {
		return err
	}
	n := w.root
	for rest := strings.TrimPrefix(p, "/"); rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if n = n.children[c]; n == nil {
			return nil
		}
		if n.explicitIn != i {
			n.diveDir = false
		}
	}
	return nil
}

// lookup returns the node of p, or nil.
func (w *walker) lookup(p string) *vnode {
	n := w.root
	for rest := strings.TrimPrefix(p, "/"); rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		if !n.isDir() {
			return nil
		}
		if n = n.children[c]; n == nil {
			return nil
		}
	}
	return n
}

// mkdirs returns the directory p, made (as layer i's) where it or a parent is missing or not a directory; each
// directory on the way is a node of layer i's tree (see implied).
func (w *walker) mkdirs(p string, i int) (*vnode, error) {
	n := w.root
	for rest, done := strings.TrimPrefix(p, "/"), 0; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		done += len(c) + 1
		next := n.children[c]
		if next == nil || !next.isDir() {
			if next != nil {
				// A file where the layer puts a directory: replaced (tar extraction does the same).
				if err := w.drop(p[:done], next, KindOverwritten); err != nil {
					return nil, err
				}
			} else if err := w.count(1); err != nil {
				return nil, err
			}
			next = &vnode{typ: tar.TypeDir, layer: i, children: map[string]*vnode{}, explicitIn: -1}
			n.children[c] = next
		}
		if next.explicitIn != i {
			next.diveDir = false
		}
		n = next
	}
	return n, nil
}

// drop counts the bodies of n, at p, and of everything below it, as waste of the given kind.
func (w *walker) drop(p string, n *vnode, kind string) error {
	if err := w.tick(); err != nil {
		return err
	}
	if n.typ == tar.TypeReg && n.body != nil {
		if n.body.names--; n.body.names == 0 && n.size > 0 { // else another name still holds the bytes
			w.waste(kind, p, n.layer, n.size, 1, "")
		}
	}
	for name, c := range n.children {
		if err := w.drop(p+"/"+name, c, kind); err != nil {
			return err
		}
	}
	return nil
}

// waste records an item and adds it to the figures.
func (w *walker) waste(kind, p string, layer int, bytes int64, files int, reason string) {
	ws := &w.a.Waste
	switch kind {
	case KindOverwritten:
		ws.Overwritten += bytes
		reason = cmp.Or(reason, "replaced by a later layer")
	case KindDeleted:
		ws.Deleted += bytes
		reason = cmp.Or(reason, "deleted by a later layer: its bytes stay in the layer that added it")
	case KindPackageCache:
		ws.PackageCaches += bytes
	case KindTemporary:
		ws.Temporary += bytes
	case KindDuplicate:
		ws.Duplicates += bytes
	}
	ws.Total += bytes
	if layer >= 0 && layer < len(w.a.Layers) {
		w.a.Layers[layer].WastedBytes += bytes
	}
	w.a.Items = append(w.a.Items, WastedItem{Kind: kind, Path: p, Layer: layer, Bytes: bytes, Files: files, Reason: reason})
	if len(w.a.Items) > 4*w.opts.MaxItems {
		w.trimItems()
	}
}

func (w *walker) trimItems() {
	slices.SortStableFunc(w.a.Items, func(x, y WastedItem) int {
		return cmp.Or(cmp.Compare(y.Bytes, x.Bytes), cmp.Compare(x.Path, y.Path))
	})
	if len(w.a.Items) > w.opts.MaxItems {
		w.a.Items = slices.Clip(w.a.Items[:w.opts.MaxItems])
	}
}

// diveLayer adds a layer's leaves to dive's efficiency map. The layer's tree, as dive builds it, holds every
// entry and the directories leading to it, but not opaque markers (their directories, yes); its leaves are the
// nodes without children. A whiteout's path is the path it deletes, and its size that of everything below that
// path when it is a directory of the layers below (0 for a file: dive counts the file itself where it was added).
func (w *walker) diveLayer(entries []entry) error {
	nodes := make(map[string]*leaf, len(entries))
	// ancestors marks the directories above p as having a child; a directory made here counts in
	// MaxImageEntries.
	ancestors := func(p string) error {
		for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
			d := p[:i]
			n := nodes[d]
			if n == nil {
				if err := w.count(1); err != nil {
					return err
				}
				n = &leaf{}
				nodes[d] = n
			} else if n.hasChild {
				return nil
			}
			n.hasChild = true
		}
		return nil
	}
	for _, e := range entries {
		if err := w.tick(); err != nil {
			return err
		}
		if e.path == "/" {
			continue
		}
		base := path.Base(e.path)
		if base == opaqueMarker || strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix) {
			// dive does not add it, but makes the directories that lead to it.
			dir := path.Dir(e.path)
			if dir != "/" {
				if nodes[dir] == nil {
					nodes[dir] = &leaf{}
				}
				if err := ancestors(dir); err != nil {
					return err
				}
			}
			continue
		}
		n := nodes[e.path]
		if n == nil {
			n = &leaf{}
			nodes[e.path] = n
		}
		n.size = e.size
		n.whiteout = strings.HasPrefix(base, whiteoutPrefix)
		if err := ancestors(e.path); err != nil {
			return err
		}
	}
	sizes := map[*vnode]int64{} // whiteouts of nested directories in one layer walk each directory once
	for p, n := range nodes {
		if err := w.tick(); err != nil {
			return err
		}
		if n.hasChild {
			continue
		}
		size := n.size
		if n.whiteout {
			p = path.Join(path.Dir(p), strings.TrimPrefix(path.Base(p), whiteoutPrefix))
			size = 0
			if lower := w.lookup(p); lower != nil && lower.diveDir {
				s, err := w.treeSize(lower, sizes)
				if err != nil {
					return err
				}
				size = s
			}
		}
		d := w.dive[p]
		if d == nil {
			d = &diveData{min: -1}
			w.dive[p] = d
		}
		d.count++
		d.cumulative += size
		if d.min < 0 || size < d.min {
			d.min = size
		}
	}
	return nil
}

// leaf is a node of a layer's tree as dive builds it.
type leaf struct {
	size     int64
	hasChild bool
	whiteout bool
}

// treeSize adds up the declared sizes of n and everything below it, remembering each directory's in sizes.
func (w *walker) treeSize(n *vnode, sizes map[*vnode]int64) (int64, error) {
	if s, ok := sizes[n]; ok {
		return s, nil
	}
	if err := w.tick(); err != nil {
		return 0, err
	}
	s := n.size
	if n.linked {
		s = 0
	}
	for _, c := range n.children {
		cs, err := w.treeSize(c, sizes)
		if err != nil {
			return 0, err
		}
		s += cs
	}
	if n.isDir() {
		sizes[n] = s
	}
	return s, nil
}

// finish computes dive's figures, and the waste of the image as it runs: package-manager caches, temporary
// files and duplicate contents.
func (w *walker) finish() error {
	a := w.a
	for i, l := range a.Layers {
		a.SizeBytes += l.SizeBytes
		if i > 0 {
			a.UserSizeBytes += l.SizeBytes
		}
	}
	var minimum, discovered int64
	for p, d := range w.dive {
		if err := w.tick(); err != nil {
			return err
		}
		minimum += d.min
		discovered += d.cumulative
		if d.count >= 2 {
			a.WastedBytes += d.cumulative
			a.InefficientCount++
			a.Inefficient = append(a.Inefficient, InefficientPath{Path: p, Count: d.count, TotalBytes: d.cumulative})
		}
	}
	a.Efficiency = 1
	if discovered > 0 {
		a.Efficiency = float64(minimum) / float64(discovered)
	}
	if a.UserSizeBytes > 0 {
		a.UserWastedPercent = float64(a.WastedBytes) / float64(a.UserSizeBytes)
	}
	slices.SortFunc(a.Inefficient, func(x, y InefficientPath) int {
		return cmp.Or(cmp.Compare(y.TotalBytes, x.TotalBytes), cmp.Compare(x.Path, y.Path))
	})
	if len(a.Inefficient) > w.opts.MaxItems {
		a.Inefficient = slices.Clip(a.Inefficient[:w.opts.MaxItems])
	}

	// The image as it runs, in path order, so that the first copy of a content is the one kept.
	type file struct {
		path string
		n    *vnode
	}
	var files []file
	// The path is built in one buffer: only files get a string of their own.
	var buf []byte
	var collect func(n *vnode) error
	collect = func(n *vnode) error {
		if err := w.tick(); err != nil {
			return err
		}
		if n.typ == tar.TypeReg {
			files = append(files, file{string(buf), n})
		}
		for name, c := range n.children {
			l := len(buf)
			buf = append(append(buf, '/'), name...)
			if err := collect(c); err != nil {
				return err
			}
			buf = buf[:l]
		}
		return nil
	}
	if err := collect(w.root); err != nil {
		return err
	}
	slices.SortFunc(files, func(x, y file) int { return strings.Compare(x.path, y.path) })
	first := map[[sha256.Size]byte]string{}
	groups := map[string]*WastedItem{} // caches and temporary files, by the directory that names them
	seen := map[*body]bool{}
	for _, f := range files {
		a.Files++
		if f.n.body != nil {
			if seen[f.n.body] {
				continue // a hard link to a file already counted
			}
			seen[f.n.body] = true
		}
		a.ContentBytes += f.n.size
		if f.n.size == 0 {
			continue
		}
		if dir, kind, reason := leftover(f.path); kind != "" {
			key := kind + "\x00" + dir + "\x00" + fmt.Sprint(f.n.layer)
			g := groups[key]
			if g == nil {
				g = &WastedItem{Kind: kind, Path: dir, Layer: f.n.layer, Reason: reason}
				groups[key] = g
			}
			g.Bytes += f.n.size
			g.Files++
			continue
		}
		if !f.n.hashed {
			continue
		}
		if orig, ok := first[f.n.hash]; ok {
			w.waste(KindDuplicate, f.path, f.n.layer, f.n.size, 1, "the same content as "+orig)
			continue
		}
		first[f.n.hash] = f.path
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		g := groups[k]
		w.waste(g.Kind, g.Path, g.Layer, g.Bytes, g.Files, g.Reason)
	}
	w.trimItems()
	return nil
}

// leftovers are what package managers and builds leave behind: the directory, and why it is waste.
var leftovers = []struct{ dir, kind, reason string }{
	{"/var/lib/apt/lists", KindPackageCache, "apt's package lists: rm -rf /var/lib/apt/lists/* after installing"},
	{"/var/cache/apt", KindPackageCache, "apt's downloaded packages and caches: apt-get clean"},
	{"/var/cache/apk", KindPackageCache, "apk's cache: apk add --no-cache"},
	{"/var/cache/yum", KindPackageCache, "yum's cache: yum clean all"},
	{"/var/cache/dnf", KindPackageCache, "dnf's cache: dnf clean all"},
	{"/var/cache/debconf", KindPackageCache, "debconf's old templates"},
	{"/root/.cache/pip", KindPackageCache, "pip's cache: pip install --no-cache-dir"},
	{"/root/.npm", KindPackageCache, "npm's cache: npm cache clean --force, or a cache mount"},
	{"/usr/local/share/.cache/yarn", KindPackageCache, "yarn's cache: yarn cache clean"},
	{"/root/.cache/go-build", KindPackageCache, "Go's build cache: a cache mount, or a separate build stage"},
	{"/root/go/pkg/mod", KindPackageCache, "Go's module cache: a separate build stage"},
	{"/tmp", KindTemporary, "a temporary file left in the image"},
	{"/var/tmp", KindTemporary, "a temporary file left in the image"},
}

func leftover(p string) (dir, kind, reason string) {
	for _, l := range leftovers {
		if strings.HasPrefix(p, l.dir+"/") {
			if l.dir == "/var/lib/apt/lists" && p == "/var/lib/apt/lists/lock" {
				return "", "", ""
			}
			return l.dir, l.kind, l.reason
		}
	}
	return "", "", ""
}
