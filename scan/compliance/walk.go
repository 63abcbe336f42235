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
)

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
	// under holds every directory that is, or once was, an ancestor of a path in entries. It lets a whiteout or
	// an opaque directory skip the search for paths below it when there can be none.
	under map[string]bool
}

func (f *files) put(p string, e entry) {
	f.entries[p] = e
	for d := path.Dir(p); !f.under[d]; d = path.Dir(d) {
		f.under[d] = true
		if d == "/" {
			break
		}
	}
}

// removeBelow forgets every path below dir (not dir itself).
func (f *files) removeBelow(dir string) {
	if !f.under[dir] {
		return
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for p := range f.entries {
		if strings.HasPrefix(p, prefix) {
			delete(f.entries, p)
		}
	}
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

// walk streams the layers of img from the bottom up and returns the merged filesystem the checks need.
func walk(ctx context.Context, img v1.Image, max int64) (*files, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing image layers: %w", err)
	}
	f := &files{entries: map[string]entry{}, under: map[string]bool{}}
	for i, l := range layers {
		if err := f.apply(ctx, l, max); err != nil {
			return nil, fmt.Errorf("reading layer %d: %w", i, err)
		}
	}
	return f, nil
}

// apply lays one layer over f. While the layer is read, f holds the lower layers only, so whiteouts and
// replacements can act on it directly; the layer's own paths wait in upper, because the OCI rules make a whiteout
// hide lower layers only, whatever its place in the tar.
func (f *files) apply(ctx context.Context, l v1.Layer, max int64) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	upper := map[string]entry{}
	for n := 0; ; n++ {
		if n%512 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		// Cleaning against the root keeps a hostile "../../x" inside the image's tree; nothing is written.
		p := path.Clean("/" + hdr.Name)
		if p == "/" {
			continue
		}
		dir, base := path.Split(p)
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			switch {
			case name == ".wh..opq":
				f.removeBelow(path.Clean(dir))
			case strings.HasPrefix(name, ".wh."):
				// Other .wh..wh. names are aufs bookkeeping, not deletions.
			default:
				target := path.Join(dir, name)
				delete(f.entries, target)
				f.removeBelow(target)
			}
			continue
		}

		// A path in this layer hides the same path below; anything but a directory also hides what was below it.
		delete(f.entries, p)
		delete(upper, p)
		if hdr.Typeflag != tar.TypeDir {
			f.removeBelow(p)
		}

		e, err := f.classify(p, hdr, tr, upper, max)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
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
		target := path.Clean("/" + hdr.Linkname)
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
