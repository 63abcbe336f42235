package testimages

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
)

// The images of the security type's package upgrades: Debian with two packages of the tests' own installed at
// 1.0-1 and a package repository inside the image (file:/srv/repo) that holds myrmex-demo 1.0-2 and
// myrmex-stuck 1.0-1 only. Nothing is downloaded: apt reads the repository from the image's own filesystem.
const (
	// Upgradable's apt sources are its own repository.
	Upgradable = "myrmex.local/upgradable:test"
	// UpgradableOffline is Upgradable with its apt sources pointing at an address nothing answers on.
	UpgradableOffline = "myrmex.local/upgradable:offline"
	// UpgradablePackage is installed at 1.0-1 and its repository has 1.0-2; UpgradableStuck is installed at
	// 1.0-1 and its repository has nothing newer. Both print "hello from NAME" when run.
	UpgradablePackage = "myrmex-demo"
	UpgradableStuck   = "myrmex-stuck"
)

const upgradableRecipe = "2"

// upgradableScript makes the packages with dpkg-deb, installs the old ones, and writes the repository's
// Packages index by hand (dpkg-dev is not in the base).
const upgradableScript = `set -eu
mkpkg() { # NAME VERSION OUTDIR
  d=$(mktemp -d); mkdir -p $d/DEBIAN $d/usr/bin $d/usr/share/$1
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: Myrmex tests <tests@myrmex.invalid>\nDescription: a package of the optimizer tests\n' "$1" "$2" >$d/DEBIAN/control
  printf '#!/bin/sh\necho hello from %s\n' "$1" >$d/usr/bin/$1
  chmod 755 $d/usr/bin/$1
  echo "$2" >$d/usr/share/$1/VERSION
  dpkg-deb --root-owner-group -Zgzip --build $d "$3/$1_$2_all.deb" >/dev/null
  rm -rf $d
}
old=$(mktemp -d)
mkdir -p /srv/repo
mkpkg myrmex-demo 1.0-1 $old
mkpkg myrmex-stuck 1.0-1 $old
mkpkg myrmex-demo 1.0-2 /srv/repo
cp $old/myrmex-stuck_1.0-1_all.deb /srv/repo/
dpkg -i $old/*.deb
rm -rf $old
cd /srv/repo
for f in *.deb; do dpkg-deb -f $f; echo "Filename: ./$f"; echo "Size: $(stat -c %s $f)"; echo "SHA256: $(sha256sum $f | cut -d' ' -f1)"; echo; done >Packages
rm -f /etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:/srv/repo ./' >/etc/apt/sources.list
`

// offlineScript points the image's apt at a port nothing listens on.
const offlineScript = `echo 'deb [trusted=yes] http://127.0.0.1:9/repo ./' >/etc/apt/sources.list`

// EnsureUpgradable makes sure the engine holds [Upgradable] and [UpgradableOffline], built from the current
// recipe on the Debian base of [EnsureApps] (made first when it is not there).
func EnsureUpgradable(ctx context.Context, eng *engine.Client, opts DebianOptions) error {
	dir, err := opts.cacheDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "apps.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	h := sha256.New()
	for _, v := range []string{upgradableRecipe, upgradableScript, offlineScript, strings.Join(debianBaseChanges, "\n")} {
		fmt.Fprintf(h, "%d:%s\n", len(v), v)
	}
	label := "upgradable/" + rootfsKey() + "-" + hex.EncodeToString(h.Sum(nil))[:12]
	_, have, err := imageLabel(ctx, eng, Upgradable)
	if err != nil {
		return err
	}
	_, haveOffline, err := imageLabel(ctx, eng, UpgradableOffline)
	if err != nil {
		return err
	}
	if have == label && haveOffline == label {
		return nil
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := ensureDebianBase(ctx, eng, dir, opts.Mirror, log)
	if err != nil {
		return err
	}
	changes := []string{`CMD ["/usr/bin/myrmex-demo"]`, "LABEL " + ImageLabel + "=" + label}
	if err := commitScript(ctx, eng, base, upgradableScript, Upgradable, changes); err != nil {
		return fmt.Errorf("building %s: %w", Upgradable, err)
	}
	if err := commitScript(ctx, eng, Upgradable, offlineScript, UpgradableOffline, changes); err != nil {
		return fmt.Errorf("building %s: %w", UpgradableOffline, err)
	}
	return nil
}

// commitScript runs script with sh in a container of image (no network) and commits it as ref.
func commitScript(ctx context.Context, eng *engine.Client, image, script, ref string, changes []string) error {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	api := eng.API()
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "myrmex-testimages-upgradable-" + hex.EncodeToString(b),
		Config:     &container.Config{Image: image, Cmd: []string{"/bin/sh", "-c", script}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return fmt.Errorf("creating the build container: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = api.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()
	if _, err := api.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the build container: %w", err)
	}
	wait := api.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			logs, _ := eng.Logs(ctx, created.ID, engine.LogOptions{Tail: 40})
			return fmt.Errorf("the build script ended with exit code %d: %s", res.StatusCode, strings.TrimSpace(logs.Combined))
		}
	case err := <-wait.Error:
		return fmt.Errorf("waiting for the build container: %w", err)
	}
	// The build's command is not the image's: the changes set it (the base has no entrypoint).
	_, err = api.ContainerCommit(ctx, created.ID, client.ContainerCommitOptions{Reference: ref, Author: "myrmex testimages", Changes: changes})
	if err != nil {
		return fmt.Errorf("committing the build container: %w", err)
	}
	return nil
}
