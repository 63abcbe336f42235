package testimages

import (
	"os"
	"strings"
	"testing"
)

// The images need a static busybox; Debian's busybox package (dynamically linked) is refused with what to install.
func TestStatic(t *testing.T) {
	for path, ok := range map[string]bool{BusyboxPath: true, "/bin/ls": false} {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("%s: %v", path, err)
		}
		err = static(bin)
		if ok && err != nil {
			t.Errorf("static(%s) = %v", path, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "busybox-static")) {
			t.Errorf("static(%s) = %v, want a refusal naming busybox-static", path, err)
		}
	}
	if err := static([]byte("#!/bin/sh\n")); err == nil {
		t.Error("static(a shell script) = nil")
	}
}
