#!/usr/bin/env bash
# engine.sh up|down|env — a private Docker engine for Myrmex's tests and demo.
#
# up:   installs what is missing (Debian's docker.io, busybox-static, docker-registry, debootstrap, npm, as root), then reuses an engine that
#       already answers at $MYRMEX_DOCKER_HOST, or starts a private dockerd with its own socket, data-root,
#       exec-root, pidfile and bridge, so that it never fights a system dockerd for docker0.
# down: stops the dockerd that `up` started (by its pid), and nothing else; MYRMEX_KEEP_ENGINE=1 keeps it.
# env:  prints the DOCKER_HOST line to export.
set -euo pipefail

state=${MYRMEX_STATE_DIR:-/var/lib/myrmex-test}
run=${MYRMEX_RUN_DIR:-/run/myrmex-test}
sock="$run/docker.sock"
host=${MYRMEX_DOCKER_HOST:-unix://$sock}
bridge=${MYRMEX_BRIDGE:-myrmex0}
bridge_cidr=${MYRMEX_BRIDGE_CIDR:-10.213.0.1/24}
pool=${MYRMEX_ADDRESS_POOL:-base=10.214.0.0/16,size=24}
pidfile="$run/dockerd.pid"
startedmark="$run/started-by-myrmex"

log() { echo "engine.sh: $*" >&2; }

answers() { DOCKER_HOST=$host timeout 5 docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

install_missing() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v docker >/dev/null || need+=(docker.io)
  [ -x /bin/busybox ] || need+=(busybox-static)
  command -v ip >/dev/null || need+=(iproute2)
  # The registry tests run Debian's CNCF distribution server themselves, on loopback.
  command -v docker-registry >/dev/null || need+=(docker-registry)
  # The scanning tests build a real Debian image (debootstrap) with npm packages in it.
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v npm >/dev/null || need+=(npm)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root"
    exit 1
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
}

up() {
  install_missing
  if answers; then
    log "reusing the engine at $host"
    return 0
  fi
  if [ "$host" != "unix://$sock" ]; then
    log "no engine answers at $host, and it is not ours to start"
    exit 1
  fi
  mkdir -p "$state" "$run"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$bridge_cidr" dev "$bridge"
  fi
  ip link set "$bridge" up
  log "starting a private dockerd at $host (log: $state/dockerd.log)"
  setsid dockerd \
    --host "$host" \
    --data-root "$state/docker" \
    --exec-root "$run/exec" \
    --pidfile "$pidfile" \
    --bridge "$bridge" \
    --default-address-pool "$pool" \
    --storage-driver overlay2 \
    >"$state/dockerd.log" 2>&1 </dev/null &
  touch "$startedmark"
  for _ in $(seq 1 120); do
    if answers; then
      log "engine is up: $(DOCKER_HOST=$host docker version --format 'Docker {{.Server.Version}}, API {{.Server.APIVersion}}')"
      return 0
    fi
    sleep 0.5
  done
  log "dockerd did not answer within 60s; last lines of its log:"
  tail -n 30 "$state/dockerd.log" >&2
  exit 1
}

down() {
  if [ -n "${MYRMEX_KEEP_ENGINE:-}" ]; then
    log "MYRMEX_KEEP_ENGINE is set: leaving the engine running"
    return 0
  fi
  if [ ! -f "$startedmark" ]; then
    log "not stopping the engine: this script did not start it"
    return 0
  fi
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
  fi
  rm -f "$startedmark"
  log "stopped the private dockerd"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) echo "export DOCKER_HOST=$host" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
