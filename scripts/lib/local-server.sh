# Shared by scripts/dynamodb-local.sh and scripts/moto.sh: start a local emulator on a free
# port, wait until it answers, stop it, and run a command against a fresh one. Sourced, not run.
#
# The sourcing script defines:
#   SERVER_NAME     how messages name it, e.g. "DynamoDB Local"
#   STATE_DIR       where PORT.pid and PORT.log go
#   START_TIMEOUT   seconds to wait for it to answer
#   say, die        its stderr messages
#   answers PORT    succeeds once the server on PORT serves a real API call
#   is_ours PID     succeeds while PID is this kind of server

# A free port on 127.0.0.1, found with the python $1.
free_port() {
    "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Stops the server whose pid is in $1 (SIGTERM, then SIGKILL after 10 s) and removes the file.
stop_pid_file() {
    local pid_file="$1" pid i
    [[ -f $pid_file ]] || { say "no pid file $pid_file: nothing to stop"; return 0; }
    pid="$(cat "$pid_file")"
    if [[ $pid =~ ^[0-9]+$ ]] && is_ours "$pid"; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            is_ours "$pid" || break
            sleep 0.1
        done
        if is_ours "$pid"; then
            say "pid $pid did not stop on SIGTERM within 10 s; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pid_file"
}

# start_server ENDPOINT_VAR PID_FILE_VAR PYTHON CMD [ARGS...]
# Starts CMD (with @PORT@ replaced by a free port) in $STATE_DIR, waits until it answers, and
# prints the lines to eval: `export ENDPOINT_VAR=http://127.0.0.1:PORT` and the pid file's.
start_server() {
    local endpoint_var="$1" pid_file_var="$2" python="$3"
    shift 3
    local port pid_file log attempt deadline
    mkdir -p "$STATE_DIR"

    # A free port can be taken by someone else before the server binds it: then try another.
    for attempt in 1 2 3; do
        port="$(free_port "$python")"
        pid_file="$STATE_DIR/$port.pid"
        log="$STATE_DIR/$port.log"
        # The child writes its own pid, so the file is right even if setsid has to fork.
        # Its own session keeps a terminal's Ctrl-C away from it: `stop` ends it.
        (cd "$STATE_DIR" && exec setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pid_file" \
            "${@//@PORT@/$port}") </dev/null >"$log" 2>&1 &
        trap 'stop_pid_file "$pid_file"; exit 130' INT TERM

        deadline=$((SECONDS + START_TIMEOUT))
        while ! answers "$port"; do
            if [[ -f $pid_file ]] && ! is_ours "$(cat "$pid_file")"; then
                if grep -qi 'address already in use' "$log"; then
                    say "port $port was taken meanwhile; trying another"
                    rm -f "$pid_file"
                    continue 2
                fi
                say "$SERVER_NAME exited before answering; the end of $log:"
                tail -n 40 "$log" >&2
                rm -f "$pid_file"
                exit 1
            fi
            if ((SECONDS >= deadline)); then
                say "$SERVER_NAME did not answer on port $port within ${START_TIMEOUT}s; the end of $log:"
                tail -n 40 "$log" >&2
                stop_pid_file "$pid_file"
                exit 1
            fi
            sleep 0.2
        done
        trap - INT TERM
        say "listening on http://127.0.0.1:$port (pid $(cat "$pid_file"), log $log)"
        printf 'export %s=http://127.0.0.1:%s\n' "$endpoint_var" "$port"
        printf 'export %s=%q\n' "$pid_file_var" "$pid_file"
        return 0
    done
    die "could not find a free port for $SERVER_NAME after 3 tries"
}

# stop_servers [PID_FILE]: that server, or every one started from this checkout.
stop_servers() {
    local pid_file="${1:-}"
    if [[ -n $pid_file ]]; then
        stop_pid_file "$pid_file"
        return 0
    fi
    local found=0
    for pid_file in "$STATE_DIR"/*.pid; do
        [[ -f $pid_file ]] || continue
        found=1
        stop_pid_file "$pid_file"
    done
    ((found)) || say "nothing to stop in $STATE_DIR"
}

# with_server ENDPOINT_VAR PID_FILE_VAR START_COMMAND CMD [ARGS...]
# Runs CMD against a fresh server: starts one with START_COMMAND, exports its endpoint with
# dummy credentials (for the emulator only, never a real account's), runs CMD, and stops the
# server however CMD ends.
with_server() {
    local endpoint_var="$1" pid_file_var="$2" start="$3" env
    shift 3
    env="$("$start")"
    eval "$env"
    export "${endpoint_var?}" "${pid_file_var?}"
    trap "stop_pid_file \"\$$pid_file_var\"" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL
    say "$endpoint_var=${!endpoint_var}"
    "$@"
}
