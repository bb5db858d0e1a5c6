#!/usr/bin/env bash
# The cost table (README, "Cost"): what each command, projected event and query costs in
# DynamoDB request units by AWS's rules, a whole order's life against the minimum, its price per
# million orders, and where DynamoDB Local's own count differs (tests/cost/main.rs).
#
#   ./scripts/cost.sh                    build, record tests/iam_conformance.rs on a fresh
#                                        DynamoDB Local and moto, print the table
#   ./scripts/cost.sh --recorded DIR     print the table of the recordings already in DIR (the
#                                        test suite leaves its own in target/aws-calls)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

die() { printf 'cost: error: %s\n' "$*" >&2; exit 2; }

case "${1:-}" in
"")
    recorded="$ROOT/target/cost-calls"
    ./scripts/dynamodb-local.sh install
    ./scripts/moto.sh install
    cargo build --locked --bins
    rm -rf "$recorded"
    ORDERS_AWS_CALLS_DIR="$recorded" ./scripts/dynamodb-local.sh with ./scripts/moto.sh with \
        cargo test --locked -p orders-tests --test iam_conformance
    ;;
--recorded)
    [[ $# -eq 2 ]] || die "usage: $0 [--recorded DIR]"
    recorded="$2"
    cargo build --locked -p orders-tests --bin orders-cost
    ;;
*) die "usage: $0 [--recorded DIR]" ;;
esac
exec ./target/debug/orders-cost "$recorded"
