// Package testimages makes the local images that Myrmex's tests, benchmarks and demo run, without pulling:
// nothing outside this machine is reachable. The small ones are a busybox root filesystem built from Debian's
// busybox-static binary and imported into the engine, a few MB made in well under a second. The scanning tests'
// image ([EnsureDebian]) is a real Debian bookworm made with debootstrap, with npm packages, a Go binary and
// Python metadata in layers of their own, cached between runs.
package testimages

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/engine"
)

// The images, by reference.
const (
	// Busybox has every busybox applet on /bin, a web root at /www, and CMD sh.
	Busybox = "myrmex.local/busybox:test"
	// Web serves /www on port 8080 with busybox httpd.
	Web = "myrmex.local/web:test"
	// Healthy has a HEALTHCHECK that passes (every second) and sleeps.
	Healthy = "myrmex.local/healthy:test"
	// Unhealthy has a HEALTHCHECK that fails (every second) and sleeps.
	Unhealthy = "myrmex.local/unhealthy:test"
)

// BusyboxPath is where Debian's busybox-static puts its binary.
var BusyboxPath = "/bin/busybox"

type spec struct {
	ref     string
	changes []string
}

var all = []spec{
	{Busybox, []string{`CMD ["sh"]`}},
	{Web, []string{`EXPOSE 8080/tcp`, `CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]`}},
	{Healthy, []string{`HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["true"]`, `CMD ["sleep", "3600"]`}},
	{Unhealthy, []string{`HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["false"]`, `CMD ["sleep", "3600"]`}},
}

// Ensure imports every image the engine does not hold yet.
func Ensure(ctx context.Context, eng *engine.Client) error {
	var rootfs []byte
	for _, s := range all {
		ok, err := eng.ImageExists(ctx, s.ref)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if rootfs == nil {
			if rootfs, err = Rootfs(); err != nil {
				return err
			}
		}
		if _, err := eng.ImportImage(ctx, bytes.NewReader(rootfs), s.ref, s.changes); err != nil {
			return err
		}
	}
	return nil
}

// Rootfs returns a tarball of a busybox root filesystem: /bin/busybox with a link per applet, /etc/passwd and
// /etc/group with root and nobody, /tmp, and /www/index.html.
func Rootfs() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("reading busybox (install Debian's busybox-static): %w", err)
	}
	if err := static(bin); err != nil {
		return nil, fmt.Errorf("%s: %w", BusyboxPath, err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: now})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("bin", 0o755) },
		func() error { return dir("etc", 0o755) },
		func() error { return dir("tmp", 0o1777) },
		func() error { return dir("www", 0o755) },
		func() error { return dir("data", 0o755) },
		func() error { return file("bin/busybox", 0o755, bin) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")) },
		func() error { return file("www/index.html", 0o644, []byte("<h1>Hello from Myrmex</h1>\n")) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// static checks that an executable needs no dynamic loader: the images hold nothing but the binary.
func static(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked: the test images need a static busybox (apt-get install busybox-static)")
		}
	}
	return nil
}
