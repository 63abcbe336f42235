package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
)

// An engine's pull failure is typed from its message, which is cut short and stripped of control characters
// before it goes into an error (it often carries a registry's own text).
func TestPullFailureMessages(t *testing.T) {
	for msg, want := range map[string]error{
		`Get "https://r.example/v2/": x509: certificate signed by unknown authority`:                 errdefs.ErrTLS,
		`Get "https://r.example/v2/": http: server gave HTTP response to HTTPS client`:               errdefs.ErrTLS,
		`Get "https://r.invalid/v2/": dial tcp: lookup r.invalid on 10.0.0.53:53: no such host`:      errdefs.ErrUnavailable,
		`Head "https://r.example/v2/a/manifests/1": unauthorized: authentication required`:           errdefs.ErrUnauthorized,
		`pull access denied for a, repository does not exist or may require 'docker login': denied:`: errdefs.ErrUnauthorized,
		`manifest for r.example/a:1 not found: manifest unknown: manifest unknown`:                   errdefs.ErrNotFound,
		`invalid reference format`:                           errdefs.ErrInvalidArgument,
		`open /var/lib/docker/tmp/x: permission denied`:      errdefs.ErrUnavailable,
		`exec: "unpigz": executable file not found in $PATH`: errdefs.ErrUnavailable,
	} {
		if got := pullFailure(msg); !errors.Is(got, want) {
			t.Errorf("pullFailure(%q) = %v, want %v", msg, got, want)
		}
	}
	long := "\x1b[31mred\x1b[0m" + strings.Repeat("x", 5000)
	got := printable(long, 1024)
	if strings.ContainsRune(got, 0x1b) || len(got) > 1024+len("…") || !strings.HasPrefix(got, " [31mred") {
		t.Errorf("printable(%.20q…) = %.40q… (%d bytes), want control characters as spaces, at most 1024 bytes and an ellipsis", long, got, len(got))
	}
}
