package inventory

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"

	"github.com/codomyrmex/containerization/errdefs"
)

// A layer reaches osv-scalibr through a filter that reads its tar stream once and passes on only what the
// extractors can use: directories, links, whiteouts, the os-release files, and the regular files some extractor
// requires, with their content. Everything else is left out, so scalibr's image copies a few megabytes to disk
// instead of the whole image, and every entry is checked on the way: names that leave the root, links that do,
// device files, sparse files and oversized files never reach scalibr, and names too long or too deep fail the
// layer.

// omitted is the target of placeholders. A placeholder is a dangling symlink that stands for a file the filter
// left out although an extractor would look at its path (too large, or an executable that is not a Go binary): it
// hides an older file at that path in a lower layer, as the real file would, and is never read, since the walk
// does not follow symlinks. Layers may not use this name.
const omitted = ".myrmex-omitted"

// opaqueMarker in a directory hides its content in lower layers.
const opaqueMarker = ".wh..wh..opq"

// goBuildInfoMagic starts the build information the Go linker writes into every binary since Go 1.13: what
// debug/buildinfo, and so the Go binary extractor, looks for.
const goBuildInfoMagic = "\xff Go buildinf:"

// osReleaseFiles are kept for Result.OS and for the OS extractors, which read them beside their database.
var osReleaseFiles = map[string]bool{"etc/os-release": true, "usr/lib/os-release": true}

const (
	maxOSReleaseSize    = 64 << 10
	maxWarningsPerLayer = 100
	// cheapDepth is the depth up to which an entry counts once in Options.MaxImageEntries; see entryCost.
	cheapDepth = 16
)

// layerSummary is what reading a layer leaves besides the filtered tar. It is cached with it.
type layerSummary struct {
	Warnings []string `json:"warnings,omitempty"` // without the layer's name, which Scan adds
	Unlisted int      `json:"unlisted,omitempty"` // warnings past maxWarningsPerLayer
	Entries  int      `json:"entries"`
	// Kept counts the entries passed on and the directories they imply without naming them, deep ones more (see
	// entryCost): what osv-scalibr holds of the layer, in each view of the image (see Options.MaxImageEntries).
	Kept int `json:"kept"`
	// Opaque are the directories whose content in lower layers this layer hides (.wh..wh..opq markers, which
	// osv-scalibr v0.5.3 takes for an ordinary whiteout, leaving the hidden files visible). See hide.
	Opaque []string `json:"opaque,omitempty"`
}

// filter reads one layer.
type filter struct {
	exts        []filesystem.Extractor
	maxFileSize int64
	maxEntries  int
	tempDir     string
	delivered   meter // the bytes the layer's files deliver to the filter
	views       int64 // the views of the image a kept entry goes into (see Options.MaxImageEntries)
	budget      *budget

	spool *os.File // the content of a possible Go binary while it is sniffed
	out   *recordingWriter
	sum   layerSummary
	dirs  map[string]bool // the directories the kept entries name or imply
}

// budget holds what the layers of one scan spend of the image-wide bounds.
type budget struct {
	read, delivered atomic.Int64 // bytes: of the uncompressed streams, and delivered by the layers' files
	maxBytes        int64        // MaxImageSize
	entries         atomic.Int64 // kept entries, once per view (MaxImageEntries)
	maxEntries      int64
}

// spend charges n entries, each in views views of the image, to the image's entry budget.
func (b *budget) spend(n, views int64) error {
	if b.entries.Add(n*views) > b.maxEntries {
		return fmt.Errorf("%w: more than %d entries across the views of the image (MaxImageEntries)", ErrLimitExceeded, b.maxEntries)
	}
	return nil
}

// meter counts bytes against a layer's bound (MaxLayerSize) and the image's (MaxImageSize).
type meter struct {
	what     string // what is counted, for the error
	n, max   int64
	image    *atomic.Int64
	maxImage int64
}

func (m *meter) add(n int) error {
	m.n += int64(n)
	if m.n > m.max {
		return fmt.Errorf("%w: more than %d bytes %s (MaxLayerSize)", ErrLimitExceeded, m.max, m.what)
	}
	if m.image.Add(int64(n)) > m.maxImage {
		return fmt.Errorf("%w: more than %d bytes %s across the image's layers (MaxImageSize)", ErrLimitExceeded, m.maxImage, m.what)
	}
	return nil
}

// metered reads a tar entry's content through a meter: a file delivers what its header says, which is more than
// the stream holds when the file is sparse.
type metered struct {
	r io.Reader
	m *meter
}

func (r metered) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if merr := r.m.add(n); merr != nil {
		return n, &readError{merr}
	}
	return n, err
}

// readError marks an error of the layer's own stream (I/O, a limit, cancellation) so that it is not reported as
// a malformed tar.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// source is the layer's uncompressed stream, bounded in size and cancelled with ctx. hash sees every byte. Its
// errors stick: readers such as io.ReadFull drop an error that comes with a full buffer, so run checks err once
// the tar is read.
type source struct {
	ctx  context.Context
	r    io.Reader
	m    meter
	hash io.Writer
	err  error
}

func (s *source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if err := s.ctx.Err(); err != nil {
		s.err = &readError{err}
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.hash.Write(p[:n])
	if merr := s.m.add(n); merr != nil {
		s.err = &readError{merr}
		return n, s.err
	}
	switch {
	case err == io.EOF:
		return n, err
	case err != nil:
		s.err = &readError{err}
		return n, s.err
	}
	return n, nil
}

// recordingWriter remembers the first write error, to tell a failed write (fatal) from a header that tar cannot
// encode (the entry is skipped).
type recordingWriter struct {
	w   io.Writer
	err error
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// run copies the useful part of the tar stream src to dst.
func (f *filter) run(src *source, dst io.Writer) error {
	defer func() {
		if f.spool != nil {
			f.spool.Close()
			os.Remove(f.spool.Name())
		}
	}()
	f.out = &recordingWriter{w: dst}
	tr := tar.NewReader(src)
	tw := tar.NewWriter(f.out)
	for {
		if err := src.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) { // names are checked below
			return f.readFailure(err)
		}
		f.sum.Entries++
		if f.sum.Entries > f.maxEntries {
			return fmt.Errorf("%w: more than %d entries (MaxEntries)", ErrLimitExceeded, f.maxEntries)
		}
		if err := checkNames(hdr); err != nil {
			return err
		}
		if err := f.entry(metered{tr, &f.delivered}, tw, hdr); err != nil {
			return err
		}
	}
	if src.err != nil {
		return f.readFailure(src.err)
	}
	if err := tw.Close(); err != nil {
		return f.writeFailure(err)
	}
	return nil
}

func (f *filter) readFailure(err error) error {
	if re, ok := errors.AsType[*readError](err); ok {
		return re.err
	}
	if f.out.err != nil {
		return f.out.err
	}
	return fmt.Errorf("%w: not a valid layer tar stream: %w", errdefs.ErrInvalidArgument, err)
}

func (f *filter) writeFailure(err error) error {
	if f.out.err != nil {
		return f.out.err
	}
	return err
}

func (f *filter) entry(tr io.Reader, tw *tar.Writer, hdr *tar.Header) error {
	name, bad := cleanName(hdr.Name)
	if bad != "" {
		f.warn(hdr.Name, bad)
		return nil
	}
	if name == "." {
		return nil
	}
	out := &tar.Header{Name: name, Mode: hdr.Mode & 0o7777, ModTime: time.Unix(0, 0)}
	switch base := path.Base(name); {
	case base == opaqueMarker:
		f.sum.Opaque = append(f.sum.Opaque, path.Dir(name))
		return nil
	case strings.HasPrefix(base, ".wh."): // a whiteout, whatever its type
		out.Typeflag = tar.TypeReg
	case hdr.Typeflag == tar.TypeDir:
		out.Typeflag = tar.TypeDir
	case hdr.Typeflag == tar.TypeSymlink:
		if bad := checkSymlink(name, hdr.Linkname); bad != "" {
			f.warn(hdr.Name, bad)
			return nil
		}
		out.Typeflag, out.Linkname = tar.TypeSymlink, hdr.Linkname
	case hdr.Typeflag == tar.TypeLink:
		// Hard link targets are relative to the root of the archive; scalibr resolves links against their
		// directory, so they go on absolute.
		target, bad := cleanName(hdr.Linkname)
		if bad == "" && target == "." {
			bad = "is the root"
		}
		if bad != "" {
			f.warn(hdr.Name, "hard link target "+bad)
			return nil
		}
		out.Typeflag, out.Linkname = tar.TypeLink, "/"+target
	case hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse:
		return f.regular(tr, tw, hdr, out)
	case hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock:
		f.warn(hdr.Name, "device file")
		return nil
	case hdr.Typeflag == tar.TypeFifo:
		f.warn(hdr.Name, "FIFO")
		return nil
	default:
		f.warn(hdr.Name, fmt.Sprintf("entry of tar type %q", hdr.Typeflag))
		return nil
	}
	_, err := f.writeHeader(tw, out, hdr.Name)
	return err
}

// regular passes on a regular file whose content an extractor needs, a placeholder for one it would need but
// cannot have, and nothing for the others.
func (f *filter) regular(tr io.Reader, tw *tar.Writer, hdr, out *tar.Header) error {
	name := out.Name
	limit := f.maxFileSize
	var required, goOnly bool
	if osReleaseFiles[name] {
		required, limit = true, maxOSReleaseSize
	} else {
		required, goOnly = f.required(name, hdr.FileInfo())
		if !required {
			// Asked again without the size: a file the extractors want by name but refuse for its size still
			// hides older copies of itself.
			probe := *hdr
			probe.Size = 0
			if required, _ = f.required(name, probe.FileInfo()); required {
				f.warn(hdr.Name, fmt.Sprintf("%d bytes, more than the extractor reads", hdr.Size))
				return f.placeholder(tw, out, hdr.Name)
			}
			return nil
		}
	}
	if isSparse(hdr) {
		f.warn(hdr.Name, "sparse file")
		return f.placeholder(tw, out, hdr.Name)
	}
	if hdr.Size > limit {
		f.warn(hdr.Name, fmt.Sprintf("%d bytes, more than the limit of %d", hdr.Size, limit))
		return f.placeholder(tw, out, hdr.Name)
	}
	var body io.Reader = tr
	if osReleaseFiles[name] {
		b, err := io.ReadAll(tr)
		if err != nil {
			return f.readFailure(err)
		}
		b = f.sanitizeOSRelease(hdr.Name, b)
		body, hdr.Size = bytes.NewReader(b), int64(len(b))
	}
	if goOnly {
		isGo, err := f.sniff(tr)
		if err != nil {
			return err
		}
		if !isGo {
			return f.placeholder(tw, out, hdr.Name)
		}
		body = f.spool
	}
	out.Typeflag, out.Size = tar.TypeReg, hdr.Size
	if ok, err := f.writeHeader(tw, out, hdr.Name); !ok {
		return err
	}
	if _, err := io.Copy(tw, body); err != nil {
		return f.readFailure(err)
	}
	return nil
}

// required tells whether an extractor wants the file, and whether the Go binary extractor alone does.
func (f *filter) required(name string, info fs.FileInfo) (required, goOnly bool) {
	api := fileAPI{path: name, info: info}
	goOnly = true
	for _, e := range f.exts {
		if e.FileRequired(api) {
			required = true
			goOnly = goOnly && e.Name() == gobinary.Name
		}
	}
	return required, required && goOnly
}

// sniff copies a file to the spool and reports whether it holds Go build information. Every executable and
// shared library is a candidate for the Go binary extractor; few are Go binaries.
func (f *filter) sniff(r io.Reader) (bool, error) {
	if f.spool == nil {
		var err error
		if f.spool, err = os.CreateTemp(f.tempDir, "myrmex-inventory-*"); err != nil {
			return false, fmt.Errorf("creating a spool file: %w", err)
		}
	}
	if err := f.spool.Truncate(0); err != nil {
		return false, err
	}
	if _, err := f.spool.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	var s goSniffer
	if _, err := io.Copy(io.MultiWriter(f.spool, &s), r); err != nil {
		return false, f.readFailure(err)
	}
	_, err := f.spool.Seek(0, io.SeekStart)
	return s.found, err
}

// sanitizeOSRelease drops the lines that osv-scalibr v0.5.3 cannot parse: it panics on a value that is a lone
// double quote (KEY="), and every OS extractor reads os-release.
func (f *filter) sanitizeOSRelease(raw string, b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	kept := lines[:0]
	for i, l := range lines {
		t := strings.TrimSpace(string(l))
		if _, v, ok := strings.Cut(t, "="); ok && v == `"` && !strings.HasPrefix(t, "#") {
			f.note(fmt.Sprintf("%q: line %d ignored: its value is a lone quote", raw, i+1))
			continue
		}
		kept = append(kept, l)
	}
	return bytes.Join(kept, []byte("\n"))
}

func (f *filter) placeholder(tw *tar.Writer, out *tar.Header, raw string) error {
	out.Typeflag, out.Linkname, out.Size, out.Mode = tar.TypeSymlink, "/"+omitted, 0, 0o777
	_, err := f.writeHeader(tw, out, raw)
	return err
}

// writeHeader skips an entry tar cannot encode (ok false, no error), and fails on a failed write or on an entry
// past the image's entry budget.
func (f *filter) writeHeader(tw *tar.Writer, hdr *tar.Header, raw string) (ok bool, err error) {
	if err := tw.WriteHeader(hdr); err != nil {
		if f.out.err != nil {
			return false, f.out.err
		}
		f.warn(raw, err.Error())
		return false, nil
	}
	if err := f.keep(hdr); err != nil {
		return false, err
	}
	return true, nil
}

// keep counts an entry passed on, with the directories above it that the layer has not named or implied yet:
// osv-scalibr makes a node of each, in the layer and in each view of the image it goes into.
func (f *filter) keep(hdr *tar.Header) error {
	if f.dirs == nil {
		f.dirs = map[string]bool{}
	}
	if hdr.Typeflag == tar.TypeDir {
		f.dirs[hdr.Name] = true
	}
	depth := strings.Count(hdr.Name, "/") + 1
	n := entryCost(depth)
	for d := hdr.Name; ; {
		i := strings.LastIndexByte(d, '/')
		if i < 0 || f.dirs[d[:i]] {
			break
		}
		d = d[:i]
		f.dirs[d] = true
		depth--
		n += entryCost(depth)
	}
	f.sum.Kept += n
	return f.budget.spend(int64(n), f.views)
}

// entryCost is what an entry depth components deep counts for in Options.MaxImageEntries: osv-scalibr spends
// time in the square of the depth on each entry, so past cheapDepth components it counts (depth/cheapDepth)².
func entryCost(depth int) int {
	if depth <= cheapDepth {
		return 1
	}
	return (depth*depth + cheapDepth*cheapDepth - 1) / (cheapDepth * cheapDepth)
}

// warn reports an entry left out.
func (f *filter) warn(name, why string) { f.note(fmt.Sprintf("%q skipped: %s", name, why)) }

func (f *filter) note(msg string) {
	if len(f.sum.Warnings) >= maxWarningsPerLayer {
		f.sum.Unlisted++
		return
	}
	f.sum.Warnings = append(f.sum.Warnings, msg)
}

// isSparse tells a GNU sparse file, of the old type or described by PAX records: its holes read as zeros the
// stream does not hold, so that a header of 512 bytes may deliver gigabytes.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// checkNames refuses, with a *NameError that fails the layer, an entry whose name or link target is longer
// than MaxPathBytes or deeper than MaxPathComponents: osv-scalibr's virtual filesystem spends time in the square
// of the depth on each entry, and in the cube on a layer of nested directories.
func checkNames(hdr *tar.Header) error {
	for _, name := range [...]struct{ what, s string }{{"name", hdr.Name}, {"link target", hdr.Linkname}} {
		n := strings.Count(path.Clean("/"+name.s), "/")
		if len(name.s) > MaxPathBytes || n > MaxPathComponents {
			return &NameError{Entry: hdr.Name[:min(len(hdr.Name), 64)], What: name.what, Bytes: len(name.s), Components: n}
		}
	}
	return nil
}

// cleanName returns a tar entry's name relative to the root, "." for the root itself, or why it is refused.
func cleanName(name string) (clean, bad string) {
	if strings.ContainsRune(name, 0) {
		return "", "name contains NUL"
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	switch {
	case p == ".." || strings.HasPrefix(p, "../"):
		return "", "path leaves the root"
	case p == omitted || strings.HasPrefix(p, omitted+"/"):
		return "", "name reserved by the scanner"
	}
	return p, ""
}

// checkSymlink refuses targets that leave the root, with the rule scalibr applies (which would otherwise drop the
// link silently): an absolute target is taken from the root, a relative one from the link's directory.
func checkSymlink(name, target string) string {
	switch {
	case target == "":
		return "symlink without a target"
	case strings.ContainsRune(target, 0):
		return "symlink target contains NUL"
	}
	const root = "r"
	var p string
	if path.IsAbs(target) {
		p = path.Join(root, target)
	} else {
		p = path.Join(root, path.Dir(name), target)
	}
	if p != root && !strings.HasPrefix(p, root+"/") {
		return fmt.Sprintf("symlink target %q leaves the root", target)
	}
	return ""
}

// fileAPI shows a tar entry to an extractor's FileRequired.
type fileAPI struct {
	path string
	info fs.FileInfo
}

func (a fileAPI) Path() string               { return a.path }
func (a fileAPI) Stat() (fs.FileInfo, error) { return a.info, nil }

// goSniffer looks for goBuildInfoMagic in what is written to it, across writes.
type goSniffer struct {
	tail  []byte
	found bool
}

func (s *goSniffer) Write(p []byte) (int, error) {
	const keep = len(goBuildInfoMagic) - 1
	if s.found {
		return len(p), nil
	}
	joint := append(s.tail, p[:min(len(p), keep)]...)
	if bytes.Contains(joint, []byte(goBuildInfoMagic)) || bytes.Contains(p, []byte(goBuildInfoMagic)) {
		s.found = true
		return len(p), nil
	}
	if len(p) >= keep {
		s.tail = append(s.tail[:0], p[len(p)-keep:]...)
	} else {
		s.tail = append(s.tail[:0], joint[max(0, len(joint)-keep):]...)
	}
	return len(p), nil
}

// hide copies the filtered tar stream r without the entries under dirs, the opaque directories of the layers
// above. It stands in for osv-scalibr, which builds the image's filesystem from the top layer down and would
// keep them. A hidden file is then missing from every layer's view, not only from the layers above the marker:
// a package reinstalled at the same path by the layer with the marker is attributed to that layer.
func hide(ctx context.Context, r io.Reader, w io.Writer, dirs map[string]bool) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if under(hdr.Name, dirs) {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// under tells whether name lies in one of dirs, "." holding everything: a look-up per parent of name, whatever
// the number of dirs.
func under(name string, dirs map[string]bool) bool {
	if dirs["."] {
		return true
	}
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
		if dirs[name[:i]] {
			return true
		}
	}
	return false
}
