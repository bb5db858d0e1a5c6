#!/usr/bin/env bash
# The replay benchmark table: `orders replay` rate and peak RSS (GNU time) on SQLite at 100 k
# and 1 M events, and on DynamoDB Local at 100 k events with --segments 1 and 4. Each row is a
# rebuild into a fresh table (every view written), then a verify of it. Extra arguments go to
# replay-bench (see --help), e.g. --sqlite-events 100000 --dynamodb-events 0.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "GNU time is needed: apt-get install time" >&2; exit 1; }
cargo build --release --locked -p orders-cli --bin orders -p orders-tests --bin replay-bench
./scripts/dynamodb-local.sh install
export ORDERS_BIN="$PWD/target/release/orders"
exec ./scripts/dynamodb-local.sh with ./target/release/replay-bench "$@"
