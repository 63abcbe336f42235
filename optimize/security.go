package optimize

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/codomyrmex/containerization/errdefs"
)

// Hardening is what the security type changes in an image.
type Hardening struct {
	// NonRoot makes an image that runs as root run as an unprivileged user: the existing one with the lowest
	// UID from 1000 up (below 65534), else one created, NewUser with UID and GID NewUID.
	NonRoot bool
	// StripSetID clears the setuid and setgid bits of every regular file.
	StripSetID bool
	// RemoveTools removes shells, package managers and the tools an attacker would use (see Tools) that Used
	// does not hold. It needs a profile: without Used nothing is removed this way.
	RemoveTools bool
	// Used are the paths a profiling run used (a Profile's files).
	Used map[string]string
	// Remove are more paths to remove (those the compliance checks flag), each with its reason; a path in Used
	// stays.
	Remove map[string]string
	// KeepShells and KeepPackageManagers keep those tools whatever the profile says (a shell to debug with, a
	// package manager for later layers).
	KeepShells, KeepPackageManagers bool
	// User, when set, is the user the image runs as (a name in the image's /etc/passwd, or UID[:GID] other than
	// 0), instead of the one NonRoot would choose.
	User string
}

// The user NonRoot creates when the image has none to use.
const (
	NewUser = "myrmex"
	NewUID  = 10001
)

// Change is one security change, with its reason.
type Change struct {
	Path   string `json:"path,omitempty"`
	Change string `json:"change"`
	Reason string `json:"reason"`
}

// String reads as a line of security_improvements.
func (c Change) String() string {
	if c.Path == "" {
		return printable(c.Change) + ": " + c.Reason
	}
	return c.Change + " " + printable(c.Path) + ": " + c.Reason
}

// printable quotes what an image named (a path, an account name) when it holds a character a terminal would act on.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// Tools are the programs RemoveTools removes when the probe does not use them, by name, in the directories of
// PATH: shells, package managers, and what fetches, connects, escalates or debugs.
var Tools = []string{
	"sh", "bash", "dash", "ash", "zsh", "ksh", "csh", "tcsh", "fish", "busybox",
	"apt", "apt-get", "apt-cache", "apt-key", "dpkg", "dpkg-deb", "rpm", "yum", "dnf", "microdnf", "apk", "pip", "pip3",
	"npm", "npx", "yarn", "gem",
	"curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "ftp", "tftp",
	"su", "sudo", "doas", "passwd", "chsh", "chfn", "newgrp", "gpasswd", "mount", "umount",
	"gdb", "strace", "ltrace", "tcpdump", "nmap",
}

const (
	kindShell          = "a shell"
	kindPackageManager = "a package manager"
)

// toolKind says what a name of Tools is.
func toolKind(name string) string {
	i := slices.Index(Tools, name)
	switch {
	case i < slices.Index(Tools, "apt"):
		return kindShell
	case i < slices.Index(Tools, "curl"):
		return kindPackageManager
	}
	return "a tool an attacker would use"
}

// ToolPaths are the paths of the tools of a kind (shells, package managers) in the directories of PATH, and
// what the package managers need beside their programs: for Keep, when a size rewrite must keep them.
func ToolPaths(shells, packageManagers bool) []string {
	var out []string
	for _, d := range toolDirs {
		for _, name := range Tools {
			if k := toolKind(name); (k == kindShell && shells) || (k == kindPackageManager && packageManagers) {
				out = append(out, d+"/"+name)
			}
		}
	}
	if packageManagers {
		out = append(out, "/etc/apt", "/etc/dpkg", "/var/lib/dpkg", "/usr/lib/apt", "/usr/lib/dpkg", "/usr/share/dpkg",
			"/etc/apk", "/lib/apk", "/usr/share/apk", "/etc/yum.repos.d", "/etc/dnf", "/var/lib/rpm", "/usr/lib/rpm",
			"/usr/lib/sysimage/rpm", "/usr/lib/python3/dist-packages/pip", "/usr/lib/node_modules/npm")
	}
	return out
}

var toolDirs = []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"}

// accountFiles are read whole while indexing (at most maxAccountFile bytes), for NonRoot.
var accountFiles = map[string]bool{"/etc/passwd": true, "/etc/group": true}

const maxAccountFile = 1 << 20

// maxChanges bounds the path changes Changes lists (one per removed file or cleared setuid bit); the rest are
// counted in a last entry.
const maxChanges = 1000

// change lists a security change, past maxChanges only counting those of a path.
func (r *rewriter) change(c Change) {
	if c.Path != "" && r.listed >= maxChanges {
		r.unlisted++
		return
	}
	if c.Path != "" {
		r.listed++
	}
	*r.changes = append(*r.changes, c)
}

// harden decides the security changes: the user, the paths removed, the bits cleared (at write time).
func (r *rewriter) harden(res *RewriteResult) error {
	h := r.opts.Harden
	r.remove = map[string]string{}
	r.changes = &res.Changes
	r.stripID = h.StripSetID
	used := func(p string) bool {
		_, ok := h.Used[p]
		return ok
	}
	if h.RemoveTools && h.Used != nil {
		m := &marker{r: r}
		for _, d := range toolDirs {
			dn := r.lookup(d)
			if dn == nil || !dn.isDir() || (dn.hdr != nil && dn.hdr.Typeflag == tar.TypeSymlink) {
				continue
			}
			for _, name := range Tools {
				p := d + "/" + name
				n := dn.children[name]
				if n == nil || n.isDir() || n.hdr == nil {
					continue
				}
				target, ok := m.resolve(p, nil)
				if used(p) || (ok && used(target)) {
					continue
				}
				kind := toolKind(name)
				if (kind == kindShell && h.KeepShells) || (kind == kindPackageManager && h.KeepPackageManagers) {
					continue
				}
				r.removeWith(p, "removed", kind+", which the application does not use (the probe passed without it)")
			}
		}
	}
	for p, why := range h.Remove { // a directory goes with what it holds, but for what the probe used
		n := r.lookup(p)
		if n == nil {
			continue
		}
		_ = walk(n, p, func(q string, c *node) error {
			if !c.isDir() && !used(q) {
				r.removeWith(q, "removed", why)
			}
			return nil
		})
	}
	if h.NonRoot {
		if err := r.nonRoot(res); err != nil {
			return err
		}
	}
	return nil
}

func (r *rewriter) removeWith(p, change, why string) {
	if _, done := r.remove[p]; done || under(p, r.opts.Keep) { // what the caller keeps stays, and is not listed
		return
	}
	r.remove[p] = why
	r.change(Change{Path: p, Change: change, Reason: why})
}

// fileHeader is a copy of a clean header (cleanHeader's), with the setuid and setgid bits of a regular file
// cleared when Harden says so.
func (r *rewriter) fileHeader(h *tar.Header, name string) *tar.Header {
	out := clone(h)
	if r.stripID && out.Mode&(0o4000|0o2000) != 0 {
		r.change(Change{Path: name, Change: "cleared setuid/setgid on",
			Reason: fmt.Sprintf("mode %04o: a program that runs as its owner is a way to escalate (CIS-DI-0008)", out.Mode&0o7777)})
		out.Mode &^= 0o4000 | 0o2000
	}
	return out
}

// rootUser reports whether a USER value runs as UID 0, resolved as the engine resolves it (moby/sys/user): the user
// part is a UID when strconv.Atoi takes it ("00", "+0" and "-0" are 0), else the name of the first passwd line that
// has it (whose UID field, when it does not parse, is 0). ok is false when that needs a passwd it could not read.
func rootUser(u string, passwd *node, readable bool) (root, ok bool) {
	user, _, _ := strings.Cut(u, ":")
	if user == "" {
		return true, true
	}
	if uid, err := strconv.Atoi(user); err == nil {
		return uid == 0, true
	} else if errors.Is(err, strconv.ErrRange) {
		return false, true // the engine refuses it
	}
	switch {
	case !readable:
		return false, false
	case passwd == nil:
		return user == "root", true // the engine finds no such user
	}
	for _, line := range strings.Split(string(passwd.content), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if f[0] != user {
			continue
		}
		if len(f) < 3 {
			return true, true
		}
		uid, _ := strconv.Atoi(f[2])
		return uid == 0, true
	}
	return false, true
}

// idTaken reports whether an account file has a line whose field i parses (as the engine parses it) to id.
func idTaken(n *node, i, id int) bool {
	if n == nil {
		return false
	}
	for _, line := range strings.Split(string(n.content), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) > i {
			if v, err := strconv.Atoi(f[i]); err == nil && v == id {
				return true
			}
		}
	}
	return false
}

// nonRoot picks or creates the unprivileged user.
func (r *rewriter) nonRoot(res *RewriteResult) error {
	passwd, group := r.lookup("/etc/passwd"), r.lookup("/etc/group")
	valid := func(n *node) bool {
		return n == nil || (n.hdr != nil && n.hdr.Typeflag == tar.TypeReg && (n.content != nil || n.hdr.Size == 0))
	}
	etc := r.lookup("/etc")
	etcDir := etc == nil || etc.isDir() // lookup does not follow a link: the accounts would be elsewhere
	if u := r.opts.Harden.User; u != "" {
		return r.askedUser(u, res, passwd, etcDir && valid(passwd))
	}
	if root, ok := rootUser(r.cfg.Config.User, passwd, etcDir && valid(passwd)); ok && !root {
		return nil
	}
	if !etcDir {
		return fmt.Errorf("%w: /etc is not a directory (a link or a file): cannot choose a user", ErrLimitExceeded)
	}
	for _, n := range []*node{passwd, group} {
		if !valid(n) {
			return fmt.Errorf("%w: /etc/passwd or /etc/group is not a file of at most %d bytes: cannot choose a user", ErrLimitExceeded, maxAccountFile)
		}
	}
	best, bestGID := -1, -1
	var bestName string
	if passwd != nil {
		for _, line := range strings.Split(string(passwd.content), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 4 {
				continue
			}
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || uid < 1000 || uid >= 65534 || gid == 0 {
				continue
			}
			if best < 0 || uid < best {
				best, bestGID, bestName = uid, gid, f[0]
			}
		}
	}
	if best >= 0 {
		r.user = fmt.Sprintf("%d:%d", best, bestGID)
		res.User = r.user
		*r.changes = append(*r.changes, Change{Change: "runs as " + bestName + " (" + r.user + ") instead of root",
			Reason: "a process that breaks out of the container is not root on the host (CIS-DI-0001)"})
		return nil
	}
	if idTaken(passwd, 2, NewUID) || idTaken(passwd, 3, NewUID) || idTaken(group, 2, NewUID) {
		return fmt.Errorf("%w: UID or GID %d is taken in /etc/passwd or /etc/group by an account Harden cannot use", ErrLimitExceeded, NewUID)
	}
	add := func(n **node, p, line string) error {
		if *n == nil {
			parent, err := r.mkdirs("/etc", len(r.layers))
			if err != nil {
				return err
			}
			*n = &node{hdr: &tar.Header{Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}, layer: len(r.layers), synth: true}
			parent.children[path.Base(p)] = *n
		}
		c := (*n).content
		if len(c) > 0 && c[len(c)-1] != '\n' {
			c = append(c, '\n')
		}
		(*n).content = append(c, line...)
		(*n).edited = true
		(*n).hdr.Size = int64(len((*n).content))
		return nil
	}
	id := strconv.Itoa(NewUID)
	if err := add(&passwd, "/etc/passwd", NewUser+":x:"+id+":"+id+":Myrmex unprivileged user:/nonexistent:/usr/sbin/nologin\n"); err != nil {
		return err
	}
	if err := add(&group, "/etc/group", NewUser+":x:"+id+":\n"); err != nil {
		return err
	}
	r.user = id + ":" + id
	res.User = r.user
	*r.changes = append(*r.changes, Change{Change: "runs as " + NewUser + " (" + r.user + ", created) instead of root",
		Reason: "a process that breaks out of the container is not root on the host (CIS-DI-0001)"})
	return nil
}

// askedUser makes the image run as the user the caller named: a name must be in the image's /etc/passwd; UID[:GID]
// is taken as it is; root is refused.
func (r *rewriter) askedUser(u string, res *RewriteResult, passwd *node, readable bool) error {
	if root, ok := rootUser(u, passwd, readable); root || !ok || strings.TrimSpace(u) != u || strings.Count(u, ":") > 1 {
		return fmt.Errorf("%w: user %q: want a non-root user, NAME or UID[:GID]", errdefs.ErrInvalidArgument, u)
	}
	name, _, _ := strings.Cut(u, ":")
	if _, err := strconv.Atoi(name); err != nil {
		found := false
		if n := r.lookup("/etc/passwd"); n != nil {
			for _, line := range strings.Split(string(n.content), "\n") {
				if f := strings.Split(line, ":"); len(f) >= 4 && f[0] == name {
					if f[2] == "0" {
						return fmt.Errorf("%w: user %q has UID 0 in the image", errdefs.ErrInvalidArgument, name)
					}
					found = true
				}
			}
		}
		if !found {
			return fmt.Errorf("%w: user %q is not in the image's /etc/passwd", errdefs.ErrInvalidArgument, name)
		}
	}
	r.user, res.User = u, u
	*r.changes = append(*r.changes, Change{Change: "runs as " + u + " (asked)",
		Reason: "a process that breaks out of the container is not root on the host (CIS-DI-0001)"})
	return nil
}
