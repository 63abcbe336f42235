//go:build linux

package testimages

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
)

// The test apps for the image optimizer: the same small HTTP server in Python, Node.js and Go, each on the
// Debian bookworm root filesystem of [EnsureDebian]. See [EnsureApps].
const (
	// AppPython runs /app/server.py with Debian's python3.
	AppPython = "myrmex.local/app-python:test"
	// AppNode runs /app/server.js with Debian's nodejs.
	AppNode = "myrmex.local/app-node:test"
	// AppGo runs /app/server, a static Go binary.
	AppGo = "myrmex.local/app-go:test"
)

// debianBase is the cached root filesystem imported as it is, with PATH set: the image the apps are built from.
const debianBase = "myrmex.local/debian-base:test"

// The apps' recipe. Changing anything here, or in the sources below, changes the images' cache keys.
const (
	// appsRecipeVersion is bumped when the way the images are made changes in a way the sources do not show.
	appsRecipeVersion = "1"
	appPort           = 8000
	appDir            = "/app"
	// secondPath is the file the servers read on GET /second, and only then: an optimizer that keeps only the
	// files a run touched must have seen that request to keep it.
	secondPath = "/app/data/second.txt"
)

// debianBaseChanges are applied when importing the root filesystem: an imported image has no configuration.
var debianBaseChanges = []string{
	"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	`CMD ["bash"]`,
}

const pythonServer = `"""A test app for Myrmex's image optimizer: GET / and GET /second (which reads ` + secondPath + `)."""
import http.server
import signal
import sys

SECOND = "` + secondPath + `"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.reply(200, b"hello from python\n")
        elif path == "/second":
            with open(SECOND, "rb") as f:  # read on this request only
                self.reply(200, f.read())
        else:
            self.reply(404, b"not found\n")

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    # As PID 1, python would ignore SIGTERM: stop at once instead of making the engine wait and kill.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    print("listening on 0.0.0.0:8000", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
`

const nodeServer = `// A test app for Myrmex's image optimizer: GET / and GET /second (which reads ` + secondPath + `).
"use strict";
const http = require("http");
const fs = require("fs");

const SECOND = "` + secondPath + `";

function reply(res, code, body) {
  res.writeHead(code, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const path = req.url.split("?")[0];
  if (path === "/") {
    reply(res, 200, "hello from node\n");
  } else if (path === "/second") {
    // Read on this request only.
    fs.readFile(SECOND, (err, data) => {
      if (err) {
        reply(res, 500, String(err) + "\n");
      } else {
        reply(res, 200, data);
      }
    });
  } else {
    reply(res, 404, "not found\n");
  }
});

// As PID 1, node would ignore SIGTERM: stop at once instead of making the engine wait and kill.
process.on("SIGTERM", () => process.exit(0));
server.listen(8000, "0.0.0.0", () => console.log("listening on 0.0.0.0:8000"));
`

const goServerMod = `module example.com/server

go 1.21
`

const goServer = `// Command server is a test app for Myrmex's image optimizer: GET / and GET /second (which reads ` + secondPath + `).
package main

import (
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

const second = "` + secondPath + `"

func reply(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			reply(w, http.StatusOK, []byte("hello from go\n"))
		case "/second":
			data, err := os.ReadFile(second) // read on this request only
			if err != nil {
				reply(w, http.StatusInternalServerError, []byte(err.Error()+"\n"))
				return
			}
			reply(w, http.StatusOK, data)
		default:
			reply(w, http.StatusNotFound, []byte("not found\n"))
		}
	})
	// As PID 1, the server would ignore SIGTERM: stop at once instead of making the engine wait and kill.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		os.Exit(0)
	}()
	log.Print("listening on 0.0.0.0:8000")
	log.Fatal(http.ListenAndServe("0.0.0.0:8000", nil))
}
`

// App is a test app image [EnsureApps] made, and what its server answers.
type App struct {
	// Ref is [AppPython], [AppNode] or [AppGo].
	Ref string `json:"ref"`
	// Lang is "python", "node" or "go".
	Lang string `json:"lang"`
	// Port is the TCP port the server listens on, on all addresses (8000).
	Port int `json:"port"`
	// FirstBody is the body of GET / and SecondBody that of GET /second, the content of /app/data/second.txt,
	// which the server reads on that request only. Any other path answers 404.
	FirstBody  string `json:"first_body"`
	SecondBody string `json:"second_body"`
}

// appSpec is the recipe of one app image.
type appSpec struct {
	ref, lang string
	// packages are the Debian packages apt-get installs in the build container; none for Go.
	packages []string
	// file is the server's file name under /app and source its source (compiled on the host for Go).
	file, source string
	cmd          []string
}

var appSpecs = []appSpec{
	{ref: AppPython, lang: "python", packages: []string{"python3"}, file: "server.py", source: pythonServer,
		cmd: []string{"python3", appDir + "/server.py"}},
	{ref: AppNode, lang: "node", packages: []string{"nodejs"}, file: "server.js", source: nodeServer,
		cmd: []string{"node", appDir + "/server.js"}},
	{ref: AppGo, lang: "go", file: "server", source: goServer, cmd: []string{appDir + "/server"}},
}

func (s appSpec) app() App {
	return App{Ref: s.ref, Lang: s.lang, Port: appPort, FirstBody: "hello from " + s.lang + "\n",
		SecondBody: "second file for " + s.lang + "\n"}
}

// label is the value of [ImageLabel] on the image built from the current recipe.
func (s appSpec) label() string {
	h := sha256.New()
	a := s.app()
	for _, v := range []string{appsRecipeVersion, s.ref, s.lang, strings.Join(s.packages, " "), s.file, s.source,
		goServerMod, strings.Join(s.cmd, " "), fmt.Sprint(a.Port), a.FirstBody, a.SecondBody, appDir,
		strings.Join(debianBaseChanges, "\n")} {
		fmt.Fprintf(h, "%d:%s\n", len(v), v)
	}
	return "app-" + s.lang + "/" + rootfsKey() + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

func (s appSpec) changes() []string {
	cmd, _ := json.Marshal(s.cmd)
	return []string{
		"CMD " + string(cmd),
		fmt.Sprintf("EXPOSE %d/tcp", appPort),
		"WORKDIR " + appDir,
		fmt.Sprintf("LABEL %s=%s", ImageLabel, s.label()),
	}
}

// EnsureApps makes sure the engine holds the three test apps of the image optimizer, built from the current
// recipe, and returns them in the order [AppPython], [AppNode], [AppGo]. Each is the Debian bookworm root
// filesystem of [EnsureDebian] with one layer on top, committed from a build container:
//
//   - AppPython: Debian's python3, installed with apt-get --no-install-recommends, and /app/server.py;
//   - AppNode: Debian's nodejs, likewise, and /app/server.js;
//   - AppGo: /app/server, a static Go binary built on the host (CGO_ENABLED=0, -trimpath).
//
// apt's package lists and downloaded .debs stay in the images on purpose: they are the waste an optimizer must
// find. Each server listens on 0.0.0.0:8000 (EXPOSE 8000/tcp, WORKDIR /app) and answers GET / with
// [App.FirstBody], GET /second with the content of /app/data/second.txt (read on that request only, so that an
// optimizer keeps it only when it saw that request) and 404 for any other path.
//
// An image whose [ImageLabel] names the current recipe is reused, so only what is missing is built (python3
// and nodejs come from the Debian mirror of opts, or of the machine's apt sources, through the engine's
// network: ten to twenty seconds each). Concurrent callers, in this process or others, wait for each other.
// When the root filesystem is not cached it is made as [EnsureDebian] makes it, with its needs; when no go
// toolchain is installed, or a build container cannot reach the mirror, the error wraps [errdefs.ErrUnavailable].
func EnsureApps(ctx context.Context, eng *engine.Client, opts DebianOptions) ([]App, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := opts.cacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "apps.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	var apps []App
	base := "" // the base image's ID, once needed
	for _, s := range appSpecs {
		label := s.label()
		previous, current, err := imageLabel(ctx, eng, s.ref)
		if err != nil {
			return nil, err
		}
		if current == label {
			log.Debug("app image is cached", "ref", s.ref, "id", previous)
			apps = append(apps, s.app())
			continue
		}
		if base == "" {
			if base, err = ensureDebianBase(ctx, eng, dir, opts.Mirror, log); err != nil {
				return nil, err
			}
		}
		mirror := opts.Mirror
		if mirror == "" {
			mirror = aptMirror(debianSuite)
		}
		start := time.Now()
		id, err := buildApp(ctx, eng, s, base, mirror)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", s.ref, err)
		}
		log.Info("built the app image", "ref", s.ref, "id", id, "took", time.Since(start).Round(time.Millisecond))
		if previous != "" && previous != id && strings.HasPrefix(current, "app-") {
			// The tag moved to the new image: the old one is ours and would only take space. A container may
			// still use it, and then it stays.
			_, _ = eng.API().ImageRemove(ctx, previous, client.ImageRemoveOptions{})
		}
		apps = append(apps, s.app())
	}
	return apps, nil
}

// imageLabel returns the ID of the image ref and the value of its [ImageLabel], or empty strings when the
// engine does not hold ref.
func imageLabel(ctx context.Context, eng *engine.Client, ref string) (id, label string, err error) {
	ok, err := eng.ImageExists(ctx, ref)
	if err != nil {
		return "", "", fmt.Errorf("looking for %s: %w", ref, err)
	}
	if !ok {
		return "", "", nil
	}
	res, err := eng.API().ImageInspect(ctx, ref)
	if err != nil {
		return "", "", fmt.Errorf("inspecting %s: %w", ref, err)
	}
	if res.Config != nil {
		label = res.Config.Labels[ImageLabel]
	}
	return res.ID, label, nil
}

// ensureDebianBase returns the ID of [debianBase], importing the cached root filesystem (made first when there
// is none) unless the engine holds it already.
func ensureDebianBase(ctx context.Context, eng *engine.Client, dir, mirror string, log *slog.Logger) (string, error) {
	h := sha256.Sum256([]byte(strings.Join(debianBaseChanges, "\n")))
	label := "debian-base/" + rootfsKey() + "-" + hex.EncodeToString(h[:])[:12]
	previous, current, err := imageLabel(ctx, eng, debianBase)
	if err != nil || current == label {
		return previous, err
	}
	// EnsureDebian makes the same root filesystem under its own lock: take it too, so that the two never run
	// debootstrap at once.
	unlockRootfs, err := lockFile(ctx, filepath.Join(dir, "debian-scan.lock"))
	if err != nil {
		return "", err
	}
	rootfs, err := ensureRootfs(ctx, dir, mirror, log)
	unlockRootfs()
	if err != nil {
		return "", err
	}
	start := time.Now()
	f, err := os.Open(rootfs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The engine decompresses the gzipped tarball itself.
	id, err := eng.ImportImage(ctx, f, debianBase, append(slices.Clone(debianBaseChanges), fmt.Sprintf("LABEL %s=%s", ImageLabel, label)))
	if err != nil {
		return "", err
	}
	if id == "" {
		if id, _, err = imageLabel(ctx, eng, debianBase); err != nil {
			return "", err
		}
	}
	log.Info("imported the Debian base image", "ref", debianBase, "rootfs", rootfs, "took", time.Since(start).Round(time.Millisecond))
	if previous != "" && previous != id && strings.HasPrefix(current, "debian-base/") {
		// Refused while app images built on it remain: they keep it.
		_, _ = eng.API().ImageRemove(ctx, previous, client.ImageRemoveOptions{})
	}
	return id, nil
}

// aptScript runs in the build container as `sh -c aptScript sh MIRROR PACKAGE...`. It points apt at the mirror,
// exits with aptUnreachable when the package lists cannot be downloaded, then installs the packages, leaving
// the lists and the downloaded .debs in place.
const aptScript = `set -eu
echo "deb $1 ` + debianSuite + ` main" >/etc/apt/sources.list
shift
apt-get -q -o Acquire::Retries=3 -o Acquire::http::Timeout=30 --error-on=any update || exit 86
DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::Retries=3 -o Acquire::http::Timeout=30 install -y --no-install-recommends "$@"
dpkg-query -W "$@"
`

// aptUnreachable is aptScript's exit status when apt-get update fails.
const aptUnreachable = 86

// mirrorFailures are what apt prints when it cannot download from the mirror.
var mirrorFailures = []string{"Failed to fetch", "Temporary failure resolving", "Could not resolve", "Could not connect",
	"Unable to connect", "Connection failed", "Connection timed out", "No route to host"}

// buildApp makes s's image in a build container from base and returns its ID. The container is removed
// whatever happens.
func buildApp(ctx context.Context, eng *engine.Client, s appSpec, base, mirror string) (string, error) {
	files := map[string][]byte{}
	comment := ""
	if s.lang == "go" {
		bin, version, err := buildGoServer(ctx)
		if err != nil {
			return "", err
		}
		files[s.file] = bin
		comment = fmt.Sprintf("/app/server: CGO_ENABLED=0 GOFLAGS=-trimpath go build (%s); /app/data/second.txt", version)
	} else {
		files[s.file] = []byte(s.source)
		comment = fmt.Sprintf("apt-get install --no-install-recommends %s from %s (lists and .debs kept); /app/%s, /app/data/second.txt",
			strings.Join(s.packages, " "), mirror, s.file)
	}
	files["data/second.txt"] = []byte(s.app().SecondBody)
	content, err := treeLayer(func(tw *tar.Writer) error {
		for _, d := range []string{"app", "app/data"} {
			if err := writeDir(tw, d); err != nil {
				return err
			}
		}
		for _, name := range []string{s.file, "data/second.txt"} {
			mode := int64(0o644)
			if s.lang == "go" && name == s.file {
				mode = 0o755
			}
			if err := writeFile(tw, "app/"+name, mode, files[name]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}

	cmd := s.cmd // never run: the Go image needs no command run to be made
	if len(s.packages) > 0 {
		cmd = append([]string{"/bin/sh", "-c", aptScript, "sh", mirror}, s.packages...)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	created, err := eng.API().ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "myrmex-testimages-build-" + s.lang + "-" + hex.EncodeToString(b),
		Config:     &container.Config{Image: base, Cmd: cmd, Labels: map[string]string{ImageLabel: s.label()}},
		HostConfig: &container.HostConfig{},
	})
	if err != nil {
		return "", fmt.Errorf("creating the build container: %w", err)
	}
	id := created.ID
	defer func() {
		// A context of its own: a cancelled caller still leaves no build container behind.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = eng.API().ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()
	rc, err := content.Uncompressed()
	if err != nil {
		return "", err
	}
	_, err = eng.API().CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: rc})
	rc.Close()
	if err != nil {
		return "", fmt.Errorf("copying /app into the build container: %w", err)
	}

	if len(s.packages) > 0 {
		if err := runBuild(ctx, eng, id, s, mirror); err != nil {
			return "", err
		}
	}
	res, err := eng.API().ContainerCommit(ctx, id, client.ContainerCommitOptions{
		Reference: s.ref,
		Comment:   comment,
		Author:    "myrmex testimages",
		Changes:   s.changes(),
	})
	if err != nil {
		return "", fmt.Errorf("committing the build container: %w", err)
	}
	return res.ID, nil
}

// runBuild starts the build container and waits for aptScript to succeed.
func runBuild(ctx context.Context, eng *engine.Client, id string, s appSpec, mirror string) error {
	if _, err := eng.API().ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the build container: %w", err)
	}
	wait := eng.API().ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case res := <-wait.Result:
		if res.Error != nil && res.Error.Message != "" {
			return fmt.Errorf("waiting for the build container: %s", res.Error.Message)
		}
		code = res.StatusCode
	case err := <-wait.Error:
		if ctx.Err() != nil {
			return fmt.Errorf("installing %s: %w", strings.Join(s.packages, " "), ctx.Err())
		}
		return fmt.Errorf("waiting for the build container: %w", err)
	}
	if code == 0 {
		return nil
	}
	logs, err := eng.Logs(ctx, id, engine.LogOptions{Tail: 40})
	tail := strings.TrimSpace(logs.Combined)
	if err != nil {
		tail = fmt.Sprintf("(reading its output: %v)", err)
	}
	unreachable := code == aptUnreachable
	for _, f := range mirrorFailures {
		unreachable = unreachable || strings.Contains(logs.Combined, f)
	}
	if unreachable {
		return fmt.Errorf("the build container could not reach the Debian mirror %s (apt-get exited with %d; set DebianOptions.Mirror to one the engine's containers reach): %w\n%s",
			mirror, code, errdefs.ErrUnavailable, tail)
	}
	return fmt.Errorf("apt-get install %s in the build container exited with %d:\n%s", strings.Join(s.packages, " "), code, tail)
}

// buildGoServer compiles goServer, with no dependencies, into a static binary for the engine's architecture
// and returns it with the Go version it was built with.
func buildGoServer(ctx context.Context) ([]byte, string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, "", fmt.Errorf("making the Go test app needs go: %w", errdefs.ErrUnavailable)
	}
	dir, err := os.MkdirTemp("", "myrmex-goserver-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	for n, data := range map[string]string{"go.mod": goServerMod, "main.go": goServer} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(data), 0o644); err != nil {
			return nil, "", err
		}
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", "server", ".")
	cmd.Dir = dir
	// A go.work above the temp dir or a newer toolchain in go.mod must not change what is built.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-trimpath", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOOS=linux", "GOARCH="+runtime.GOARCH)
	if err := runQuiet(cmd); err != nil {
		return nil, "", fmt.Errorf("building the Go test app: %w", err)
	}
	bin := filepath.Join(dir, "server")
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, "", fmt.Errorf("reading the build information of the Go test app: %w", err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, "", err
	}
	return data, info.GoVersion, nil
}
