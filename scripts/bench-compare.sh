#!/usr/bin/env bash
# Issue 15's side-by-side comparison, in one run, interleaved:
#
#   scripts/bench-compare.sh [ROUNDS]        (default 3)
#
# Against the peer, on DynamoDB Local, ROUNDS rounds, the order rotated every round, of the
# lifecycle workload (create -> confirm -> ship -> get, 16 connections) against:
#   peer    bench/peers/cqrs-dynamo: the idiomatic cqrs-es + dynamo-es service (plain GET: its
#           view is written with the command)
#   api     ours, the API alone: `orders serve --backend dynamodb --consumers none`, as on AWS
#           where the stream consumers are separate functions (GET ?minVersion=3)
#   system  ours, the whole local system with the stream pollers (GET ?minVersion=3), with
#           the projection and publish lag sampled alongside (--lag-probe)
# Each of ours runs on fresh tables (`orders tables create`), deleted after.
#
# Every measured run gets a DynamoDB Local of its own, started for it and warmed (its JVM's
# JIT) by one unmeasured run of the peer's workload just before, the same warm-up whatever
# is measured next. One instance for everything is not a level field: after a run of ours
# (writes to a table with a stream), DynamoDB Local spends 2x to 4x the CPU per command on
# the next run of ours, even on new tables and with the old ones deleted, while runs of the
# peer (no stream) leave no such trace. So ours would pay for the runs before it.
# BENCH_WARM_WITH=same warms with a run of the measured config instead (ours then runs after
# one run of ours); BENCH_SHARED_DYNAMODB=1 runs everything on one instance, warmed by one
# run of each config first. Without a peer, the warm-up is a run of the same config.
#
# Against the floor, ROUNDS rounds, interleaved: `orders serve` on SQLite (a fresh --db,
# default --sync full) and bench/peers/floor (a no-op axum service with the same routes and
# JSON), with the `creates` and the `reads` workloads; and, for creates, `orders serve` with
# parts of its work switched off (--sync normal, --consumers none, both), to show where a
# create's time goes.
#
# Every run is one JSON line of target/bench-compare/<time>/runs.jsonl (the warm-up's in
# warmup.jsonl); the medians are printed as markdown (`compare-bench table`) and kept in
# table.md. Capacity per command: after the rounds, one shorter run of each DynamoDB config
# (4 connections, 4 s, no warm-up, no lag probes) through a recording proxy (`aws-recorder`),
# priced by AWS's rules (`orders-cost --total`), in capacity.jsonl.
#
# BENCH_BEFORE=REV adds a fourth config: ours at REV, the whole system, for a before/after.
#
# Knobs (environment): BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (16),
# BENCH_WARM_WITH (peer, or same), BENCH_SHARED_DYNAMODB (unset), BENCH_CONFIGS (which of
# "peer api system floor" to run, default all; e.g. BENCH_CONFIGS=system for ours with the
# pollers and their lag alone).
# Servers log at RUST_LOG=warn (all of them), so that logging is not what is compared.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

say() { printf 'bench-compare: %s\n' "$*" >&2; }
die() { printf 'bench-compare: error: %s\n' "$*" >&2; exit 1; }

ROUNDS="${1:-3}"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
STARTED=$(date +%s)
say "start $(date -u +%FT%TZ), load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
# What is measured: the work tree as built now, uncommitted changes included.
TREE="$(git rev-parse --short HEAD)"
DIRTY="$(git status --porcelain --untracked-files=no | awk '{print $2}' | tr '\n' ' ')"
[[ -n $DIRTY ]] && TREE="$TREE + uncommitted changes to: $DIRTY"

# --- build -------------------------------------------------------------------------------
cargo build --release --locked --bin orders --bin compare-bench --bin aws-recorder --bin orders-cost
ORDERS="$ROOT/target/release/orders"
BENCH="$ROOT/target/release/compare-bench"
RECORDER="$ROOT/target/release/aws-recorder"
COST="$ROOT/target/release/orders-cost"

PEER_BIN="$ROOT/target/peers/release/cqrs-dynamo-peer"
FLOOR_BIN="$ROOT/target/peers/release/floor"
# build_peer NAME BINARY: bench/peers/NAME into target/peers; fails (and says why) if there is
# no such project or it does not build, so that an older binary is never measured instead.
build_peer() {
    local manifest="bench/peers/$1/Cargo.toml" locked=()
    [[ -f $manifest ]] || { say "no $manifest: its rows stay empty"; return 1; }
    [[ -f bench/peers/$1/Cargo.lock ]] && locked=(--locked)
    CARGO_TARGET_DIR="$ROOT/target/peers" cargo build --release "${locked[@]}" --manifest-path "$manifest" ||
        { say "bench/peers/$1 does not build: its rows stay empty"; return 1; }
    [[ -x $2 ]] || { say "bench/peers/$1 built no $2: its rows stay empty"; return 1; }
}
HAVE_PEER=false HAVE_FLOOR=false
# Only what BENCH_CONFIGS selects (the peer also warms DynamoDB Local for ours).
CONFIG_WORDS=" ${BENCH_CONFIGS:-peer api system floor} "
if [[ $CONFIG_WORDS =~ \ (peer|api|system)\  ]]; then
    build_peer cqrs-dynamo "$PEER_BIN" && HAVE_PEER=true
fi
if [[ $CONFIG_WORDS == *" floor "* ]]; then
    build_peer floor "$FLOOR_BIN" && HAVE_FLOOR=true
fi

# BENCH_BEFORE=REV adds ours at REV (the whole system) to the rounds, for a before/after in the
# same run: REV is built in a worktree under target/bench-revisions/ (as bench-revisions.sh does).
BEFORE="${BENCH_BEFORE:-}"
BEFORE_BIN=""
if [[ -n $BEFORE ]]; then
    BEFORE="$(git rev-parse --short "$BEFORE")"
    revisions="$ROOT/target/bench-revisions"
    [[ -d $revisions/src-$BEFORE ]] || git worktree add --detach "$revisions/src-$BEFORE" "$BEFORE" >&2
    (cd "$revisions/src-$BEFORE" && CARGO_TARGET_DIR="$revisions/target-$BEFORE" cargo build --release --locked --bin orders)
    BEFORE_BIN="$revisions/target-$BEFORE/release/orders"
fi

# --- DynamoDB Local and the work directory -------------------------------------------------
OUT="$ROOT/target/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
SERVER_PID=""
DYNAMODB_LOCAL_PID_FILE=""
# The recording proxy of a capacity run (below).
RECORDER_PID=""
stop_recorder() {
    [[ -n $RECORDER_PID ]] || return 0
    kill -TERM "$RECORDER_PID" 2>/dev/null || true
    wait "$RECORDER_PID" 2>/dev/null || true
    RECORDER_PID=""
}
cleanup() {
    stop_server
    stop_recorder
    [[ -n $DYNAMODB_LOCAL_PID_FILE ]] && scripts/dynamodb-local.sh stop "$DYNAMODB_LOCAL_PID_FILE" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/dynamodb-local.sh install
SHARED_DYNAMODB="${BENCH_SHARED_DYNAMODB:-}"
WARM_WITH="${BENCH_WARM_WITH:-peer}"
[[ $WARM_WITH == peer || $WARM_WITH == same ]] || die "BENCH_WARM_WITH must be peer or same, not '$WARM_WITH'"
$HAVE_PEER || WARM_WITH=same
DDB_PID=""
# fresh_dynamodb: stops the DynamoDB Local this script started last, if any, and starts one.
fresh_dynamodb() {
    if [[ -n $DYNAMODB_LOCAL_PID_FILE ]]; then
        scripts/dynamodb-local.sh stop "$DYNAMODB_LOCAL_PID_FILE"
        DYNAMODB_LOCAL_PID_FILE=""
    fi
    eval "$(scripts/dynamodb-local.sh start)"
    DDB_PID="$(cat "$DYNAMODB_LOCAL_PID_FILE")"
}
# DynamoDB Local checks no credentials; the SDK wants some (dummy, emulator only).
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
export RUST_LOG=warn

# --- servers -------------------------------------------------------------------------------
# start_server NAME CMD [ARGS]: runs it in the background and waits for the
# "listening on http://127.0.0.1:PORT" line on its stdout; sets SERVER_PID and SERVER_URL.
STARTS=0
start_server() {
    local name="$1" i stdout
    shift
    # A file of its own, made before the server starts: never an earlier server's line.
    STARTS=$((STARTS + 1))
    stdout="$WORK/$name-$STARTS.out"
    : >"$stdout"
    "$@" >"$stdout" 2>>"$OUT/$name.log" &
    SERVER_PID=$!
    for ((i = 0; i < 600; i++)); do
        SERVER_URL="$(grep -o -m1 'listening on http://127\.0\.0\.1:[0-9]*' "$stdout" | sed 's/^listening on //' || true)"
        [[ -n $SERVER_URL ]] && return 0
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 20 "$OUT/$name.log" >&2 || true
            SERVER_PID=""
            die "$name exited before listening (log: $OUT/$name.log)"
        fi
        sleep 0.1
    done
    die "$name did not print its listening line within 60 s (log: $OUT/$name.log)"
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

RUN_NO=0
LAG_PROBE=1 SETTLE=0
# bench FILE LABEL ROUND [compare-bench run ARGS]: one measured run against $SERVER_URL.
bench() {
    local file="$1" label="$2" round="$3"
    shift 3
    "$BENCH" run --base "$SERVER_URL" --label "$label" --round "$round" \
        --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" \
        --pid "server=$SERVER_PID" --json "$file" "$@" ||
        say "$label round $round failed (the table leaves it out; server log: $OUT/)"
}

# run_peer FILE ROUND
run_peer() {
    $HAVE_PEER || return 0
    RUN_NO=$((RUN_NO + 1))
    start_server peer "$PEER_BIN" --listen 127.0.0.1:0 --endpoint "$DYNAMODB_ENDPOINT" \
        --table-prefix "cmp$$-$RUN_NO-" --delete-tables-on-exit
    bench "$1" peer "$2" --pid "dynamodb-local=$DDB_PID"
    stop_server
}

# run_ours FILE ROUND api|system|before: on fresh tables, deleted after. `before` is the whole
# system as BENCH_BEFORE's revision built it (which may predate --consumers).
run_ours() {
    local file="$1" round="$2" config="$3" consumers=(--consumers all) extra=() orders="$ORDERS"
    RUN_NO=$((RUN_NO + 1))
    local prefix="cmp$$-$RUN_NO" dir="$WORK/ours-$RUN_NO"
    mkdir -p "$dir"
    local tables=("$prefix-events" "$prefix-read-model" "$prefix-idempotency")
    local names=(EVENTS_TABLE="${tables[0]}" ORDERS_TABLE="${tables[1]}" IDEMPOTENCY_TABLE="${tables[2]}")
    if [[ $config == api ]]; then consumers=(--consumers none); elif ((LAG_PROBE)); then extra=(--lag-probe); fi
    [[ $config != before ]] || { orders="$BEFORE_BIN" consumers=(); }
    env "${names[@]}" "$orders" tables create --endpoint-url "$DYNAMODB_ENDPOINT" >/dev/null 2>>"$OUT/tables.log"
    start_server "ours-$config" env "${names[@]}" "$orders" serve --backend dynamodb \
        --endpoint-url "$DYNAMODB_ENDPOINT" --addr 127.0.0.1:0 --db "$dir/orders.db" \
        "${consumers[@]}"
    bench "$file" "$config" "$round" --pid "dynamodb-local=$DDB_PID" --min-version-reads "${extra[@]}"
    # Let the pollers finish what the load left them (the capacity runs count their requests).
    sleep "$SETTLE"
    stop_server
    "$BENCH" delete-tables --endpoint "$DYNAMODB_ENDPOINT" "${tables[@]}"
    rm -rf "$dir"
}

# run_dynamodb_config FILE ROUND peer|api|system
run_dynamodb_config() {
    case "$3" in
    peer) run_peer "$1" "$2" ;;
    *) run_ours "$1" "$2" "$3" ;;
    esac
}

# measure_dynamodb_config ROUND peer|api|system: on a fresh, warmed DynamoDB Local (unless
# shared).
measure_dynamodb_config() {
    [[ $2 != peer ]] || $HAVE_PEER || return 0
    if [[ -z $SHARED_DYNAMODB ]]; then
        fresh_dynamodb
        if [[ $WARM_WITH == peer ]]; then
            run_peer "$OUT/warmup.jsonl" "$1"
        else
            run_dynamodb_config "$OUT/warmup.jsonl" "$1" "$2"
        fi
    fi
    run_dynamodb_config "$OUT/runs.jsonl" "$1" "$2"
}

# run_floor_config FILE ROUND SERVICE creates|reads: SERVICE is floor, sqlite (`orders serve`
# as shipped), or one of the variants that show where a create's time goes: sqlite-nosync
# (--sync normal), sqlite-api (--consumers none), sqlite-api-nosync (both).
run_floor_config() {
    local file="$1" round="$2" service="$3" workload="$4" args=()
    case "$service" in
    sqlite-nosync) args=(--sync normal) ;;
    sqlite-api) args=(--consumers none) ;;
    sqlite-api-nosync) args=(--consumers none --sync normal) ;;
    esac
    if [[ $service == floor ]]; then
        $HAVE_FLOOR || return 0
        start_server floor "$FLOOR_BIN" --listen 127.0.0.1:0
    else
        RUN_NO=$((RUN_NO + 1))
        local dir="$WORK/sqlite-$RUN_NO"
        mkdir -p "$dir"
        start_server "ours-$service" "$ORDERS" serve --addr 127.0.0.1:0 --db "$dir/orders.db" "${args[@]}"
    fi
    bench "$file" "$service-$workload" "$round" --workload "$workload"
    stop_server
    [[ $service == floor ]] || rm -rf "$WORK/sqlite-$RUN_NO"
}

# --- the rounds ----------------------------------------------------------------------------
read -r -a SELECTED <<<"${BENCH_CONFIGS:-peer api system floor}"
CONFIGS=() RUN_FLOOR=false
for config in "${SELECTED[@]}"; do
    case "$config" in
    peer | api | system) CONFIGS+=("$config") ;;
    floor) RUN_FLOOR=true ;;
    *) die "BENCH_CONFIGS: unknown config '$config' (peer, api, system, floor)" ;;
    esac
done
[[ -z $BEFORE ]] || CONFIGS+=(before)
if [[ -n $SHARED_DYNAMODB ]]; then
    fresh_dynamodb
    say "warm-up: one unmeasured run of each DynamoDB config"
    for config in "${CONFIGS[@]}"; do
        run_dynamodb_config "$OUT/warmup.jsonl" 0 "$config"
    done
fi

for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for ((i = 0; i < ${#CONFIGS[@]}; i++)); do
        measure_dynamodb_config "$round" "${CONFIGS[$(((i + round - 1) % ${#CONFIGS[@]}))]}"
    done
    $RUN_FLOOR || continue
    for workload in creates reads; do
        order=(sqlite floor)
        [[ $workload == reads ]] || order+=(sqlite-nosync sqlite-api sqlite-api-nosync)
        for ((i = 0; i < ${#order[@]}; i++)); do
            run_floor_config "$OUT/runs.jsonl" "$round" "${order[$(((i + round - 1) % ${#order[@]}))]}" "$workload"
        done
    done
done

# --- capacity per command ----------------------------------------------------------------
# capacity_run CONFIG: one short run of CONFIG on a fresh DynamoDB Local, every request through
# aws-recorder, priced by orders-cost: one line of capacity.jsonl.
capacity_run() {
    local config="$1" dir="$WORK/capacity-$1" real="$DYNAMODB_ENDPOINT" recorder_pid
    [[ $config != peer ]] || $HAVE_PEER || return 0
    fresh_dynamodb
    real="$DYNAMODB_ENDPOINT"
    mkdir -p "$dir"
    start_server "recorder-$config" "$RECORDER" --principal "$config" --dynamodb "$real" --dir "$dir/calls"
    RECORDER_PID="$SERVER_PID"
    DYNAMODB_ENDPOINT="$SERVER_URL" SERVER_PID=""
    CONNECTIONS=4 SECONDS_PER_RUN=4 WARMUP=0 LAG_PROBE=0 SETTLE=3 \
        run_dynamodb_config "$dir/run.jsonl" 0 "$config"
    DYNAMODB_ENDPOINT="$real"
    stop_recorder
    # A failure here leaves the config's capacity empty, not the whole table unprinted.
    if [[ ! -s $dir/run.jsonl ]] || ! "$COST" --total "$dir/calls" >"$dir/cost.json"; then
        say "capacity of $config: no run or no price (see $OUT/); its capacity stays empty"
        return 0
    fi
    python3 - "$config" "$dir/run.jsonl" "$dir/cost.json" >>"$OUT/capacity.jsonl" <<'PY' ||
import json, sys
config, run, cost = sys.argv[1], json.loads(open(sys.argv[2]).readline()), json.load(open(sys.argv[3]))
print(json.dumps({"config": config, "commands": run["commands"], "gets": run.get("gets"), **cost}))
PY
        say "capacity of $config: cannot read its run; its capacity stays empty"
}
: >>"$OUT/capacity.jsonl" # empty when no DynamoDB config ran
say "capacity: one recorded run of each DynamoDB config"
for config in "${CONFIGS[@]}"; do
    [[ $config == before ]] || capacity_run "$config"
done

# --- the table -----------------------------------------------------------------------------
"$BENCH" table "$OUT/runs.jsonl" --capacity "$OUT/capacity.jsonl" | tee "$OUT/table.md"
ELAPSED=$(($(date +%s) - STARTED))
{
    echo
    echo "$ROUNDS rounds; wall time $((ELAPSED / 60)) min $((ELAPSED % 60)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores."
    if [[ -n $SHARED_DYNAMODB ]]; then
        echo "One DynamoDB Local for every run (BENCH_SHARED_DYNAMODB), warmed by one run of each config."
    else
        echo "Each DynamoDB run on a DynamoDB Local of its own, warmed by an unmeasured run of the $([[ $WARM_WITH == peer ]] && echo "peer's workload" || echo "same config")."
    fi
    echo "Built from $TREE"
    echo "Runs: $OUT/runs.jsonl"
} | tee -a "$OUT/table.md"
