//go:build linux

package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// Main runs the sensor with its arguments (without the program name) and returns the exit code.
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "myrmex-sensor: usage: record|http|exec …")
		return 2
	}
	switch args[0] {
	case "record":
		return record(args[1:])
	case "http":
		return httpProbe(args[1:])
	case "exec":
		return execAs(args[1:])
	}
	fmt.Fprintf(os.Stderr, "myrmex-sensor: unknown command %q\n", args[0])
	return 2
}

func record(args []string) int {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	report := fs.String("report", ReportFile, "report file")
	user := fs.String("user", "", "user[:group] to run the program as")
	grace := fs.Duration("grace", 5*time.Second, "time the program has to end after SIGTERM")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "myrmex-sensor: record: no program")
		return 2
	}
	rep := &Report{Files: map[string]string{}}
	write := func() {
		if err := writeReport(*report, rep); err != nil {
			fmt.Fprintln(os.Stderr, "myrmex-sensor:", err)
		}
	}
	w, err := watch("/")
	if err != nil {
		rep.Error = err.Error()
		rep.ExitCode = 125
		write()
		fmt.Fprintln(os.Stderr, "myrmex-sensor:", err)
		return 125
	}
	self, err := os.Executable()
	if err != nil {
		self = Binary
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCHLD)
	cmd := exec.Command(self, append([]string{"exec", "--user", *user, "--"}, argv...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		w.stop(rep)
		rep.Error, rep.ExitCode = err.Error(), 127
		write()
		fmt.Fprintln(os.Stderr, "myrmex-sensor:", err)
		return 127
	}
	child := cmd.Process.Pid
	code := -1
	var deadline <-chan time.Time
	for code < 0 {
		select {
		case s := <-signals:
			if s == syscall.SIGCHLD {
				code = reap(child)
				continue
			}
			_ = syscall.Kill(child, s.(syscall.Signal))
			if (s == syscall.SIGTERM || s == syscall.SIGINT) && deadline == nil {
				deadline = time.After(*grace)
			}
		case <-deadline:
			_ = syscall.Kill(child, syscall.SIGKILL)
		case <-time.After(time.Second):
			code = reap(child) // a SIGCHLD coalesced with another is not lost
		}
	}
	w.stop(rep)
	rep.ExitCode = code
	write()
	return code
}

// reap collects every ended child (the sensor is PID 1: orphans come to it) and returns the program's exit code,
// or -1 while it runs.
func reap(child int) int {
	code := -1
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return code
		}
		if pid == child {
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			}
		}
	}
}

func writeReport(path string, rep *Report) error {
	data, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// watcher reads fanotify events for a mount.
type watcher struct {
	fd   int
	mu   sync.Mutex
	done chan struct{}
	quit chan struct{}
	rep  Report
}

func watch(root string) (*watcher, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_UNLIMITED_QUEUE|unix.FAN_NONBLOCK,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init: %w (the container needs CAP_SYS_ADMIN)", err)
	}
	mask := uint64(unix.FAN_OPEN | unix.FAN_OPEN_EXEC | unix.FAN_ONDIR)
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_MOUNT, mask, unix.AT_FDCWD, root); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("fanotify_mark %s: %w", root, err)
	}
	w := &watcher{fd: fd, done: make(chan struct{}), quit: make(chan struct{}), rep: Report{Files: map[string]string{}}}
	go w.loop()
	return w, nil
}

// stop reads the events still queued, ends the watch and copies what it saw into rep.
func (w *watcher) stop(rep *Report) {
	close(w.quit)
	<-w.done
	_ = unix.Close(w.fd)
	rep.Files, rep.Overflow = w.rep.Files, w.rep.Overflow
	if w.rep.Error != "" {
		rep.Error = w.rep.Error
	}
}

// drainTime bounds how long stop reads the events still queued.
const drainTime = 2 * time.Second

func (w *watcher) loop() {
	defer close(w.done)
	buf := make([]byte, 256<<10)
	self := os.Getpid()
	quitting := false
	var drainBy time.Time
	for {
		if !quitting { // checked on every read: a queue that never empties must not keep the report from being written
			select {
			case <-w.quit:
				quitting, drainBy = true, time.Now().Add(drainTime)
			default:
			}
		} else if time.Now().After(drainBy) {
			w.rep.Overflow = true // events still coming after the program ended (its orphans): what is left is lost
			return
		}
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) || n == 0 {
			if quitting {
				return // drained
			}
			fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
			_, _ = unix.Poll(fds, 100)
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			w.rep.Error = "reading fanotify events: " + err.Error()
			w.rep.Overflow = true
			return
		}
		w.events(buf[:n], self)
	}
}

func (w *watcher) events(buf []byte, self int) {
	const metaSize = int(unsafe.Sizeof(unix.FanotifyEventMetadata{}))
	for len(buf) >= metaSize {
		m := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[0]))
		if m.Event_len < uint32(metaSize) || int(m.Event_len) > len(buf) {
			return
		}
		buf = buf[m.Event_len:]
		if m.Mask&unix.FAN_Q_OVERFLOW != 0 {
			w.rep.Overflow = true
		}
		if m.Fd < 0 {
			continue
		}
		if int(m.Pid) != self {
			w.note(int(m.Fd), m.Mask)
		}
		_ = unix.Close(int(m.Fd))
	}
}

func (w *watcher) note(fd int, mask uint64) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || !strings.HasPrefix(p, "/") || strings.HasSuffix(p, " (deleted)") || len(p) > MaxPathSize {
		return
	}
	if p == Dir || strings.HasPrefix(p, Dir+"/") {
		return
	}
	kind := Read
	switch {
	case mask&unix.FAN_OPEN_EXEC != 0:
		kind = Exec
	case mask&unix.FAN_ONDIR != 0:
		kind = List
	}
	old, seen := w.rep.Files[p]
	if !seen && len(w.rep.Files) >= MaxPaths {
		w.rep.Overflow = true
		return
	}
	if old != Exec {
		w.rep.Files[p] = kind
	}
}

// execAs drops CAP_SYS_ADMIN from every set, takes the user's identity and execs the program.
func execAs(args []string) int {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	user := fs.String("user", "", "user[:group]")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "myrmex-sensor: exec: no program")
		return 2
	}
	runtime.LockOSThread()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "myrmex-sensor:", err)
		return 126
	}
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SYS_ADMIN, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fail(fmt.Errorf("dropping CAP_SYS_ADMIN from the bounding set: %w", err))
	}
	id, err := lookupUser(*user)
	if err != nil {
		return fail(err)
	}
	if err := unix.Setgroups(id.groups); err != nil {
		return fail(fmt.Errorf("setgroups: %w", err))
	}
	if err := unix.Setgid(id.gid); err != nil {
		return fail(fmt.Errorf("setgid %d: %w", id.gid, err))
	}
	if err := unix.Setuid(id.uid); err != nil {
		return fail(fmt.Errorf("setuid %d: %w", id.uid, err))
	}
	if err := dropSysAdmin(); err != nil {
		return fail(err)
	}
	if os.Getenv("HOME") == "" && id.home != "" {
		_ = os.Setenv("HOME", id.home)
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		if path, err = exec.LookPath(argv[0]); err != nil {
			return fail(err)
		}
	}
	err = syscall.Exec(path, argv, os.Environ())
	return fail(fmt.Errorf("exec %s: %w", argv[0], err))
}

func dropSysAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	bit := uint32(1) << (unix.CAP_SYS_ADMIN % 32)
	i := unix.CAP_SYS_ADMIN / 32
	data[i].Effective &^= bit
	data[i].Permitted &^= bit
	data[i].Inheritable &^= bit
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

type identity struct {
	uid, gid int
	groups   []int
	home     string
}

var passwdFile, groupFile = "/etc/passwd", "/etc/group"

// lookupUser resolves a Docker USER value as the engine does (dockerd resolves it with moby/sys/user, from the
// container's /etc/passwd and /etc/group): an unknown numeric uid runs with gid 0. The primary group is among the
// supplementary ones, as dockerd sets them.
func lookupUser(spec string) (identity, error) {
	u, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwdFile, groupFile)
	if err != nil {
		return identity{}, err
	}
	id := identity{uid: u.Uid, gid: u.Gid, home: u.Home, groups: []int{u.Gid}}
	for _, g := range u.Sgids {
		if !slices.Contains(id.groups, g) {
			id.groups = append(id.groups, g)
		}
	}
	return id, nil
}

// httpProbe asks for each URL in turn, the first until it answers or the timeout passes, and prints the answers
// as a JSON array. It exits 0 when every URL answered (whatever the status), 1 otherwise.
func httpProbe(args []string) int {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 60*time.Second, "time the server has to answer the first request")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	var out []HTTPResult
	code := 0
	for i, u := range fs.Args() {
		r := HTTPResult{URL: u}
		for {
			err := get(ctx, client, u, &r)
			if err == nil {
				break
			}
			if r.Error = err.Error(); len(r.Error) > 1024 { // net/http quotes what the server sent in some errors
				r.Error = r.Error[:1024] + "…"
			}
			if i > 0 || ctx.Err() != nil {
				code = 1
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		out = append(out, r)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
	return code
}

func get(ctx context.Context, client *http.Client, u string, r *HTTPResult) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return err
	}
	r.Status, r.Body, r.Error = resp.StatusCode, string(body), ""
	return nil
}
