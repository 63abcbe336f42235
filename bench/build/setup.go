package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testenv"
)

// dockerfile is the benchmark's build: a first stage that generates about 22 MB in some 400 files from the
// context's seed, deterministically (so that every builder makes the same bytes), and a final stage that copies
// the result and part of the context onto the base.
const dockerfile = `ARG BASE=` + baseImage + `
FROM ${BASE} AS gen
LABEL io.codomyrmex.bench=build
WORKDIR /work
COPY seed.txt ./
RUN mkdir -p out/blobs out/files \
 && dd if=/dev/zero of=out/blobs/zeros.bin bs=1M count=8 2>/dev/null \
 && for i in $(seq 1 12); do cat seed.txt; done > out/blobs/text.txt \
 && gzip -1 -c out/blobs/zeros.bin > out/blobs/zeros.gz
RUN i=0; while [ $i -lt 400 ]; do i=$((i+1)); \
      { echo "file $i"; head -c $((i*100)) out/blobs/text.txt; } > out/files/f$i.txt; done \
 && find out -type f | sort | xargs sha256sum > out/SHA256SUMS
RUN dd if=/dev/zero bs=1M count=12 2>/dev/null | tr '\0' 'y' > out/blobs/ys.bin

FROM ${BASE}
LABEL io.codomyrmex.bench=build
COPY --from=gen /work/out /out
COPY app/ /etc/app/
CMD ["sh"]
`

// contextFiles are the build context besides the Dockerfile.
var contextFiles = map[string]string{
	"seed.txt":        strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\n", 40),
	"app/app.conf":    "listen = 8080\nworkers = 4\n",
	"app/motd":        "built by bench/build\n",
	"app/lib/util.sh": "#!/bin/sh\necho util\n",
	"unused/big.txt":  strings.Repeat("context file not used by the build\n", 3000),
	".dockerignore":   "unused/big.txt\n",
}

type bench struct {
	eng    *engine.Client
	docker string
	cfg    config
	tmp    string
	runID  string
	order  *benchkit.Order // the contenders' order in every round

	contextDir string
	regHost    string // 127.0.0.1:PORT of the in-process registry
	regSrv     *http.Server
	remoteBase string // the base image in that registry

	buildkitdBin, buildctl string
	bkAddr                 string // unix://…
	bkCmd                  *exec.Cmd
	bkExited               chan struct{}
	bkDir                  string

	engineTags []string
}

func (b *bench) setup(ctx context.Context, rep *report) error {
	b.contextDir = filepath.Join(b.tmp, "context")
	files := map[string]string{"Dockerfile": dockerfile}
	for k, v := range contextFiles {
		files[k] = v
	}
	for p, content := range files {
		f := filepath.Join(b.contextDir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := b.startRegistry(ctx); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	t := time.Now()
	bin, err := testenv.BuildkitdBinary()
	if err != nil {
		return fmt.Errorf("building buildkitd: %w", err)
	}
	b.buildkitdBin = bin
	if b.buildctl, err = ensureBuildctl(ctx, filepath.Join(filepath.Dir(bin), "src")); err != nil {
		return err
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "buildkitd and buildctl binaries (cached after the first run)", Seconds: time.Since(t).Seconds()})
	t = time.Now()
	if err := b.startBuildkitd(ctx); err != nil {
		return err
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "buildkitd start", Seconds: time.Since(t).Seconds()})
	return nil
}

// startRegistry serves go-containerregistry's in-process registry on loopback and pushes the engine's base
// image to it, for buildkitd, which has no image store to find it in.
func (b *bench) startRegistry(ctx context.Context) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.regHost = l.Addr().String()
	b.regSrv = &http.Server{Handler: ggcrregistry.New(ggcrregistry.Logger(nilLogger()))}
	go func() { _ = b.regSrv.Serve(l) }()

	tar := filepath.Join(b.tmp, "base.tar")
	if _, _, err := benchkit.RunTool(ctx, nil, b.docker, "save", "-o", tar, baseImage); err != nil {
		return err
	}
	tag, err := name.NewTag(baseImage)
	if err != nil {
		return err
	}
	img, err := tarball.ImageFromPath(tar, &tag)
	if err != nil {
		return err
	}
	b.remoteBase = b.regHost + "/busybox:test"
	ref, err := name.ParseReference(b.remoteBase)
	if err != nil {
		return err
	}
	return remote.Write(ref, img, remote.WithContext(ctx))
}

// startBuildkitd starts buildkitd as internal/testenv.Buildkitd does: an OCI worker on runc, host networking, a
// fresh state directory, and the in-process registry marked as plain HTTP.
func (b *bench) startBuildkitd(ctx context.Context) error {
	runc, err := exec.LookPath("runc")
	if err != nil || os.Geteuid() != 0 {
		return fmt.Errorf("buildkitd needs root and runc (apt-get install runc): %v", err)
	}
	// A unix socket path must stay under 108 bytes: a short directory of its own.
	if b.bkDir, err = os.MkdirTemp("", "bkd-bench-"); err != nil {
		return err
	}
	conf := fmt.Sprintf("[registry.%q]\n  http = true\n  insecure = true\n", b.regHost)
	if err := os.WriteFile(filepath.Join(b.bkDir, "buildkitd.toml"), []byte(conf), 0o644); err != nil {
		return err
	}
	sock := filepath.Join(b.bkDir, "buildkitd.sock")
	logf, err := os.Create(filepath.Join(b.bkDir, "buildkitd.log"))
	if err != nil {
		return err
	}
	b.bkCmd = exec.Command(b.buildkitdBin,
		"--config", filepath.Join(b.bkDir, "buildkitd.toml"),
		"--addr", "unix://"+sock,
		"--root", filepath.Join(b.bkDir, "root"),
		"--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-binary", runc,
		"--oci-worker-net=host",
	)
	b.bkCmd.Stdout, b.bkCmd.Stderr = logf, logf
	b.bkCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.bkCmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting buildkitd: %w", err)
	}
	b.bkExited = make(chan struct{})
	go func() { _ = b.bkCmd.Wait(); logf.Close(); close(b.bkExited) }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-b.bkExited:
			log, _ := os.ReadFile(filepath.Join(b.bkDir, "buildkitd.log"))
			return fmt.Errorf("buildkitd exited at start: %s", benchkit.LastLines(log, 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			b.bkAddr = "unix://" + sock
			return nil
		}
	}
	return fmt.Errorf("buildkitd did not listen on %s within 30s", sock)
}

// ensureBuildctl returns buildctl built from the throwaway module that buildkitd is built in (same buildkit
// version), once, into $(go env GOCACHE)/../myrmex-bench-bin/buildctl-VERSION/.
func ensureBuildctl(ctx context.Context, src string) (string, error) {
	dir, err := benchkit.BinDir(ctx, "buildctl-"+testenv.BuildkitVersion)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "buildctl")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	benchkit.Logf("building buildctl %s into %s (once)", testenv.BuildkitVersion, dir)
	if err := benchkit.GoCmd(ctx, src, nil, "build", "-o", bin+".tmp", "github.com/moby/buildkit/cmd/buildctl"); err != nil {
		return "", err
	}
	return bin, os.Rename(bin+".tmp", bin)
}

// cleanup stops buildkitd and the registry, removes the engine images of the run and the temporary files.
func (b *bench) cleanup(ctx context.Context) error {
	var errs []error
	if b.bkCmd != nil && b.bkCmd.Process != nil {
		// SIGTERM lets buildkitd unmount its snapshots before its state directory is removed.
		_ = b.bkCmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.bkExited:
		case <-time.After(15 * time.Second):
			_ = b.bkCmd.Process.Kill()
			<-b.bkExited
		}
		errs = append(errs, os.RemoveAll(b.bkDir))
	}
	if b.regSrv != nil {
		errs = append(errs, b.regSrv.Close())
	}
	if err := b.removeEngineImages(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(b.tmp))
	return errors.Join(errs...)
}

// removeEngineImages removes the run's tagged images from the engine (and with them the classic builder's
// intermediate images of the final stage, their parents) and the dangling images the Dockerfile labelled: the
// classic builder's first stage, which no tag holds, and its parents.
func (b *bench) removeEngineImages(ctx context.Context) error {
	for _, t := range b.engineTags {
		if _, _, err := benchkit.RunTool(ctx, nil, b.docker, "image", "rm", "-f", t); err != nil && !strings.Contains(err.Error(), "No such image") {
			return err
		}
	}
	_, _, err := benchkit.RunTool(ctx, nil, b.docker, "image", "prune", "-f", "--filter", "label=io.codomyrmex.bench=build")
	return err
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }
