//go:build linux

package testimages

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
)

// DebianScan is the image the security scanner's tests run against: a real Debian root filesystem with npm
// packages, a Go binary and Python package metadata on top, each at a version with known advisories. See
// [EnsureDebian].
const DebianScan = "myrmex.local/debian-scan:test"

// ImageLabel marks an image this package built with the recipe it was built from ("debian-scan/<key>"), so that
// a changed recipe rebuilds it.
const ImageLabel = "io.codomyrmex.myrmex.testimage"

// The recipe. Changing anything below changes the cache key (see debianKey), so images built from an older
// recipe are rebuilt; the debootstrapped root filesystem is keyed by suite, variant and architecture only.
const (
	debianSuite   = "bookworm"
	debianVariant = "minbase"
	defaultMirror = "http://deb.debian.org/debian"
	// recipeVersion is bumped when the way layers are made changes in a way the constants below do not show.
	recipeVersion = "1"
)

// npmPackages are installed from the npm registry: lodash 4.17.20 has CVE-2021-23337 (fixed in 4.17.21) and
// minimist 1.2.5 has CVE-2021-44906 (fixed in 1.2.6).
var npmPackages = []string{"lodash@4.17.20", "minimist@1.2.5"}

// goMod pins golang.org/x/text v0.3.5, which has GO-2021-0113 (fixed in v0.3.7).
const goMod = `module example.com/app

go 1.21

require golang.org/x/text v0.3.5
`

// goMain calls ParseAcceptLanguage, one of the functions GO-2021-0113 names, so the vulnerable code is reachable.
const goMain = `// Command app prints the best match among English, French and German for an Accept-Language header.
package main

import (
	"fmt"
	"os"

	"golang.org/x/text/language"
)

func main() {
	header := "fr-CH, fr;q=0.9, en;q=0.8"
	if len(os.Args) > 1 {
		header = os.Args[1]
	}
	tags, _, err := language.ParseAcceptLanguage(header)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tag, _, _ := language.NewMatcher([]language.Tag{language.English, language.French, language.German}).Match(tags...)
	fmt.Println(tag)
}
`

// The Python layer is metadata only: PyPI is not reachable from the machines these tests run on, so the
// dist-info directory of requests 2.25.0 (CVE-2023-32681, fixed in 2.31.0) is written as pip would write it,
// without the package's code.
const (
	pythonDistInfo = "usr/lib/python3/dist-packages/requests-2.25.0.dist-info"
	pythonMetadata = `Metadata-Version: 2.1
Name: requests
Version: 2.25.0
Summary: Python HTTP for Humans.
Home-page: https://requests.readthedocs.io
Author: Kenneth Reitz
Author-email: me@kennethreitz.org
License: Apache 2.0
Project-URL: Documentation, https://requests.readthedocs.io
Project-URL: Source, https://github.com/psf/requests
Platform: UNKNOWN
Classifier: Development Status :: 5 - Production/Stable
Classifier: Intended Audience :: Developers
Classifier: Natural Language :: English
Classifier: License :: OSI Approved :: Apache Software License
Classifier: Programming Language :: Python
Classifier: Programming Language :: Python :: 3
Requires-Python: >=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*
Description-Content-Type: text/markdown
Requires-Dist: chardet (<4,>=3.0.2)
Requires-Dist: idna (<3,>=2.5)
Requires-Dist: urllib3 (<1.27,>=1.21.1)
Requires-Dist: certifi (>=2017.4.17)
Provides-Extra: security
Requires-Dist: pyOpenSSL (>=0.14) ; extra == 'security'
Requires-Dist: cryptography (>=1.3.4) ; extra == 'security'
Provides-Extra: socks
Requires-Dist: PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'

Requests is an elegant and simple HTTP library for Python, built for human beings.
`
	pythonWheel = `Wheel-Version: 1.0
Generator: bdist_wheel (0.35.1)
Root-Is-Purelib: true
Tag: py2-none-any
Tag: py3-none-any
`
)

var debianCmd = []string{"/app/bin/app"}

// DebianOptions tunes [EnsureDebian]. The zero value works.
type DebianOptions struct {
	// CacheDir keeps the debootstrapped root filesystem and the image's manifest between runs. Empty means
	// $MYRMEX_CACHE_DIR/testimages, else testimages in the user's cache directory (~/.cache/myrmex/testimages).
	CacheDir string
	// Mirror is the Debian archive debootstrap installs from. Empty means the machine's own, from its apt
	// sources, so that it works behind whatever mirror the network allows; else deb.debian.org.
	Mirror string
	// Logger receives each step and its duration. Nil discards them.
	Logger *slog.Logger
}

// DebianImage is the image [EnsureDebian] made and what is inside it, read from the files themselves, so that
// tests can expect exactly the versions this machine's mirror shipped (bookworm's move with point releases).
type DebianImage struct {
	// Ref is [DebianScan].
	Ref string `json:"ref"`
	// ID is the engine's image ID; Digest the manifest digest of the image as built.
	ID     string `json:"id"`
	Digest string `json:"digest"`
	// Key is the cache key: the image carries [ImageLabel]="debian-scan/<Key>".
	Key string `json:"key"`
	// Layers are the image's four layers, base first.
	Layers []DebianLayer `json:"layers"`
	// Debian is the release of the root filesystem.
	Debian DebianRelease `json:"debian"`
	// Dpkg lists the installed packages of /var/lib/dpkg/status, sorted by name.
	Dpkg []DpkgPackage `json:"dpkg"`
	// Npm lists the packages under /app/node_modules, sorted by name.
	Npm []NpmPackage `json:"npm"`
	// Go is the binary /app/bin/app.
	Go GoBinary `json:"go"`
	// Python lists the Python distributions; their metadata only, the code is not there.
	Python []PythonPackage `json:"python"`
}

// DebianLayer is one layer of [DebianImage].
type DebianLayer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diff_id"`
	CreatedBy string `json:"created_by"`
}

// DebianRelease describes the Debian root filesystem.
type DebianRelease struct {
	// VersionID is /etc/os-release's VERSION_ID ("12"), which makes the OSV ecosystem "Debian:12".
	VersionID string `json:"version_id"`
	// Codename is VERSION_CODENAME ("bookworm").
	Codename string `json:"codename"`
	// PointRelease is /etc/debian_version ("12.11").
	PointRelease string `json:"point_release"`
	// Mirror is the archive debootstrap installed from.
	Mirror string `json:"mirror"`
}

// DpkgPackage is an installed Debian binary package. Debian's advisories name the source package.
type DpkgPackage struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Architecture  string `json:"architecture"`
	SourceName    string `json:"source_name"`
	SourceVersion string `json:"source_version"`
}

// NpmPackage is a package installed under /app/node_modules.
type NpmPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Path is its package.json in the image.
	Path string `json:"path"`
}

// GoBinary is a Go executable in the image and the build information it embeds.
type GoBinary struct {
	Path      string `json:"path"`
	GoVersion string `json:"go_version"` // "go1.26.8": the standard library's version
	Main      string `json:"main"`
	// Modules are the dependencies compiled in.
	Modules []GoModule `json:"modules"`
}

// GoModule is a module compiled into a [GoBinary].
type GoModule struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Sum     string `json:"sum"`
}

// PythonPackage is a Python distribution's metadata in the image.
type PythonPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Path is its METADATA file in the image.
	Path string `json:"path"`
}

// DpkgPackage returns the installed Debian package called name.
func (d DebianImage) DpkgPackage(name string) (DpkgPackage, bool) {
	i := slices.IndexFunc(d.Dpkg, func(p DpkgPackage) bool { return p.Name == name })
	if i < 0 {
		return DpkgPackage{}, false
	}
	return d.Dpkg[i], true
}

// EnsureDebian makes sure the engine holds [DebianScan], built from the current recipe, and returns it with an
// inventory of its contents. The image has four layers:
//
//  1. a Debian bookworm root filesystem from `debootstrap --variant=minbase` (about 90 packages, 200 MB), with
//     the apt lists and downloaded .debs debootstrap leaves behind;
//  2. lodash 4.17.20 and minimist 1.2.5 under /app/node_modules, installed by npm from the npm registry;
//  3. /app/bin/app, a Go program built with golang.org/x/text v0.3.5 through the Go module proxy;
//  4. the pip metadata of requests 2.25.0 in /usr/lib/python3/dist-packages (metadata only: no PyPI here).
//
// Its configuration runs /app/bin/app as root with no HEALTHCHECK, and its history names the command that
// made each layer.
//
// The root filesystem is cached as a tarball in opts.CacheDir, so only the first run on a machine pays for
// debootstrap (about a minute); when the engine already holds the image built from the same recipe and root
// filesystem, EnsureDebian returns the cached manifest at once. Concurrent callers, in this process or others,
// wait for each other. Building needs root, debootstrap and unshare for the root filesystem, then npm and go:
// when one is missing the error wraps [errdefs.ErrUnavailable].
func EnsureDebian(ctx context.Context, eng *engine.Client, opts DebianOptions) (DebianImage, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := opts.cacheDir()
	if err != nil {
		return DebianImage{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return DebianImage{}, err
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "debian-scan.lock"))
	if err != nil {
		return DebianImage{}, err
	}
	defer unlock()

	key := debianKey()
	manifestPath := filepath.Join(dir, "debian-scan-"+key+".json")
	img, previous, err := cachedDebian(ctx, eng, manifestPath, key)
	if err != nil || img.ID != "" {
		return img, err
	}
	rootfs, err := ensureRootfs(ctx, dir, opts.Mirror, log)
	if err != nil {
		return DebianImage{}, err
	}
	if img, err = buildDebian(ctx, eng, rootfs, key, log); err != nil {
		return DebianImage{}, err
	}
	if previous != "" && previous != img.ID {
		// The tag moved to the new image: the old one is ours and would only take space. A container may
		// still use it, and then it stays.
		_, _ = eng.API().ImageRemove(ctx, previous, client.ImageRemoveOptions{})
	}
	data, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return DebianImage{}, err
	}
	if err := writeFileAtomic(manifestPath, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return DebianImage{}, err
	}
	return img, nil
}

func (o DebianOptions) cacheDir() (string, error) {
	if o.CacheDir != "" {
		return o.CacheDir, nil
	}
	if d := os.Getenv("MYRMEX_CACHE_DIR"); d != "" {
		return filepath.Join(d, "testimages"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory (set MYRMEX_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "myrmex", "testimages"), nil
}

// rootfsKey names the cached root filesystem: debootstrap's output depends on these and the mirror's state.
func rootfsKey() string { return debianSuite + "-" + debianVariant + "-" + runtime.GOARCH }

// debianKey names the image: the root filesystem's key and a hash of the recipe of the other layers.
func debianKey() string {
	h := sha256.New()
	for _, s := range []string{recipeVersion, strings.Join(npmPackages, " "), goMod, goMain, pythonDistInfo,
		pythonMetadata, pythonWheel, strings.Join(debianCmd, " ")} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return rootfsKey() + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// cachedDebian returns the manifest of the image in the engine when it was built from key and the manifest on
// disk describes that very image, else the ID of the image the tag points at (to remove after a rebuild).
func cachedDebian(ctx context.Context, eng *engine.Client, manifestPath, key string) (img DebianImage, previous string, err error) {
	ok, err := eng.ImageExists(ctx, DebianScan)
	if err != nil || !ok {
		return DebianImage{}, "", err
	}
	res, err := eng.API().ImageInspect(ctx, DebianScan)
	if err != nil {
		return DebianImage{}, "", fmt.Errorf("inspecting %s: %w", DebianScan, err)
	}
	var labels map[string]string
	if res.Config != nil {
		labels = res.Config.Labels
	}
	data, err := os.ReadFile(manifestPath)
	if labels[ImageLabel] != "debian-scan/"+key || err != nil || json.Unmarshal(data, &img) != nil || img.ID != res.ID {
		return DebianImage{}, res.ID, nil
	}
	return img, "", nil
}

// lockFile takes an exclusive lock on path, waiting for it as long as ctx allows. flock locks belong to the
// open file, so they exclude other processes and other callers in this one alike, and end with the process.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ensureRootfs returns the cached root filesystem tarball (gzip-compressed, so it is the layer blob as is),
// running debootstrap first when there is none.
func ensureRootfs(ctx context.Context, dir, mirror string, log *slog.Logger) (string, error) {
	out := filepath.Join(dir, "rootfs-"+rootfsKey()+".tar.gz")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("debootstrap needs root to make the Debian test image: %w", errdefs.ErrUnavailable)
	}
	for _, tool := range []string{"debootstrap", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("making the Debian test image needs %s (apt-get install debootstrap): %w", tool, errdefs.ErrUnavailable)
		}
	}
	if mirror == "" {
		mirror = aptMirror(debianSuite)
	}
	tmp, err := os.MkdirTemp(dir, "debootstrap-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	target := filepath.Join(tmp, "root")
	start := time.Now()
	// In a mount namespace of its own, the /proc and /sys that debootstrap mounts in the target vanish with it,
	// even when it is killed, so removing the target can never reach into the host's.
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private",
		"debootstrap", "--variant="+debianVariant, debianSuite, target, mirror)
	if err := runQuiet(cmd); err != nil {
		return "", fmt.Errorf("debootstrap from %s: %w", mirror, err)
	}
	log.Info("debootstrap", "suite", debianSuite, "mirror", mirror, "took", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	err = writeFileAtomic(out, func(w io.Writer) error {
		zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return err
		}
		tw := tar.NewWriter(zw)
		if err := addTree(tw, target, "", false, skipHostFiles); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		return "", fmt.Errorf("archiving the root filesystem: %w", err)
	}
	log.Info("archived the root filesystem", "path", out, "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

// skipHostFiles leaves out what debootstrap copies from the host or creates for itself and the engine provides
// anyway: device nodes, the contents of /proc and /sys, the host's name and resolver.
func skipHostFiles(name string) bool {
	switch name {
	case "etc/hostname", "etc/resolv.conf":
		return true
	}
	for _, dir := range []string{"dev/", "proc/", "sys/"} {
		if strings.HasPrefix(name, dir) {
			return true
		}
	}
	return false
}

// runQuiet runs cmd in a process group of its own, killed whole when ctx ends, and returns its output's tail
// with the error when it fails.
func runQuiet(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail)
	}
	return nil
}

// aptMirror returns the Debian archive of the machine's apt sources that serves suite, else any Debian archive
// there, else deb.debian.org.
func aptMirror(suite string) string {
	var entries []aptSource
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		entries = append(entries, parseSourcesList(string(data))...)
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append(files, lists...) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.HasSuffix(f, ".sources") {
			entries = append(entries, parseDeb822Sources(string(data))...)
		} else {
			entries = append(entries, parseSourcesList(string(data))...)
		}
	}
	for _, e := range entries {
		if slices.Contains(e.suites, suite) {
			return e.uri
		}
	}
	for _, e := range entries {
		if strings.HasSuffix(strings.TrimSuffix(e.uri, "/"), "/debian") {
			return e.uri
		}
	}
	return defaultMirror
}

type aptSource struct {
	uri    string
	suites []string
}

// parseSourcesList reads the one-line format: "deb [options] uri suite component...".
func parseSourcesList(data string) []aptSource {
	var out []aptSource
	for line := range strings.Lines(data) {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && isHTTP(f[0]) {
			out = append(out, aptSource{uri: f[0], suites: f[1:2]})
		}
	}
	return out
}

// parseDeb822Sources reads the deb822 format of *.sources files: stanzas of Types, URIs, Suites….
func parseDeb822Sources(data string) []aptSource {
	var out []aptSource
	for _, stanza := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		for line := range strings.Lines(stanza) {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[strings.ToLower(k)] = strings.TrimSpace(v)
			}
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			if isHTTP(uri) {
				out = append(out, aptSource{uri: uri, suites: strings.Fields(fields["suites"])})
			}
		}
	}
	return out
}

func isHTTP(uri string) bool {
	return strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://")
}

// buildDebian makes the image from the root filesystem tarball and the three layers above it, loads it into
// the engine, and returns its manifest.
func buildDebian(ctx context.Context, eng *engine.Client, rootfs, key string, log *slog.Logger) (DebianImage, error) {
	img := DebianImage{Ref: DebianScan, Key: key}
	var err error
	start := time.Now()
	if img.Debian, img.Dpkg, err = readRootfs(rootfs); err != nil {
		return DebianImage{}, fmt.Errorf("reading the cached root filesystem %s (delete it to make it again): %w", rootfs, err)
	}
	base, err := tarball.LayerFromFile(rootfs)
	if err != nil {
		return DebianImage{}, err
	}
	log.Info("read the root filesystem", "packages", len(img.Dpkg), "took", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	npm, npmBy, err := npmLayer(ctx, &img)
	if err != nil {
		return DebianImage{}, err
	}
	log.Info("npm install", "packages", len(img.Npm), "took", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	gobin, goBy, err := goLayer(ctx, &img)
	if err != nil {
		return DebianImage{}, err
	}
	log.Info("go build", "go", img.Go.GoVersion, "took", time.Since(start).Round(time.Millisecond))
	py, pyBy, err := pythonLayer(&img)
	if err != nil {
		return DebianImage{}, err
	}

	now := v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	baseBy := fmt.Sprintf("debootstrap --variant=%s %s / %s", debianVariant, debianSuite, img.Debian.Mirror)
	var adds []mutate.Addendum
	for _, l := range []struct {
		layer   v1.Layer
		by      string
		comment string
	}{
		{base, baseBy, "Debian " + img.Debian.PointRelease},
		{npm, npmBy, ""},
		{gobin, goBy, ""},
		{py, pyBy, "metadata only: the package's code is not installed"},
	} {
		adds = append(adds, mutate.Addendum{Layer: l.layer, History: v1.History{Created: now, CreatedBy: l.by, Comment: l.comment}})
	}
	image, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return DebianImage{}, err
	}
	cf, err := image.ConfigFile()
	if err != nil {
		return DebianImage{}, err
	}
	cf = cf.DeepCopy()
	cf.Created, cf.OS, cf.Architecture = now, "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = debianCmd
	cf.Config.WorkingDir = "/app"
	cf.Config.Labels = map[string]string{ImageLabel: "debian-scan/" + key}
	cmdJSON, _ := json.Marshal(debianCmd)
	cf.History = append(cf.History,
		v1.History{Created: now, CreatedBy: "/bin/sh -c #(nop) WORKDIR /app", EmptyLayer: true},
		v1.History{Created: now, CreatedBy: "/bin/sh -c #(nop)  CMD " + string(cmdJSON), EmptyLayer: true},
		v1.History{Created: now, CreatedBy: fmt.Sprintf("/bin/sh -c #(nop)  LABEL %s=debian-scan/%s", ImageLabel, key), EmptyLayer: true})
	if image, err = mutate.ConfigFile(image, cf); err != nil {
		return DebianImage{}, err
	}
	layers, err := image.Layers()
	if err != nil {
		return DebianImage{}, err
	}
	for i, l := range layers {
		digest, err := l.Digest()
		if err != nil {
			return DebianImage{}, err
		}
		diffID, err := l.DiffID()
		if err != nil {
			return DebianImage{}, err
		}
		img.Layers = append(img.Layers, DebianLayer{Digest: digest.String(), DiffID: diffID.String(), CreatedBy: adds[i].History.CreatedBy})
	}
	digest, err := image.Digest()
	if err != nil {
		return DebianImage{}, err
	}
	img.Digest = digest.String()

	start = time.Now()
	tag, err := name.NewTag(DebianScan)
	if err != nil {
		return DebianImage{}, err
	}
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := tarball.Write(tag, image, pw)
		pw.CloseWithError(err)
		written <- err
	}()
	err = eng.LoadImage(ctx, pr)
	pr.CloseWithError(errors.New("the engine stopped reading"))
	if werr := <-written; werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return DebianImage{}, fmt.Errorf("loading %s: %w", DebianScan, err)
	}
	res, err := eng.API().ImageInspect(ctx, DebianScan)
	if err != nil {
		return DebianImage{}, fmt.Errorf("inspecting %s: %w", DebianScan, err)
	}
	img.ID = res.ID
	log.Info("loaded the image", "id", img.ID, "took", time.Since(start).Round(time.Millisecond))
	return img, nil
}

// readRootfs reads the release, the mirror and the dpkg database from the root filesystem tarball: what the
// image holds, whether this run or an earlier one made it.
func readRootfs(path string) (DebianRelease, []DpkgPackage, error) {
	f, err := os.Open(path)
	if err != nil {
		return DebianRelease{}, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return DebianRelease{}, nil, err
	}
	want := map[string][]byte{"etc/os-release": nil, "usr/lib/os-release": nil, "etc/debian_version": nil,
		"etc/apt/sources.list": nil, "var/lib/dpkg/status": nil}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return DebianRelease{}, nil, err
		}
		n := strings.TrimPrefix(hdr.Name, "./")
		if _, ok := want[n]; ok && hdr.Typeflag == tar.TypeReg {
			if want[n], err = io.ReadAll(tr); err != nil {
				return DebianRelease{}, nil, err
			}
		}
	}
	osRelease := want["etc/os-release"]
	if osRelease == nil { // a link to ../usr/lib/os-release in Debian
		osRelease = want["usr/lib/os-release"]
	}
	rel := parseOSRelease(string(osRelease))
	if rel.VersionID == "" || want["var/lib/dpkg/status"] == nil {
		return DebianRelease{}, nil, errors.New("no os-release or dpkg status: not a Debian root filesystem")
	}
	rel.PointRelease = strings.TrimSpace(string(want["etc/debian_version"]))
	if s := parseSourcesList(string(want["etc/apt/sources.list"])); len(s) > 0 {
		rel.Mirror = s[0].uri
	}
	return rel, parseDpkgStatus(string(want["var/lib/dpkg/status"])), nil
}

func parseOSRelease(data string) DebianRelease {
	var rel DebianRelease
	for line := range strings.Lines(data) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "VERSION_ID":
			rel.VersionID = v
		case "VERSION_CODENAME":
			rel.Codename = v
		}
	}
	return rel
}

// parseDpkgStatus returns the installed packages of a dpkg status file, sorted by name. A package without a
// Source field is its own source; "Source: name (version)" gives a source version that differs from the
// binary's (a binNMU, or a package renamed in the source).
func parseDpkgStatus(data string) []DpkgPackage {
	var out []DpkgPackage
	for _, stanza := range strings.Split(data, "\n\n") {
		fields := map[string]string{}
		for line := range strings.Lines(stanza) {
			if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue // a continuation line of Description or Conffiles
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["Package"] == "" || !strings.HasSuffix(fields["Status"], " installed") {
			continue
		}
		p := DpkgPackage{Name: fields["Package"], Version: fields["Version"], Architecture: fields["Architecture"],
			SourceName: fields["Package"], SourceVersion: fields["Version"]}
		if src := fields["Source"]; src != "" {
			srcName, srcVersion, ok := strings.Cut(src, " ")
			p.SourceName = srcName
			if ok {
				p.SourceVersion = strings.Trim(strings.TrimSpace(srcVersion), "()")
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b DpkgPackage) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// npmLayer installs npmPackages from the npm registry into a scratch /app and returns it as a layer, recording
// the versions npm actually installed.
func npmLayer(ctx context.Context, img *DebianImage) (v1.Layer, string, error) {
	if _, err := exec.LookPath("npm"); err != nil {
		return nil, "", fmt.Errorf("making the Debian test image needs npm: %w", errdefs.ErrUnavailable)
	}
	dir, err := os.MkdirTemp("", "myrmex-npm-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	args := append([]string{"install", "--no-audit", "--no-fund", "--save-exact"}, npmPackages...)
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	if err := runQuiet(cmd); err != nil {
		return nil, "", err
	}
	manifests, err := filepath.Glob(filepath.Join(dir, "node_modules", "*", "package.json"))
	if err != nil {
		return nil, "", err
	}
	scoped, _ := filepath.Glob(filepath.Join(dir, "node_modules", "@*", "*", "package.json"))
	for _, m := range append(manifests, scoped...) {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, "", err
		}
		var pkg struct{ Name, Version string }
		if err := json.Unmarshal(data, &pkg); err != nil {
			return nil, "", fmt.Errorf("reading %s: %w", m, err)
		}
		rel, _ := filepath.Rel(dir, m)
		img.Npm = append(img.Npm, NpmPackage{Name: pkg.Name, Version: pkg.Version, Path: "/app/" + filepath.ToSlash(rel)})
	}
	slices.SortFunc(img.Npm, func(a, b NpmPackage) int { return strings.Compare(a.Name, b.Name) })
	layer, err := treeLayer(func(tw *tar.Writer) error { return addTree(tw, dir, "app", true, nil) })
	return layer, "npm " + strings.Join(args, " "), err
}

// goLayer builds goMain against golang.org/x/text v0.3.5 from the Go module proxy and returns /app/bin/app as
// a layer, recording the build information the binary embeds.
func goLayer(ctx context.Context, img *DebianImage) (v1.Layer, string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, "", fmt.Errorf("making the Debian test image needs go: %w", errdefs.ErrUnavailable)
	}
	dir, err := os.MkdirTemp("", "myrmex-gobin-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	for n, data := range map[string]string{"go.mod": goMod, "main.go": goMain} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(data), 0o644); err != nil {
			return nil, "", err
		}
	}
	args := []string{"build", "-trimpath", "-o", "app", "."}
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = dir
	// -mod=mod lets go write the go.sum this scratch module does not ship; a go.work above the temp dir or a
	// newer toolchain in go.mod must not change what is built.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOOS=linux", "GOARCH="+runtime.GOARCH)
	if err := runQuiet(cmd); err != nil {
		return nil, "", err
	}
	bin := filepath.Join(dir, "app")
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, "", fmt.Errorf("reading the build information of the test binary: %w", err)
	}
	img.Go = GoBinary{Path: "/app/bin/app", GoVersion: info.GoVersion, Main: info.Main.Path}
	for _, d := range info.Deps {
		img.Go.Modules = append(img.Go.Modules, GoModule{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, "", err
	}
	layer, err := treeLayer(func(tw *tar.Writer) error {
		if err := writeDir(tw, "app/bin"); err != nil {
			return err
		}
		return writeFile(tw, "app/bin/app", 0o755, data)
	})
	by := fmt.Sprintf("CGO_ENABLED=0 go build -trimpath -o /app/bin/app . # %s, golang.org/x/text v0.3.5", info.GoVersion)
	return layer, by, err
}

// pythonLayer writes the dist-info directory of requests 2.25.0 as pip does, RECORD with each file's hash.
func pythonLayer(img *DebianImage) (v1.Layer, string, error) {
	files := []struct{ name, data string }{
		{"INSTALLER", "pip\n"},
		{"METADATA", pythonMetadata},
		{"WHEEL", pythonWheel},
		{"top_level.txt", "requests\n"},
	}
	base := path.Base(pythonDistInfo)
	var record strings.Builder
	for _, f := range files {
		sum := sha256.Sum256([]byte(f.data))
		fmt.Fprintf(&record, "%s/%s,sha256=%s,%d\n", base, f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.data))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", base)
	files = append(files, struct{ name, data string }{"RECORD", record.String()})
	img.Python = []PythonPackage{{Name: "requests", Version: "2.25.0", Path: "/" + pythonDistInfo + "/METADATA"}}
	layer, err := treeLayer(func(tw *tar.Writer) error {
		for _, d := range []string{"usr/lib/python3", "usr/lib/python3/dist-packages", pythonDistInfo} {
			if err := writeDir(tw, d); err != nil {
				return err
			}
		}
		for _, f := range files {
			if err := writeFile(tw, pythonDistInfo+"/"+f.name, 0o644, []byte(f.data)); err != nil {
				return err
			}
		}
		return nil
	})
	return layer, fmt.Sprintf("COPY %s /%s # pip's metadata of requests 2.25.0, without its code", base, pythonDistInfo), err
}

// layerTime stamps the files of the layers made here, so that the same inputs make the same layer.
var layerTime = time.Unix(0, 0)

func writeDir(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: layerTime})
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: layerTime}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// treeLayer returns the uncompressed tar that fill writes as a layer.
func treeLayer(fill func(*tar.Writer) error) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := fill(tw); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// addTree writes the tree at dir into tw under prefix, in lexical order, keeping modes, owners, times, symbolic
// and hard links. made marks a tree made here (not debootstrapped): its files belong to root and carry
// layerTime, whoever ran this. skip leaves out the entries it names (relative to dir); a skipped directory
// keeps its entry, without its contents.
func addTree(tw *tar.Writer, dir, prefix string, made bool, skip func(string) bool) error {
	links := map[[2]uint64]string{}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			if prefix == "" {
				return nil
			}
			rel = ""
		}
		if skip != nil && rel != "" && skip(rel) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode()
		if mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSocket|fs.ModeIrregular) != 0 {
			return nil
		}
		var target string
		if mode&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return err
		}
		hdr.Name = path.Join(prefix, rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if made {
			hdr.Uid, hdr.Gid, hdr.ModTime = 0, 0, layerTime
			if rel == "" {
				hdr.Mode = 0o755 // not the 0700 of the temporary directory it was made in
			}
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && mode.IsRegular() && st.Nlink > 1 {
			id := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if first, seen := links[id]; seen {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[id] = hdr.Name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}

// writeFileAtomic writes path through fill into a temporary file beside it and renames it into place, so that
// readers, and a run interrupted half way, see the old file or the new one and never a part.
func writeFileAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		_ = f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
