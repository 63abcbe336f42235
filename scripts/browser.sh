#!/usr/bin/env bash
# browser.sh install|env — what the dashboard's and the report's tests need of a browser: Debian's Chromium (the
# tests start and stop it themselves, one per test, in a user data directory of their own), pdftotext (Debian's
# poppler-utils) to read the reports' PDFs back, and axe-core, the accessibility engine the tests run on every
# page, from the npm registry. Nothing downloads a browser of its own.
#
# install: installs chromium and poppler-utils when missing (as root), and axe-core $axe_version into
#          ~/.cache/myrmex/axe-core-$axe_version (npm install, about 10 s; nothing when it is there).
# env:     prints the lines to export: MYRMEX_CHROMIUM (the browser), MYRMEX_AXE (axe.min.js).
set -euo pipefail

axe_version=4.14.1
cache=${MYRMEX_AXE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/myrmex/axe-core-$axe_version}
axe="$cache/node_modules/axe-core/axe.min.js"

log() { echo "browser.sh: $*" >&2; }
die() { log "$*"; exit 1; }

chromium() {
  local c
  for c in "${MYRMEX_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-headless-shell; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

install() {
  local need=()
  chromium >/dev/null || need+=(chromium)
  command -v pdftotext >/dev/null || need+=(poppler-utils)
  if ((${#need[@]})); then
    [ "$(id -u)" = 0 ] || die "missing ${need[*]}: apt-get install ${need[*]}, or run as root"
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
  fi
  if [ ! -s "$axe" ]; then
    command -v npm >/dev/null || die "npm is missing: axe-core comes from the npm registry (apt-get install npm)"
    log "installing axe-core $axe_version from the npm registry into $cache"
    mkdir -p "$cache"
    # --ignore-scripts: a package's install scripts are not run; axe-core's file is all the tests read.
    npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$cache" "axe-core@$axe_version" >/dev/null ||
      die "npm install axe-core@$axe_version failed"
    [ -s "$axe" ] || die "npm installed axe-core, but $axe is not there"
  fi
  log "$("$(chromium)" --version 2>/dev/null | head -1), axe-core $axe_version, $(pdftotext -v 2>&1 | head -1)"
}

case "${1:-}" in
install) install ;;
env)
  c=$(chromium) || die "no Chromium: scripts/browser.sh install"
  printf 'export MYRMEX_CHROMIUM=%q MYRMEX_AXE=%q\n' "$c" "$axe"
  ;;
*)
  echo "usage: $0 install|env" >&2
  exit 2
  ;;
esac
