// Command launch runs a command as its child, measures it and exits with its status:
//
//	launch STATS CMD ARGS…
//
// STATS receives the command's wall time from start to exit, its CPU seconds and its ru_maxrss, as JSON. It is
// small on purpose: on Linux a child's ru_maxrss is at least what its parent held when the child called exec, so
// the launcher's own few MB are the floor under every figure it reports.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "want: launch STATS CMD ARGS…")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	st := struct {
		Seconds float64 `json:"seconds"`
		User    float64 `json:"user"`
		System  float64 `json:"system"`
		MaxRSS  int64   `json:"max_rss"` // bytes
	}{Seconds: time.Since(start).Seconds()}
	if ps := cmd.ProcessState; ps != nil {
		st.User, st.System = ps.UserTime().Seconds(), ps.SystemTime().Seconds()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			st.MaxRSS = ru.Maxrss << 10 // KiB on Linux
		}
	}
	if b, jerr := json.Marshal(st); jerr == nil {
		os.WriteFile(os.Args[1], b, 0o644)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(1)
	}
}
