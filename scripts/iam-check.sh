#!/usr/bin/env bash
# The IAM conformance check (DESIGN §8): every AWS request the four functions and the operator's
# commands make, as recorded in the end-to-end tests, against the policies `cdk synth` gives them.
#
#   ./scripts/iam-check.sh                    build, run tests/iam_conformance.rs on a fresh DynamoDB
#                                             Local and moto with every request recorded, then check
#   ./scripts/iam-check.sh --recorded DIR     only check the recordings already in DIR (the test
#                                             suite records them in target/aws-calls)
#
# It prints each principal's calls with the IAM action and resource each needs, and exits
# non-zero on any finding: a call the stack's policies would deny, a grant no call uses, a
# request it cannot map. See cdk/iam/check.ts.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

say() { printf 'iam-check: %s\n' "$*" >&2; }
die() { printf 'iam-check: error: %s\n' "$*" >&2; exit 2; }

recorded=""
case "${1:-}" in
"") ;;
--recorded)
    [[ $# -eq 2 ]] || die "usage: $0 [--recorded DIR]"
    recorded="$(cd "$2" 2>/dev/null && pwd)" || die "$2 is not a directory"
    ;;
*) die "usage: $0 [--recorded DIR]" ;;
esac
cd "$ROOT"

if [[ -z $recorded ]]; then
    recorded="$ROOT/target/aws-calls"
    ./scripts/cdk.sh install >/dev/null
    ./scripts/dynamodb-local.sh install
    ./scripts/moto.sh install
    say "building the bootstraps and the orders binary"
    cargo build --locked --bins
    rm -rf "$recorded"
    say "recording: tests/iam_conformance.rs"
    ORDERS_AWS_CALLS_DIR="$recorded" ./scripts/dynamodb-local.sh with ./scripts/moto.sh with \
        cargo test --locked -p orders-tests --test iam_conformance
fi

ls "$recorded"/*.jsonl >/dev/null 2>&1 || die "no recordings in $recorded: run tests/iam_conformance.rs first"
[[ -d cdk/node_modules ]] || die "cdk/node_modules is missing: run ./scripts/cdk.sh install"
cd cdk
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true
npx --no-install ts-node --transpile-only iam/check.ts --calls "$recorded"
