#!/usr/bin/env bash
# image.sh — the container image of `myrmex serve` (deploy/Dockerfile, docs/deploy.md), built by Myrmex itself.
# Nothing is pulled: the image is FROM scratch, and its build context is assembled here.
#
#   scripts/image.sh context DIR          assemble the build context in DIR (absent or empty): deploy/Dockerfile,
#                                         a static myrmex, deploy/rootfs, the CA bundle, /tmp and the state directory
#   scripts/image.sh build NAME[:TAG] [MYRMEX BUILD FLAGS…]
#                                         assemble a context in a temporary directory and build it with bin/myrmex
#                                         (make build first; MYRMEX names another binary), e.g. --push
#
# CA_BUNDLE names the CA certificates copied into the image (default Debian's /etc/ssl/certs/ca-certificates.crt):
# the server verifies registries and clusters with them. VERSION is the version myrmex reports and the image's
# label (default: git describe).
set -euo pipefail
GO=${GO:-go}
here=$(cd "$(dirname "$0")/.." && pwd)
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
version=${VERSION:-$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo dev)}

die() { echo "image.sh: $*" >&2; exit 2; }

context() {
  local dir=$1
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then die "$dir is not empty: the build context is made in a new directory"; fi
  [ -f "$ca" ] || die "no CA bundle at $ca (install Debian's ca-certificates, or set CA_BUNDLE)"
  mkdir -p "$dir/rootfs/etc/ssl/certs" "$dir/rootfs/tmp" "$dir/rootfs/var/lib" "$dir/state/myrmex"
  chmod 1777 "$dir/rootfs/tmp"
  chmod 0700 "$dir/state/myrmex"
  cp "$here/deploy/Dockerfile" "$dir/Dockerfile"
  cp "$here/deploy/rootfs/etc/passwd" "$here/deploy/rootfs/etc/group" "$dir/rootfs/etc/"
  cp "$ca" "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
  chmod 0644 "$dir/rootfs/etc/passwd" "$dir/rootfs/etc/group" "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
  (cd "$here" && CGO_ENABLED=0 "$GO" build -trimpath \
    -ldflags="-s -w -X github.com/codomyrmex/containerization/internal/cli.version=$version" -o "$dir/myrmex" ./cmd/myrmex)
}

case "${1:-}" in
context)
  [ $# -eq 2 ] || die "usage: image.sh context DIR"
  context "$2"
  ;;
build)
  [ $# -ge 2 ] || die "usage: image.sh build NAME[:TAG] [myrmex build flags…]"
  name=$2
  shift 2
  myrmex=${MYRMEX:-$here/bin/myrmex}
  [ -x "$myrmex" ] || die "no myrmex at $myrmex: make build first, or set MYRMEX"
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  context "$dir/context"
  revision=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)
  "$myrmex" build -t "$name" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$@" "$dir/context"
  ;;
*)
  die "usage: image.sh context DIR | build NAME[:TAG] [myrmex build flags…]"
  ;;
esac
