#!/usr/bin/env bash
# The Lambda benchmark table: INIT of each API bootstrap against a hello-world lambda_runtime
# binary, append/get latency through the handler on DynamoDB Local, and the handler's own
# overhead. Extra arguments go to lambda-bench (see --help). Zip sizes: scripts/package-lambdas.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p orders-handlers -p orders-projections -p orders-tests --bins
./scripts/dynamodb-local.sh install
exec ./scripts/dynamodb-local.sh with ./target/release/lambda-bench "$@"
