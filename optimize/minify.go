package optimize

import (
	"archive/tar"
	"path"
	"strings"
)

// alwaysKept are files a minified image keeps when the original has them, read or not: the identity and name
// service files the engine and libc consult (some before the program runs, outside what a profile sees), the
// certificate bundles a program reads only when it first makes a TLS connection, and what identifies the
// operating system and its packages, so that a scan of the result still sees the OS packages (it over-reports
// rather than under-reports).
var alwaysKept = []string{
	"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/nsswitch.conf", "/etc/hosts",
	"/etc/host.conf", "/etc/hostname", "/etc/resolv.conf", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime",
	"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem",
	"/etc/os-release", "/usr/lib/os-release", "/etc/debian_version", "/etc/alpine-release", "/etc/redhat-release",
	"/var/lib/dpkg/status", "/lib/apk/db/installed", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite",
	"/tmp", "/var/tmp", "/run",
}

// libDirs are where the dynamic loader looks for a library when the object's own run path does not name it.
var libDirs = []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"}

// minify keeps what the profile names and what that needs; the rest stays marked unused.
func (r *rewriter) minify(drop map[string]string, res *RewriteResult) error {
	// Directories stay only when something inside them does (or the profile listed them).
	_ = walk(r.root, "/", func(p string, n *node) error {
		if n.isDir() && p != "/" {
			n.keep = false
		}
		return nil
	})
	byName := map[string][]string{} // base name → paths, of what lives under a lib directory
	var links []string
	_ = walk(r.root, "/", func(p string, n *node) error {
		if n.hdr != nil && n.hdr.Typeflag == tar.TypeSymlink {
			links = append(links, p)
		}
		if !n.isDir() && strings.Contains(p, "/lib") {
			byName[path.Base(p)] = append(byName[path.Base(p)], p)
		}
		return nil
	})
	m := &marker{r: r, drop: drop, byName: byName, profiled: map[string]bool{}}
	for p, kind := range r.opts.Profile.Files {
		if err := r.tick(); err != nil {
			return err
		}
		p = path.Clean(p)
		m.profiled[p] = true
		if kind == "list" {
			m.keepDir(p)
			continue
		}
		m.keepPath(p)
	}
	for _, p := range alwaysKept {
		m.keepPath(p)
	}
	cfg := r.cfg.Config
	for _, dir := range []string{cfg.WorkingDir} {
		if dir != "" {
			m.keepDir(path.Clean(dir))
		}
	}
	for v := range cfg.Volumes { // the engine fills a new volume from the image: what the profile cannot see
		m.keepTree(path.Clean(v))
	}
	for _, k := range r.opts.Keep {
		m.keepTree(path.Clean(k))
	}
	argv := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if len(argv) > 0 {
		m.keepCommand(argv[0], cfg.Env)
	}
	// Top-level directories stay, empty when nothing inside them does: programs expect /tmp, /run, /home…
	for name, c := range r.root.children {
		if c.isDir() && !under("/"+name, r.opts.Drop) {
			c.keep = true
		}
	}
	for len(m.queue) > 0 { // what kept objects need, until nothing new
		if err := r.tick(); err != nil {
			return err
		}
		p := m.queue[0]
		m.queue = m.queue[1:]
		m.dependencies(p)
	}
	// A link stays when what it leads to does: programs reach files by names the profile saw resolved.
	for changed := true; changed; {
		changed = false
		for _, l := range links {
			n := r.lookup(l)
			if n.keep || under(l, r.opts.Drop) {
				continue
			}
			if t, ok := m.resolve(l, nil); ok {
				if tn := r.lookup(t); tn != nil && tn.keep {
					m.keepPath(l)
					changed = true
				}
			}
		}
	}
	res.Added = m.added
	return nil
}

type marker struct {
	r        *rewriter
	drop     map[string]string
	byName   map[string][]string
	profiled map[string]bool
	queue    []string
	added    int
}

// keep marks one node and the directories leading to it.
func (m *marker) keep(p string) {
	if under(p, m.r.opts.Drop) {
		return
	}
	n := m.r.root
	if p != "/" {
		for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			if n.children == nil || n.children[part] == nil {
				return
			}
			n.keep = true
			n = n.children[part]
		}
	}
	if n.keep {
		return
	}
	n.keep = true
	if !n.isDir() {
		if !m.profiled[p] {
			m.added++
		}
		if n.hdr != nil && n.elf != nil {
			m.queue = append(m.queue, p)
		}
		m.pycSource(p)
	}
}

// keepPath keeps what a path leads to, and every link on the way.
func (m *marker) keepPath(p string) {
	var via []string
	t, ok := m.resolve(p, &via)
	for _, l := range via {
		m.keep(l)
	}
	if ok {
		m.keep(t)
	}
}

func (m *marker) keepDir(p string) {
	if n := m.r.lookup(p); n != nil && n.isDir() {
		m.keep(p)
	} else {
		m.keepPath(p)
	}
}

// keepTree keeps a path and everything under it.
func (m *marker) keepTree(p string) {
	m.keepPath(p)
	t, ok := m.resolve(p, nil)
	if !ok {
		return
	}
	if n := m.r.lookup(t); n != nil && n.isDir() {
		_ = walk(n, t, func(q string, c *node) error {
			m.keep(q)
			return nil
		})
	}
}

// keepCommand keeps the program a configuration runs, found on the configuration's PATH as the engine finds it.
func (m *marker) keepCommand(prog string, env []string) {
	if strings.Contains(prog, "/") {
		m.keepPath(path.Clean(path.Join("/", prog)))
		return
	}
	dirs := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			dirs = v
		}
	}
	for _, d := range strings.Split(dirs, ":") {
		if !path.IsAbs(d) {
			continue
		}
		if t, ok := m.resolve(path.Join(d, prog), nil); ok {
			if n := m.r.lookup(t); n != nil && !n.isDir() {
				m.keepPath(path.Join(d, prog))
				return
			}
		}
	}
}

// pycSource keeps a module's source beside a kept __pycache__/NAME.TAG.pyc: Python imports from the cache only
// when the source is there (it stats the source, which a profile of opens does not see).
func (m *marker) pycSource(p string) {
	dir, base := path.Split(p)
	if path.Base(dir) != "__pycache__" || !strings.HasSuffix(base, ".pyc") {
		return
	}
	mod, _, ok := strings.Cut(base, ".")
	if !ok {
		return
	}
	m.keepPath(path.Join(path.Dir(path.Clean(dir)), mod+".py"))
}

// dependencies keeps what a kept ELF object needs: its interpreter and libraries. (A hard link needs nothing: when
// its target goes, it is written as a file.)
func (m *marker) dependencies(p string) {
	n := m.r.lookup(p)
	if n == nil || n.hdr == nil {
		return
	}
	info := n.elf
	if info == nil {
		return
	}
	if info.interp != "" {
		m.keepPath(path.Clean(path.Join("/", info.interp)))
	}
	var search []string
	for _, rp := range info.runpath {
		rp = strings.ReplaceAll(strings.ReplaceAll(rp, "${ORIGIN}", path.Dir(p)), "$ORIGIN", path.Dir(p))
		if path.IsAbs(rp) {
			search = append(search, path.Clean(rp))
		}
	}
	for _, top := range []string{"/lib", "/usr/lib"} { // multiarch directories: /usr/lib/x86_64-linux-gnu…
		if d := m.r.lookup(top); d != nil && d.isDir() {
			for name, c := range d.children {
				if c.isDir() && strings.Contains(name, "-linux-") {
					search = append(search, top+"/"+name)
				}
			}
		}
	}
	search = append(search, libDirs...)
	for _, lib := range info.needed {
		if strings.Contains(lib, "/") {
			m.keepPath(path.Clean(path.Join("/", lib)))
			continue
		}
		found := false
		for _, d := range search {
			if t, ok := m.resolve(path.Join(d, lib), nil); ok {
				if tn := m.r.lookup(t); tn != nil && !tn.isDir() {
					m.keepPath(path.Join(d, lib))
					found = true
					break
				}
			}
		}
		if !found { // a directory of ld.so.conf: every library of that name under a lib directory
			for _, q := range m.byName[lib] {
				m.keepPath(q)
			}
		}
	}
}

// resolve follows the links along p in the tree (at most 40, as the kernel does) and returns the path reached and
// whether it exists; via receives each link followed.
func (m *marker) resolve(p string, via *[]string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	hops := 0
	for i := 0; i < len(parts); i++ {
		if parts[i] == "" || parts[i] == "." {
			continue
		}
		if parts[i] == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, parts[i])
		n := m.r.lookup(next)
		if n == nil {
			return next, false
		}
		if n.hdr != nil && n.hdr.Typeflag == tar.TypeSymlink {
			if hops++; hops > 40 {
				return next, false
			}
			if via != nil {
				*via = append(*via, next)
			}
			target := n.hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			rest := append(strings.Split(strings.TrimPrefix(path.Clean(target), "/"), "/"), parts[i+1:]...)
			parts, i, cur = rest, -1, "/"
			continue
		}
		cur = next
	}
	return cur, true
}
