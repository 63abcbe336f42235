#!/usr/bin/env bash
# kube.sh build|up|down|env — a real Kubernetes control plane for Myrmex's tests, benchmark and demo.
#
# build: builds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl (Kubernetes v1.36.3), etcd
#        (v3.6.8) and kwok (v0.8.0) from their Go modules into $MYRMEX_KUBE_CACHE (~/.cache/myrmex/kube-v1.36.3);
#        later runs reuse them. `go install …@version` is refused for Kubernetes and etcd (their go.mod has
#        replace directives), so each is built in a throwaway module that requires it.
# up:    builds if needed, then starts etcd, the API server (a self-signed certificate, a token for the admin),
#        the controller manager, the scheduler and kwok (simulated nodes that run pods) on loopback, and writes a
#        kubeconfig to $run/kube/kubeconfig. Reuses a control plane that already answers there.
#        It takes nothing that belongs to something else: when one of its ports (MYRMEX_KUBE_PORT, default 16443;
#        MYRMEX_ETCD_PORT and the next one, default 12379-12380) is taken, it stops before starting anything and
#        names the program in the way.
# down:  stops what `up` started, by pid (after checking that the pid still runs the program it started), and
#        nothing else; MYRMEX_KEEP_KUBE=1 keeps it. With MYRMEX_OWNER set (the Makefile sets it per command), only a
#        control plane that `up` started for the same owner is stopped.
# env:   prints the KUBECONFIG line to export.
set -euo pipefail

k8s_version=v1.36.3
staging_version=v0.36.3
etcd_version=v3.6.8
kwok_version=v0.8.0
cache=${MYRMEX_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/myrmex/kube-$k8s_version}
bin="$cache/bin"
run=${MYRMEX_RUN_DIR:-/run/myrmex-test}/kube
state=${MYRMEX_STATE_DIR:-/var/lib/myrmex-test}/kube
kubeconfig="$run/kubeconfig"
apiport=${MYRMEX_KUBE_PORT:-16443}
etcdport=${MYRMEX_ETCD_PORT:-12379}
for p in "MYRMEX_KUBE_PORT=$apiport" "MYRMEX_ETCD_PORT=$etcdport"; do
  if ! [[ ${p#*=} =~ ^[1-9][0-9]{0,4}$ ]] || [ "${p#*=}" -gt 65534 ]; then
    echo "kube.sh: $p is not a port (1-65534)" >&2
    exit 2
  fi
done
etcdpeer=$((etcdport + 1))
GO=${GO:-go}
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "kube.sh: $*" >&2; }
# shellcheck source=lib.sh
. "$here/lib.sh"

build_kubernetes() {
  local src="$cache/src/kubernetes"
  mkdir -p "$bin"
  # The throwaway module is made in a directory of its own and moved into place whole: a first download that
  # fails half-way leaves nothing that a later run would take for a finished module.
  if [ ! -f "$src/go.mod" ]; then
    rm -rf "$src.tmp"
    mkdir -p "$src.tmp"
    (
      cd "$src.tmp"
      # The same go line and godebug as Kubernetes' own go.mod.
      printf 'module myrmex.local/kubebuild\n\ngo 1.26.0\n\ngodebug default=go1.26\n' >go.mod
      $GO mod edit -require "k8s.io/kubernetes@$k8s_version"
      local gomod
      gomod=$($GO mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
      local m
      for m in $(grep -E '=> \./staging/' "$gomod" | awk '{print $1}'); do
        case "$m" in
          k8s.io/sample-cli-plugin | k8s.io/sample-apiserver | k8s.io/sample-controller) continue ;;
        esac
        $GO mod edit -replace "$m=$m@$staging_version"
      done
      grep -q 'k8s.io/api => ' go.mod || { log "no staging replacements were written to the Kubernetes build module"; exit 1; }
      printf 'package kubebuild\n' >doc.go
    )
    rm -rf "$src"
    mv "$src.tmp" "$src"
  fi
  (
    cd "$src"
    local cmd
    for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      if [ ! -x "$bin/$cmd" ]; then
        log "building $cmd $k8s_version (about 7 minutes for all four on 2 cores when the Go cache is cold)"
        GOFLAGS=-mod=mod $GO build -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
        mv "$bin/$cmd.tmp" "$bin/$cmd"
      fi
    done
  )
}

build_etcd() {
  [ -x "$bin/etcd" ] && return 0
  local src="$cache/src/etcd"
  mkdir -p "$bin"
  if [ ! -f "$src/go.mod" ]; then
    # As for Kubernetes: made aside, moved into place whole.
    rm -rf "$src.tmp"
    mkdir -p "$src.tmp"
    (
      cd "$src.tmp"
      printf 'module myrmex.local/etcdbuild\n\ngo 1.26.0\n' >go.mod
      cat >main.go <<'EOF'
// Command etcd is etcd's own server main, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
      $GO mod edit -require "go.etcd.io/etcd/server/v3@$etcd_version"
    )
    rm -rf "$src"
    mv "$src.tmp" "$src"
  fi
  (
    cd "$src"
    log "building etcd $etcd_version"
    GOFLAGS=-mod=mod $GO mod tidy >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod $GO build -o "$bin/etcd.tmp" .
    mv "$bin/etcd.tmp" "$bin/etcd"
  )
}

build_kwok() {
  [ -x "$bin/kwok" ] && [ -d "$cache/stages" ] && return 0
  mkdir -p "$bin"
  log "building kwok $kwok_version"
  GOBIN="$bin" $GO install "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
  local dir
  dir=$($GO mod download -json "sigs.k8s.io/kwok@$kwok_version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  rm -rf "$cache/stages.tmp"
  mkdir -p "$cache/stages.tmp"
  cp -r "$dir/kustomize/stage/." "$cache/stages.tmp/"
  chmod -R u+w "$cache/stages.tmp"
  rm -rf "$cache/stages"
  mv "$cache/stages.tmp" "$cache/stages"
}

build() {
  build_etcd
  build_kwok
  build_kubernetes
}

answers() {
  [ -f "$kubeconfig" ] && [ -x "$bin/kubectl" ] && timeout 5 "$bin/kubectl" --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}

# port_user PORT prints what listens on the TCP port PORT on this machine, or nothing.
port_user() {
  local line
  line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -1)
  [ -n "$line" ] || return 0
  local who
  who=$(echo "$line" | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | tr -d '"' | sed 's/,pid=/ (pid /; s/$/)/')
  echo "${who:-a process} on $(echo "$line" | awk '{print $4}')"
}

preflight() {
  command -v ss >/dev/null || return 0
  local port what taken=()
  for port in "$apiport:the API server (MYRMEX_KUBE_PORT)" "$etcdport:etcd's clients (MYRMEX_ETCD_PORT)" "$etcdpeer:etcd's peers (MYRMEX_ETCD_PORT + 1)"; do
    what=$(port_user "${port%%:*}")
    [ -z "$what" ] || taken+=("port ${port%%:*} for ${port#*:} is taken by $what")
  done
  if [ ${#taken[@]} -gt 0 ]; then
    local t
    for t in "${taken[@]}"; do log "$t"; done
    log "not starting the control plane: free those ports, or choose others with MYRMEX_KUBE_PORT and MYRMEX_ETCD_PORT"
    exit 1
  fi
}

start() { # name, then the command line; logs to $state/name.log, pid in $run/name.pid
  local name=$1
  shift
  setsid "$@" >"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$run/$name.pid"
}

start_apiserver() {
  local pki="$state/pki"
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcdport" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiport" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --token-auth-file "$pki/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged \
    --enable-priority-and-fairness=false
}

up() {
  if ! command -v openssl >/dev/null; then
    # The API server's certificate and the service-account keys are made with openssl.
    [ "$(id -u)" = 0 ] || { log "openssl is missing: apt-get install openssl, or run as root"; exit 1; }
    log "installing openssl"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  if answers; then
    log "reusing the control plane at $kubeconfig"
    return 0
  fi
  # An earlier control plane of ours that no longer answers: stop what is left of it before starting anew.
  if [ -f "$run/started-by-myrmex" ]; then
    log "stopping what is left of an earlier control plane that no longer answers"
    MYRMEX_KEEP_KUBE= MYRMEX_OWNER= down
  fi
  preflight
  build
  rm -rf "$state" "$run"
  mkdir -p "$state/pki" "$state/etcd" "$run"
  local pki="$state/pki"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=myrmex-test-kube" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.crt" 2>/dev/null
  local token
  token=$(openssl rand -hex 24)
  echo "$token,admin,admin,system:masters" >"$pki/tokens.csv"
  cat >"$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: myrmex-test
  cluster:
    server: https://127.0.0.1:$apiport
    certificate-authority-data: $(base64 -w0 "$pki/apiserver.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: myrmex-test
  context:
    cluster: myrmex-test
    user: admin
current-context: myrmex-test
EOF
  chmod 600 "$kubeconfig"
  echo "${MYRMEX_OWNER:-}" >"$run/started-by-myrmex"

  log "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (logs: $state)"
  start etcd "$bin/etcd" --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcdport" --advertise-client-urls "http://127.0.0.1:$etcdport" \
    --listen-peer-urls "http://127.0.0.1:$etcdpeer" --initial-advertise-peer-urls "http://127.0.0.1:$etcdpeer" \
    --initial-cluster "default=http://127.0.0.1:$etcdpeer" --unsafe-no-fsync --quota-backend-bytes 1073741824
  start_apiserver
  local i
  for i in $(seq 1 120); do
    answers && break
    if ! kill -0 "$(cat "$run/kube-apiserver.pid")" 2>/dev/null; then
      log "kube-apiserver exited; its log:"
      tail -30 "$state/kube-apiserver.log" >&2
      down
      exit 1
    fi
    sleep 0.5
  done
  answers || { log "kube-apiserver did not become ready; see $state/kube-apiserver.log"; down; exit 1; }
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$kubeconfig" --secure-port 0 --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/apiserver.crt" \
    --use-service-account-credentials=false --service-cluster-ip-range 10.96.0.0/16 \
    --controllers '*,-nodeipam'
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$kubeconfig" --secure-port 0 --leader-elect=false
  local stages="$cache/stages"
  start kwok "$bin/kwok" \
    --kubeconfig "$kubeconfig" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip 10.244.0.1 --cidr 10.244.0.0/16 --node-lease-duration-seconds 40 \
    --config "$stages/node/fast/node-initialize.yaml" \
    --config "$stages/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
    --config "$stages/pod/fast/pod-ready.yaml" \
    --config "$stages/pod/fast/pod-complete.yaml" \
    --config "$stages/pod/fast/pod-delete.yaml" \
    --config "$here/kwok/pod-simulate-waiting.yaml"
  # Two simulated nodes, for spreading and scaling.
  for i in 0 1; do
    "$bin/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec: {}
EOF
  done
  for i in $(seq 1 120); do
    # Ready nodes without the not-ready taint (the node lifecycle controller lifts it), and the default service
    # account (pods cannot be created without it).
    if "$bin/kubectl" --kubeconfig "$kubeconfig" get sa default -n default >/dev/null 2>&1 &&
      [ "$("$bin/kubectl" --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | grep -c ' Ready')" = 2 ] &&
      [ -z "$("$bin/kubectl" --kubeconfig "$kubeconfig" get nodes -o jsonpath='{.items[*].spec.taints}' 2>/dev/null)" ]; then
      log "control plane is up: Kubernetes $k8s_version, 2 kwok nodes, KUBECONFIG=$kubeconfig"
      return 0
    fi
    sleep 0.5
  done
  log "the control plane did not become ready (nodes or the default service account missing); logs in $state"
  "$bin/kubectl" --kubeconfig "$kubeconfig" get nodes >&2 || true
  down
  exit 1
}

# restart-apiserver: the fault tests' API server restart — kill -9 the API server this script started, wait
# DELAY seconds (default 2), start it again with the same flags and wait until it answers. etcd and the rest
# keep running.
restart_apiserver() {
  [ -f "$run/started-by-myrmex" ] || { log "no control plane of ours is running"; exit 1; }
  local pid
  if pid_runs "$run/kube-apiserver.pid" "$bin/kube-apiserver "; then
    pid=$(cat "$run/kube-apiserver.pid")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  log "kube-apiserver killed; starting it again in ${DELAY:-2}s"
  sleep "${DELAY:-2}"
  start_apiserver
  local i
  for i in $(seq 1 120); do
    answers && { log "kube-apiserver answers again"; return 0; }
    sleep 0.5
  done
  log "kube-apiserver did not come back; see $state/kube-apiserver.log"
  exit 1
}

down() {
  if [ "${MYRMEX_KEEP_KUBE:-}" = 1 ]; then
    log "MYRMEX_KEEP_KUBE=1: leaving the control plane running"
    return 0
  fi
  [ -f "$run/started-by-myrmex" ] || return 0
  if [ -n "${MYRMEX_OWNER:-}" ] && [ "$(cat "$run/started-by-myrmex")" != "$MYRMEX_OWNER" ]; then
    log "leaving the control plane running: another command started it (make kube-down stops it)"
    return 0
  fi
  local name
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop_pidfile "$run/$name.pid" "$bin/$name " "$name" 5
  done
  rm -f "$run/started-by-myrmex"
  log "control plane stopped"
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  restart-apiserver) restart_apiserver ;;
  env) echo "export KUBECONFIG=$kubeconfig" ;;
  bin) echo "$bin" ;;
  *)
    echo "usage: $0 build|up|down|restart-apiserver|env|bin" >&2
    exit 2
    ;;
esac
