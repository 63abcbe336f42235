package optimize

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/ctxio"
	"github.com/codomyrmex/containerization/scan/compliance"
)

// MaxELFSize is the largest executable or library whose dependencies Rewrite reads (larger ones are kept, their
// dependencies found by the profile alone).
const MaxELFSize = 256 << 20

// Reasons a path leaves the image, in RewriteResult.Removed.
const (
	ReasonPackageCache = "package_cache" // package-manager caches and lists
	ReasonTemporary    = "temporary"     // /tmp and /var/tmp
	ReasonUnused       = "unused"        // not used by the probe, nor needed by what it used
	ReasonDropped      = "dropped"       // a path the caller asked to drop
	ReasonSecurity     = "security"      // a tool or file Harden removed (Changes says why)
)

// RewriteOptions say what Rewrite keeps. The zero value is a lossless rewrite: one layer holding the image's
// filesystem as it runs, without the data later layers hid or deleted, package-manager caches and lists, and
// temporary files.
type RewriteOptions struct {
	// Bounds on what the image may make Rewrite read (those of Analyze).
	Limits AnalyzeOptions
	// Profile, when set, minifies: only the paths it holds stay, with what they need (see Minify).
	Profile *Profile
	// Keep are paths (and everything under them) that stay whatever the profile says.
	Keep []string
	// Drop are paths (and everything under them) that go, whatever the profile says.
	Drop []string
	// DropLayers are indexes of layers whose changes are left out, as if the image had been built without them.
	DropLayers []int
	// KeepCaches keeps package-manager caches and temporary files.
	KeepCaches bool
	// CreatedBy is the history entry of the new layer.
	CreatedBy string
	// TempDir holds the new layer while the image is in use; empty means os.TempDir().
	TempDir string
	// Harden, when set, makes the security changes it names (see Hardening).
	Harden *Hardening
	// Record, when set, is written into the new image's labels (see [Record]) with the rewrite's counts filled
	// in: the original it names, its type.
	Record *Record
}

// Profile is what a profiling run saw the container use: paths of its filesystem, each read, executed or listed.
type Profile struct {
	Files map[string]string `json:"files"`
}

// RewriteResult is the new image and what changed.
type RewriteResult struct {
	Image v1.Image `json:"-"`
	// Removed sums up what left, by reason; Paths lists the largest removed paths (at most Limits.MaxItems).
	Removed       []Removal `json:"removed"`
	LayersBefore  int       `json:"layers_before"`
	LayersAfter   int       `json:"layers_after"`
	FilesBefore   int       `json:"files_before"`
	FilesAfter    int       `json:"files_after"`
	ContentBefore int64     `json:"content_bytes_before"` // bytes of the files the image holds as it runs
	ContentAfter  int64     `json:"content_bytes_after"`
	// Added are paths a profile did not name but Rewrite kept because a kept binary needs them (ELF
	// interpreter and libraries) or the configuration does (entrypoint, users, name service…).
	Added int `json:"added_by_dependencies"`
	// Minified is whether a profile chose the files (else the rewrite was lossless).
	Minified bool `json:"minified"`
	// Changes are the security changes Harden made, each with its reason.
	Changes []Change `json:"changes,omitempty"`
	// User is the user the image now runs as, when Harden changed it.
	User string `json:"user,omitempty"`
	file string
}

// Removal is what left the image for one reason.
type Removal struct {
	Reason string   `json:"reason"`
	Files  int      `json:"files"`
	Bytes  int64    `json:"bytes"`
	Paths  []string `json:"paths,omitempty"` // the largest, at most Limits.MaxItems
}

// Close removes the new layer's file: call it once the image has been written elsewhere.
func (r *RewriteResult) Close() error {
	if r == nil || r.file == "" {
		return nil
	}
	err := os.Remove(r.file)
	r.file = ""
	return err
}

// linkKey is a hard link's target in the layer that holds the link.
type linkKey struct {
	layer  int
	seq    int
	target string
}

// node is a path of the filesystem the rewritten layers make.
type node struct {
	hdr      *tar.Header // without content; nil for a directory that no kept layer names
	layer    int
	seq      int // the entry's position in its layer's stream
	linkSeq  int // a hard link's target: the position of the entry it names in the same layer, -1 if none before it
	children map[string]*node
	elf      *elfInfo
	keep     bool
	reason   string
	// content is the body of an account file (/etc/passwd, /etc/group), read for Harden; edited says the new
	// layer holds content rather than the layer's body (synth: a file no layer holds).
	content       []byte
	edited, synth bool
}

type elfInfo struct {
	interp  string
	needed  []string
	runpath []string
}

func (n *node) isDir() bool { return n.children != nil }

type rewriter struct {
	ctx      context.Context
	opts     RewriteOptions
	lim      AnalyzeOptions
	root     *node
	cfg      *v1.ConfigFile
	layers   []v1.Layer
	skip     map[int]bool
	remove   map[string]string // path → why Harden removes it
	stripID  bool
	changes  *[]Change
	listed   int // path changes listed, and those past maxChanges
	unlisted int
	user     string
	entries  int
	bytes    int64
	declared int64 // sizes the entries declare (a sparse file's stream is smaller than what it writes)
	visits   int
}

// Rewrite makes a new image of one layer from img's filesystem as it runs, leaving out what opts say: see
// RewriteOptions. The configuration (entrypoint, command, environment, user, ports, health check…) is img's.
// img itself is only read. Errors wrap ErrInvalidArgument for a hostile or malformed image (ErrLimitExceeded
// past a bound).
func Rewrite(ctx context.Context, img v1.Image, opts RewriteOptions) (*RewriteResult, error) {
	lim, err := opts.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing the image's layers: %w", err)
	}
	if len(layers) > lim.MaxLayers {
		return nil, fmt.Errorf("%w: %d layers, more than %d (MaxLayers)", ErrLimitExceeded, len(layers), lim.MaxLayers)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image's configuration: %w", err)
	}
	r := &rewriter{ctx: ctx, opts: opts, lim: lim, root: &node{children: map[string]*node{}}, cfg: cfg, layers: layers, skip: map[int]bool{}}
	for _, i := range opts.DropLayers {
		if i < 0 || i >= len(layers) {
			return nil, fmt.Errorf("%w: no layer %d (the image has %d)", errdefs.ErrInvalidArgument, i, len(layers))
		}
		r.skip[i] = true
	}
	for _, p := range append(slices.Clone(opts.Keep), opts.Drop...) {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("%w: %q is not an absolute path", errdefs.ErrInvalidArgument, p)
		}
	}
	for i, l := range layers {
		if r.skip[i] {
			continue
		}
		if err := r.index(i, l); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	res := &RewriteResult{LayersBefore: len(layers), LayersAfter: 1, Minified: opts.Profile != nil}
	if opts.Harden != nil {
		if err := r.harden(res); err != nil {
			return nil, err
		}
	}
	if err := r.choose(res); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(opts.TempDir, "myrmex-layer-*.tar")
	if err != nil {
		return nil, fmt.Errorf("creating the new layer: %w", err)
	}
	res.file = f.Name()
	err = r.write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = res.Close()
		return nil, err
	}
	if r.unlisted > 0 {
		res.Changes = append(res.Changes, Change{Change: fmt.Sprintf("%d more changes", r.unlisted),
			Reason: fmt.Sprintf("not listed: at most %d are", maxChanges)})
	}
	out, err := r.image(res.file, res)
	if err != nil {
		_ = res.Close()
		return nil, err
	}
	res.Image = out
	return res, nil
}

func (r *rewriter) tick() error {
	if r.visits++; r.visits%4096 == 0 {
		return r.ctx.Err()
	}
	return nil
}

// lookup finds p (cleaned, absolute) in the tree, without following links.
func (r *rewriter) lookup(p string) *node {
	n := r.root
	if p == "/" {
		return n
	}
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if n.children == nil {
			return nil
		}
		if n = n.children[part]; n == nil {
			return nil
		}
	}
	return n
}

func (r *rewriter) mkdirs(p string, layer int) (*node, error) {
	n := r.root
	if p == "/" {
		return n, nil
	}
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		c := n.children[part]
		if c == nil || !c.isDir() {
			if r.entries++; r.entries > r.lim.MaxImageEntries {
				return nil, fmt.Errorf("%w: more than %d entries (MaxImageEntries)", ErrLimitExceeded, r.lim.MaxImageEntries)
			}
			c = &node{children: map[string]*node{}, layer: layer}
			n.children[part] = c
		}
		n = c
	}
	return n, nil
}

// index lays layer i over the tree: its whiteouts first, then its entries (headers only; executables and
// libraries are read for their dependencies).
func (r *rewriter) index(i int, l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	cr := &countingReader{r: ctxio.Reader{Ctx: r.ctx, R: rc}}
	tr := tar.NewReader(cr)
	type pending struct {
		p       string
		hdr     *tar.Header
		elf     *elfInfo
		content []byte
	}
	var entries []pending
	var declared int64
	lastAccount := map[string]int{} // account file → its latest entry: only that one's body is kept
	for {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return streamErr(r.ctx, err)
		}
		if hdr.Size > 0 {
			declared += min(hdr.Size, r.lim.MaxLayerSize+1)
		}
		if err := r.charge(cr.n, declared, hdr, len(entries)); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		}
		p, err := compliance.CleanName(hdr.Name)
		if err != nil {
			return err
		}
		if base, ok := strings.CutPrefix(path.Base(p), whiteoutPrefix); ok && (base == "" || base == "." || base == "..") {
			return fmt.Errorf("%w: %q is not a whiteout of anything", errdefs.ErrInvalidArgument, hdr.Name)
		}
		h, err := cleanHeader(hdr)
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeSymlink && len(h.Linkname) >= compliance.MaxNameBytes {
			return fmt.Errorf("%w: %q is a symbolic link of %d bytes, past PATH_MAX", errdefs.ErrInvalidArgument, p, len(h.Linkname))
		}
		if h.Typeflag == tar.TypeLink {
			if h.Linkname, err = compliance.CleanName(hdr.Linkname); err != nil {
				return err
			}
		}
		e := pending{p: p, hdr: h}
		if accountFiles[p] {
			if j, ok := lastAccount[p]; ok {
				entries[j].content = nil // a later entry replaces it: its body is never used
			}
			lastAccount[p] = len(entries)
		}
		if h.Typeflag == tar.TypeReg && accountFiles[p] && h.Size <= maxAccountFile {
			e.content = make([]byte, h.Size)
			if _, err := io.ReadFull(tr, e.content); err != nil {
				return fmt.Errorf("%s: %w", p, streamErr(r.ctx, err))
			}
		} else if h.Typeflag == tar.TypeReg && h.Size >= 4 && h.Size <= MaxELFSize {
			e.elf, err = readELF(tr, h.Size)
			if err != nil {
				return fmt.Errorf("%s: %w", p, streamErr(r.ctx, err))
			}
		}
		entries = append(entries, e)
	}
	r.bytes += cr.n
	r.declared += declared
	for _, e := range entries { // whiteouts hide what the layers below hold, wherever they are in the stream
		if err := r.tick(); err != nil {
			return err
		}
		dir, base := path.Split(e.p)
		switch {
		case base == opaqueMarker:
			if n := r.lookup(path.Clean(dir)); n != nil && n.isDir() {
				clear(n.children)
			}
		case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
		case strings.HasPrefix(base, whiteoutPrefix):
			if n := r.lookup(path.Clean(dir)); n != nil && n.isDir() {
				delete(n.children, strings.TrimPrefix(base, whiteoutPrefix))
			}
		}
	}
	last := map[string]int{} // name → position of its latest entry so far in this layer
	for seq, e := range entries {
		if err := r.tick(); err != nil {
			return err
		}
		if strings.HasPrefix(path.Base(e.p), whiteoutPrefix) {
			continue
		}
		linkSeq := -1
		if e.hdr.Typeflag == tar.TypeLink {
			if s, ok := last[e.hdr.Linkname]; ok {
				linkSeq = s
			}
		}
		last[e.p] = seq
		if e.p == "/" {
			if e.hdr.Typeflag == tar.TypeDir {
				r.root.hdr, r.root.layer = e.hdr, i
			}
			continue
		}
		parent, err := r.mkdirs(path.Dir(e.p), i)
		if err != nil {
			return err
		}
		name := path.Base(e.p)
		old := parent.children[name]
		if old == nil {
			if r.entries++; r.entries > r.lim.MaxImageEntries {
				return fmt.Errorf("%w: more than %d entries (MaxImageEntries)", ErrLimitExceeded, r.lim.MaxImageEntries)
			}
		}
		n := &node{hdr: e.hdr, layer: i, elf: e.elf, content: e.content, seq: seq, linkSeq: linkSeq}
		if e.hdr.Typeflag == tar.TypeDir {
			n.children = map[string]*node{}
			if old != nil && old.isDir() {
				n.children = old.children // a directory over a directory keeps what is inside
			}
		}
		parent.children[name] = n
	}
	return nil
}

// charge counts an entry against the bounds.
func (r *rewriter) charge(read, declared int64, hdr *tar.Header, inLayer int) error {
	switch {
	case hdr.Size < 0:
		return fmt.Errorf("%w: entry %q declares a negative size", errdefs.ErrInvalidArgument, hdr.Name)
	case inLayer >= r.lim.MaxEntries:
		return fmt.Errorf("%w: more than %d entries in the layer (MaxEntries)", ErrLimitExceeded, r.lim.MaxEntries)
	case read+hdr.Size > r.lim.MaxLayerSize || declared > r.lim.MaxLayerSize:
		return fmt.Errorf("%w: the layer holds more than %d bytes (MaxLayerSize)", ErrLimitExceeded, r.lim.MaxLayerSize)
	case r.bytes+read+hdr.Size > r.lim.MaxImageSize || r.declared+declared > r.lim.MaxImageSize:
		return fmt.Errorf("%w: the image holds more than %d bytes (MaxImageSize)", ErrLimitExceeded, r.lim.MaxImageSize)
	}
	return nil
}

// cleanHeader is the part of a header the new layer keeps: no sparse maps (bodies are written whole), and no
// access or change times (the rewrite is reproducible from the same input).
func cleanHeader(h *tar.Header) (*tar.Header, error) {
	// What the new layer cannot encode, or what the kernel would not hold, is refused (and not kept in memory).
	switch {
	case h.Devmajor < 0 || h.Devmajor >= 1<<21 || h.Devminor < 0 || h.Devminor >= 1<<21:
		return nil, fmt.Errorf("%w: %q: device numbers %d,%d", errdefs.ErrInvalidArgument, h.Name, h.Devmajor, h.Devminor)
	case len(h.Uname) > 256 || len(h.Gname) > 256:
		return nil, fmt.Errorf("%w: %q: a user or group name past 256 bytes", errdefs.ErrInvalidArgument, h.Name)
	}
	out := &tar.Header{
		Typeflag: h.Typeflag, Linkname: h.Linkname, Mode: h.Mode & 0o7777, Uid: h.Uid, Gid: h.Gid, Uname: h.Uname,
		Gname: h.Gname, Size: h.Size, ModTime: h.ModTime, Devmajor: h.Devmajor, Devminor: h.Devminor,
		Format: tar.FormatPAX,
	}
	switch out.Typeflag {
	case tar.TypeRegA, tar.TypeGNUSparse:
		out.Typeflag = tar.TypeReg
	}
	if out.Typeflag != tar.TypeReg {
		out.Size = 0
	}
	xattrs := 0
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") { // file capabilities, SELinux labels, ACLs
			if xattrs += len(k) + len(v); xattrs > 64<<10 { // XATTR_LIST_MAX, XATTR_SIZE_MAX
				return nil, fmt.Errorf("%w: %q: extended attributes past 64 KiB", errdefs.ErrInvalidArgument, h.Name)
			}
			if out.PAXRecords == nil {
				out.PAXRecords = map[string]string{}
			}
			out.PAXRecords[k] = v
		}
	}
	return out, nil
}

// readELF reads a regular file's body and, when it is an ELF object, its interpreter and dependencies.
func readELF(r io.Reader, size int64) (*elfInfo, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, err
	}
	if string(magic[:]) != elf.ELFMAG {
		return nil, nil
	}
	body := make([]byte, size)
	copy(body, magic[:])
	if _, err := io.ReadFull(r, body[4:]); err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(body))
	if err != nil {
		return nil, nil // not an object the loader would take either
	}
	defer f.Close()
	info := &elfInfo{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, min(p.Filesz, 4096))
			if _, err := p.ReadAt(b, 0); err == nil {
				info.interp = strings.TrimRight(string(b), "\x00")
			}
		}
	}
	dyn := dynStrings(f, body)
	info.needed = dyn[elf.DT_NEEDED]
	for _, s := range append(dyn[elf.DT_RUNPATH], dyn[elf.DT_RPATH]...) {
		for _, d := range strings.Split(s, ":") {
			if len(info.runpath) < maxRunpath && !slices.Contains(info.runpath, d) {
				info.runpath = append(info.runpath, d)
			}
		}
	}
	return info, nil
}

// Bounds of what readELF takes from an object's dynamic section.
const (
	maxNeeded  = 4096
	maxRunpath = 64
)

// dynStrings reads the DT_NEEDED, DT_RUNPATH and DT_RPATH strings of f (whose bytes are body) from the bytes the
// section headers name, never through debug/elf's Section.Data: that decompresses SHF_COMPRESSED and .zdebug
// sections to the size their header claims, which the loader never reads anyway. Each name is distinct, at most
// MaxNameBytes long, and at most maxNeeded of them are kept.
func dynStrings(f *elf.File, body []byte) map[elf.DynTag][]string {
	raw := func(s *elf.Section) []byte {
		if s.Flags&elf.SHF_COMPRESSED != 0 || s.Type == elf.SHT_NOBITS || s.Offset > uint64(len(body)) || s.FileSize > uint64(len(body))-s.Offset {
			return nil
		}
		return body[s.Offset : s.Offset+s.FileSize]
	}
	ds := f.SectionByType(elf.SHT_DYNAMIC)
	if ds == nil || int(ds.Link) <= 0 || int(ds.Link) >= len(f.Sections) {
		return nil
	}
	d, str := raw(ds), raw(f.Sections[ds.Link])
	size := 8
	if f.Class == elf.ELFCLASS64 {
		size = 16
	}
	out := map[elf.DynTag][]string{}
	seen := map[string]bool{}
	for n := 0; len(d) >= size && n < 1<<20; n, d = n+1, d[size:] {
		var tag elf.DynTag
		var v uint64
		if size == 16 {
			tag, v = elf.DynTag(f.ByteOrder.Uint64(d)), f.ByteOrder.Uint64(d[8:])
		} else {
			tag, v = elf.DynTag(f.ByteOrder.Uint32(d)), uint64(f.ByteOrder.Uint32(d[4:]))
		}
		if tag == elf.DT_NULL {
			break
		}
		if tag != elf.DT_NEEDED && tag != elf.DT_RUNPATH && tag != elf.DT_RPATH || v >= uint64(len(str)) {
			continue
		}
		s := str[v:min(uint64(len(str)), v+compliance.MaxNameBytes)]
		end := bytes.IndexByte(s, 0)
		if end < 0 || len(out[tag]) >= maxNeeded || seen[string(s[:end])] {
			continue
		}
		seen[string(s[:end])] = true
		out[tag] = append(out[tag], string(s[:end]))
	}
	return out
}

// walk calls fn for every node under n, parents before children, in name order.
func walk(n *node, p string, fn func(string, *node) error) error {
	if err := fn(p, n); err != nil {
		return err
	}
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := walk(n.children[name], path.Join(p, name), fn); err != nil {
			return err
		}
	}
	return nil
}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		d = path.Clean(d)
		if p == d || d == "/" || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// choose marks the paths that stay, and counts what goes.
func (r *rewriter) choose(res *RewriteResult) error {
	drop := map[string]string{} // path → reason, for the files that go
	keepCache := r.opts.KeepCaches
	err := walk(r.root, "/", func(p string, n *node) error {
		if err := r.tick(); err != nil {
			return err
		}
		n.keep = true
		if n.isDir() {
			return nil
		}
		res.FilesBefore++
		res.ContentBefore += n.size()
		_, kind, _ := leftover(p)
		switch {
		case under(p, r.opts.Drop):
			n.keep, n.reason = false, ReasonDropped
		case under(p, r.opts.Keep):
		case r.remove[p] != "":
			n.keep, n.reason = false, ReasonSecurity
		case kind == KindPackageCache && !keepCache && !strings.HasPrefix(p, "/var/cache/debconf/"):
			n.keep, n.reason = false, ReasonPackageCache
		case kind == KindTemporary && !keepCache:
			n.keep, n.reason = false, ReasonTemporary
		case r.opts.Profile != nil:
			n.keep, n.reason = false, ReasonUnused // until the profile or a dependency keeps it
		}
		if !n.keep {
			drop[p] = n.reason
		}
		return nil
	})
	if err != nil {
		return err
	}
	if r.opts.Profile != nil {
		if err := r.minify(drop, res); err != nil {
			return err
		}
	}
	sums := map[string]*Removal{}
	type item struct {
		p    string
		size int64
	}
	lists := map[string][]item{}
	for p, reason := range drop {
		n := r.lookup(p)
		if n == nil || n.keep {
			continue
		}
		s := sums[reason]
		if s == nil {
			s = &Removal{Reason: reason}
			sums[reason] = s
		}
		s.Files++
		s.Bytes += n.size()
		lists[reason] = append(lists[reason], item{p, n.size()})
	}
	for _, reason := range []string{ReasonPackageCache, ReasonTemporary, ReasonDropped, ReasonSecurity, ReasonUnused} {
		s := sums[reason]
		if s == nil {
			continue
		}
		items := lists[reason]
		slices.SortFunc(items, func(a, b item) int { return cmp.Or(cmp.Compare(b.size, a.size), strings.Compare(a.p, b.p)) })
		for _, it := range items[:min(len(items), r.lim.MaxItems)] {
			s.Paths = append(s.Paths, it.p)
		}
		res.Removed = append(res.Removed, *s)
	}
	return walk(r.root, "/", func(p string, n *node) error {
		if !n.isDir() && n.keep {
			res.FilesAfter++
			res.ContentAfter += n.size()
		}
		return nil
	})
}

func (n *node) size() int64 {
	if n.hdr == nil || n.hdr.Typeflag != tar.TypeReg {
		return 0
	}
	return n.hdr.Size
}

// image makes the new image: img's configuration (with the record's labels), the one new layer, a history of
// one entry.
func (r *rewriter) image(file string, res *RewriteResult) (v1.Image, error) {
	layer, err := tarball.LayerFromFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the new layer: %w", err)
	}
	cf := r.cfg.DeepCopy()
	if r.user != "" {
		cf.Config.User = r.user
	}
	if r.opts.Record != nil {
		rec := *r.opts.Record
		rec.LayersBefore, rec.LayersAfter, rec.FilesBefore, rec.FilesAfter = res.LayersBefore, res.LayersAfter, res.FilesBefore, res.FilesAfter
		rec.ContentBefore, rec.ContentAfter, rec.Minified = res.ContentBefore, res.ContentAfter, res.Minified
		labels := map[string]string{}
		for k, v := range cf.Config.Labels {
			if !strings.HasPrefix(k, LabelPrefix) { // an optimized image optimized again records its last optimization
				labels[k] = v
			}
		}
		maps.Copy(labels, rec.Labels())
		cf.Config.Labels = labels
	}
	cf.RootFS = v1.RootFS{Type: "layers"}
	cf.History = nil
	cf.Created = v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	base, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: cf.Created, CreatedBy: cmp.Or(r.opts.CreatedBy, "myrmex optimize"), Comment: "myrmex optimize",
	}})
}

// write writes the kept paths as one layer: the directories and the entries without a body first (from the
// index), then the bodies, layer by layer from the bottom (read again).
func (r *rewriter) write(w io.Writer) error {
	tw := tar.NewWriter(w)
	// Hard links whose target is not written under the same name in the same layer are written as files.
	materialize := map[linkKey][]string{}
	err := walk(r.root, "/", func(p string, n *node) error {
		if err := r.tick(); err != nil {
			return err
		}
		if !n.keep {
			return nil
		}
		if n.isDir() {
			if p == "/" {
				return nil
			}
			h := &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX}
			if n.hdr != nil {
				h = clone(n.hdr)
			}
			h.Name = strings.TrimPrefix(p, "/") + "/"
			return tw.WriteHeader(h)
		}
		switch n.hdr.Typeflag {
		case tar.TypeReg:
			if n.edited { // written whole from what Harden made of it
				h := r.fileHeader(n.hdr, p)
				h.Name, h.Size = strings.TrimPrefix(p, "/"), int64(len(n.content))
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				_, err := tw.Write(n.content)
				return err
			}
			return nil
		case tar.TypeLink:
			if !r.linkable(n) {
				k := linkKey{n.layer, n.linkSeq, n.hdr.Linkname}
				materialize[k] = append(materialize[k], p)
			}
			return nil
		}
		h := clone(n.hdr)
		h.Name = strings.TrimPrefix(p, "/")
		return tw.WriteHeader(h)
	})
	if err != nil {
		return err
	}
	for i, l := range r.layers {
		if r.skip[i] {
			continue
		}
		if err := r.bodies(i, l, tw, materialize); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	for k, names := range materialize {
		return fmt.Errorf("%w: %s in layer %d is a hard link to %s, which the layer does not hold", errdefs.ErrInvalidArgument, names[0], k.layer, k.target)
	}
	return tw.Close()
}

// linkable is whether a hard link is written as one: the entry it names, in its own layer, is the one kept.
func (r *rewriter) linkable(n *node) bool {
	t := r.lookup(n.hdr.Linkname)
	return t != nil && t.keep && t.layer == n.layer && t.seq == n.linkSeq && t.hdr != nil && t.hdr.Typeflag == tar.TypeReg
}

func clone(h *tar.Header) *tar.Header {
	c := *h
	return &c
}

func (r *rewriter) bodies(i int, l v1.Layer, tw *tar.Writer, materialize map[linkKey][]string) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(ctxio.Reader{Ctx: r.ctx, R: rc})
	for seq := -1; ; {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return streamErr(r.ctx, err)
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			continue
		}
		seq++ // as index counts
		p, err := compliance.CleanName(hdr.Name)
		if err != nil {
			return err
		}
		n := r.lookup(p)
		final := n != nil && n.keep && n.layer == i && n.seq == seq && n.hdr != nil && !n.edited
		typ := hdr.Typeflag
		if typ == tar.TypeRegA || typ == tar.TypeGNUSparse {
			typ = tar.TypeReg
		}
		switch {
		case typ == tar.TypeReg:
			copies := materialize[linkKey{i, seq, p}]
			delete(materialize, linkKey{i, seq, p})
			if !final && len(copies) == 0 {
				continue
			}
			var names []string
			if final && n.hdr.Typeflag == tar.TypeReg {
				names = append(names, p)
			}
			names = append(names, copies...)
			if err := r.writeBody(tw, tr, hdr, names); err != nil {
				return err
			}
		case typ == tar.TypeLink && final:
			link, _ := compliance.CleanName(hdr.Linkname)
			if r.linkable(n) {
				h := r.fileHeader(n.hdr, p) // the engine gives a hard link's mode to the inode it shares
				h.Name, h.Linkname, h.Size = strings.TrimPrefix(p, "/"), strings.TrimPrefix(link, "/"), 0
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
			}
		}
	}
}

// writeBody writes a body under its names: the first as the file, the others as hard links to it (a body read
// once, spooled when it has several names).
func (r *rewriter) writeBody(tw *tar.Writer, body io.Reader, hdr *tar.Header, names []string) error {
	if len(names) == 0 {
		return nil
	}
	first := names[0]
	n := r.lookup(first)
	h, err := cleanHeader(hdr)
	if err != nil {
		return err
	}
	if n != nil && n.hdr != nil && n.hdr.Typeflag == tar.TypeReg {
		h = n.hdr
	}
	h = r.fileHeader(h, first)
	h.Name, h.Size = strings.TrimPrefix(first, "/"), hdr.Size
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := io.Copy(tw, body); err != nil {
		return streamErr(r.ctx, err)
	}
	for _, other := range names[1:] {
		lh := &tar.Header{Typeflag: tar.TypeLink, Name: strings.TrimPrefix(other, "/"), Linkname: strings.TrimPrefix(first, "/"),
			Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime, Format: tar.FormatPAX}
		if ln := r.lookup(other); ln != nil && ln.hdr != nil {
			lh.Mode, lh.Uid, lh.Gid = ln.hdr.Mode, ln.hdr.Uid, ln.hdr.Gid
		}
		lh = r.fileHeader(lh, other) // the engine gives a hard link's mode to the inode it shares
		if err := tw.WriteHeader(lh); err != nil {
			return err
		}
	}
	return nil
}
