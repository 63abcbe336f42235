package compliance

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/codomyrmex/containerization/errdefs"
)

// file is one entry of a test layer. The zero mode is 0644 for files, 0755 for directories.
type file struct {
	name, body string
	mode       int64
	typ        byte // tar.TypeReg when zero
	link       string
}

func dir(name string) file             { return file{name: name, typ: tar.TypeDir} }
func whiteout(dir, name string) file   { return file{name: dir + "/.wh." + name} }
func reg(name, body string) file       { return file{name: name, body: body} }
func exe(name string, mode int64) file { return file{name: name, body: "\x7fELF", mode: mode} }

func layer(t testing.TB, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link}
		switch f.typ {
		case 0:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		case tar.TypeDir:
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// step is one history entry; it adds a layer when it has files.
type step struct {
	by    string
	files []file
}

// spec describes a test image and how it is scanned.
type spec struct {
	config v1.Config
	steps  []step
	ref    string
	trust  string // DOCKER_CONTENT_TRUST during the scan
}

func (s *spec) add(by string, files ...file) { s.steps = append(s.steps, step{by, files}) }

func (s *spec) image(t testing.TB) v1.Image {
	t.Helper()
	var adds []mutate.Addendum
	for _, st := range s.steps {
		a := mutate.Addendum{History: v1.History{CreatedBy: st.by, EmptyLayer: st.files == nil}}
		if st.files != nil {
			a.Layer = layer(t, st.files...)
		}
		adds = append(adds, a)
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, s.config); err != nil {
		t.Fatal(err)
	}
	return img
}

const (
	passwd = "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n"
	shadow = "root:*:19000:0:99999:7:::\napp:!:19000::::::\n"
	group  = "root:x:0:\napp:x:1000:\n"
)

// clean is an image that passes every check: built the way the remediations say.
func clean() *spec {
	s := &spec{
		config: v1.Config{
			User:        "app",
			Env:         []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
			Healthcheck: &v1.HealthConfig{Test: []string{"CMD-SHELL", "wget -qO- http://localhost:8080/healthz"}},
		},
		ref:   "registry.example/team/app:1.4.2",
		trust: "1",
	}
	s.add("/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / ",
		dir("etc"), reg("etc/passwd", passwd), reg("etc/shadow", shadow), reg("etc/group", group),
		exe("usr/bin/passwd", 0o755), dir("tmp"), dir("var/lib/apt/lists/partial"), reg("var/lib/apt/lists/lock", ""))
	s.add(`/bin/sh -c #(nop)  CMD ["bash"]`)
	s.add("RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* # buildkit",
		exe("usr/bin/curl", 0o755))
	s.add("COPY server /srv/server # buildkit", exe("srv/server", 0o755))
	s.add("USER app")
	return s
}

func failed(t testing.TB, s *spec, opts Options) (ids []string, rep *Report) {
	t.Helper()
	t.Setenv("DOCKER_CONTENT_TRUST", s.trust)
	rep, err := Check(context.Background(), s.image(t), s.ref, opts)
	if err != nil {
		t.Fatalf("Check(%s) error: %v", s.ref, err)
	}
	for _, r := range rep.Failed() {
		ids = append(ids, r.ID)
	}
	return ids, rep
}

// result returns the report's result for the check id, and fails the test when the report has none or several.
func result(t testing.TB, rep *Report, id string) Result {
	t.Helper()
	var found []Result
	for _, r := range rep.Checks {
		if r.ID == id {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("report has %d results for %s, want one", len(found), id)
	}
	return found[0]
}

// explain lists what the failed checks found, for a failure message.
func explain(rep *Report) string {
	var b strings.Builder
	for _, r := range rep.Failed() {
		b.WriteString("\n  " + r.ID + ": " + strings.Join(r.Details, "; "))
	}
	return b.String()
}

func TestChecks(t *testing.T) {
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
	cases := []struct {
		name string
		edit func(s *spec)
		want []string
	}{
		{"clean image", func(s *spec) {}, nil},

		{"USER not set", func(s *spec) { s.config.User = "" }, []string{"CIS-DI-0001"}},
		{"USER root", func(s *spec) { s.config.User = "root" }, []string{"CIS-DI-0001"}},
		{"USER 0:0", func(s *spec) { s.config.User = "0:0" }, []string{"CIS-DI-0001"}},
		{"USER named but UID 0", func(s *spec) {
			s.config.User = "toor"
			s.add("RUN /bin/sh -c usermod -l toor root", reg("etc/passwd", "toor:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"))
		}, []string{"CIS-DI-0001"}},
		{"USER numeric", func(s *spec) { s.config.User = "10001" }, nil},
		{"USER with group", func(s *spec) { s.config.User = "app:app" }, nil},

		{"content trust off", func(s *spec) { s.trust = "" }, []string{"CIS-DI-0005"}},
		{"content trust 0", func(s *spec) { s.trust = "0" }, []string{"CIS-DI-0005"}},

		{"no HEALTHCHECK", func(s *spec) { s.config.Healthcheck = nil }, []string{"CIS-DI-0006"}},
		{"HEALTHCHECK NONE", func(s *spec) { s.config.Healthcheck = &v1.HealthConfig{Test: []string{"NONE"}} }, []string{"CIS-DI-0006"}},

		{"apt-get update alone", func(s *spec) { s.add("RUN /bin/sh -c apt-get update # buildkit", reg("var/log/apt/eipp.log.xz", "")) }, []string{"CIS-DI-0007"}},
		{"apt-get update then install, classic builder", func(s *spec) {
			s.add("/bin/sh -c apt-get update; apt-get install -y git; apt-get clean", exe("usr/bin/git", 0o755))
		}, nil},

		{"setuid file", func(s *spec) { s.add("COPY su /usr/bin/su # buildkit", exe("usr/bin/su", 0o4755)) }, []string{"CIS-DI-0008"}},
		{"setgid file", func(s *spec) { s.add("COPY chage /usr/bin/chage # buildkit", exe("usr/bin/chage", 0o2755)) }, []string{"CIS-DI-0008"}},
		{"setgid directory", func(s *spec) {
			s.add("RUN /bin/sh -c mkdir -m 2775 /var/mail", file{name: "var/mail", typ: tar.TypeDir, mode: 0o2775})
		}, nil},

		{"ADD after the base", func(s *spec) { s.add("ADD app.tar.gz /srv/ # buildkit", reg("srv/app.js", "")) }, []string{"CIS-DI-0009"}},
		{"ADD, classic builder", func(s *spec) {
			s.add("/bin/sh -c #(nop) ADD file:81c0a803075715d1a6b4f75a29f8a01b21cc170cfc1bff6702317d1be2fe71a3 in /srv/config.json ", reg("srv/config.json", "{}"))
		}, []string{"CIS-DI-0009"}},
		{"COPY", func(s *spec) { s.add("COPY app /srv/app # buildkit", reg("srv/app/index.js", "")) }, nil},

		{"ENV password", func(s *spec) { s.config.Env = append(s.config.Env, "MYSQL_PASSWD=hunter2") }, []string{"CIS-DI-0010"}},
		{"ENV AWS key", func(s *spec) { s.config.Env = append(s.config.Env, "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE") }, []string{"CIS-DI-0010"}},
		{"ENV URL with a password", func(s *spec) {
			s.config.Env = append(s.config.Env, "PIP_INDEX_URL=https://ci:s3cret@pypi.example/simple")
		}, []string{"CIS-DI-0010"}},
		{"build argument token", func(s *spec) {
			s.add("RUN |1 NPM_TOKEN=npm_abc123 /bin/sh -c npm ci # buildkit", reg("srv/app/node_modules/.package-lock.json", "{}"))
		}, []string{"CIS-DI-0010"}},
		{"SSH private key by name", func(s *spec) { s.add("COPY id_rsa /root/.ssh/ # buildkit", reg("root/.ssh/id_rsa", "x")) }, []string{"CIS-DI-0010"}},
		{"private key by content", func(s *spec) { s.add("COPY tls /etc/app/ # buildkit", reg("etc/app/tls.key", key)) }, []string{"CIS-DI-0010"}},
		{"npmrc with a token", func(s *spec) {
			s.add("COPY .npmrc /home/app/ # buildkit", reg("home/app/.npmrc", "registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=npm_abc123\n"))
		}, []string{"CIS-DI-0010"}},
		{"docker config with auth", func(s *spec) {
			s.add("COPY config.json /root/.docker/ # buildkit", reg("root/.docker/config.json", `{"auths":{"registry.example":{"auth":"Y2k6czNjcmV0"}}}`))
		}, []string{"CIS-DI-0010"}},
		{"aws credentials", func(s *spec) { s.add("COPY .aws /root/.aws # buildkit", reg("root/.aws/credentials", "[default]\n")) }, []string{"CIS-DI-0010", "DKL-LI-0003"}},
		{"harmless ENV names", func(s *spec) {
			s.config.Env = append(s.config.Env, "GPG_KEY=A4A9406876FCBD3C456770C88C718D3B5072E1F5", "POSTGRES_PASSWORD_FILE=/run/secrets/db",
				"APT_KEY_DONT_WARN_ON_DANGEROUS_USAGE=1", "KEYCLOAK_VERSION=24.0", "TOKENIZERS_PARALLELISM=false", "DB_PASSWORD=", "PUBLIC_KEY=ssh-ed25519 AAAA")
		}, nil},
		{"secret by reference", func(s *spec) {
			s.add("RUN /bin/sh -c NPM_TOKEN=$(cat /run/secrets/npm) npm ci # buildkit", reg("srv/app/node_modules/.package-lock.json", "{}"))
		}, nil},
		{"certificate, public key, npmrc without token", func(s *spec) {
			s.add("COPY certs / # buildkit", reg("etc/ssl/certs/ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
				reg("home/app/.ssh/id_rsa.pub", "ssh-rsa AAAA"), reg("home/app/.npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"))
		}, nil},

		{"sudo", func(s *spec) { s.add("RUN /bin/sh -c sudo chown app /srv # buildkit", dir("srv")) }, []string{"DKL-DI-0001"}},
		{"sudo by path in a pipeline", func(s *spec) { s.add("/bin/sh -c echo hi | /usr/bin/sudo tee /etc/motd", reg("etc/motd", "hi")) }, []string{"DKL-DI-0001"}},
		{"no sudo", func(s *spec) {
			s.add("RUN /bin/sh -c echo pseudo-terminal > /etc/motd # buildkit", reg("etc/motd", "x"))
			s.add(`LABEL note="no sudo here"`)
		}, nil},

		{"VOLUME /etc", func(s *spec) { s.config.Volumes = map[string]struct{}{"/etc": {}, "/var/lib/app": {}} }, []string{"DKL-DI-0002"}},
		{"VOLUME /proc/", func(s *spec) { s.config.Volumes = map[string]struct{}{"/proc/": {}} }, []string{"DKL-DI-0002"}},
		{"VOLUME for data", func(s *spec) { s.config.Volumes = map[string]struct{}{"/var/lib/app": {}} }, nil},

		{"apt-get upgrade", func(s *spec) {
			s.add("RUN /bin/sh -c apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/* # buildkit", dir("usr"))
		}, []string{"DKL-DI-0003"}},
		{"apt-get dist-upgrade", func(s *spec) { s.add("/bin/sh -c apt-get update && apt-get dist-upgrade -y", dir("usr")) }, []string{"DKL-DI-0003"}},
		{"apk upgrade", func(s *spec) { s.add("RUN /bin/sh -c apk upgrade --no-cache # buildkit", dir("usr")) }, []string{"DKL-DI-0003"}},
		{"apk add --upgrade of one package", func(s *spec) { s.add("RUN /bin/sh -c apk add --no-cache --upgrade openssl # buildkit", dir("usr")) }, nil},

		{"apk add with cache", func(s *spec) { s.add("RUN /bin/sh -c apk add --update curl # buildkit", dir("usr")) }, []string{"DKL-DI-0004"}},
		{"apk --no-cache add", func(s *spec) { s.add("RUN /bin/sh -c apk --no-cache add curl # buildkit", dir("usr")) }, nil},

		{"apt lists left", func(s *spec) {
			s.add("RUN /bin/sh -c apt-get update && apt-get install -y git # buildkit", reg("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "x"))
		}, []string{"DKL-DI-0005"}},
		{"downloaded package left", func(s *spec) {
			s.add("RUN /bin/sh -c apt-get install -y --download-only git # buildkit", reg("var/cache/apt/archives/git_2.39.5-0+deb12u1_amd64.deb", "x"))
		}, []string{"DKL-DI-0005"}},
		{"apt archive lock only", func(s *spec) {
			s.add("RUN /bin/sh -c apt-get clean # buildkit", reg("var/cache/apt/archives/lock", ""))
		}, nil},

		{"latest tag", func(s *spec) { s.ref = "nginx:latest" }, []string{"DKL-DI-0006"}},
		{"no tag", func(s *spec) { s.ref = "registry.example/team/app" }, []string{"DKL-DI-0006"}},
		{"digest", func(s *spec) {
			s.ref = "nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000"
		}, nil},
		{"no reference", func(s *spec) { s.ref = "" }, nil},

		{"empty password", func(s *spec) {
			s.add("RUN /bin/sh -c passwd -d guest", reg("etc/shadow", shadow+"guest::19000:0:99999:7:::\n"))
		}, []string{"DKL-LI-0001"}},
		{"no shadow", func(s *spec) { s.add("RUN /bin/sh -c rm /etc/shadow", whiteout("etc", "shadow")) }, nil},

		{"duplicate UID", func(s *spec) {
			s.add("RUN /bin/sh -c useradd -o -u 0 toor", reg("etc/passwd", passwd+"toor:x:0:0::/root:/bin/sh\n"))
		}, []string{"DKL-LI-0002"}},
		{"duplicate GID", func(s *spec) {
			s.add("RUN /bin/sh -c groupadd -o -g 1000 staff", reg("etc/group", group+"staff:x:1000:\n"))
		}, []string{"DKL-LI-0002"}},

		{".git directory", func(s *spec) {
			s.add("COPY . /srv/app # buildkit", reg("srv/app/.git/HEAD", "ref: refs/heads/main\n"), reg("srv/app/.git/config", ""))
		}, []string{"DKL-LI-0003"}},
		{".DS_Store", func(s *spec) { s.add("COPY . /srv/app # buildkit", reg("srv/app/.DS_Store", "")) }, []string{"DKL-LI-0003"}},
		{"temporary files", func(s *spec) { s.add("RUN /bin/sh -c make -C /tmp/build # buildkit", reg("tmp/build/main.o", "")) }, []string{"DKL-LI-0003"}},
		{"editor backup", func(s *spec) { s.add("COPY etc /etc # buildkit", reg("etc/app.conf~", "")) }, []string{"DKL-LI-0003"}},
		{"pip cache", func(s *spec) {
			s.add("RUN /bin/sh -c pip install flask # buildkit", reg("root/.cache/pip/http/a/b", ""))
		}, []string{"DKL-LI-0003"}},
		{"files of dependencies", func(s *spec) {
			s.add("RUN /bin/sh -c npm ci # buildkit", reg("srv/app/node_modules/left-pad/.git/HEAD", ""), reg("srv/app/node_modules/left-pad/Dockerfile", ""))
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := clean()
			c.edit(s)
			got, rep := failed(t, s, Options{})
			if !slices.Equal(got, c.want) {
				t.Errorf("Check(%s) failed %v, want %v%s", c.name, got, c.want, explain(rep))
			}
		})
	}
}

// TestLayers checks that the checks see the merged filesystem: what a later layer deletes, hides or replaces
// does not count, and what a layer adds after a deletion does.
func TestLayers(t *testing.T) {
	cases := []struct {
		name   string
		layers [][]file
		want   []string
		// details, when set, are the details wanted for each failed check.
		details map[string][]string
	}{
		{
			name:   "setuid file deleted",
			layers: [][]file{{exe("usr/bin/su", 0o4755)}, {whiteout("usr/bin", "su")}},
		},
		{
			name:   "setuid bit dropped",
			layers: [][]file{{exe("usr/bin/su", 0o4755)}, {exe("usr/bin/su", 0o755)}},
		},
		{
			name:   "directory with a key deleted",
			layers: [][]file{{reg("root/.ssh/id_rsa", "x")}, {whiteout("root", ".ssh")}},
		},
		{
			name:   "directory with a key replaced by a file",
			layers: [][]file{{reg("root/.ssh/id_rsa", "x")}, {reg("root/.ssh", "")}},
		},
		{
			name:   "key deleted, then added again",
			layers: [][]file{{reg("root/.ssh/id_rsa", "x")}, {whiteout("root/.ssh", "id_rsa")}, {reg("root/.ssh/id_rsa", "y")}},
			want:   []string{"CIS-DI-0010"},
		},
		{
			name:   "whiteout hides lower layers only",
			layers: [][]file{{reg("root/.ssh/id_rsa", "x"), whiteout("root/.ssh", "id_rsa")}},
			want:   []string{"CIS-DI-0010"},
		},
		{
			name: "apt lists emptied by an opaque directory",
			layers: [][]file{
				{reg("var/lib/apt/lists/a_InRelease", "x"), reg("var/lib/apt/lists/a_Packages.lz4", "x")},
				{file{name: "var/lib/apt/lists/.wh..wh..opq"}, reg("var/lib/apt/lists/lock", "")},
			},
		},
		{
			name: "opaque directory keeps the files of its own layer",
			layers: [][]file{
				{reg("var/lib/apt/lists/a_InRelease", "x")},
				{reg("var/lib/apt/lists/b_InRelease", "x"), file{name: "var/lib/apt/lists/.wh..wh..opq"}},
			},
			want:    []string{"DKL-DI-0005"},
			details: map[string][]string{"DKL-DI-0005": {"/var/lib/apt/lists/b_InRelease"}},
		},
		{
			name: "shadow fixed in a later layer",
			layers: [][]file{
				{reg("etc/shadow", "root::19000:0:99999:7:::\n")},
				{reg("etc/shadow", "root:*:19000:0:99999:7:::\n")},
			},
		},
		{
			name: "hard link to a key outlives the key",
			layers: [][]file{
				{reg("srv/keys/deploy.pem", "-----BEGIN PRIVATE KEY-----\nMIIE\n"), {name: "srv/keys/copy.key", typ: tar.TypeLink, link: "srv/keys/deploy.pem"}},
				{whiteout("srv/keys", "deploy.pem")},
			},
			want:    []string{"CIS-DI-0010"},
			details: map[string][]string{"CIS-DI-0010": {"/srv/keys/copy.key (private key)"}},
		},
		{
			name:   "whiteout at the root",
			layers: [][]file{{reg("tmp/build.log", "")}, {whiteout("", "tmp"), dir("tmp")}},
		},
		{
			name:   "opaque root",
			layers: [][]file{{reg("tmp/build.log", "")}, {file{name: ".wh..wh..opq"}, reg("etc/passwd", passwd)}},
		},
		{
			name:   ".git deleted",
			layers: [][]file{{reg("srv/.git/HEAD", ""), reg("srv/main.go", "")}, {whiteout("srv", ".git")}},
		},
		{
			name:    "names cleaned against the root",
			layers:  [][]file{{exe("./usr/bin/su", 0o4755), exe("../../usr/bin/mount", 0o4755)}, {whiteout("/usr/bin", "su")}},
			want:    []string{"CIS-DI-0008"},
			details: map[string][]string{"CIS-DI-0008": {"/usr/bin/mount setuid (mode 4755)"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := clean()
			for _, l := range c.layers {
				s.add("RUN /bin/sh -c true # buildkit", l...)
			}
			got, rep := failed(t, s, Options{})
			if !slices.Equal(got, c.want) {
				t.Fatalf("Check(%s) failed %v, want %v%s", c.name, got, c.want, explain(rep))
			}
			for id, want := range c.details {
				if r := result(t, rep, id); !slices.Equal(r.Details, want) {
					t.Errorf("Check(%s) %s details %q, want %q", c.name, id, r.Details, want)
				}
			}
		})
	}
}

// TestLargeFile scans an image holding a 64 MiB candidate secret file: the key header is found in the first
// MaxFileSize bytes, and no more of the file is read into memory.
func TestLargeFile(t *testing.T) {
	const size = 64 << 20
	head := "-----BEGIN RSA PRIVATE KEY-----\n"
	// The layer is generated as it is read, so that the test does not hold it in memory either.
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{Name: "srv/backup/big.key", Mode: 0o600, Size: size})
			if err == nil {
				_, err = io.WriteString(tw, head)
			}
			if err == nil {
				_, err = io.CopyN(tw, zeros{}, size-int64(len(head)))
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := clean()
	img := s.image(t)
	if img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "COPY backup /srv/backup # buildkit"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := img.Manifest(); err != nil { // digests are computed here, not in Check
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONTENT_TRUST", "1")

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := Check(context.Background(), img, s.ref, Options{MaxFileSize: 64 << 10})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Check allocated %d KiB for a %d MiB file", (after.TotalAlloc-before.TotalAlloc)>>10, size>>20)
	var got []string
	for _, r := range rep.Failed() {
		got = append(got, r.ID)
	}
	if want := []string{"CIS-DI-0010"}; !slices.Equal(got, want) {
		t.Errorf("Check(big.key) failed %v, want %v%s", got, want, explain(rep))
	}

	// What the walk reads of the file's body, given to it as the tar reader would: MaxFileSize bytes, and one
	// more to tell that the file is longer.
	body := &countingReader{r: io.MultiReader(strings.NewReader(head), io.LimitReader(zeros{}, size-int64(len(head))))}
	hdr := &tar.Header{Name: "srv/backup/big.key", Typeflag: tar.TypeReg, Mode: 0o600, Size: size}
	e, err := newFiles().classify("/srv/backup/big.key", hdr, body, map[string]entry{}, 64<<10)
	if err != nil || e.secret != "private key" || body.n > 64<<10+1 {
		t.Errorf("classify(big.key) = %q, %v after reading %d bytes of it; want a private key, found in at most %d",
			e.secret, err, body.n, 64<<10+1)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestScore(t *testing.T) {
	r := func(l Level, passed, ignored bool) Result { return Result{Level: l, Passed: passed, Ignored: ignored} }
	cases := []struct {
		name    string
		results []Result
		want    float64
	}{
		{"nothing", nil, 100},
		{"all passed", []Result{r(Fatal, true, false), r(Info, true, false)}, 100},
		{"all failed", []Result{r(Fatal, false, false), r(Warn, false, false)}, 0},
		// passed 10 + 5 = 15 of 10 + 10 + 5 + 1 = 26; the ignored WARN counts for nothing.
		{"mix", []Result{r(Fatal, true, false), r(Fatal, false, false), r(Warn, true, false), r(Info, false, false), r(Warn, false, true)}, 57.7},
		{"one INFO failed of sixteen", append(slices.Repeat([]Result{r(Fatal, true, false)}, 15), r(Info, false, false)), 99.3},
		{"all ignored", []Result{r(Fatal, false, true)}, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Score(c.results); got != c.want {
				t.Errorf("Score(%s) = %v, want %v", c.name, got, c.want)
			}
		})
	}
}

func TestReportScore(t *testing.T) {
	s := clean()
	s.config.User = ""                                          // WARN 5
	s.trust = ""                                                // INFO 1
	s.ref = "nginx"                                             // WARN 5
	s.add("RUN /bin/sh -c apk add curl # buildkit", dir("usr")) // FATAL 10
	_, rep := failed(t, s, Options{Ignore: []string{"DKL-DI-0006"}})
	// All weights: 9 FATAL, 4 WARN, 3 INFO = 90 + 20 + 3 = 113; less the ignored WARN: 108. Failed: 5 + 1 + 10 = 16.
	if want := 85.2; rep.Score != want {
		t.Errorf("Check(%s).Score = %v, want %v%s", s.ref, rep.Score, want, explain(rep))
	}
}

func TestIgnore(t *testing.T) {
	s := clean()
	s.config.User = "root"
	ids, rep := failed(t, s, Options{Ignore: []string{"CIS-DI-0001", "CVE-2024-3094"}})
	if len(ids) != 0 {
		t.Errorf("Check(ignore CIS-DI-0001) failed %v, want none", ids)
	}
	if r := result(t, rep, "CIS-DI-0001"); !r.Ignored || r.Passed {
		t.Errorf("Check(ignore CIS-DI-0001) reported %+v, want it failed and ignored", r)
	}
	if rep.Score != 100 {
		t.Errorf("Check(ignore CIS-DI-0001).Score = %v, want 100", rep.Score)
	}
}

// TestSecretsNeverShown puts secrets where every kind of detail could show them and looks for them in the report.
func TestSecretsNeverShown(t *testing.T) {
	const canary = "canary-5f3a9c"
	s := clean()
	s.config.Env = append(s.config.Env, "DB_PASSWORD="+canary, "PIP_INDEX_URL=https://ci:"+canary+"@pypi.example/simple")
	s.add("RUN |2 NPM_TOKEN="+canary+` API_KEY="`+canary+` x" /bin/sh -c sudo apk add curl && curl https://me:`+canary+`@example.com/ # buildkit`, dir("usr"))
	s.add("ADD https://ci:"+canary+"@example.com/app.tar.gz /srv/ # buildkit", dir("srv"))
	got, rep := failed(t, s, Options{})
	want := []string{"CIS-DI-0009", "CIS-DI-0010", "DKL-DI-0001", "DKL-DI-0004"}
	if !slices.Equal(got, want) {
		t.Errorf("Check(secrets) failed %v, want %v%s", got, want, explain(rep))
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), canary) {
		t.Errorf("Check(secrets) report shows the secret:%s", explain(rep))
	}
}

func TestSecretName(t *testing.T) {
	cases := map[string]bool{
		"DB_PASSWORD": true, "MYSQL_PASSWD": true, "DBPASSWORD": true, "GITHUB_TOKEN": true, "NODE_AUTH_TOKEN": true,
		"SECRET_KEY_BASE": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_ACCESS_KEY_ID": true, "API_KEY": true,
		"DB_PASS": true, "client_secret": true, "STRIPE_APIKEY": true,
		"GPG_KEY": false, "GPG_KEYS": false, "POSTGRES_PASSWORD_FILE": false, "SSH_KEY_PATH": false,
		"APT_KEY_DONT_WARN_ON_DANGEROUS_USAGE": false, "KEYCLOAK_VERSION": false, "TOKENIZERS_PARALLELISM": false,
		"PATH": false, "PWD": false, "PASSENGER_VERSION": false, "PUBLIC_KEY": false, "NGINX_ACCESS_LOG": false,
	}
	for k, want := range cases {
		if got := secretName(k); got != want {
			t.Errorf("secretName(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestCheckErrors(t *testing.T) {
	if _, err := Check(context.Background(), nil, "", Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Check(nil image) error = %v, want %v", err, errdefs.ErrInvalidArgument)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, clean().image(t), "", Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Check(canceled) error = %v, want %v", err, context.Canceled)
	}
	bad, err := mutate.AppendLayers(empty.Image, brokenLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(context.Background(), bad, "", Options{}); err == nil || !strings.Contains(err.Error(), "reading layer 0") {
		t.Errorf("Check(truncated layer) error = %v, want one naming layer 0", err)
	}
}

// brokenLayer is a tar cut in the middle of a file.
func brokenLayer(t *testing.T) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "etc/passwd", Mode: 0o644, Size: 4096}); err != nil {
		t.Fatal(err)
	}
	tw.Write(make([]byte, 100))
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestNameBounds checks that an entry name longer than MaxNameBytes or deeper than MaxNameDepth makes Check
// refuse the image with a *NameError, before it spends time on the name, and that names at the bounds are walked.
func TestNameBounds(t *testing.T) {
	// Cleaned against the root, atBytes is MaxNameBytes long and atDepth has MaxNameDepth components.
	atBytes := strings.Repeat(strings.Repeat("x", 99)+"/", (MaxNameBytes-len("/id_rsa"))/100)
	atBytes += strings.Repeat("y", MaxNameBytes-len("/id_rsa")-1-len(atBytes)) + "/id_rsa"
	atDepth := strings.Repeat("d/", MaxNameDepth-1) + "id_rsa"
	for _, name := range []string{atBytes, atDepth} {
		s := clean()
		s.add("COPY keys / # buildkit", reg(name, "x"))
		got, rep := failed(t, s, Options{})
		if want := []string{"CIS-DI-0010"}; !slices.Equal(got, want) {
			t.Errorf("Check(name of %d bytes, %d components) failed %v, want %v%s",
				len(name)+1, strings.Count(name, "/")+1, got, want, explain(rep))
		}
	}

	cases := []struct {
		name         string
		entry        file
		bytes, depth int
	}{
		// The reported case: a name of 195 KiB in 20,000 components.
		{"long and deep", reg(strings.Repeat("abcdefghi/", 195<<10/10)+"id_rsa", "x"), 195<<10/10*10 + len("/id_rsa"), 195<<10/10 + 1},
		{"one byte too long", reg(atBytes+"x", "x"), MaxNameBytes + 1, strings.Count(atBytes, "/") + 1},
		{"one component too deep", reg("d/"+atDepth, "x"), len(atDepth) + 3, MaxNameDepth + 1},
		{"whiteout too deep", whiteout(strings.Repeat("d/", MaxNameDepth), "x"), 2*MaxNameDepth + len("/.wh.x"), MaxNameDepth + 1},
		{"hard link to a name too long", file{name: "srv/copy", typ: tar.TypeLink, link: strings.Repeat("z", MaxNameBytes)}, MaxNameBytes + 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := clean()
			s.add("COPY . / # buildkit", c.entry)
			t.Setenv("DOCKER_CONTENT_TRUST", "1")
			_, err := Check(context.Background(), s.image(t), s.ref, Options{})
			var ne *NameError
			if !errors.As(err, &ne) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Check(%s) error = %v, want a *NameError wrapping %v", c.name, err, errdefs.ErrInvalidArgument)
			}
			if ne.Bytes != c.bytes || ne.Depth != c.depth || len(ne.Name) > 100 {
				t.Errorf("Check(%s) NameError = %d bytes, %d components, name of %d bytes; want %d, %d, at most 100",
					c.name, ne.Bytes, ne.Depth, len(ne.Name), c.bytes, c.depth)
			}
		})
	}
}

// TestDeadlineStopsALongEntry checks that a deadline stops the walk inside one entry: the layer holds a 256 MiB
// file that no check reads, whose bytes the walk must stop skipping once the deadline has passed.
func TestDeadlineStopsALongEntry(t *testing.T) {
	const size = 256 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var written atomic.Int64
	l := streamLayer(func() io.ReadCloser {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(countingWriter{pw, &written})
			err := tw.WriteHeader(&tar.Header{Name: "srv/data.bin", Mode: 0o644, Size: size})
			if err == nil {
				_, err = io.CopyN(tw, zeros{}, 1<<20)
			}
			<-ctx.Done() // the rest of the file comes after the deadline
			if err == nil {
				_, err = io.CopyN(tw, zeros{}, size-1<<20)
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr
	})
	img, err := mutate.Append(clean().image(t), mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "COPY data /srv # buildkit"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Check(ctx, img, "", Options{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check(past the deadline) error = %v, want %v", err, context.DeadlineExceeded)
	}
	if n := written.Load(); n > size/2 {
		t.Errorf("Check(past the deadline) read %d MiB of a %d MiB layer, want it to stop soon after the deadline", n>>20, size>>20)
	}
}

// streamLayer is a layer read from open, whose digests are made up so that nothing reads it but the walk.
type streamLayer func() io.ReadCloser

func (l streamLayer) Digest() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, nil
}
func (l streamLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}, nil
}
func (l streamLayer) Compressed() (io.ReadCloser, error)   { return nil, errors.New("not compressed") }
func (l streamLayer) Uncompressed() (io.ReadCloser, error) { return l(), nil }
func (l streamLayer) Size() (int64, error)                 { return 0, nil }
func (l streamLayer) MediaType() (types.MediaType, error)  { return types.DockerUncompressedLayer, nil }

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// TestWhiteoutsNearLinear deletes, one whiteout each, 5,000 directories that hold a key, then empties a tree with
// an opaque directory, and counts the paths the walk looked at to apply them: about one per path deleted, not
// one per path of the filesystem for each whiteout.
func TestWhiteoutsNearLinear(t *testing.T) {
	const n = 5000
	var keys, whiteouts, tree []file
	for i := range n {
		keys = append(keys, reg(fmt.Sprintf("srv/d%d/id_rsa", i), "x"))
		whiteouts = append(whiteouts, whiteout("srv", fmt.Sprintf("d%d", i)))
		tree = append(tree, reg(fmt.Sprintf("opt/a%d/b/c/id_rsa", i), "x"))
	}
	whiteouts = append(whiteouts, file{name: "opt/.wh..wh..opq"})
	s := clean()
	s.add("COPY keys / # buildkit", append(keys, tree...)...)
	s.add("RUN /bin/sh -c rm -rf /srv/* /opt/* # buildkit", whiteouts...)
	f, err := walk(context.Background(), s.image(t), DefaultMaxFileSize)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.sorted(func(e entry) bool { return e.secret != "" }); len(got) != 0 {
		t.Errorf("walk kept %d deleted keys, want none: %q…", len(got), got[0])
	}
	// n keys and 4n paths of the trees lie below the deleted directories; allow twice that.
	if limit := 2 * 5 * n; f.looked > limit {
		t.Errorf("walk looked at %d paths to apply %d whiteouts, want at most %d", f.looked, n+1, limit)
	}
}

// TestFilesTree puts and removes random paths, some sharing prefixes that are not whole components ("a/ab"
// and "a/a"), and checks the tree against a search of every path.
func TestFilesTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "ab", "b", "a.b"}
	random := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(5) {
			b.WriteString("/" + names[rng.IntN(len(names))])
		}
		return b.String()
	}
	f, want := newFiles(), map[string]entry{}
	for i := range 20000 {
		switch p := random(); rng.IntN(4) {
		case 0, 1:
			f.put(p, entry{perm: fs.FileMode(i)})
			want[p] = entry{perm: fs.FileMode(i)}
		case 2:
			if rng.IntN(8) == 0 {
				p = "/"
			}
			if err := f.removeBelow(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			for q := range want {
				if strings.HasPrefix(q, strings.TrimSuffix(p, "/")+"/") {
					delete(want, q)
				}
			}
		case 3:
			delete(f.entries, p)
			delete(want, p)
		}
		if !maps.EqualFunc(f.entries, want, func(a, b entry) bool { return a.perm == b.perm }) {
			t.Fatalf("after %d operations, the walk holds %d paths, want %d", i+1, len(f.entries), len(want))
		}
	}
}
