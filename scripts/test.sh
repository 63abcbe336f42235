#!/usr/bin/env bash
# test.sh — go vet and every test against the real engine and registries, with the whole verbose output kept
# in bin/test.log and searched for the canary secrets the tests use: no secret may reach any output of the
# suite, passing or failing.
set -uo pipefail
GO=${GO:-go}
mkdir -p bin
log=bin/test.log
$GO vet ./... || exit 1
$GO run ./internal/tools/seedimages || exit 1
MYRMEX_REQUIRE_ENGINE=1 $GO test -v ${GOTESTFLAGS:--count=1 -p 1 -timeout 30m -skip ^TestReliability} ./... >"$log" 2>&1
status=$?
# Show what a non-verbose run shows: results, failures and their messages.
grep -v -E '^(=== (RUN|PAUSE|CONT|NAME)|\s*--- (PASS|SKIP)|PASS$)' "$log"
if grep -n -E 'canary-(s3cret|Pa55word|t0ken|identity-token|wrong)' "$log"; then
  echo "test.sh: a canary secret appears in the test output above (bin/test.log): a secret leaked" >&2
  status=1
fi
exit $status
