package optimize

import (
	"strings"
	"testing"
)

// The sensor's report is read as hostile: what its own bounds would not have written is dropped, and a report
// that is not one is an error.
func TestDecodeReport(t *testing.T) {
	long := "/" + strings.Repeat("a", 5000)
	rep, err := decodeReport(strings.NewReader(`{"files": {"/usr/bin/python3": "exec", "relative": "read", "` + long + `": "read",
		"/etc/passwd": "read", "/x": "steal"}, "unknown": [1, 2, {"a": "b"}], "overflow": false, "exit_code": 143, "error": "` + strings.Repeat("e", 500) + `"}`))
	if err != nil {
		t.Fatalf("decodeReport = %v", err)
	}
	if len(rep.Files) != 2 || rep.Files["/usr/bin/python3"] != "exec" || rep.Files["/etc/passwd"] != "read" {
		t.Errorf("files = %v, want the two well-formed paths", rep.Files)
	}
	if rep.ExitCode != 143 || rep.Overflow || len(rep.Error) > 210 {
		t.Errorf("exit %d, overflow %v, error of %d bytes", rep.ExitCode, rep.Overflow, len(rep.Error))
	}
	for _, bad := range []string{``, `[]`, `{"files": []}`, `{"files": {"/a": "read"`, `{"exit_code": "x"}`} {
		if _, err := decodeReport(strings.NewReader(bad)); err == nil {
			t.Errorf("decodeReport(%q) = nil error", bad)
		}
	}
}
