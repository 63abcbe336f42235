package optimize_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/optimize"
)

// hdrs makes a layer from headers and bodies (a body per regular file, in order).
func hdrs(t *testing.T, entries ...any) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i < len(entries); i++ {
		h := *entries[i].(*tar.Header)
		var body []byte
		if h.Typeflag == tar.TypeReg {
			i++
			body = entries[i].([]byte)
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return layerOf(t, b.Bytes())
}

func reg(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeReg, Name: name} }
func dir(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755} }
func symlink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}
}
func hardlink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}
}

func layered(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type got struct {
	typ  byte
	body string
	link string
}

// contents reads the rewritten image's one layer.
func contents(t *testing.T, res *optimize.RewriteResult) map[string]got {
	t.Helper()
	layers, err := res.Image.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]got{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if _, dup := out[h.Name]; dup {
			t.Errorf("%s written twice", h.Name)
		}
		out[h.Name] = got{h.Typeflag, string(b), h.Linkname}
	}
}

func rewrite(t *testing.T, img v1.Image, opts optimize.RewriteOptions) (*optimize.RewriteResult, map[string]got) {
	t.Helper()
	res, err := optimize.Rewrite(context.Background(), img, opts)
	if err != nil {
		t.Fatalf("Rewrite = %v", err)
	}
	t.Cleanup(func() { res.Close() })
	return res, contents(t, res)
}

// A lossless rewrite is the filesystem as it runs: later layers win, whiteouts and opaque directories hide what
// is below, hard links stay links, package caches and temporary files go (their directories stay).
func TestRewriteLossless(t *testing.T) {
	img := layered(t,
		hdrs(t, dir("etc/"), reg("etc/app.conf"), []byte("v1"), dir("data/"), reg("data/big"), bytes.Repeat([]byte("x"), 1000),
			dir("var/lib/apt/lists/"), reg("var/lib/apt/lists/Packages"), bytes.Repeat([]byte("p"), 500),
			dir("tmp/"), reg("tmp/x"), []byte("0123456789"), dir("dir/sub/"), reg("dir/sub/f1"), []byte("f1"),
			dir("bin/"), reg("bin/orig"), []byte("ORIG"), hardlink("bin/h", "bin/orig"), symlink("bin/s", "orig")),
		hdrs(t, reg("etc/app.conf"), []byte("v2"), reg("data/.wh.big"), []byte{}, dir("dir/"), reg("dir/.wh..wh..opq"), []byte{},
			reg("dir/new"), []byte("new")),
	)
	res, files := rewrite(t, img, optimize.RewriteOptions{})
	want := map[string]got{
		"etc/": {typ: tar.TypeDir}, "etc/app.conf": {tar.TypeReg, "v2", ""}, "data/": {typ: tar.TypeDir},
		"var/": {typ: tar.TypeDir}, "var/lib/": {typ: tar.TypeDir}, "var/lib/apt/": {typ: tar.TypeDir}, "var/lib/apt/lists/": {typ: tar.TypeDir},
		"tmp/": {typ: tar.TypeDir}, "dir/": {typ: tar.TypeDir}, "dir/new": {tar.TypeReg, "new", ""},
		"bin/": {typ: tar.TypeDir}, "bin/orig": {tar.TypeReg, "ORIG", ""}, "bin/h": {tar.TypeLink, "", "bin/orig"}, "bin/s": {tar.TypeSymlink, "", "orig"},
	}
	for name, w := range want {
		if g, ok := files[name]; !ok || g != w {
			t.Errorf("%s = %+v (present %v), want %+v", name, g, ok, w)
		}
	}
	for name := range files {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is in the rewritten image", name)
		}
	}
	removed := map[string]optimize.Removal{}
	for _, r := range res.Removed {
		removed[r.Reason] = r
	}
	if r := removed[optimize.ReasonPackageCache]; r.Files != 1 || r.Bytes != 500 {
		t.Errorf("package caches removed = %+v, want 1 file of 500 bytes", r)
	}
	if r := removed[optimize.ReasonTemporary]; r.Files != 1 || r.Bytes != 10 {
		t.Errorf("temporary files removed = %+v, want 1 file of 10 bytes", r)
	}
	if res.LayersBefore != 2 || res.LayersAfter != 1 || res.Minified {
		t.Errorf("layers %d → %d, minified %v", res.LayersBefore, res.LayersAfter, res.Minified)
	}
}

// A hard link whose target does not stay becomes a file with the target's content.
func TestRewriteHardLinkToDroppedFile(t *testing.T) {
	img := layered(t, hdrs(t, reg("a"), []byte("AAA"), hardlink("b", "a"), reg("c"), []byte("C")))
	_, files := rewrite(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/b": "read"}}})
	if g := files["b"]; g.typ != tar.TypeReg || g.body != "AAA" {
		t.Errorf("b = %+v, want a file holding AAA", g)
	}
	if _, ok := files["a"]; ok {
		t.Errorf("a stayed: nothing used it")
	}
	if _, ok := files["c"]; ok {
		t.Errorf("c stayed: nothing used it")
	}
}

// Minifying keeps what the profile names and what it needs: an executable's interpreter and libraries, found
// through the links the loader would follow; the rest goes.
func TestRewriteMinifyKeepsELFDependencies(t *testing.T) {
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Skipf("this test copies a dynamic executable and its libraries from the machine (Debian 12, amd64): %v", err)
		}
		return b
	}
	tru, libc, ld := read("/usr/bin/true"), read("/usr/lib/x86_64-linux-gnu/libc.so.6"), read("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	img := layered(t,
		hdrs(t, symlink("lib", "usr/lib"), symlink("lib64", "usr/lib64"), dir("usr/bin/"), dir("usr/lib/x86_64-linux-gnu/"), dir("usr/lib64/"),
			reg("usr/lib/x86_64-linux-gnu/libc.so.6"), libc, reg("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), ld,
			symlink("usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
			reg("usr/lib/x86_64-linux-gnu/libunused.so.1"), []byte("\x7fELF not really"), reg("usr/bin/other"), []byte("#!/bin/sh\n")),
		hdrs(t, reg("usr/bin/true"), tru, dir("home/"), dir("home/user/"), reg("home/user/notes"), []byte("n")),
	)
	res, files := rewrite(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/usr/bin/true": "exec"}}})
	for _, p := range []string{"usr/bin/true", "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "lib64", "lib", "usr/lib64/ld-linux-x86-64.so.2", "home/"} {
		if _, ok := files[p]; !ok {
			t.Errorf("%s is gone; the executable needs it (or it is a top-level directory)", p)
		}
	}
	for _, p := range []string{"usr/lib/x86_64-linux-gnu/libunused.so.1", "usr/bin/other", "home/user/notes", "home/user/"} {
		if _, ok := files[p]; ok {
			t.Errorf("%s stayed; nothing needs it", p)
		}
	}
	if res.Added < 2 {
		t.Errorf("added by dependencies = %d, want the interpreter and libc at least", res.Added)
	}
}

// Keep and Drop win over the profile; layers can be left out; bad options are refused before anything is read.
func TestRewriteOptions(t *testing.T) {
	img := layered(t, hdrs(t, dir("app/"), reg("app/a"), []byte("a"), reg("app/b"), []byte("b")), hdrs(t, reg("app/c"), []byte("c")))
	_, files := rewrite(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/app/a": "read"}}, Keep: []string{"/app/b"}, Drop: []string{"/app/a"}})
	if _, ok := files["app/a"]; ok {
		t.Errorf("app/a stayed; it was dropped")
	}
	if _, ok := files["app/b"]; !ok {
		t.Errorf("app/b is gone; it was kept")
	}
	_, files = rewrite(t, img, optimize.RewriteOptions{DropLayers: []int{1}})
	if _, ok := files["app/c"]; ok {
		t.Errorf("app/c stayed; its layer was left out")
	}
	for _, opts := range []optimize.RewriteOptions{{DropLayers: []int{2}}, {Keep: []string{"relative"}}, {Limits: optimize.AnalyzeOptions{MaxImageEntries: 2}}} {
		if _, err := optimize.Rewrite(context.Background(), img, opts); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Rewrite(%+v) = %v, want ErrInvalidArgument", opts, err)
		}
	}
}

// Links that lead out of the root lead to the root, as the kernel resolves them inside a container: a profile
// naming one keeps nothing outside the image, and the rewrite writes the links as they are.
func TestRewriteLinksLeavingTheRoot(t *testing.T) {
	img := layered(t, hdrs(t, dir("app/"), symlink("app/up", "../../../../etc"), reg("etc/secret"), []byte("s"),
		hardlink("app/hl", "../../etc/secret"), reg("app/x"), []byte("x")))
	_, files := rewrite(t, img, optimize.RewriteOptions{Profile: &optimize.Profile{Files: map[string]string{"/app/up/secret": "read", "/../../app/x": "read"}}})
	if g := files["app/up"]; g.typ != tar.TypeSymlink || g.link != "../../../../etc" {
		t.Errorf("app/up = %+v, want the link as it was", g)
	}
	if _, ok := files["etc/secret"]; !ok {
		t.Errorf("etc/secret is gone: the link that leads to it (inside the root) was used")
	}
	if _, ok := files["app/x"]; !ok {
		t.Errorf("app/x is gone: the profile's /../../app/x is /app/x")
	}
	if _, ok := files["app/hl"]; ok {
		t.Errorf("app/hl stayed; nothing used it")
	}
}

// Hardening: the image runs as its unprivileged user, setuid bits go, shells and tools the profile did not see
// go (the one it used stays), flagged files go; each change is listed with its reason.
func TestRewriteHarden(t *testing.T) {
	suid := reg("usr/lib/helper")
	suid.Mode = 0o4755
	img := layered(t, hdrs(t, dir("etc/"), reg("etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
		reg("etc/group"), []byte("root:x:0:\napp:x:1000:\n"), dir("bin/"), reg("bin/sh"), []byte("sh"), reg("bin/bash"), []byte("bash"),
		dir("usr/bin/"), reg("usr/bin/curl"), []byte("curl"), reg("usr/bin/python3"), []byte("py"), dir("usr/lib/"), suid, []byte("h"),
		dir("app/.git/"), reg("app/.git/config"), []byte("[core]"), reg("app/main.py"), []byte("print()")))
	res, files := rewrite(t, img, optimize.RewriteOptions{Harden: &optimize.Hardening{
		NonRoot: true, StripSetID: true, RemoveTools: true,
		Used:   map[string]string{"/usr/bin/python3": "exec", "/bin/bash": "exec", "/app/main.py": "read"},
		Remove: map[string]string{"/app/.git": "Only put necessary files (DKL-LI-0003)"},
	}})
	cfg, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "1000:1000" || res.User != "1000:1000" {
		t.Errorf("user = %q (%q), want the image's own app user 1000:1000", cfg.Config.User, res.User)
	}
	for _, gone := range []string{"bin/sh", "usr/bin/curl", "app/.git/config"} {
		if _, ok := files[gone]; ok {
			t.Errorf("%s stayed", gone)
		}
	}
	for _, kept := range []string{"bin/bash", "usr/bin/python3", "app/main.py", "etc/passwd"} {
		if _, ok := files[kept]; !ok {
			t.Errorf("%s is gone; the profile used it", kept)
		}
	}
	layers, _ := res.Image.Layers()
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "usr/lib/helper" && h.Mode&0o6000 != 0 {
			t.Errorf("usr/lib/helper mode %o: setuid stayed", h.Mode)
		}
	}
	reasons := map[string]string{}
	for _, c := range res.Changes {
		reasons[c.Path] = c.String()
	}
	for _, p := range []string{"/bin/sh", "/usr/bin/curl", "/app/.git/config", "/usr/lib/helper"} {
		if reasons[p] == "" {
			t.Errorf("no change listed for %s: %+v", p, res.Changes)
		}
	}

	// Shells kept on request; a user named by the caller; root or an unknown name refused.
	res, files = rewrite(t, img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true, RemoveTools: true, KeepShells: true,
		Used: map[string]string{"/usr/bin/python3": "exec"}, User: "app"}})
	if _, ok := files["bin/sh"]; !ok {
		t.Errorf("bin/sh is gone; shells were to be kept")
	}
	if _, ok := files["usr/bin/curl"]; ok {
		t.Errorf("usr/bin/curl stayed; only shells were to be kept")
	}
	if res.User != "app" {
		t.Errorf("user = %q, want the one asked for", res.User)
	}
	for _, u := range []string{"root", "0:0", "nosuch", " app", "1:2:3"} {
		if _, err := optimize.Rewrite(context.Background(), img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true, User: u}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Rewrite(user %q) = %v, want ErrInvalidArgument", u, err)
		}
	}

	// No unprivileged user to use, and none at all: one is created, in the files there or in new ones.
	for name, img := range map[string]v1.Image{
		"root only": layered(t, hdrs(t, dir("etc/"), reg("etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh"), reg("bin"), []byte("x"))),
		"scratch":   layered(t, hdrs(t, reg("server"), []byte("x"))),
	} {
		res, files := rewrite(t, img, optimize.RewriteOptions{Harden: &optimize.Hardening{NonRoot: true}})
		if res.User != "10001:10001" || !strings.Contains(files["etc/passwd"].body, "myrmex:x:10001:10001:") || !strings.Contains(files["etc/group"].body, "myrmex:x:10001:") {
			t.Errorf("%s: user %q, passwd %q, group %q", name, res.User, files["etc/passwd"].body, files["etc/group"].body)
		}
		if name == "root only" && !strings.HasPrefix(files["etc/passwd"].body, "root:x:0:0:root:/root:/bin/sh\n") {
			t.Errorf("the existing account was not kept: %q", files["etc/passwd"].body)
		}
	}
}

// A user to run as that is root, or badly spelled, is refused before anything runs (no engine is reached).
func TestOptimizeRefusesARootUserFirst(t *testing.T) {
	o := &optimize.Optimizer{}
	for _, u := range []string{"root", "0", "00:1", " app", "a:b:c"} {
		_, err := o.Optimize(context.Background(), optimize.Request{Type: optimize.TypeSecurity, User: u, Target: "x:1"})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Optimize(user %q) = %v, want ErrInvalidArgument", u, err)
		}
	}
	if _, err := o.Optimize(context.Background(), optimize.Request{Type: optimize.TypeSize, User: "app", Target: "x:1"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Optimize(size with a user) = %v, want ErrInvalidArgument", err)
	}
}
