package optimize

import (
	"archive/tar"
	"path"
	"slices"
	"strings"

	"github.com/codomyrmex/containerization/scan/compliance"
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
	// Directories stay only when something inside them does (or the profile listed them); what Keep holds is
	// marked again below, with its dependencies.
	_ = walk(r.root, "/", func(p string, n *node) error {
		if p != "/" {
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
	m := &marker{r: r, drop: drop, byName: byName, profiled: map[string]bool{}, searched: map[string]bool{}, waiting: map[*node][]string{}}
	for p, kind := range r.opts.Profile.Files {
		if err := r.tick(); err != nil {
			return err
		}
		var err error
		if p, err = compliance.CleanName(p); err != nil {
			continue // no path of the image: the sensor reports at most PATH_MAX bytes
		}
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
	trees := slices.Clone(r.opts.Keep)
	for v := range cfg.Volumes { // the engine fills a new volume from the image: what the profile cannot see
		trees = append(trees, v)
	}
	if err := m.keepTrees(trees); err != nil {
		return err
	}
	argv := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if len(argv) > 0 {
		m.keepCommand(argv[0], cfg.Env)
	}
	// Top-level directories stay, empty when nothing inside them does: programs expect /tmp, /run, /home…
	for name, c := range r.root.children {
		if c.isDir() && !under("/"+name, r.opts.Drop) {
			m.keep("/" + name)
		}
	}
	// A link stays when what it leads to does: programs reach files by names the profile saw resolved. Each link
	// is resolved once and waits for its target, which keep wakes when it marks it.
	for _, l := range links {
		if err := r.tick(); err != nil {
			return err
		}
		if r.lookup(l).keep || under(l, r.opts.Drop) {
			continue
		}
		if t, ok := m.resolve(l, nil); ok {
			if tn := r.lookup(t); tn != nil && tn.keep {
				m.ready = append(m.ready, l)
			} else if tn != nil {
				m.waiting[tn] = append(m.waiting[tn], l)
			}
		}
	}
	for len(m.queue) > 0 || len(m.ready) > 0 { // what kept objects and links need, until nothing new
		if err := r.tick(); err != nil {
			return err
		}
		if len(m.queue) > 0 {
			p := m.queue[0]
			m.queue = m.queue[1:]
			if err := m.dependencies(p); err != nil {
				return err
			}
			continue
		}
		l := m.ready[len(m.ready)-1]
		m.ready = m.ready[:len(m.ready)-1]
		m.keepPath(l)
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
	searched map[string]bool    // library names looked for under every lib directory
	waiting  map[*node][]string // links whose target is not kept yet, by target
	ready    []string           // links whose target is kept
	multi    []string           // multiarch library directories
	multiOK  bool
}

// marked keeps n, and wakes the links that wait for it.
func (m *marker) marked(n *node) {
	if n.keep {
		return
	}
	n.keep = true
	if ls, ok := m.waiting[n]; ok {
		m.ready = append(m.ready, ls...)
		delete(m.waiting, n)
	}
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
			m.marked(n)
			n = n.children[part]
		}
	}
	if n.keep {
		return
	}
	m.marked(n)
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

// keepTrees keeps paths and everything under them: each tree is walked once, and not again inside another.
func (m *marker) keepTrees(paths []string) error {
	var dirs []string
	for _, p := range paths {
		if err := m.r.tick(); err != nil {
			return err
		}
		p, err := compliance.CleanName(p)
		if err != nil {
			continue
		}
		m.keepPath(p)
		if t, ok := m.resolve(p, nil); ok {
			if n := m.r.lookup(t); n != nil && n.isDir() {
				dirs = append(dirs, t)
			}
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(a) - len(b) })
	var done []string
	for _, t := range dirs {
		if under(t, done) {
			continue
		}
		done = append(done, t)
		err := walk(m.r.lookup(t), t, func(q string, c *node) error {
			m.keep(q)
			return m.r.tick()
		})
		if err != nil {
			return err
		}
	}
	return nil
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
func (m *marker) dependencies(p string) error {
	n := m.r.lookup(p)
	if n == nil || n.hdr == nil || n.elf == nil {
		return nil
	}
	info := n.elf
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
	if !m.multiOK { // multiarch directories: /usr/lib/x86_64-linux-gnu… (found once, a few at most)
		m.multiOK = true
		for _, top := range []string{"/lib", "/usr/lib"} {
			if d := m.r.lookup(top); d != nil && d.isDir() {
				for name, c := range d.children {
					if c.isDir() && strings.Contains(name, "-linux-") {
						m.multi = append(m.multi, top+"/"+name)
					}
				}
			}
		}
		slices.Sort(m.multi)
		m.multi = m.multi[:min(len(m.multi), 16)]
	}
	search = append(append(search, m.multi...), libDirs...)
	for _, lib := range info.needed {
		if err := m.r.tick(); err != nil {
			return err
		}
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
		if !found && !m.searched[lib] { // a directory of ld.so.conf: every library of that name under a lib directory
			m.searched[lib] = true
			for _, q := range m.byName[lib] {
				if err := m.r.tick(); err != nil {
					return err
				}
				m.keepPath(q)
			}
		}
	}
	return nil
}

// resolve follows the links along p in the tree (at most 40, as the kernel does) and returns the path reached and
// whether it exists; via receives each link followed. What is left to walk is a stack of paths, as in the kernel: a
// link's target (at most PATH_MAX bytes) is pushed whole and taken a component at a time, never copied with what
// follows it; ".." is taken where the walk is, not lexically.
func (m *marker) resolve(p string, via *[]string) (string, bool) {
	todo := []string{p}
	next := func() (string, bool) {
		for len(todo) > 0 {
			top := strings.TrimLeft(todo[len(todo)-1], "/")
			if top == "" {
				todo = todo[:len(todo)-1]
				continue
			}
			part, rest, _ := strings.Cut(top, "/")
			todo[len(todo)-1] = rest
			if part != "." {
				return part, true
			}
		}
		return "", false
	}
	nodes, names := []*node{m.r.root}, []string{}
	cur := func() string { return "/" + strings.Join(names, "/") }
	hops := 0
	for {
		part, ok := next()
		if !ok {
			return cur(), true
		}
		if part == ".." {
			if len(names) > 0 {
				nodes, names = nodes[:len(nodes)-1], names[:len(names)-1]
			}
			continue
		}
		var c *node
		if d := nodes[len(nodes)-1]; d.children != nil {
			c = d.children[part]
		}
		if c == nil {
			return path.Join(cur(), part), false
		}
		if c.hdr != nil && c.hdr.Typeflag == tar.TypeSymlink {
			if hops++; hops > 40 {
				return path.Join(cur(), part), false
			}
			if via != nil {
				*via = append(*via, path.Join(cur(), part))
			}
			if path.IsAbs(c.hdr.Linkname) {
				nodes, names = nodes[:1], names[:0]
			}
			todo = append(todo, c.hdr.Linkname)
			continue
		}
		nodes, names = append(nodes, c), append(names, part)
	}
}
