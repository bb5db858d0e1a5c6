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

SERVER_NAME="the moto server"

say() { printf 'moto: %s\n' "$*" >&2; }
die() { printf 'moto: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/local-server.sh
source "$ROOT/scripts/lib/local-server.sh"

pip_quiet=(--disable-pip-version-check --no-input --no-cache-dir --quiet)
export PIP_ROOT_USER_ACTION=ignore # as root in CI; pip before 22.1 ignores it

# Runs pip ("$@") with its output in a log, shown only when it fails.
run_pip() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

# The base interpreter's absolute path, once it is known to be Python 3.9+ (moto 5.2 needs it).
base_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON is needed for the moto server, and it is not on PATH"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
        die "the moto server needs Python 3.9 or newer; $PYTHON is $("$PYTHON" --version 2>&1)"
    "$PYTHON" -c 'import sys; print(sys.executable)'
}

# How to run the installed moto, as words for "$@": the venv's python, or the base one with
# PYTHONPATH on the --target install. Nothing when it is not installed.
moto_python() {
    if [[ -x $VENV/bin/python ]]; then
        echo "$VENV/bin/python"
    elif [[ -d $TARGET_DIR && -f $TARGET_PYTHON ]]; then
        echo "env"
        echo "PYTHONPATH=$TARGET_DIR"
        cat "$TARGET_PYTHON"
    else
        return 1
    fi
}

# The installed moto's version, or nothing (not installed, or its interpreter is gone).
installed_version() {
    local -a py
    mapfile -t py < <(moto_python) && ((${#py[@]})) || return 1
    "${py[@]}" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null
}

# The version requirements.lock pins.
locked_version() { sed -n 's/^moto==\([^ ;]*\).*/\1/p' "$LOCK_FILE"; }

lock_sha() { sha256sum "$LOCK_FILE" | cut -d' ' -f1; }

# Debian splits venv (ensurepip) out of python3 into python3-venv: install it when the python
# is Debian's and we are root with apt. Succeeds when a venv can be made afterwards.
apt_install_venv() {
    local py="$1" log ver
    [[ $py == /usr/bin/* && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null || return 1
    ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    say "$py has no working venv module; installing python3-venv from Debian (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    log="$(mktemp)"
    apt-get update >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; say "apt-get update failed"; return 1; }
    if ! apt-get install -y --no-install-recommends python3-venv "python$ver-venv" >"$log" 2>&1 &&
        ! apt-get install -y --no-install-recommends python3-venv >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        say "apt-get install python3-venv failed"
        return 1
    fi
    rm -f "$log"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" >&2
}

# A fresh install of requirements.lock into $VENV: a venv when one can be made, otherwise
# pip install --target with the base interpreter's pip.
install_packages() {
    local py log
    py="$(base_python)"
    rm -rf "$VENV"
    log="$(mktemp)"
    if "$py" -m venv "$VENV" >"$log" 2>&1 || apt_install_venv "$py"; then
        rm -f "$log"
        say "installing moto $(locked_version) into tools/moto/.venv (pip install -r requirements.lock)"
        run_pip "$VENV/bin/python" -m pip install "${pip_quiet[@]}" -r "$LOCK_FILE" ||
            die "pip install -r $LOCK_FILE into $VENV failed (see above)"
        return 0
    fi
    say "$py -m venv failed, and python3-venv could not be installed (not Debian's python, not root, or no apt):"
    sed 's/^/    /' "$log" >&2
    rm -f "$log"
    rm -rf "$VENV"
    "$py" -m pip --version >/dev/null 2>&1 ||
        die "no venv and no pip for $py: install python3-venv (Debian) or pip, or set MOTO_PYTHON to a python that has them"
    say "falling back to pip install --target tools/moto/.venv/site-packages with $py"
    mkdir -p "$TARGET_DIR"
    # Its check against the base interpreter's own packages may report conflicts that do not
    # concern this directory: the log is shown only when pip fails.
    run_pip "$py" -m pip install "${pip_quiet[@]}" --target "$TARGET_DIR" -r "$LOCK_FILE" ||
        die "pip install --target $TARGET_DIR -r $LOCK_FILE failed (see above)"
    echo "$py" >"$TARGET_PYTHON"
}

ensure_moto() {
    [[ -f $LOCK_FILE ]] || die "$LOCK_FILE is missing: run 'scripts/moto.sh lock' to make it from requirements.txt"
    local want got
    want="$(locked_version)"
    [[ -n $want ]] || die "$LOCK_FILE pins no moto==VERSION"
    if [[ -f $STAMP && $(cat "$STAMP") == "$(lock_sha)" ]] && [[ $(installed_version || true) == "$want" ]]; then
        return 0
    fi
    install_packages
    got="$(installed_version || true)"
    [[ $got == "$want" ]] || die "installed requirements.lock, but moto reports version '${got:-none}', not $want"
    local -a py
    local out
    mapfile -t py < <(moto_python)
    out="$("${py[@]}" -c 'import moto.server' 2>&1)" || {
        tail -n 20 <<<"$out" >&2
        die "moto $got is installed, but 'import moto.server' fails (see above)"
    }
    lock_sha >"$STAMP"
    say "installed moto $got"
}

cmd_install() {
    mkdir -p "$TOOL_DIR"
    # Two test runs at once must not pip-install into the same venv together.
    exec 9>"$TOOL_DIR/.install.lock"
    flock 9
    ensure_moto
    exec 9>&-
}

# Regenerates requirements.lock: requirements.txt into a scratch venv, then pip freeze.
cmd_lock() {
    local py scratch
    py="$(base_python)"
    scratch="$(mktemp -d)"
    trap "rm -rf $(printf %q "$scratch")" EXIT
    "$py" -m venv "$scratch/venv" >&2 || die "$py -m venv failed: the lock is made in a venv (install python3-venv)"
    say "resolving tools/moto/requirements.txt in a scratch venv"
    run_pip "$scratch/venv/bin/python" -m pip install "${pip_quiet[@]}" -r "$TOOL_DIR/requirements.txt" ||
        die "pip install -r $TOOL_DIR/requirements.txt failed (see above)"
    {
        echo "# Generated by 'scripts/moto.sh lock' from requirements.txt: every package of the moto"
        echo "# server's install, pinned. $("$scratch/venv/bin/python" -c 'import platform, sys; print("Resolved on CPython %d.%d, %s %s." % (sys.version_info[0], sys.version_info[1], platform.system(), platform.machine()))')"
        echo "# Do not edit by hand: change requirements.txt and run 'scripts/moto.sh lock'."
        "$scratch/venv/bin/python" -m pip freeze --disable-pip-version-check
    } >"$LOCK_FILE.tmp"
    mv "$LOCK_FILE.tmp" "$LOCK_FILE"
    say "wrote $LOCK_FILE (moto $(locked_version), $(grep -c '==' "$LOCK_FILE") packages)"
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
    mapfile -t py < <(moto_python) && ((${#py[@]})) && [[ -f $STAMP ]] ||
        die "the moto server is not installed: run 'scripts/moto.sh install' first"
    command -v curl >/dev/null || die "curl is needed to check that the moto server answers"
    # PYTHONUNBUFFERED: its log is complete when we show its end.
    start_server MOTO_ENDPOINT MOTO_PID_FILE "${py[-1]}" \
        env PYTHONUNBUFFERED=1 "${py[@]}" -m moto.server -H 127.0.0.1 -p @PORT@
}

cmd_stop() { stop_servers "${1:-${MOTO_PID_FILE:-}}"; }

cmd_with() { with_server MOTO_ENDPOINT MOTO_PID_FILE cmd_start "$@"; }

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop "${2:-}" ;;
lock) cmd_lock ;;
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
