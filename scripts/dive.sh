#!/usr/bin/env bash
# dive.sh — build dive (github.com/wagoodman/dive), the layer analyser whose efficiency figures
# `myrmex optimize analyze` reproduces, from its Go module into bin/dive, for the tests that compare the two.
# dive's module refuses `go install …@version`, so a throwaway module requires it and builds its command.
#
#   scripts/dive.sh          # prints the binary's path; builds it when missing
set -euo pipefail
GO=${GO:-go}
root=$(cd "$(dirname "$0")/.." && pwd)
version=${DIVE_VERSION:-v0.13.2-0.20250516191726-d6c691947f8f} # dive's main on 2025-05-16 (the module proxy's latest)
bin=$root/bin/dive-$version
if [ ! -x "$bin/dive" ]; then
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  (
    cd "$src"
    $GO mod init divebuild >/dev/null 2>&1
    printf 'package divebuild\n\nimport _ "github.com/wagoodman/dive/cmd/dive/cli"\n' >doc.go
    GOFLAGS=-mod=mod $GO get "github.com/wagoodman/dive@$version" >/dev/null 2>&1
    GOFLAGS=-mod=mod $GO mod tidy >/dev/null 2>&1 || true
    mkdir -p "$bin"
    echo "dive.sh: building dive $version" >&2
    GOFLAGS=-mod=mod $GO build -o "$bin/dive.tmp" github.com/wagoodman/dive/cmd/dive
    mv "$bin/dive.tmp" "$bin/dive"
  )
fi
echo "$bin/dive"
