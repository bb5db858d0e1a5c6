#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test in the workspace.
# Works on a fresh machine with the Rust toolchain; it installs nothing else yet.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The end-to-end tests in tests/ spawn the real `orders` binary, so build it first.
step "cargo build --bin orders"
cargo build --locked --bin orders

step "cargo test --workspace"
cargo test --workspace --locked
