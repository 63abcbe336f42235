#!/usr/bin/env bash
# cosign.sh build|bin — cosign, built from its Go module, for the tests that check Myrmex's signatures against the
# ecosystem's verifier (and the other way round).
#
# build: builds github.com/sigstore/cosign/v2/cmd/cosign ($cosign_version) into $MYRMEX_COSIGN_CACHE
#        (~/.cache/myrmex/cosign-v2.6.5/bin/cosign) in a throwaway module that requires it; later runs reuse it.
#        About 8 minutes on 2 cores with a cold Go cache (module downloads included), nothing when it is there.
#        Only the Go module proxy is needed.
# bin:   prints the directory of the binary (the tests look there, see internal/testenv.Cosign).
set -euo pipefail

cosign_version=v2.6.5
cache=${MYRMEX_COSIGN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/myrmex/cosign-$cosign_version}
bin="$cache/bin"
GO=${GO:-go}

log() { echo "cosign.sh: $*" >&2; }

build() {
  [ -x "$bin/cosign" ] && return 0
  local src="$cache/src"
  mkdir -p "$bin"
  # Made in a directory of its own and moved into place whole: a download that fails half-way leaves nothing a
  # later run would take for a finished module.
  if [ ! -f "$src/go.sum" ]; then
    rm -rf "$src.tmp"
    mkdir -p "$src.tmp"
    (
      cd "$src.tmp"
      printf 'module myrmex.local/cosignbuild\n\ngo 1.26.0\n' >go.mod
      printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/sigstore/cosign/v2/cmd/cosign"\n' >tools.go
      $GO get "github.com/sigstore/cosign/v2@$cosign_version"
      $GO mod tidy
    )
    rm -rf "$src"
    mv "$src.tmp" "$src"
  fi
  (
    cd "$src"
    log "building cosign $cosign_version (about 8 minutes on 2 cores when the Go cache is cold)"
    $GO build -o "$bin/cosign.tmp" github.com/sigstore/cosign/v2/cmd/cosign
    mv "$bin/cosign.tmp" "$bin/cosign"
  )
}

case "${1:-}" in
  build) build ;;
  bin) echo "$bin" ;;
  *)
    echo "usage: $0 build|bin" >&2
    exit 2
    ;;
esac
