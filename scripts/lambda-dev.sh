#!/usr/bin/env bash
# The cargo-lambda dev loop: the four functions (command-api, query-api, projector, publisher)
# under `cargo lambda watch`, on DynamoDB Local and the moto server, fed the samples in events/.
#
#   scripts/lambda-dev.sh install  cargo-lambda (PyPI), DynamoDB Local and the moto server;
#                                  quiet when already done
#   scripts/lambda-dev.sh watch [WATCH ARGS]
#                                  start DynamoDB Local and moto on free ports, create the tables
#                                  (`orders tables create`) and a bus whose rule copies every
#                                  `orders` entry to a queue, then run `cargo lambda watch` with
#                                  the functions' environment (target/lambda-dev/lambda.env);
#                                  Ctrl-C stops it all
#   scripts/lambda-dev.sh bus      in another terminal: the entries the bus received since the
#                                  last call (read off the queue), one JSON event a line
#
# Then, in another terminal (cargo lambda watch listens on port 9000):
#   cargo lambda invoke command-api --data-file events/command-api.create-order.apigw-v2.json
#   cargo lambda invoke projector   --data-file events/dynamodb-stream.order-created-confirmed.json
#   cargo lambda invoke query-api   --data-file events/query-api.get-order.apigw-rest.json
#   cargo lambda invoke publisher   --data-file events/dynamodb-stream.order-created-confirmed.json
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE_DIR="$ROOT/target/lambda-dev"
ENV_FILE="$STATE_DIR/lambda.env"
BUS_FILE="$STATE_DIR/bus.env" # MOTO_ENDPOINT and QUEUE_URL, for `bus`
BUS_NAME=orders-local
# A local key only: query-api signs its list cursors with it (at least 32 bytes).
CURSOR_KEY=local-dev-cursor-key-0123456789abcdef

say() { printf 'lambda-dev: %s\n' "$*" >&2; }
die() { printf 'lambda-dev: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/cargo-lambda.sh
source "$ROOT/scripts/lib/cargo-lambda.sh"

# The moto server's Python (its venv has boto3), one argument a line, as scripts/moto.sh runs it.
moto_python() {
    local venv="$ROOT/tools/moto/.venv"
    if [[ -x $venv/bin/python ]]; then
        echo "$venv/bin/python"
    elif [[ -f $venv/target-python ]]; then
        printf '%s\n' env "PYTHONPATH=$venv/site-packages" "$(cat "$venv/target-python")"
    else
        die "the moto server is not installed: run '$0 install' first"
    fi
}

# Run inside `dynamodb-local.sh with moto.sh with`: DYNAMODB_ENDPOINT and MOTO_ENDPOINT are set.
cmd_serve() {
    : "${DYNAMODB_ENDPOINT:?} ${MOTO_ENDPOINT:?}"
    mkdir -p "$STATE_DIR"
    say "creating the tables on $DYNAMODB_ENDPOINT"
    (cd "$ROOT" && cargo run --quiet --locked --bin orders -- tables create --endpoint-url "$DYNAMODB_ENDPOINT") >&2

    say "creating the bus $BUS_NAME on $MOTO_ENDPOINT, its rule sending every orders entry to a queue"
    local -a py
    mapfile -t py < <(moto_python)
    local queue_url
    queue_url="$("${py[@]}" - "$MOTO_ENDPOINT" "$BUS_NAME" <<'PY'
import json, sys
import boto3
endpoint, bus = sys.argv[1], sys.argv[2]
events = boto3.client("events", endpoint_url=endpoint)
sqs = boto3.client("sqs", endpoint_url=endpoint)
events.create_event_bus(Name=bus)
queue_url = sqs.create_queue(QueueName=bus)["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
events.put_rule(Name="all-orders", EventBusName=bus, EventPattern=json.dumps({"source": ["orders"]}))
events.put_targets(Rule="all-orders", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
print(queue_url)
PY
)"
    printf 'MOTO_ENDPOINT=%s\nQUEUE_URL=%s\n' "$MOTO_ENDPOINT" "$queue_url" >"$BUS_FILE"

    # What each function reads (its INIT: handlers/src/lambda, projections/src/lambda.rs; on
    # AWS, cdk/lib/orders-stack.ts sets the same), plus the SDK's endpoints for the emulators.
    # Each function ignores the others' variables.
    cat >"$ENV_FILE" <<EOF
EVENTS_TABLE=orders-events
ORDERS_TABLE=orders-read-model
IDEMPOTENCY_TABLE=orders-idempotency
CURSOR_KEY=$CURSOR_KEY
EVENT_BUS_NAME=$BUS_NAME
EVENT_SOURCE=orders
AWS_ENDPOINT_URL_DYNAMODB=$DYNAMODB_ENDPOINT
AWS_ENDPOINT_URL_EVENTBRIDGE=$MOTO_ENDPOINT
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
EOF
    say "the functions' environment: $ENV_FILE"
    say "cargo lambda watch --env-file $ENV_FILE $*"
    cd "$ROOT"
    cargo lambda watch --env-file "$ENV_FILE" "$@"
}

cmd_bus() {
    [[ -f $BUS_FILE ]] || die "no bus yet: run '$0 watch' first"
    local -a py
    mapfile -t py < <(moto_python)
    # shellcheck source=/dev/null
    source "$BUS_FILE"
    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1 \
        "${py[@]}" - "$MOTO_ENDPOINT" "$QUEUE_URL" <<'PY'
import sys
import boto3
endpoint, queue_url = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=endpoint)
while True:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    if not messages:
        break
    for m in messages:
        print(m["Body"])
    sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
PY
}

case "${1:-}" in
install)
    ensure_cargo_lambda
    "$ROOT/scripts/dynamodb-local.sh" install
    "$ROOT/scripts/moto.sh" install
    ;;
watch)
    shift
    ensure_cargo_lambda
    exec "$ROOT/scripts/dynamodb-local.sh" with "$ROOT/scripts/moto.sh" with "$0" serve "$@"
    ;;
serve)
    shift
    ensure_cargo_lambda
    cmd_serve "$@"
    ;;
bus) cmd_bus ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
