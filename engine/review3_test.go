package engine_test

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
)

// A seccomp profile that is not a regular file (a FIFO no one writes to, a device) is refused at once, not
// read until the writer that never comes.
func TestReview3SeccompProfileNotRegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "profile.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	for _, p := range []string{fifo, "/dev/zero", t.TempDir()} {
		done := make(chan error, 1)
		go func() { done <- engine.ContainerConfig{Image: "x", SeccompProfile: p}.Validate("n1") }()
		select {
		case err := <-done:
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("seccomp_profile %s: Validate = %v, want ErrInvalidArgument", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("seccomp_profile %s: Validate still reading after 5s", p)
		}
	}
}
