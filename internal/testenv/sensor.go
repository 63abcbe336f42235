package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var sensorOnce struct {
	sync.Once
	path string
	err  error
}

// Sensor builds cmd/myrmex-sensor (static) once per test process and returns its path.
func Sensor(t testing.TB) string {
	t.Helper()
	sensorOnce.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			sensorOnce.err = err
			return
		}
		dir, err := os.MkdirTemp("", "myrmex-sensor-")
		if err != nil {
			sensorOnce.err = err
			return
		}
		out := filepath.Join(dir, "myrmex-sensor")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/myrmex-sensor")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			sensorOnce.err = &exec.Error{Name: "go build ./cmd/myrmex-sensor: " + string(msg), Err: err}
			return
		}
		sensorOnce.path = out
	})
	if sensorOnce.err != nil {
		t.Fatalf("building the sensor: %v", sensorOnce.err)
	}
	return sensorOnce.path
}
