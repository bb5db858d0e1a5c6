#!/usr/bin/env bash
# The stream Lambdas' benchmark table: projector and publisher throughput for 1 000-record
# batches through the handlers (DynamoDB Local, moto's EventBridge) and the end-to-end lag
# through the local poller. Extra arguments go to stream-bench (see --help). INIT of the
# bootstraps: scripts/bench-lambda.sh; zip sizes: scripts/package-lambdas.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p orders-tests --bin stream-bench
./scripts/dynamodb-local.sh install
./scripts/moto.sh install
exec ./scripts/dynamodb-local.sh with ./scripts/moto.sh with ./target/release/stream-bench "$@"
