package optimize_test

// Hostile images against the security rewrite (security.go, rewrite.go's account files), from a second review
// that built them: each failed before its fix. None needs an engine; the clean-up and the profiling container's
// rights are tested on the real engine in probe_kinds_test.go.

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/optimize"
)

func withUser(t *testing.T, img v1.Image, user string) v1.Image {
	t.Helper()
	img, err := mutate.Config(img, v1.Config{User: user})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// R2-1. index (rewrite.go:334) reads the body of every /etc/passwd entry of a layer and keeps it in `entries` until
// the layer ends: a layer naming etc/passwd N times holds N MiB (up to MaxLayerSize, 32 GiB), from a layer that
// compresses to almost nothing (or from 1 KiB sparse entries). Only the last entry's body is ever used.
func TestHostileAccountFileDuplicatesHeld(t *testing.T) {
	const dups = 64
	var mu sync.Mutex
	var held uint64
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			zero := make([]byte, 1<<20)
			_ = tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
			for i := 0; i < dups; i++ {
				_ = tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(zero))})
				_, _ = tw.Write(zero)
			}
			// The pipe is synchronous: this header is taken once the reader has stored every passwd above.
			if err := tw.WriteHeader(&tar.Header{Name: "etc/zz", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}); err == nil {
				var m runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m)
				mu.Lock()
				held = max(held, m.HeapAlloc)
				mu.Unlock()
			}
			_, _ = tw.Write([]byte("z"))
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	mustRewrite(t, layered(t, l), optimize.RewriteOptions{})
	if grew := int64(held) - int64(base.HeapAlloc); grew > 16<<20 {
		t.Errorf("the heap held %d MiB while indexing %d copies of a 1 MiB /etc/passwd; want about 1", grew>>20, dups)
	}
}

// R2-2. When /etc is a symbolic link (or a file), lookup does not follow it, nonRoot sees no passwd, and mkdirs
// (security.go:195) replaces /etc by a directory holding only the new passwd and group: every other file reached
// through /etc is gone from the image, and the existing accounts (and their UIDs) are ignored.
func TestHostileEtcIsASymlink(t *testing.T) {
	img := layered(t, hdrs(t, dir("usr/"), dir("usr/etc/"),
		reg("usr/etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nother:x:10001:0::/:/bin/sh\n"),
		reg("usr/etc/hosts"), []byte("127.0.0.1 localhost\n"), symlink("etc", "usr/etc"), reg("server"), []byte("x")))
	// An image that runs as a UID already needs no account: hardened whatever /etc is.
	if res, err := optimize.Rewrite(context.Background(), withUser(t, img, "1000"), optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true}}); err != nil {
		t.Errorf("USER 1000: Rewrite = %v", err)
	} else {
		res.Close()
	}
	res, err := optimize.Rewrite(context.Background(), img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true}})
	if err != nil {
		return // refused: fine
	}
	t.Cleanup(func() { res.Close() })
	files := contents(t, res)
	if files["etc"].typ != tar.TypeSymlink {
		t.Errorf("/etc (a link to usr/etc) was replaced by %q (type %c): /etc/hosts is gone; user %q", "etc", files["etc/"].typ, res.User)
	}
}

// R2-3. rootUser (security.go:147) compares strings; the engine (moby/sys/user) parses the USER's user part with
// strconv.Atoi and, for a name, takes the UID of its first passwd line (a field that does not parse is 0). All of
// these run as UID 0, and NonRoot leaves them as they are (no change listed, the image still runs as root).
func TestHostileRootAliases(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nadmin:x::0::/:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
	for _, user := range []string{"00", "+0", "-0", "toor", "admin", "toor:app", "000:1000"} {
		img := withUser(t, layered(t, hdrs(t, dir("etc/"), reg("etc/passwd"), passwd, reg("etc/group"), []byte("root:x:0:\napp:x:1000:\n"))), user)
		res, _ := rewrite(t, img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true}})
		if res.User != "1000:1000" {
			t.Errorf("USER %q (UID 0 for the engine): NonRoot left it (user %q)", user, res.User)
		}
	}
	// Not root: left alone.
	img := withUser(t, layered(t, hdrs(t, dir("etc/"), reg("etc/passwd"), passwd)), "app")
	if res, _ := rewrite(t, img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true}}); res.User != "" {
		t.Errorf("USER app changed to %q", res.User)
	}
}

// R2-4. The new user's UID and GID are checked with a substring search of passwd only (security.go:189): a group
// that already has GID 10001 in /etc/group, or a passwd UID field that parses to 10001 ("010001"), is missed, and
// the created user shares the existing group (or UID) while the change says "created".
func TestHostileNewUserCollides(t *testing.T) {
	for name, files := range map[string][2]string{
		"GID 10001 in group":        {"root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\nsecrets:x:10001:\n"},
		"UID 010001 in passwd":      {"root:x:0:0:root:/root:/bin/sh\nsvc:x:010001:0::/:/bin/sh\n", "root:x:0:\n"},
		"GID 10001 as the name's 3": {"root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\nshadow:x:+10001:\n"},
	} {
		img := layered(t, hdrs(t, dir("etc/"), reg("etc/passwd"), []byte(files[0]), reg("etc/group"), []byte(files[1])))
		res, err := optimize.Rewrite(context.Background(), img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true}})
		if err == nil {
			res.Close()
			t.Errorf("%s: created %s as %s, sharing an existing account's id", name, optimize.NewUser, res.User)
		} else if !errors.Is(err, optimize.ErrLimitExceeded) {
			t.Errorf("%s: Rewrite = %v", name, err)
		}
	}
}

// R2-5. StripSetID clears the bits of regular files' headers only (fileHeader, security.go:136); a hard link's header
// is written with its own mode (rewrite.go:817 and :854). Both moby (handleLChmod) and containerd (lchmod after
// Lchown, for every type) apply a hard link header's mode and owner to the inode it shares with its target: the
// "hardened" image has a setuid file, and Changes does not name it.
func TestHostileSetIDThroughHardLink(t *testing.T) {
	link := hardlink("usr/bin/tool2", "usr/bin/tool")
	link.Mode = 0o4755
	tool := reg("usr/bin/tool")
	tool.Mode = 0o755
	// Materialized: their target is dropped; the first is written as a file, the second as a link to it.
	other := hardlink("usr/bin/gone5", "usr/bin/gone")
	other.Mode = 0o2755
	img := layered(t, hdrs(t, dir("usr/"), dir("usr/bin/"), tool, []byte("T"), link, reg("usr/bin/gone"), []byte("G"),
		hardlink("usr/bin/gone2", "usr/bin/gone"), other))
	res, _ := rewrite(t, img, optimize.RewriteOptions{Drop: []string{"/usr/bin/gone"}, Harden: &optimize.Hardening{StripSetID: true}})
	ls, _ := res.Image.Layers()
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Mode&0o6000 != 0 {
			t.Errorf("%s (type %c) written with mode %04o: the engine sets it on the shared inode", h.Name, h.Typeflag, h.Mode&0o7777)
		}
	}
}

// R2-6. Changes has one entry per removed tool, flagged path and setuid file (security.go:131, :139), unbounded: an
// image of N setuid files makes N entries, then N security_improvements strings and N JSON objects (Removed lists
// at most MaxItems paths for the same files).
func TestHostileChangesBounded(t *testing.T) {
	const n = 5000
	var entries []any
	entries = append(entries, dir("bin/"))
	for i := 0; i < n; i++ {
		h := reg("bin/s" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i))
		h.Mode = 0o4755
		entries = append(entries, h, []byte("s"))
	}
	res, _ := rewrite(t, layered(t, hdrs(t, entries...)), optimize.RewriteOptions{Harden: &optimize.Hardening{StripSetID: true}})
	if len(res.Changes) >= n {
		t.Errorf("%d changes listed for %d setuid files: unbounded", len(res.Changes), n)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// ---- A fake Engine API (no engine is started or contacted) ---------------------------------------------------------

// R2-12. security_improvements are printed to a terminal (internal/cli/optimize.go:211) from Change.String: a path
// or an account name from the image carries escape sequences through (a tar name may hold any byte but NUL).
func TestHostileChangeStringPrintable(t *testing.T) {
	evil := "\x1b]0;owned\x07\x1b[2K\rapp"
	img := layered(t, hdrs(t, dir("etc/"), reg("etc/passwd"), []byte("root:x:0:0::/:/bin/sh\n"+evil+":x:1000:1000::/:/bin/sh\n"),
		dir("bin/"), &tar.Header{Typeflag: tar.TypeReg, Name: "bin/" + evil, Mode: 0o4755}, []byte("x")))
	res, _ := rewrite(t, img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true, StripSetID: true}})
	for _, c := range res.Changes {
		if s := c.String(); strings.ContainsAny(s, "\x1b\x07\r") {
			t.Errorf("change %q reaches the terminal raw", s)
		}
	}
}
