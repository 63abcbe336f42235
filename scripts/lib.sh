# lib.sh — what engine.sh and kube.sh share: stopping what they started by pid, and only that. Source it after
# defining log().

# pid_runs PIDFILE WORD: the pid in PIDFILE runs a program whose command line contains WORD. A pid file left from
# a run long gone, whose pid now belongs to another program, does not.
pid_runs() {
  [ -f "$1" ] || return 1
  local pid
  pid=$(cat "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

# stop_pidfile PIDFILE WORD NAME SECONDS: stops the program of PIDFILE if pid_runs says it is still ours (SIGTERM,
# then SIGKILL after SECONDS), and removes PIDFILE either way.
stop_pidfile() {
  if pid_runs "$1" "$2"; then
    local pid i
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < $4 * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$3 (pid $pid) did not stop within $4 s: killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$1"
}
