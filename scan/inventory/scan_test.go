package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/scan/inventory"
)

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`

// dpkgStatus is a status file as debootstrap leaves it, cut to a few packages: one is its own source, one names
// its source, one names a source of another version (a binNMU), one is removed but keeps its configuration.
const dpkgStatus = `Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u5
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Conffiles:
 /etc/debian_version 4a54b4b5bb0dc2e2a1b4ae6bcd5da5c2
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files, such as /etc/debian_version,
 /etc/host.conf, /etc/issue, /etc/motd, /etc/profile, and others,
 and the text of several common licenses in use on Debian systems.

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12985
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7164
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
Replaces: bash-completion (<< 20060301-0), bash-doc (<= 2.05-1)
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 164
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Depends: libc6 (>= 2.14)
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.

Package: vim-tiny
Status: deinstall ok config-files
Priority: important
Section: editors
Installed-Size: 1722
Maintainer: Debian Vim Maintainers <team+vim@tracker.debian.org>
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
Conffiles:
 /etc/vim/vimrc.tiny 3e7a3ea4a1d9e8bd1a0b2e2c49d1d2f4
Description: Vi IMproved - enhanced vi editor - compact version
`

// dpkgStatusWithCurl is dpkgStatus after apt-get install curl (cut to curl and libcurl4).
const dpkgStatusWithCurl = dpkgStatus + `
Package: curl
Status: install ok installed
Priority: optional
Section: web
Installed-Size: 504
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Version: 7.88.1-10+deb12u5
Depends: libc6 (>= 2.34), libcurl4 (= 7.88.1-10+deb12u5), zlib1g (>= 1:1.1.4)
Description: command line tool for transferring data with URL syntax

Package: libcurl4
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 1004
Maintainer: Alessandro Ghedini <ghedo@debian.org>
Architecture: amd64
Multi-Arch: same
Source: curl
Version: 7.88.1-10+deb12u5
Depends: libc6 (>= 2.34), zlib1g (>= 1:1.1.4)
Description: easy-to-use client-side URL transfer library (OpenSSL flavour)
`

const lodashPackageJSON = `{
  "name": "lodash",
  "version": "4.17.20",
  "description": "Lodash modular utilities.",
  "keywords": ["modules", "stdlib", "util"],
  "homepage": "https://lodash.com/",
  "repository": "lodash/lodash",
  "icon": "https://lodash.com/icon.svg",
  "license": "MIT",
  "main": "lodash.js",
  "author": "John-David Dalton <john.david.dalton@gmail.com>",
  "contributors": [
    "John-David Dalton <john.david.dalton@gmail.com>",
    "Mathias Bynens <mathias@qiwi.be>"
  ],
  "scripts": { "test": "echo \"See https://travis-ci.org/lodash-archive/lodash-cli for testing details.\"" }
}
`

const requestsMetadata = `Metadata-Version: 2.1
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
Classifier: License :: OSI Approved :: Apache Software License
Requires-Python: >=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*
Description-Content-Type: text/markdown
Requires-Dist: chardet (<4,>=3.0.2)
Requires-Dist: idna (<3,>=2.5)
Requires-Dist: urllib3 (<1.27,>=1.21.1)
Requires-Dist: certifi (>=2017.4.17)

# Requests
`

// testImage is a Debian 12 image in five layers, with empty history entries between them as Dockerfiles make.
func testImage(t *testing.T) (v1.Image, goBinary) {
	t.Helper()
	gb, err := builtGo()
	if err != nil {
		t.Fatalf("building the Go test binary: %v", err)
	}
	if gb.fallback != "" {
		t.Logf("the Go test binary has no dependency, its modules are not checked: %s", gb.fallback)
	}
	bin, err := os.ReadFile(gb.path)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t,
		step{layerOf(t, tarOf(t,
			dir("etc/"), dir("usr/"), dir("usr/lib/"), dir("var/"), dir("var/lib/"), dir("var/lib/dpkg/"),
			reg("usr/lib/os-release", debianOSRelease),
			symlink("etc/os-release", "../usr/lib/os-release"),
			reg("etc/debian_version", "12.5\n"),
			reg("var/lib/dpkg/status", dpkgStatus),
			exe("usr/bin/bash", []byte("\x7fELF not really bash")),
		)), "/bin/sh -c #(nop) ADD file:6e4fa0b4c5a1a1b3 in / "},
		step{nil, `/bin/sh -c #(nop)  CMD ["bash"]`},
		step{nil, "ENV DEBIAN_FRONTEND=noninteractive"},
		step{layerOf(t, tarOf(t,
			reg("var/lib/dpkg/status", dpkgStatusWithCurl),
			exe("usr/bin/curl", []byte("\x7fELF not really curl")),
		)), "RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit"},
		step{layerOf(t, tarOf(t,
			dir("app/"), dir("app/node_modules/"), dir("app/node_modules/lodash/"),
			reg("app/node_modules/lodash/package.json", lodashPackageJSON),
			reg("app/node_modules/lodash/lodash.js", "module.exports = {};\n"),
		)), "COPY node_modules /app/node_modules # buildkit"},
		step{layerOf(t, tarOf(t,
			dir("usr/lib/python3/dist-packages/requests-2.25.0.dist-info/"),
			reg("usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA", requestsMetadata),
			reg("usr/lib/python3/dist-packages/requests/__init__.py", "__version__ = '2.25.0'\n"),
		)), "RUN /bin/sh -c pip install requests==2.25.0 # buildkit"},
		step{layerOf(t, tarOf(t,
			exe("usr/local/bin/hello", bin),
		)), "COPY hello /usr/local/bin/hello # buildkit"},
		step{nil, `ENTRYPOINT ["/usr/local/bin/hello"]`},
	)
	return img, gb
}

// wantPackages are the packages of testImage, without their diff IDs.
func wantPackages(gb goBinary) []inventory.Package {
	const (
		base    = "/bin/sh -c #(nop) ADD file:6e4fa0b4c5a1a1b3 in / "
		apt     = "RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit"
		npm     = "COPY node_modules /app/node_modules # buildkit"
		pip     = "RUN /bin/sh -c pip install requests==2.25.0 # buildkit"
		hello   = "COPY hello /usr/local/bin/hello # buildkit"
		status  = "/var/lib/dpkg/status"
		goBin   = "/usr/local/bin/hello"
		debian  = "Debian:12"
		bookwrm = "?arch=amd64&distro=bookworm"
	)
	deb := func(name, version, srcName, srcVersion, purl string, layer int, cmd string) inventory.Package {
		return inventory.Package{Name: name, Version: version, SourceName: srcName, SourceVersion: srcVersion, Ecosystem: debian,
			PURL: purl, Locations: []string{status}, Layer: inventory.Layer{Index: layer, Command: cmd}}
	}
	goPkg := func(name, version, purl string) inventory.Package {
		return inventory.Package{Name: name, Version: version, Ecosystem: "Go", PURL: purl, Locations: []string{goBin},
			Layer: inventory.Layer{Index: 4, Command: hello}}
	}
	want := []inventory.Package{
		deb("base-files", "12.4+deb12u5", "base-files", "12.4+deb12u5", "pkg:deb/debian/base-files@12.4%2Bdeb12u5"+bookwrm, 0, base),
		deb("bash", "5.2.15-2+b2", "bash", "5.2.15-2", "pkg:deb/debian/bash@5.2.15-2%2Bb2"+bookwrm+"&source=bash&sourceversion=5.2.15-2", 0, base),
		deb("curl", "7.88.1-10+deb12u5", "curl", "7.88.1-10+deb12u5", "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5"+bookwrm, 1, apt),
		deb("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4"+bookwrm+"&source=glibc", 0, base),
		deb("libcurl4", "7.88.1-10+deb12u5", "curl", "7.88.1-10+deb12u5", "pkg:deb/debian/libcurl4@7.88.1-10%2Bdeb12u5"+bookwrm+"&source=curl", 1, apt),
		deb("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1"+bookwrm+"&source=zlib", 0, base),
		goPkg("example.com/hello", "(devel)", "pkg:golang/example.com/hello@%28devel%29"),
	}
	if gb.depVersion != "" {
		want = append(want, goPkg("github.com/docker/go-units", gb.depVersion, "pkg:golang/github.com/docker/go-units@"+gb.depVersion))
	}
	return append(want,
		goPkg("stdlib", gb.goVersion, "pkg:golang/stdlib@"+gb.goVersion),
		inventory.Package{Name: "requests", Version: "2.25.0", Ecosystem: "PyPI", PURL: "pkg:pypi/requests@2.25.0",
			Locations: []string{"/usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA"}, Layer: inventory.Layer{Index: 3, Command: pip}},
		inventory.Package{Name: "lodash", Version: "4.17.20", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.20?source=UNKNOWN",
			Locations: []string{"/app/node_modules/lodash/package.json"}, Layer: inventory.Layer{Index: 2, Command: npm}},
	)
}

// checkPackages compares packages with want, taking the diff IDs from img.
func checkPackages(t *testing.T, img v1.Image, got, want []inventory.Package) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		d, err := layers[want[i].Layer.Index].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		want[i].Layer.DiffID = d.String()
	}
	if len(got) != len(want) {
		t.Errorf("Scan() found %d packages, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("missing %+v", want[i])
		case i >= len(want):
			t.Errorf("unexpected %+v", got[i])
		case !reflect.DeepEqual(got[i], want[i]):
			t.Errorf("package %d = %+v\nwant          %+v", i, got[i], want[i])
		}
	}
}

func TestScan(t *testing.T) {
	img, gb := testImage(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where osv-scalibr keeps its copy of the files

	got, err := inventory.Scan(context.Background(), img, inventory.Options{})
	if err != nil {
		t.Fatalf("Scan() = %v", err)
	}
	checkPackages(t, img, got.Packages, wantPackages(gb))
	wantOS := inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"}
	if got.OS != wantOS {
		t.Errorf("Scan().OS = %+v, want %+v", got.OS, wantOS)
	}
	if len(got.Warnings) > 0 {
		t.Errorf("Scan().Warnings = %q, want none", got.Warnings)
	}
	// The status file, package.json, METADATA and the Go binary; not the ELF files that are not Go binaries.
	if got.Stats.Layers != 5 || got.Stats.Extracted != 4 || got.Stats.Entries != 22 || got.Stats.Duration <= 0 {
		t.Errorf("Scan().Stats = %+v, want 5 layers, 22 entries, 4 files extracted", got.Stats)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("Scan() left %v in TMPDIR", left)
	}
}

func TestScanExtractors(t *testing.T) {
	img, gb := testImage(t)
	ecosystems := func(pkgs []inventory.Package) map[string]int {
		m := map[string]int{}
		for _, p := range pkgs {
			m[p.Ecosystem]++
		}
		return m
	}
	goPkgs := 2
	if gb.depVersion != "" {
		goPkgs = 3
	}
	for _, tc := range []struct {
		name string
		opts inventory.Options
		want map[string]int
	}{
		{"quick", inventory.Options{OSOnly: true}, map[string]int{"Debian:12": 6}},
		{"npm and go", inventory.Options{Extractors: []string{inventory.NPM, inventory.GoBinary}}, map[string]int{"npm": 1, "Go": goPkgs}},
		{"dpkg among them, os only", inventory.Options{Extractors: []string{inventory.Python, inventory.Dpkg}, OSOnly: true}, map[string]int{"Debian:12": 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inventory.Scan(context.Background(), img, tc.opts)
			if err != nil {
				t.Fatalf("Scan(%+v) = %v", tc.opts, err)
			}
			if e := ecosystems(got.Packages); !reflect.DeepEqual(e, tc.want) {
				t.Errorf("Scan(%+v) found %v, want %v", tc.opts, e, tc.want)
			}
		})
	}
}

func TestScanInvalidOptions(t *testing.T) {
	img := imageOf(t, step{layerOf(t, tarOf(t, reg("etc/os-release", debianOSRelease))), "ADD"})
	for _, opts := range []inventory.Options{
		{Extractors: []string{"cargo"}},
		{Extractors: []string{inventory.NPM}, OSOnly: true},
		{Limits: inventory.Limits{MaxFileSize: -1}},
		{Limits: inventory.Limits{MaxImageEntries: -1}},
		{Limits: inventory.Limits{MaxCacheSize: -1}},
	} {
		if _, err := inventory.Scan(context.Background(), img, opts); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Scan(%+v) = %v, want %v", opts, err, errdefs.ErrInvalidArgument)
		}
	}
}

func TestScanCancelled(t *testing.T) {
	img, _ := testImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, err := inventory.Scan(ctx, img, inventory.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan(cancelled) = %v, want %v", err, context.Canceled)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("Scan(cancelled) left %v in TMPDIR", left)
	}
}

func TestScanAlpine(t *testing.T) {
	installed := `C:Q1t8BRg6ZBnBMfaZl+DQ5wAE7CEho=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407447
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1705333470
c:f93af038c3de7146121c2ea8124ba5ce29b4b058

C:Q1KjO2+MbpnKOoTqJHTWNi7SqbwUQ=
P:libcrypto3
V:3.1.4-r5
A:x86_64
S:1748614
I:4419584
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1706197532
c:8ca6ec8b6cd8ddb0a3ec7a7a9e3ac64ae7a8bb1d
D:so:libc.musl-x86_64.so.1
`
	img := imageOf(t, step{layerOf(t, tarOf(t,
		reg("etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n"),
		reg("lib/apk/db/installed", installed),
	)), "ADD alpine-minirootfs-3.19.1-x86_64.tar.gz /"})
	got, err := inventory.Scan(context.Background(), img, inventory.Options{OSOnly: true})
	if err != nil {
		t.Fatalf("Scan() = %v", err)
	}
	var pkgs []string
	for _, p := range got.Packages {
		pkgs = append(pkgs, p.Ecosystem+" "+p.Name+" "+p.Version+" "+p.SourceName+" "+p.SourceVersion)
	}
	want := []string{"Alpine:v3.19 libcrypto3 3.1.4-r5 openssl 3.1.4-r5", "Alpine:v3.19 musl 1.2.4_git20230717-r4 musl 1.2.4_git20230717-r4"}
	if !reflect.DeepEqual(pkgs, want) {
		t.Errorf("Scan() found %q, want %q", pkgs, want)
	}
}

// TestScanLayerAttribution follows packages that later layers upgrade, delete and add back.
func TestScanLayerAttribution(t *testing.T) {
	pkg := func(name, version string) entry {
		return reg("app/node_modules/"+name+"/package.json", `{"name":"`+name+`","version":"`+version+`"}`)
	}
	img := imageOf(t,
		step{layerOf(t, tarOf(t, pkg("a", "1.0.0"), pkg("b", "1.0.0"), pkg("c", "1.0.0"), pkg("d", "1.0.0"))), "npm install"},
		step{layerOf(t, tarOf(t, pkg("a", "1.0.1"), reg("app/node_modules/.wh.b", ""), reg("app/node_modules/d/.wh..wh..opq", ""))), "npm update a; rm -r b; rm -r d/*"},
		step{layerOf(t, tarOf(t, pkg("b", "1.0.0"))), "npm install b@1.0.0"},
	)
	cache := t.TempDir()
	for _, opts := range []inventory.Options{{}, {Cache: cache}, {Cache: cache}} { // no cache, cold, warm
		got, err := inventory.Scan(context.Background(), img, opts)
		if err != nil {
			t.Fatalf("Scan(%+v) = %v", opts, err)
		}
		var pkgs []string
		for _, p := range got.Packages {
			pkgs = append(pkgs, fmt.Sprintf("%s@%s layer %d", p.Name, p.Version, p.Layer.Index))
		}
		want := []string{"a@1.0.1 layer 1", "b@1.0.0 layer 2", "c@1.0.0 layer 0"}
		if !reflect.DeepEqual(pkgs, want) {
			t.Errorf("Scan(%+v) found %q with %d cached layers, want %q", opts, pkgs, got.Stats.CachedLayers, want)
		}
	}
}
