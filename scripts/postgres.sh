#!/usr/bin/env bash
# postgres.sh up|down|env — a private PostgreSQL server for the tests of `myrmex serve` on PostgreSQL.
#
# up:   installs Debian's PostgreSQL 15 when missing (as root; without the distribution's default cluster), makes a
#       cluster of its own in $state (initdb as the postgres user, trust on loopback only) and starts it on
#       127.0.0.1:$MYRMEX_PG_PORT (default 15432), its socket in $run. Reuses a server that already answers there.
#       Takes nothing that belongs to something else: when the port is taken by another program, it stops before
#       starting anything and names it.
# down: stops what `up` started (pg_ctl stop -m fast on its own data directory), and nothing else; with
#       MYRMEX_OWNER set (the Makefile sets it per command), only a server that `up` started for the same owner.
# env:  prints the MYRMEX_TEST_POSTGRES line to export (the tests make a database of their own in it and drop it).
set -euo pipefail

run=${MYRMEX_RUN_DIR:-/run/myrmex-test}/pg
state=${MYRMEX_STATE_DIR:-/var/lib/myrmex-test}/pg
port=${MYRMEX_PG_PORT:-15432}
if ! [[ $port =~ ^[1-9][0-9]{0,4}$ ]] || [ "$port" -gt 65535 ]; then
  echo "postgres.sh: MYRMEX_PG_PORT=$port is not a port" >&2
  exit 2
fi
url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
startedmark="$run/started-by"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && { echo "$d"; return 0; }
  done
  return 1
}

install() {
  bindir >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "PostgreSQL is missing: apt-get install postgresql-15, or run as root"
  log "installing postgresql-15"
  # No default cluster: this script makes its own, and nothing should listen on 5432 because of it.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/myrmex-no-main.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql-15 >/dev/null
}

answers() {
  "$(bindir)/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 2>/dev/null
}

up() {
  install
  local bin
  bin=$(bindir)
  mkdir -p "$run" "$state"
  if answers; then
    log "PostgreSQL already answers on 127.0.0.1:$port"
    return 0
  fi
  if command -v ss >/dev/null && ss -Hltn "sport = :$port" | grep -q .; then
    die "port $port is taken: $(ss -Hltnp "sport = :$port" | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -1) (set MYRMEX_PG_PORT)"
  fi
  # postgres refuses to run as root: the data belongs to the postgres user (made by the package).
  local user=postgres
  if [ "$(id -u)" != 0 ]; then
    user=$(id -un)
  fi
  if [ ! -s "$state/data/PG_VERSION" ]; then
    rm -rf "$state/data"
    mkdir -p "$state/data"
    [ "$(id -u)" = 0 ] && chown "$user" "$state" "$state/data"
    as "$user" "$bin/initdb" -D "$state/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 ||
      { tail -20 "$state/initdb.log" >&2; die "initdb failed"; }
  fi
  [ "$(id -u)" = 0 ] && chown "$user" "$run"
  as "$user" "$bin/pg_ctl" -D "$state/data" -l "$state/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$run -c fsync=off -c max_connections=200" start >/dev/null ||
    { tail -20 "$state/postgres.log" >&2; die "PostgreSQL did not start; see $state/postgres.log"; }
  echo "${MYRMEX_OWNER:-}" >"$startedmark"
  log "PostgreSQL is up on 127.0.0.1:$port ($("$bin/postgres" --version))"
}

as() {
  local user=$1
  shift
  if [ "$(id -un)" = "$user" ]; then
    "$@"
  else
    runuser -u "$user" -- "$@"
  fi
}

down() {
  [ -f "$startedmark" ] || return 0
  if [ "${MYRMEX_KEEP_PG:-}" = 1 ]; then
    return 0
  fi
  if [ -n "${MYRMEX_OWNER:-}" ] && [ "$(cat "$startedmark")" != "$MYRMEX_OWNER" ]; then
    return 0
  fi
  local bin user=postgres
  bin=$(bindir) || return 0
  [ "$(id -u)" != 0 ] && user=$(id -un)
  if [ -f "$state/data/postmaster.pid" ]; then
    as "$user" "$bin/pg_ctl" -D "$state/data" -m fast -w stop >/dev/null 2>&1 || log "pg_ctl stop failed; see $state/postgres.log"
  fi
  rm -f "$startedmark"
}

case "${1:-}" in
up) up ;;
down) down ;;
env) echo "export MYRMEX_TEST_POSTGRES='$url'" ;;
*)
  echo "usage: postgres.sh up|down|env" >&2
  exit 2
  ;;
esac
