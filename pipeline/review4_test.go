package pipeline_test

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/pipeline"
)

// A FIFO (or a device) named as the pipeline file is refused at once, not opened and waited on for ever.
func TestReview4LoadRefusesAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	for _, file := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() { _, err := pipeline.Load(file); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Load(%s) = %v, want ErrInvalidArgument", file, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("Load(%s) blocked", file)
		}
	}
}
