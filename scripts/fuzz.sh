#!/usr/bin/env bash
# fuzz.sh — run every fuzz target of the module for a bounded time, one after the other, and write what each
# reached: executions, new corpus entries, and any failure (Go writes the failing input under the package's
# testdata/fuzz/NAME/, where it then runs as a regression test in `make test`).
#
#   FUZZTIME=30s scripts/fuzz.sh            # each target for 30 s (the default)
#   FUZZTIME=1h FUZZ_OUT=bench/results/fuzz-$(date +%F).md scripts/fuzz.sh
#   FUZZ_ONLY=FuzzScanLayer scripts/fuzz.sh  # one target (a regular expression on the names)
#   FUZZTIME=1000000x FUZZCAP=1h FUZZPARALLEL=1 scripts/fuzz.sh
#                                            # a million executions each, or what an hour reaches, on one core
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZCAP=${FUZZCAP:-}           # a wall-clock cap per target (timeout's syntax), for a FUZZTIME counted in executions
FUZZPARALLEL=${FUZZPARALLEL:-} # fuzzing workers (go test -parallel); the default is one per core
out=${FUZZ_OUT:-bin/fuzz.md}
mkdir -p bin "$(dirname "$out")"
log=bin/fuzz.log
: >"$log"

# The targets, read from the test files (listing them with go test -list would build every package's tests).
targets=()
while read -r file name; do
  if [[ -n "${FUZZ_ONLY:-}" && ! "$name" =~ ${FUZZ_ONLY} ]]; then continue; fi
  targets+=("./$(dirname "$file") $name")
done < <(git ls-files --cached --others --exclude-standard -- '*_test.go' | grep -v '^bench/' |
  xargs grep -H -E '^func Fuzz[A-Za-z0-9_]*\(' | sed -E 's/^([^:]+):func (Fuzz[A-Za-z0-9_]*)\(.*/\1 \2/' | sort -u)
if ((${#targets[@]} == 0)); then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -q . && echo " (uncommitted changes)" || true)
{
  echo "# Fuzzing run"
  echo
  echo "$(date -u +%F), commit $commit$dirty, $(nproc) cores, $($GO version | cut -d' ' -f3), each target for $FUZZTIME${FUZZCAP:+ or $FUZZCAP, whichever comes first}${FUZZPARALLEL:+, $FUZZPARALLEL worker(s)}"
  echo "(\`${FUZZCAP:+FUZZCAP=$FUZZCAP }${FUZZPARALLEL:+FUZZPARALLEL=$FUZZPARALLEL }FUZZTIME=$FUZZTIME scripts/fuzz.sh\`)."
  echo
  echo "| package | target | executions | new inputs kept | result |"
  echo "|---|---|---|---|---|"
} >"$out"

status=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "fuzz.sh: $name ($pkg) for $FUZZTIME" >&2
  # The test binary is built first (instrumented for fuzzing, as go test -fuzz builds it) and run from its
  # package's directory, where failing inputs go under testdata/fuzz/; the cap then counts fuzzing only, and an
  # interrupted run still prints its totals (go test drops its child's output when interrupted).
  bin=bin/fuzz/$(tr / _ <<<"${pkg#./}")_$name.test
  mkdir -p bin/fuzz
  if ! res=$($GO test -c -fuzz "^${name}\$" -o "$bin" "$pkg" 2>&1); then
    printf '%s\n' "== $pkg $name (build failed)" "$res" >>"$log"
    echo "| ${pkg#./} | $name | 0 | 0 | **failed**: does not build |" >>"$out"
    status=1
    continue
  fi
  cmd=("$PWD/$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$FUZZTIME" -test.fuzzminimizetime 100x
    -test.fuzzcachedir "$($GO env GOCACHE)/fuzz/$($GO list "$pkg")")
  [[ -n "$FUZZPARALLEL" ]] && cmd+=(-test.parallel "$FUZZPARALLEL")
  [[ -n "$FUZZCAP" ]] && cmd=(timeout -s INT -k 2m "$FUZZCAP" "${cmd[@]}")
  res=$(cd "$pkg" && "${cmd[@]}" 2>&1)
  rc=$?
  capped=
  if [[ -n "$FUZZCAP" ]] && ((rc == 124)); then
    # The cap interrupted the fuzzer (SIGINT: it stops its workers and prints its totals); a failing input
    # found before that would have ended the run first.
    capped=" (stopped by the $FUZZCAP cap)"
    grep -q 'Failing input written to' <<<"$res" || rc=0
  fi
  printf '%s\n' "== $pkg $name (exit $rc)" "$res" >>"$log"
  # The last progress line carries the totals: "fuzz: elapsed: 30s, execs: 123456 (4115/sec), new interesting: 3 (total: 14)".
  last=$(grep -E '^fuzz: elapsed: .*execs: ' <<<"$res" | tail -1)
  execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
  kept=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
  if ((rc == 0)); then
    result="ok$capped"
  elif ! grep -q 'Failing input written to' <<<"$res" && grep -q 'context deadline exceeded' <<<"$res"; then
    # Go's fuzzer reports its own -fuzztime deadline as a failure when it lands during a minimization:
    # no input failed.
    result="ok (the fuzzer's deadline landed mid-minimization)"
  else
    result="**failed**: $(grep -m1 -E 'Failing input written to|--- FAIL|panic:' <<<"$res" | sed 's/|/\\|/g')"
    status=1
  fi
  echo "| ${pkg#./} | $name | ${execs:-0} | ${kept:-0} | $result |" >>"$out"
done
cat "$out"
echo "fuzz.sh: the whole output is in $log" >&2
exit $status
