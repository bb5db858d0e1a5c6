#!/usr/bin/env bash
# Performance table of the README: fold rates, then a loopback load against a release
# `orders serve`. Extra arguments go to orders-bench (e.g. --connections 64 --seconds 20).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin orders --bin orders-bench
ORDERS_BIN="$PWD/target/release/orders" exec ./target/release/orders-bench "$@"
