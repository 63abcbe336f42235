#!/usr/bin/env bash
# engine.sh up|down|env — a private Docker engine for Myrmex's tests, demo and benchmarks that leaves every other
# engine on the machine as it was.
#
# up:   installs what is missing (Debian's docker.io, busybox-static, docker-registry, debootstrap, npm, as root), then
#       reuses an engine that already answers at $MYRMEX_DOCKER_HOST, or starts a private one:
#         - a network namespace of its own ($MYRMEX_ENGINE_NETNS, default myrmex-engine), where dockerd makes its
#           bridge, its iptables chains and its port forwarding: the machine's docker0, DOCKER* chains and rules
#           are not touched (a dockerd in the machine's namespace deletes docker0 and flushes the DOCKER chains);
#         - a containerd of its own (socket, root and state under $run and $state), never the machine's;
#         - its own socket, data-root, exec-root, pidfile, daemon.json (an empty one: /etc/docker/daemon.json is
#           not read) and trust key;
#         - published ports appear on the machine as with any dockerd: docker-proxy listens in the machine's
#           namespace and reaches the containers through a veth pair ($MYRMEX_ENGINE_VETH) and routes to the
#           engine's subnets; containers reach the network through that link (a MASQUERADE rule for the link's
#           address and FORWARD accepts for the veth, each tagged with the comment myrmex-engine:<netns>).
#       It refuses to start, naming what is in the way, when the namespace, the veth or the subnets are taken.
# down: stops what `up` started (by pid, after checking that the pid is still that program) and removes everything
#       it added: namespace, veth, routes, iptables rules, ip_forward if it turned it on. MYRMEX_KEEP_ENGINE=1 keeps
#       the engine running. With MYRMEX_OWNER set (the Makefile sets it per command), `up` records it when it starts
#       the engine and `down` stops only an engine that `up` started for the same owner: `make test` leaves alone
#       an engine that `make engine-up` or another command started.
# env:  prints the DOCKER_HOST line to export.
set -Eeuo pipefail

state=${MYRMEX_STATE_DIR:-/var/lib/myrmex-test}
run=${MYRMEX_RUN_DIR:-/run/myrmex-test}
sock="$run/docker.sock"
host=${MYRMEX_DOCKER_HOST:-unix://$sock}
netns=${MYRMEX_ENGINE_NETNS:-myrmex-engine}
veth=${MYRMEX_ENGINE_VETH:-myrmex-veth}
link_cidr=${MYRMEX_LINK_CIDR:-10.213.255.0/30}
bridge_cidr=${MYRMEX_BRIDGE_CIDR:-10.213.0.1/24}
pool=${MYRMEX_ADDRESS_POOL:-base=10.214.0.0/16,size=24}
pidfile="$run/dockerd.pid"
ctrdpid="$run/containerd.pid"
startedmark="$run/started-by-myrmex"
# What `up` set up, for `down` to undo exactly that even if the environment changed in between.
record="$run/engine.env"

log() { echo "engine.sh: $*" >&2; }
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
die() {
  log "$*"
  exit 1
}

answers() { DOCKER_HOST=$host timeout 5 docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

install_missing() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v docker >/dev/null || need+=(docker.io)
  command -v containerd >/dev/null || need+=(containerd)
  command -v iptables >/dev/null || need+=(iptables)
  # The test images are busybox root filesystems: the binary must be static (Debian's busybox package is not).
  if [ ! -x /bin/busybox ] || LC_ALL=C grep -qa '/ld-linux' /bin/busybox; then need+=(busybox-static); fi
  command -v ip >/dev/null || need+=(iproute2)
  command -v nsenter >/dev/null || need+=(util-linux)
  # The registry tests run Debian's CNCF distribution server themselves, on loopback.
  command -v docker-registry >/dev/null || need+=(docker-registry)
  # The scanning tests build a real Debian image (debootstrap) with npm packages in it.
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v npm >/dev/null || need+=(npm)
  # The Python client's tests run on Debian's python3 (the client uses the standard library alone).
  [ -x /usr/bin/python3 ] || need+=(python3)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    die "missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root"
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
}

# ip4 A.B.C.D prints it as one integer; int4 N prints it back.
ip4() {
  local IFS=.
  # shellcheck disable=SC2086
  set -- $1
  echo $((($1 << 24) | ($2 << 16) | ($3 << 8) | $4))
}
int4() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }

# network A.B.C.D/N prints the network it is in (A.B.C.0/N); offset CIDR K prints the K-th address of it.
network() {
  local a=${1%/*} n=${1#*/}
  local mask=$(((0xffffffff << (32 - n)) & 0xffffffff))
  echo "$(int4 $(($(ip4 "$a") & mask)))/$n"
}
offset() { int4 $(($(ip4 "${1%/*}") + $2)); }

pool_base() { # base=10.214.0.0/16,size=24 → 10.214.0.0/16
  local b=${1#*base=}
  echo "${b%%,*}"
}

# check_cidr NAME VALUE [MAXPREFIX]: VALUE is an IPv4 address with a prefix length of at most MAXPREFIX.
check_cidr() {
  local re='^(([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])\.){3}([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])/([0-9]|[12][0-9]|3[0-2])$'
  if ! [[ $2 =~ $re ]] || [ "${2#*/}" -gt "${3:-32}" ]; then
    die "$1=$2 is not an IPv4 subnet like 10.213.0.1/24${3:+ (prefix length at most $3)}"
  fi
}

# The engine's side of the machine, computed from the settings (from the record when `down` reads it).
derive() {
  check_cidr MYRMEX_LINK_CIDR "$link_cidr" 30
  check_cidr MYRMEX_BRIDGE_CIDR "$bridge_cidr" 30
  check_cidr MYRMEX_ADDRESS_POOL "$(pool_base "$pool")" 30
  link_net=$(network "$link_cidr")
  link_host=$(offset "$link_net" 1)
  link_engine=$(offset "$link_net" 2)
  bridge_net=$(network "$bridge_cidr")
  pool_net=$(pool_base "$pool")
  tag="myrmex-engine:$netns"
}

# The iptables rules `up` adds, one per line: table, how (-A appends, -I inserts first: the FORWARD accepts come
# before a firewall's drops), then the rule as -C and -D take it.
rules() {
  cat <<EOF
nat -A POSTROUTING -s $link_net ! -o $veth -j MASQUERADE -m comment --comment $tag
filter -I FORWARD -i $veth -j ACCEPT -m comment --comment $tag
filter -I FORWARD -o $veth -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment $tag
EOF
}

# routes_in CIDR prints the machine's routes that overlap CIDR (inside it, or containing it but the default route).
routes_in() {
  {
    ip -4 route show root "$1"
    ip -4 route show match "$1" | { grep -v '^default' || true; }
  } | sort -u
}

# legacy_bridge: engine.sh before this one made a bridge myrmex0 (10.213.0.1/24) in the machine's namespace; an
# empty one is ours and in the way of the routes.
legacy_bridge() {
  ip -d link show myrmex0 2>/dev/null | grep -q ' bridge ' || return 0
  [ -z "$(ip -br link show master myrmex0 2>/dev/null)" ] || return 0
  ip -4 addr show dev myrmex0 | grep -qF "inet $bridge_cidr " || return 0
  log "removing the empty bridge myrmex0 that an earlier engine.sh left in the machine's namespace"
  ip link del myrmex0
}

preflight() {
  [ "$(id -u)" = 0 ] || die "starting the private engine needs root (network namespace, veth, routes)"
  if [ -e "/run/netns/$netns" ]; then
    die "a network namespace named $netns exists and this script did not create it (ip netns list); remove it or set MYRMEX_ENGINE_NETNS"
  fi
  if ip link show "$veth" >/dev/null 2>&1; then
    die "an interface named $veth exists on this machine ($(ip -br link show "$veth" | awk '{print $1}')); remove it or set MYRMEX_ENGINE_VETH"
  fi
  legacy_bridge
  local cidr what
  for cidr in "$link_net" "$bridge_net" "$pool_net"; do
    what=$(routes_in "$cidr")
    if [ -n "$what" ]; then
      die "the private engine's subnet $cidr overlaps routes on this machine: $(echo "$what" | tr '\n' ';' | sed 's/;$//'); choose free subnets with MYRMEX_LINK_CIDR, MYRMEX_BRIDGE_CIDR and MYRMEX_ADDRESS_POOL"
    fi
  done
  if [ -S "$sock" ] && ! pid_runs "$pidfile" "$sock"; then
    rm -f "$sock"
  fi
}

up() {
  install_missing
  if answers; then
    log "reusing the engine at $host"
    return 0
  fi
  if [ "$host" != "unix://$sock" ]; then
    die "no engine answers at $host, and it is not ours to start"
  fi
  mkdir -p "$state" "$run"
  # What an earlier `up` left (it was killed, or the engine died): undo it first, as `down` would.
  if [ -f "$record" ]; then
    log "cleaning up after an earlier private engine that is no longer answering"
    (teardown)
  fi
  derive
  preflight
  {
    echo "netns=$netns"
    echo "veth=$veth"
    echo "link_cidr=$link_cidr"
    echo "bridge_cidr=$bridge_cidr"
    echo "pool=$pool"
  } >"$record"
  echo "${MYRMEX_OWNER:-}" >"$startedmark"
  # From here on, a failure undoes what was done.
  trap 'log "start-up failed at line $LINENO ($BASH_COMMAND): undoing it"; teardown' ERR

  ip netns add "$netns"
  touch "$run/netns-created"
  ip link add "$veth" type veth peer name eth0 netns "$netns"
  ip addr add "$link_host/${link_net#*/}" dev "$veth"
  ip link set "$veth" up
  ip -n "$netns" link set lo up
  ip -n "$netns" addr add "$link_engine/${link_net#*/}" dev eth0
  ip -n "$netns" link set eth0 up
  ip -n "$netns" route add default via "$link_host"
  # The engine's own connections to 127.0.0.1 (BuildKit pulling a base image from a registry on the machine's
  # loopback, as a dockerd in the machine's namespace would) reach the machine's loopback: the namespace has no
  # 127.0.0.1 of its own and routes 127.0.0.0/8 over the link, where both ends accept loopback addresses.
  # Containers keep their own loopback, and cannot send to the machine's.
  ip -n "$netns" addr del 127.0.0.1/8 dev lo
  ip -n "$netns" route add 127.0.0.0/8 via "$link_host" dev eth0 src "$link_engine"
  nsenter --net="/run/netns/$netns" sh -c 'echo 1 >/proc/sys/net/ipv4/conf/eth0/route_localnet'
  echo 1 >"/proc/sys/net/ipv4/conf/$veth/route_localnet"
  ip route add "$bridge_net" via "$link_engine" dev "$veth"
  ip route add "$pool_net" via "$link_engine" dev "$veth"

  # Containers reach the network through the machine: forwarding on, and our own tagged rules.
  local fwd
  fwd=$(cat /proc/sys/net/ipv4/ip_forward)
  if [ "$fwd" = 0 ]; then
    echo 1 >/proc/sys/net/ipv4/ip_forward
    touch "$run/ip_forward-turned-on"
  fi
  local table how rule
  while read -r table how rule; do
    # shellcheck disable=SC2086
    iptables -w -t "$table" "$how" $rule
  done < <(rules)

  # docker-proxy runs in the machine's namespace, so that published ports are where users look for them.
  touch "$run/hostns"
  mount --bind /proc/self/ns/net "$run/hostns"
  cat >"$run/docker-proxy" <<EOF
#!/bin/sh
exec nsenter --net=$run/hostns -- $(command -v docker-proxy || echo /usr/sbin/docker-proxy) "\$@"
EOF
  chmod 0755 "$run/docker-proxy"
  # Its own daemon.json (the machine's /etc/docker/daemon.json is not read) and trust key (not /etc/docker/key.json).
  printf '{"deprecated-key-path": "%s"}\n' "$state/key.json" >"$run/daemon.json"
  mkdir -p "$state/containerd" "$state/containerd-opt" "$run/containerd"
  cat >"$run/containerd.toml" <<EOF
version = 2
root = "$state/containerd"
state = "$run/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$run/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd-opt"
EOF

  log "starting a private containerd and dockerd in network namespace $netns at $host (logs: $state)"
  local f
  for f in containerd dockerd; do
    [ -f "$state/$f.log" ] && mv -f "$state/$f.log" "$state/$f.log.1" # the previous start's, kept once
  done
  setsid nsenter --net="/run/netns/$netns" -- containerd --config "$run/containerd.toml" \
    >"$state/containerd.log" 2>&1 </dev/null &
  local ctrd=$!
  echo "$ctrd" >"$ctrdpid"
  local i
  for i in $(seq 1 60); do
    [ -S "$run/containerd/containerd.sock" ] && break
    # Alive is enough here: until setsid and nsenter have exec'd, the pid's command line is still this shell's.
    kill -0 "$ctrd" 2>/dev/null || {
      log "containerd exited; its log:"
      tail -n 30 "$state/containerd.log" >&2
      false
    }
    sleep 0.5
  done
  [ -S "$run/containerd/containerd.sock" ] || {
    log "containerd did not start within 30s"
    false
  }
  setsid nsenter --net="/run/netns/$netns" -- dockerd \
    --host "$host" \
    --data-root "$state/docker" \
    --exec-root "$run/exec" \
    --pidfile "$pidfile" \
    --config-file "$run/daemon.json" \
    --containerd "$run/containerd/containerd.sock" \
    --userland-proxy-path "$run/docker-proxy" \
    --bip "$bridge_cidr" \
    --default-address-pool "$pool" \
    --storage-driver overlay2 \
    >"$state/dockerd.log" 2>&1 </dev/null &
  local launched=$!
  for i in $(seq 1 120); do
    if answers; then
      trap - ERR
      log "engine is up: $(DOCKER_HOST=$host docker version --format 'Docker {{.Server.Version}}, API {{.Server.APIVersion}}')"
      return 0
    fi
    if ! kill -0 "$launched" 2>/dev/null; then
      break
    fi
    sleep 0.5
  done
  log "dockerd did not answer within 60s; last lines of its log:"
  tail -n 30 "$state/dockerd.log" >&2
  false
}

# teardown stops the programs `up` started and undoes what its record says it set up, whether or not it got to
# the end. Without a record it touches nothing but its own pids: the defaults may be another instance's.
teardown() {
  trap - ERR
  set +e
  stop_pidfile "$pidfile" "$sock" dockerd 30
  stop_pidfile "$ctrdpid" "$run/containerd.toml" containerd 30
  if [ ! -f "$record" ]; then
    rm -f "$startedmark"
    set -e
    return 0
  fi
  # shellcheck disable=SC1090
  . "$record"
  derive
  local table how rule
  while read -r table how rule; do
    # shellcheck disable=SC2086
    while iptables -w -t "$table" -C $rule 2>/dev/null; do iptables -w -t "$table" -D $rule; done
  done < <(rules)
  if [ -f "$run/ip_forward-turned-on" ]; then
    # Turned off again only when no other dockerd runs: one started since relies on it.
    if grep -qx dockerd /proc/[0-9]*/comm 2>/dev/null; then
      log "leaving net.ipv4.ip_forward on: another dockerd runs on this machine now"
    else
      echo 0 >/proc/sys/net/ipv4/ip_forward
    fi
    rm -f "$run/ip_forward-turned-on"
  fi
  ip route del "$bridge_net" via "$link_engine" dev "$veth" 2>/dev/null
  ip route del "$pool_net" via "$link_engine" dev "$veth" 2>/dev/null
  if [ -f "$run/netns-created" ]; then
    # Deleting the namespace deletes the veth pair with it.
    ip netns del "$netns" 2>/dev/null
    for _ in $(seq 1 20); do
      ip link show "$veth" >/dev/null 2>&1 || break
      sleep 0.1
    done
    ip link show "$veth" >/dev/null 2>&1 && ip link del "$veth"
    rm -f "$run/netns-created"
  fi
  if mountpoint -q "$run/hostns" 2>/dev/null; then
    umount "$run/hostns"
  fi
  rm -f "$run/hostns" "$record" "$startedmark" "$sock"
  set -e
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
  if [ -n "${MYRMEX_OWNER:-}" ] && [ "$(cat "$startedmark")" != "$MYRMEX_OWNER" ]; then
    log "leaving the engine running: another command started it (make engine-down stops it)"
    return 0
  fi
  teardown
  log "stopped the private engine and removed its namespace, link, routes and rules"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) echo "export DOCKER_HOST=$host" ;;
  *)
    echo "usage: $0 up|down|env" >&2
    exit 2
    ;;
esac
