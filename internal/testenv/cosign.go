package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CosignVersion is the cosign that scripts/cosign.sh builds from its Go module.
const CosignVersion = "v2.6.5"

// Cosign returns the path of the cosign binary scripts/cosign.sh built ($MYRMEX_COSIGN_CACHE/bin/cosign, by
// default ~/.cache/myrmex/cosign-v2.6.5/bin/cosign; `make test` builds it first). Without it the test skips on a
// developer's machine and fails where the components are [Required].
func Cosign(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("MYRMEX_COSIGN_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "myrmex", "cosign-"+CosignVersion)
	}
	bin := filepath.Join(cache, "bin", "cosign")
	if _, err := exec.LookPath(bin); err != nil {
		if Required() {
			t.Fatalf("the tests need cosign %s at %s (scripts/cosign.sh build): %v", CosignVersion, bin, err)
		}
		t.Skipf("no cosign at %s (scripts/cosign.sh build): %v", bin, err)
	}
	return bin
}
