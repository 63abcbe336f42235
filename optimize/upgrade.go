package optimize

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/osv-scalibr/semantic"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/errdefs"
)

// Fix is an OS package a scan found vulnerable, with the version that fixes it.
type Fix struct {
	Package   string // the binary package, as the package manager names it
	Installed string
	Fixed     string // the highest fixed version among its advisories
	Ecosystem string // the OSV ecosystem ("Debian:12")
	IDs       []string
}

// PackageUpgrade is one package the security type upgraded, or could not bring to its fix.
type PackageUpgrade struct {
	Package string   `json:"package"`
	From    string   `json:"from"`
	To      string   `json:"to,omitempty"`
	Fixed   string   `json:"fixed_version"`
	IDs     []string `json:"fixes,omitempty"`
}

// Upgrades is what upgrading the image's OS packages did: the packages brought to (or past) their fixes, the
// ones whose fix the image's repositories do not have, or why nothing was upgraded.
type Upgrades struct {
	Manager  string           `json:"package_manager,omitempty"`
	Upgraded []PackageUpgrade `json:"upgraded,omitempty"`
	NotFixed []PackageUpgrade `json:"not_fixed,omitempty"`
	Skipped  string           `json:"skipped,omitempty"`
	// Log is the end of the package manager's output when it failed.
	Log string `json:"log,omitempty"`
}

// Bounds on what an upgrade takes from a scan and from the package manager.
const (
	maxFixes       = 1000
	maxUpgradeOut  = 1 << 20
	upgradeTimeout = 15 * time.Minute
)

// Exit codes of upgradeScript.
const (
	upgradeUnreachable = 86
	upgradeNoApt       = 87
	upgradeFailed      = 88
)

// upgradeScript runs as `sh -c upgradeScript sh PACKAGE...` in a container of the image, as root: apt's output
// goes to stderr, the packages' versions afterwards to stdout. apt-get update succeeds with warnings when a
// repository cannot be reached, so its output is read too. The lists and the downloaded packages stay: the
// rewrite drops them as package-manager caches, and says so.
const upgradeScript = `set -u
command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 || exit 87
export DEBIAN_FRONTEND=noninteractive
opts="-q -o Acquire::Retries=2 -o Acquire::http::Timeout=20 -o Dpkg::Options::=--force-confold"
out=$(apt-get $opts update 2>&1) || { printf '%s\n' "$out" >&2; exit 86; }
printf '%s\n' "$out" >&2
case "$out" in *"Failed to fetch"*|*"Some index files failed"*|*"Temporary failure resolving"*|*"Could not resolve"*|*"Could not connect"*) exit 86;; esac
apt-get $opts install -y --no-install-recommends --only-upgrade "$@" >&2 || exit 88
dpkg-query -W -f '${Package}\t${Version}\n' "$@" 2>/dev/null
exit 0
`

// debianName is a Debian package name (Debian Policy 5.6.1); anything else is not passed to apt.
var debianName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{0,127}$`)

// debianVersion is a Debian version (Debian Policy 5.6.12): an epoch, then an upstream version that starts with
// a digit; anything else is not compared.
var debianVersion = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]{0,254}$`)

// upgradable keeps the fixes apt can apply (Debian and Ubuntu packages with a fixed version), one per package
// with the highest fixed version, at most maxFixes.
func upgradable(fixes []Fix) []Fix {
	by := map[string]*Fix{}
	var order []string
	for _, f := range fixes {
		eco, _, _ := strings.Cut(f.Ecosystem, ":")
		if (eco != "Debian" && eco != "Ubuntu") || f.Fixed == "" || !debianName.MatchString(f.Package) {
			continue
		}
		fixed, err := semantic.Parse(f.Fixed, "Debian")
		if err != nil {
			continue
		}
		cur, ok := by[f.Package]
		if !ok {
			if len(by) == maxFixes {
				continue
			}
			c := f
			c.IDs = slices.Clone(f.IDs)
			by[f.Package] = &c
			order = append(order, f.Package)
			continue
		}
		if have, err := semantic.Parse(cur.Fixed, "Debian"); err == nil {
			if c, _ := fixed.Compare(have); c > 0 {
				cur.Fixed = f.Fixed
			}
		}
		for _, id := range f.IDs {
			if !slices.Contains(cur.IDs, id) {
				cur.IDs = append(cur.IDs, id)
			}
		}
	}
	out := make([]Fix, 0, len(order))
	for _, p := range order {
		out = append(out, *by[p])
	}
	slices.SortFunc(out, func(a, b Fix) int { return strings.Compare(a.Package, b.Package) })
	return out
}

// upgrade upgrades the packages of fixes in a container of source (root, the engine's default network) with
// the image's own package manager and repositories, and returns img with the changes as one more layer, or nil
// with Upgrades.Skipped saying why nothing changed. The container and the image committed from it are removed;
// cleanup removes the temporary file the returned image's new layer is read from.
func (o *Optimizer) upgrade(ctx context.Context, source string, img v1.Image, fixes []Fix, tempDir string) (v1.Image, *Upgrades, func(), error) {
	none := func() {}
	up := &Upgrades{Manager: "apt"}
	all := len(fixes)
	fixes = upgradable(fixes)
	if len(fixes) == 0 {
		up.Skipped = "no Debian or Ubuntu package has a fixed version for its vulnerabilities"
		if all > 0 {
			up.Skipped += fmt.Sprintf(" (%d fixes are for other package managers: only apt is upgraded)", all)
		}
		return nil, up, none, nil
	}
	names := make([]string, len(fixes))
	for i, f := range fixes {
		names[i] = f.Package
	}
	api := o.Engine.API()
	ctx, cancel := context.WithTimeout(ctx, upgradeTimeout)
	defer cancel()
	c, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: source, User: "0", Entrypoint: append([]string{"/bin/sh", "-c", upgradeScript, "sh"}, names...),
			Cmd: nil, WorkingDir: "/", Labels: map[string]string{Label: "upgrade"}, Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}},
	})
	if err != nil {
		return nil, nil, none, fmt.Errorf("creating the upgrade's container: %w", classify(err))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()
	r := &run{p: &Prober{Engine: o.Engine}, image: source}
	if _, err := api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		if ctx.Err() != nil || client.IsErrConnectionFailed(err) {
			return nil, nil, none, fmt.Errorf("starting the upgrade's container: %w", classify(err))
		}
		up.Skipped = "the image cannot run its package manager: " + clip(err.Error())
		return nil, up, none, nil
	}
	code, err := r.wait(ctx, c.ID)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, none, fmt.Errorf("upgrading packages: %w", context.Cause(ctx))
		}
		return nil, nil, none, fmt.Errorf("waiting for the upgrade: %w", classify(err))
	}
	switch code {
	case 0:
	case upgradeNoApt:
		up.Skipped = "the image has no apt-get and dpkg-query: packages were not upgraded"
		return nil, up, none, nil
	case upgradeUnreachable:
		up.Skipped = "the image's package repositories cannot be reached from the engine (apt-get update failed): packages were not upgraded"
		up.Log = r.logs(ctx, c.ID)
		return nil, up, none, nil
	case upgradeFailed:
		up.Skipped = "apt-get could not upgrade the packages: nothing was changed"
		up.Log = r.logs(ctx, c.ID)
		return nil, up, none, nil
	default:
		up.Skipped = fmt.Sprintf("the upgrade ended with exit code %d: nothing was changed", code)
		up.Log = r.logs(ctx, c.ID)
		return nil, up, none, nil
	}
	versions, err := stdoutOf(ctx, o, c.ID)
	if err != nil {
		return nil, nil, none, err
	}
	changed := false
	for _, f := range fixes {
		pu := PackageUpgrade{Package: f.Package, From: f.Installed, Fixed: f.Fixed}
		now, ok := versions[f.Package]
		if ok && now != f.Installed {
			pu.To = now
			changed = true
		}
		if ok && atLeast(now, f.Fixed) {
			pu.IDs = f.IDs
			up.Upgraded = append(up.Upgraded, pu)
			continue
		}
		if pu.To != "" {
			up.Upgraded = append(up.Upgraded, pu) // newer, but not yet the fix
		}
		up.NotFixed = append(up.NotFixed, pu)
	}
	if !changed {
		up.Skipped = "the image's repositories have no newer version of the vulnerable packages"
		return nil, up, none, nil
	}
	cm, err := api.ContainerCommit(ctx, c.ID, client.ContainerCommitOptions{Comment: "myrmex optimize: package upgrades", NoPause: true})
	if err != nil {
		return nil, nil, none, fmt.Errorf("committing the upgrade: %w", classify(err))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = api.ImageRemove(ctx, cm.ID, client.ImageRemoveOptions{PruneChildren: true})
	}()
	dir, err := os.MkdirTemp(tempDir, "myrmex-upgrade-")
	if err != nil {
		return nil, nil, none, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	file := filepath.Join(dir, "image.tar")
	if err := o.Engine.SaveImageFile(ctx, cm.ID, file); err != nil {
		cleanup()
		return nil, nil, none, fmt.Errorf("reading the upgrade back: %w", err)
	}
	committed, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		cleanup()
		return nil, nil, none, fmt.Errorf("reading the upgrade back: %w", err)
	}
	top, err := topLayer(img, committed)
	if err != nil {
		cleanup()
		return nil, nil, none, err
	}
	var ids []string
	for _, u := range up.Upgraded {
		ids = append(ids, u.Package)
	}
	patched, err := mutate.Append(img, mutate.Addendum{Layer: top, History: v1.History{
		Created:   v1.Time{Time: time.Now().UTC()},
		CreatedBy: "myrmex optimize: apt-get install --only-upgrade " + strings.Join(ids, " "),
		Comment:   "OS packages upgraded to their fixed versions",
	}})
	if err != nil {
		cleanup()
		return nil, nil, none, err
	}
	return patched, up, cleanup, nil
}

// topLayer is the one layer committed adds to img: committed must be img's layers and one more.
func topLayer(img, committed v1.Image) (v1.Layer, error) {
	base, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf, err := committed.ConfigFile()
	if err != nil {
		return nil, err
	}
	have, want := cf.RootFS.DiffIDs, base.RootFS.DiffIDs
	if len(have) != len(want)+1 || !slices.Equal(have[:len(want)], want) {
		return nil, fmt.Errorf("%w: the engine committed the upgrade on other layers than the image's (%d layers, want %d and one more)",
			errdefs.ErrUnavailable, len(have), len(want))
	}
	return committed.LayerByDiffID(have[len(have)-1])
}

// stdoutOf reads the upgrade container's standard output: "PACKAGE\tVERSION" lines.
func stdoutOf(ctx context.Context, o *Optimizer, id string) (map[string]string, error) {
	rc, err := o.Engine.API().ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		return nil, fmt.Errorf("reading the upgrade's output: %w", classify(err))
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, io.Discard, io.LimitReader(rc, maxUpgradeOut))
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		name, version, ok := strings.Cut(sc.Text(), "\t")
		if ok && debianName.MatchString(name) && debianVersion.MatchString(version) {
			out[name] = version
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the upgrade's output: %w", err)
	}
	return out, nil
}

// atLeast reports whether Debian version v is fixed or later.
func atLeast(v, fixed string) bool {
	if !debianVersion.MatchString(v) || !debianVersion.MatchString(fixed) {
		return false
	}
	a, err := semantic.Parse(v, "Debian")
	if err != nil {
		return false
	}
	b, err := semantic.Parse(fixed, "Debian")
	if err != nil {
		return false
	}
	c, err := a.Compare(b)
	return err == nil && c >= 0
}

// change is u as a line of security_improvements.
func (u PackageUpgrade) change() Change {
	c := Change{Change: "upgraded " + u.Package + " " + u.From + " → " + u.To}
	if len(u.IDs) > 0 {
		c.Reason = "fixes " + strings.Join(u.IDs, ", ")
	} else {
		c.Reason = "a newer version, but the fix (" + u.Fixed + ") is not in the image's repositories yet"
	}
	return c
}
