package compliance

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/ctxio"
)

// Bounds on the name of a layer entry, once cleaned against the root. Linux takes no path longer than PATH_MAX
// (4096 bytes) in a system call, and real images nest a few dozen directories at most: a name past either bound
// is broken or hostile, and Check refuses the image with a *NameError rather than walk it (the walk's work on a
// name grows with its length, its removal recurses as deep as it goes).
const (
	MaxNameBytes = 4096 // bytes of a name, with its leading slash
	MaxNameDepth = 256  // components of a name
)

// NameError is a layer entry, or the target of a hard link, whose name is longer than MaxNameBytes or deeper
// than MaxNameDepth. It wraps errdefs.ErrInvalidArgument.
type NameError struct {
	Name  string // the start of the name, at most 64 bytes
	Bytes int    // the length of the cleaned name
	Depth int    // the number of its components
}

func (e *NameError) Error() string {
	return fmt.Sprintf("entry name %q… of %d bytes in %d components is past the bounds of %d bytes and %d components",
		e.Name, e.Bytes, e.Depth, MaxNameBytes, MaxNameDepth)
}

func (e *NameError) Unwrap() error { return errdefs.ErrInvalidArgument }

// CleanName cleans a tar name against the root, which keeps a hostile "../../x" inside the image's tree
// (nothing is written), and checks it against the bounds: past them, a *NameError.
func CleanName(name string) (string, error) {
	p := path.Clean("/" + name)
	if depth := strings.Count(p, "/"); len(p) > MaxNameBytes || depth > MaxNameDepth {
		return "", &NameError{Name: p[:min(len(p), 64)], Bytes: len(p), Depth: depth}
	}
	return p, nil
}

// entry is what the checks need to know about one path of the merged filesystem. Paths that no check cares
// about are not kept at all.
type entry struct {
	setid    fs.FileMode // fs.ModeSetuid and/or fs.ModeSetgid, on a regular file
	perm     fs.FileMode
	secret   string // why the file looks like it holds a secret; empty when it does not
	unneeded bool   // a file or directory that has no business in an image (DKL-LI-0003)
	aptCache bool   // a file apt-get clean or rm -rf /var/lib/apt/lists/* would have removed
	data     []byte // the content of /etc/passwd, /etc/shadow or /etc/group, up to the size bound
}

func (e entry) kept() bool {
	return e.setid != 0 || e.secret != "" || e.unneeded || e.aptCache || e.data != nil
}

// files is the part of the image's merged filesystem that the checks look at.
type files struct {
	entries map[string]entry
	// root is a radix tree of the paths that are, or were, in entries. A whiteout or an opaque directory finds
	// there what it hides, so that a deletion costs what it deletes, not a search of every path; a path adds at
	// most two nodes, whatever its depth.
	root node
	// looked counts the nodes removeBelow went through, for the tests.
	looked int
}

// node is a path of the tree. Its label is the components that lead to it from its parent ("usr/lib"): a chain
// of directories with one child each is one node.
type node struct {
	label    string
	kept     bool             // the path was put in entries (it may have left them since)
	children map[string]*node // by the first component of their label
}

func newFiles() *files {
	return &files{entries: map[string]entry{}}
}

func (f *files) put(p string, e entry) {
	f.entries[p] = e
	n, rest := &f.root, p[1:]
	for {
		key := firstComponent(rest)
		c := n.children[key]
		if c == nil {
			if n.children == nil {
				n.children = map[string]*node{}
			}
			n.children[key] = &node{label: rest, kept: true}
			return
		}
		l := sharedComponents(c.label, rest)
		if l < len(c.label) { // the components they share become c's parent
			mid := &node{label: c.label[:l], children: map[string]*node{}}
			c.label = c.label[l+1:]
			mid.children[firstComponent(c.label)] = c
			n.children[key] = mid
			c = mid
		}
		if l == len(rest) {
			c.kept = true
			return
		}
		n, rest = c, rest[l+1:]
	}
}

// removeBelow forgets every path below dir (not dir itself).
func (f *files) removeBelow(ctx context.Context, dir string) error {
	n, rest := &f.root, dir[1:]
	for rest != "" {
		key := firstComponent(rest)
		c := n.children[key]
		if c == nil {
			return nil
		}
		switch l := sharedComponents(c.label, rest); {
		case l == len(c.label):
			n, rest = c, rest[min(l+1, len(rest)):]
		case l == len(rest): // dir ends inside c's label: c and what is below it lie below dir
			delete(n.children, key)
			return f.drop(ctx, []byte(dir[:len(dir)-len(rest)-1]), c)
		default:
			return nil
		}
	}
	children := n.children
	n.children = nil
	path := []byte(strings.TrimSuffix(dir, "/"))
	for _, c := range children {
		if err := f.drop(ctx, path, c); err != nil {
			return err
		}
	}
	return nil
}

// drop forgets the path of c, a child of the node whose path is path, and every path below it.
func (f *files) drop(ctx context.Context, path []byte, c *node) error {
	if f.looked++; f.looked%4096 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	p := append(append(path, '/'), c.label...)
	if c.kept {
		delete(f.entries, string(p))
	}
	for _, gc := range c.children { // at most MaxNameDepth deep
		if err := f.drop(ctx, p, gc); err != nil {
			return err
		}
	}
	return nil
}

func firstComponent(s string) string {
	c, _, _ := strings.Cut(s, "/")
	return c
}

// sharedComponents returns the length of the whole components that a and b start with: 3 for "a/b/c" and
// "a/b/d", 0 for "a" and "ab".
func sharedComponents(a, b string) int {
	n, i := 0, 0
	for ; i < len(a) && i < len(b) && a[i] == b[i]; i++ {
		if a[i] == '/' {
			n = i
		}
	}
	if (i == len(a) || a[i] == '/') && (i == len(b) || b[i] == '/') {
		return i
	}
	return n
}

func (f *files) sorted(keep func(entry) bool) []string {
	var ps []string
	for p, e := range f.entries {
		if keep(e) {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// content returns the bytes read from p, and whether p exists in the image with content read.
func (f *files) content(p string) ([]byte, bool) {
	e, ok := f.entries[p]
	return e.data, ok && e.data != nil
}

// streamErr is the error of a layer stream that could not be read: the context's when it ended, else a
// malformed layer (a truncated or corrupt tar), which wraps ErrInvalidArgument.
func streamErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		return err
	}
	return fmt.Errorf("%w: the layer is not a valid tar stream: %v", errdefs.ErrInvalidArgument, err)
}

// walk streams the layers of img from the bottom up and returns the merged filesystem the checks need.
func walk(ctx context.Context, img v1.Image, max int64) (*files, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing image layers: %w", err)
	}
	f := newFiles()
	for i, l := range layers {
		if err := f.apply(ctx, l, max); err != nil {
			return nil, fmt.Errorf("reading layer %d: %w", i, err)
		}
	}
	return f, nil
}

// apply lays one layer over f. While the layer is read, f holds the lower layers only, so whiteouts and
// replacements can act on it directly; the layer's own paths wait in upper, because the OCI rules make a whiteout
// hide lower layers only, whatever its place in the tar. The stream is read through ctx, so that a deadline
// also stops the reading, or skipping, of one long entry.
func (f *files) apply(ctx context.Context, l v1.Layer, max int64) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(ctxio.Reader{Ctx: ctx, R: rc})
	upper := map[string]entry{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return streamErr(ctx, err)
		}
		p, err := CleanName(hdr.Name)
		if err != nil {
			return err
		}
		if p == "/" {
			continue
		}
		dir, base := path.Split(p)
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			switch {
			case name == ".wh..opq":
				err = f.removeBelow(ctx, path.Clean(dir))
			case strings.HasPrefix(name, ".wh."):
				// Other .wh..wh. names are aufs bookkeeping, not deletions.
			default:
				target := path.Join(dir, name)
				delete(f.entries, target)
				err = f.removeBelow(ctx, target)
			}
			if err != nil {
				return err
			}
			continue
		}

		// A path in this layer hides the same path below; anything but a directory also hides what was below it.
		delete(f.entries, p)
		delete(upper, p)
		if hdr.Typeflag != tar.TypeDir {
			if err := f.removeBelow(ctx, p); err != nil {
				return err
			}
		}

		e, err := f.classify(p, hdr, tr, upper, max)
		if err != nil {
			return fmt.Errorf("%s: %w", p, streamErr(ctx, err))
		}
		switch d := unneededDir(p, hdr.Typeflag == tar.TypeDir); d {
		case "":
		case p:
			e.unneeded = true
		default:
			u := upper[d]
			u.unneeded = true
			upper[d] = u
		}
		if e.kept() {
			upper[p] = e
		}
	}
	for p, e := range upper {
		f.put(p, e)
	}
	return nil
}

// accountFiles are read whole (up to the bound) for the user, password and UID checks.
var accountFiles = map[string]bool{"/etc/passwd": true, "/etc/shadow": true, "/etc/group": true}

func (f *files) classify(p string, hdr *tar.Header, r io.Reader, upper map[string]entry, max int64) (entry, error) {
	mode := hdr.FileInfo().Mode()
	e := entry{perm: mode.Perm()}
	if !mode.IsRegular() { // a hard link is regular too
		return e, nil
	}
	e.setid = mode & (fs.ModeSetuid | fs.ModeSetgid)
	e.aptCache = aptCache(p)
	e.unneeded = unneededFile(p)

	if hdr.Typeflag == tar.TypeLink {
		// A hard link has no body of its own: it holds what its target holds, as far as the walk kept it.
		target, err := CleanName(hdr.Linkname)
		if err != nil {
			return e, err
		}
		t, ok := upper[target]
		if !ok {
			t = f.entries[target]
		}
		if e.secret = secretByName(p); e.secret == "" {
			e.secret = t.secret
		}
		return e, nil
	}

	if e.secret = secretByName(p); e.secret != "" {
		return e, nil
	}
	rule := contentRule(p)
	if !accountFiles[p] && rule == nil {
		return e, nil
	}
	data, truncated, err := readPrefix(r, max)
	if err != nil {
		return e, err
	}
	if accountFiles[p] {
		if truncated { // keep whole lines only
			data = data[:bytes.LastIndexByte(data, '\n')+1]
		}
		if data == nil {
			data = []byte{}
		}
		e.data = data
	}
	if rule != nil && rule.content.Match(data) {
		e.secret = rule.what
	}
	return e, nil
}

// readPrefix reads at most max bytes of r; the rest stays unread, for the tar reader to skip.
func readPrefix(r io.Reader, max int64) (data []byte, truncated bool, err error) {
	data, err = io.ReadAll(io.LimitReader(r, max+1))
	if int64(len(data)) > max {
		return data[:max], true, err
	}
	return data, false, err
}

// Secret files, after Dockle's credential assessor: names and extensions that are secrets by themselves…
var (
	secretNames = map[string]bool{
		"credentials.json": true, "credential.json": true, "credentials": true, "credential": true,
		"credentials.xml": true, "password.txt": true,
		"id_rsa": true, "id_dsa": true, "id_ecdsa": true, "id_ed25519": true,
		"secret_token.rb": true, "carrierwave.rb": true, "omniauth.rb": true, "database.yml": true,
		".git-credentials": true, ".pgpass": true,
	}
	secretExts = map[string]bool{
		".secret": true, ".ovpn": true, ".private_key": true, ".cscfg": true, ".rdp": true, ".mdf": true,
		".sdf": true, ".bek": true, ".tpm": true, ".fve": true, ".jks": true, ".psafe3": true,
		".agilekeychain": true, ".keychain": true, ".pcap": true, ".gnucache": true,
	}
)

func secretByName(p string) string {
	base := path.Base(p)
	switch {
	case secretNames[base]:
		return "secret file name"
	case secretExts[path.Ext(base)]:
		return "secret file extension"
	}
	return ""
}

// …and files that hold a secret only when their content says so. Dockle leaves .pem and .key out for their
// false positives (certificates, public keys); reading the header tells a private key apart.
type secretContent struct {
	content *regexp.Regexp
	what    string
}

var (
	privateKey = &secretContent{
		regexp.MustCompile(`-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----`), "private key"}
	npmAuth = &secretContent{
		regexp.MustCompile(`(?m)^\s*(\S*:)?_(auth|authToken|password)\s*=\s*[^\s$]`), "npm registry credentials"}
	pypiAuth = &secretContent{
		regexp.MustCompile(`(?m)^\s*password\s*[=:]\s*\S`), "PyPI password"}
	netrcAuth = &secretContent{
		regexp.MustCompile(`(^|\s)password\s+\S`), "netrc password"}
	dockerAuth = &secretContent{
		regexp.MustCompile(`"(auth|identitytoken)"\s*:\s*"[^"]+"`), "registry credentials"}
)

func contentRule(p string) *secretContent {
	base := path.Base(p)
	switch {
	case base == ".npmrc":
		return npmAuth
	case base == ".pypirc":
		return pypiAuth
	case base == ".netrc" || base == "_netrc":
		return netrcAuth
	case strings.HasSuffix(p, "/.docker/config.json"):
		return dockerAuth
	}
	switch path.Ext(base) {
	case ".pem", ".key", ".p8":
		return privateKey
	}
	return nil
}

// aptCache is true for the package lists and downloaded packages that apt-get clean and
// rm -rf /var/lib/apt/lists/* remove.
func aptCache(p string) bool {
	if rest, ok := strings.CutPrefix(p, "/var/lib/apt/lists/"); ok {
		return rest != "lock"
	}
	return strings.HasPrefix(p, "/var/cache/apt/archives/") && strings.HasSuffix(p, ".deb")
}

// Unnecessary files, after Dockle's cache assessor, plus temporary files and editor backups.
var (
	unneededDirs  = map[string]bool{".cache": true, ".aws": true, ".azure": true, ".gcp": true, ".git": true, ".vscode": true, ".idea": true, ".npm": true}
	unneededNames = map[string]bool{"Dockerfile": true, "docker-compose.yml": true, "docker-compose.yaml": true, ".vimrc": true, ".DS_Store": true}
	tmpDirs       = []string{"/tmp/", "/var/tmp/"}
)

// dependencyDir says whether p lies in a directory of vendored dependencies, whose contents the image's author
// does not choose file by file.
func dependencyDir(p string) bool {
	return strings.Contains(p, "/node_modules/") || strings.Contains(p, "/vendor/")
}

// unneededDir returns the unnecessary directory that p is, or lies in (the topmost one), or "".
func unneededDir(p string, isDir bool) string {
	if dependencyDir(p) {
		return ""
	}
	for _, t := range tmpDirs {
		if rest, ok := strings.CutPrefix(p, t); ok {
			first, _, _ := strings.Cut(rest, "/")
			return t + first
		}
	}
	parts := strings.Split(p, "/")
	for i, part := range parts {
		if unneededDirs[part] && (i < len(parts)-1 || isDir) {
			return strings.Join(parts[:i+1], "/")
		}
	}
	return ""
}

// unneededFile says whether the regular file p is an unnecessary file by its name.
func unneededFile(p string) bool {
	if dependencyDir(p) {
		return false
	}
	base := path.Base(p)
	if unneededNames[base] {
		return true
	}
	switch path.Ext(base) {
	case ".swp", ".swo", ".bak":
		return true
	}
	return strings.HasSuffix(base, "~")
}
