#!/usr/bin/env bash
# demo.sh MYRMEX — the main job end to end. For now: a lifecycle tour of a web container, from a ContainerConfig
# file to metrics and logs, then removal. Each step is a myrmex command, shown before it runs.
set -euo pipefail
myrmex=${1:-bin/myrmex}
name=myrmex-demo-web
port=${MYRMEX_DEMO_PORT:-18080}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
cleanup() { "$myrmex" container rm --force "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

get() { # a plain HTTP GET through bash's /dev/tcp, so the demo needs no curl
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  local body; body=$(cat <&3); exec 3<&-
  printf '%s\n' "$body" | tail -n 1
}

step "$myrmex" version
step "$myrmex" container create -f examples/web.yaml -p "8080/tcp=127.0.0.1:$port"
step "$myrmex" container start "$name"
for _ in $(seq 1 50); do get >/dev/null 2>&1 && break; sleep 0.1; done
printf '\n\033[1m$ GET http://127.0.0.1:%s/ (x5)\033[0m\n' "$port"
for _ in 1 2 3 4 5; do get; done
step "$myrmex" container ls
step "$myrmex" container stats "$name"
step "$myrmex" container stats "$name" -o json
step "$myrmex" container logs --tail 3 "$name"
step "$myrmex" container stop --timeout 2s "$name"
step "$myrmex" container stop "$name"
step "$myrmex" container rm "$name"
printf '\nDemo done: the container is gone.\n'
