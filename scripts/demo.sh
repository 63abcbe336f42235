#!/usr/bin/env bash
# demo.sh MYRMEX — the main job end to end, as far as Myrmex goes today: push an image to a registry, pull it
# back, run a web container from it (a ContainerConfig file), read its metrics and logs, and clean up.
# Each step is a myrmex command, shown before it runs. A local CNCF distribution registry (Debian's
# docker-registry) is started on loopback for the demo and stopped after it.
set -euo pipefail
myrmex=${1:-bin/myrmex}
name=myrmex-demo-web
port=${MYRMEX_DEMO_PORT:-18080}
regport=${MYRMEX_DEMO_REGISTRY_PORT:-15000}
registry=127.0.0.1:$regport
image=$registry/demo/web:1

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

regdir=$(mktemp -d)
regpid=
cleanup() {
  "$myrmex" container rm --force "$name" >/dev/null 2>&1 || true
  docker rmi "$image" >/dev/null 2>&1 || true
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null || true
  rm -rf "$regdir"
}
trap cleanup EXIT
"$myrmex" container rm --force "$name" >/dev/null 2>&1 || true

cat >"$regdir/config.yml" <<CFG
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $regdir/data}
  delete: {enabled: true}
http: {addr: $registry}
CFG
docker-registry serve "$regdir/config.yml" >"$regdir/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$regport") 2>/dev/null && break; sleep 0.1; done

get() { # a plain HTTP GET through bash's /dev/tcp, so the demo needs no curl
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  local body; body=$(cat <&3); exec 3<&-
  printf '%s\n' "$body" | tail -n 1
}

step "$myrmex" version
step "$myrmex" registry push myrmex.local/web:test --registry "http://$registry" --to demo/web:1 --tag latest
step "$myrmex" registry list --registry "http://$registry"
step "$myrmex" registry list "$registry/demo/web"
step "$myrmex" registry pull "$image" --registry "http://$registry"
step "$myrmex" container create -f examples/web.yaml --image "$image" -p "8080/tcp=127.0.0.1:$port"
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
step "$myrmex" registry delete "$registry/demo/web:latest" --registry "http://$registry"
step "$myrmex" registry list "$registry/demo/web"
printf '\nDemo done: the container is gone, the registry is stopped.\n'
