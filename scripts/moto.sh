#!/usr/bin/env bash
# The moto server for the test suite: the local EventBridge + SQS (and any other AWS API moto
# emulates), from PyPI `moto[server]`, pinned in tools/moto/ and installed into a venv there.
#
#   scripts/moto.sh install           a venv at tools/moto/.venv with the pinned packages of
#                                     tools/moto/requirements.lock (pip); quiet when already done
#   eval "$(scripts/moto.sh start)"   start one in-memory server on a free port and print the
#                                     lines to eval:
#                                       export MOTO_ENDPOINT=http://127.0.0.1:PORT
#                                       export MOTO_PID_FILE=.../PORT.pid
#   scripts/moto.sh with CMD [ARGS]  start one, run CMD with MOTO_ENDPOINT and dummy credentials
#                                     exported, stop it however CMD ends
#   scripts/moto.sh stop [PID_FILE]   stop that server (default: $MOTO_PID_FILE, or, when unset,
#                                     every server started from this checkout)
#   scripts/moto.sh lock              regenerate tools/moto/requirements.lock from requirements.txt
#
# Servers keep their pid file and log in target/moto/ (PORT.pid, PORT.log). It needs python3
# (3.9+; $MOTO_PYTHON picks another) and curl. Messages go to stderr; stdout carries only the
# lines for eval. Every failure exits non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOL_DIR="$ROOT/tools/moto"
STATE_DIR="$ROOT/target/moto"
VENV="$TOOL_DIR/.venv"
LOCK_FILE="$TOOL_DIR/requirements.lock"
STAMP="$VENV/.orders-installed-lock.sha256"
# Where the packages go when no venv can be made: pip install --target, run with PYTHONPATH.
TARGET_DIR="$VENV/site-packages"
TARGET_PYTHON="$VENV/target-python" # the interpreter they were installed for
START_TIMEOUT="${MOTO_START_TIMEOUT:-60}"
PYTHON="${MOTO_PYTHON:-python3}"
PYTHON_VAR=MOTO_PYTHON

SERVER_NAME="the moto server"
TOOL=moto
TOOL_LABEL="$SERVER_NAME"
LOCK_PINS=("every package of the moto" "server's install, pinned.") # the lock header's words

say() { printf 'moto: %s\n' "$*" >&2; }
die() { printf 'moto: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/local-server.sh
source "$ROOT/scripts/lib/local-server.sh"
# shellcheck source=lib/python-tool.sh
source "$ROOT/scripts/lib/python-tool.sh"

# The installed moto's version, or nothing (not installed, or its interpreter is gone).
installed_version() {
    local -a py
    mapfile -t py < <(tool_python) && ((${#py[@]})) || return 1
    "${py[@]}" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null
}

# Any HTTP answer means the server is up; send a well-formed SQS ListQueues (JSON protocol) so
# that a 200 proves the API works. moto routes on the service in the SigV4 credential scope and
# checks no signature.
answers() {
    curl -fsS -o /dev/null --max-time 2 -X POST "http://127.0.0.1:$1/" \
        -H 'Content-Type: application/x-amz-json-1.0' \
        -H 'X-Amz-Target: AmazonSQS.ListQueues' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0' \
        -d '{}' 2>/dev/null
}

is_ours() { # pid → running moto server?
    [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- '-m moto.server'
}

cmd_start() {
    local -a py
    mapfile -t py < <(tool_python) && ((${#py[@]})) && [[ -f $STAMP ]] ||
        die "the moto server is not installed: run 'scripts/moto.sh install' first"
    command -v curl >/dev/null || die "curl is needed to check that the moto server answers"
    # PYTHONUNBUFFERED: its log is complete when we show its end.
    start_server MOTO_ENDPOINT MOTO_PID_FILE "${py[-1]}" \
        env PYTHONUNBUFFERED=1 "${py[@]}" -m moto.server -H 127.0.0.1 -p @PORT@
}

cmd_stop() { stop_servers "${1:-${MOTO_PID_FILE:-}}"; }

cmd_with() { with_server MOTO_ENDPOINT MOTO_PID_FILE cmd_start "$@"; }

case "${1:-}" in
install) install_tool moto.server ;;
start) cmd_start ;;
stop) cmd_stop "${2:-}" ;;
lock) lock_tool ;;
with)
    shift
    [[ $# -gt 0 ]] || { say "usage: $0 with COMMAND [ARGS...]"; exit 2; }
    cmd_with "$@"
    ;;
*)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
