#!/usr/bin/env bash
# The long fuzzing run: the suite's fuzz properties (the `fuzz` tests of orders-handlers and
# orders-projections, which the test suite runs with 256 cases each) with many more cases,
# then a table of the cases tried and the failures found per target.
#
#   ./scripts/fuzz.sh [CASES]     # cases per property; default 20000 (FUZZ_CASES also works)
#
# Targets: the HTTP router's request decoding (create body, command body and headers, path and
# method, query string, listing cursor), the API Gateway adapter (mutated v1 and v2 events)
# and the DynamoDB Stream handlers (decode, project, publish). A failure is printed with its
# shrunk input, and the script exits non-zero. Needs only the Rust toolchain (SQLite is built
# in); the properties run two at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

cases="${1:-${FUZZ_CASES:-20000}}"
if ! [[ "$cases" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [CASES]  (a positive number of cases per property)" >&2
    exit 2
fi

log="$(mktemp "${TMPDIR:-/tmp}/orders-fuzz.XXXXXX")"
trap 'rm -f "$log"' EXIT

cargo test --locked -p orders-handlers -p orders-projections --lib --no-run

echo "fuzzing with $cases cases per property (this can take minutes)"
start=$SECONDS
status=0
# Without backtraces: a failure prints its shrunk input; each shrinking step would print one.
PROPTEST_CASES="$cases" RUST_BACKTRACE=0 \
    cargo test --locked -p orders-handlers -p orders-projections --lib fuzz_ \
    -- --nocapture --test-threads 2 >"$log" 2>&1 || status=$?
elapsed=$((SECONDS - start))

# Each property prints `fuzz <target>: <N> cases, <F> failures`.
printf '\n%-30s %10s %9s\n' "target" "cases" "failures"
printf '%-30s %10s %9s\n' "------------------------------" "----------" "---------"
grep -E '^fuzz [^:]+: [0-9]+ cases, [0-9]+ failures$' "$log" | sort |
    sed -E 's/^fuzz ([^:]+): ([0-9]+) cases, ([0-9]+) failures$/\1\t\2\t\3/' |
    awk -F'\t' '{ printf "%-30s %10d %9d\n", $1, $2, $3; cases += $2; failures += $3 }
        END { printf "%-30s %10d %9d\n", "total", cases, failures }'
grep -E '^fuzz .*(not API Gateway events|did not deserialize)' "$log" || true
echo "wall time: ${elapsed}s"

if [[ $status -ne 0 ]]; then
    echo
    echo "FAILED: the failing properties, with their shrunk inputs:"
    grep -E -A40 'failed: |aborted: |panicked at' "$log" | head -200
    exit "$status"
fi
