#!/usr/bin/env bash
# cfn-lint for the CDK app's templates: PyPI `cfn-lint`, pinned in tools/cfn-lint/ and installed
# into a venv there.
#
#   scripts/cfn-lint.sh install          a venv at tools/cfn-lint/.venv with the pinned packages of
#                                        tools/cfn-lint/requirements.lock (pip); quiet when done
#   scripts/cfn-lint.sh lint TEMPLATE... cfn-lint on the templates with cdk/.cfnlintrc (its ignored
#                                        rules each say why); any other finding, error, warning or
#                                        informational, fails
#   scripts/cfn-lint.sh lock             regenerate requirements.lock from requirements.txt
#
# It needs python3 3.9+ with its venv module ($CFN_LINT_PYTHON picks another python). cfn-lint
# reads the resource specifications it ships with: it needs no network.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOL_DIR="$ROOT/tools/cfn-lint"
VENV="$TOOL_DIR/.venv"
LOCK_FILE="$TOOL_DIR/requirements.lock"
STAMP="$VENV/.orders-installed-lock.sha256"
CONFIG="$ROOT/cdk/.cfnlintrc"
PYTHON="${CFN_LINT_PYTHON:-python3}"

say() { printf 'cfn-lint: %s\n' "$*" >&2; }
die() { printf 'cfn-lint: error: %s\n' "$*" >&2; exit 1; }

pip_quiet=(--disable-pip-version-check --no-input --no-cache-dir --quiet)
export PIP_ROOT_USER_ACTION=ignore

# Runs "$@" with its output in a log, shown only when it fails.
quietly() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

base_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON is needed for cfn-lint, and it is not on PATH"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
        die "cfn-lint needs Python 3.9 or newer; $PYTHON is $("$PYTHON" --version 2>&1)"
    "$PYTHON" -c 'import sys; print(sys.executable)'
}

# A venv, or a clear way to get one: Debian's python keeps venv in python3-venv.
make_venv() {
    local py="$1" dir="$2"
    quietly "$py" -m venv "$dir" && return 0
    if [[ $py == /usr/bin/* && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "$py has no working venv module; installing python3-venv from Debian (apt-get)"
        rm -rf "$dir"
        DEBIAN_FRONTEND=noninteractive quietly apt-get update &&
            DEBIAN_FRONTEND=noninteractive quietly apt-get install -y --no-install-recommends python3-venv &&
            quietly "$py" -m venv "$dir" && return 0
    fi
    die "$py -m venv failed: install python3-venv (Debian), or set CFN_LINT_PYTHON to a python with venv"
}

locked_version() { sed -n 's/^cfn-lint==\([^ ;]*\).*/\1/p' "$LOCK_FILE"; }
lock_sha() { sha256sum "$LOCK_FILE" | cut -d' ' -f1; }
installed_version() { "$VENV/bin/cfn-lint" --version 2>/dev/null | sed -n 's/^cfn-lint \([^ ]*\).*/\1/p'; }

cmd_install() {
    [[ -f $LOCK_FILE ]] || die "$LOCK_FILE is missing: run 'scripts/cfn-lint.sh lock' to make it from requirements.txt"
    local want got
    want="$(locked_version)"
    [[ -n $want ]] || die "$LOCK_FILE pins no cfn-lint==VERSION"
    # Two runs at once must not pip-install into the same venv together.
    exec 9>"$TOOL_DIR/.install.lock"
    flock 9
    if [[ -f $STAMP && $(cat "$STAMP") == "$(lock_sha)" && $(installed_version) == "$want" ]]; then
        return 0
    fi
    rm -rf "$VENV"
    make_venv "$(base_python)" "$VENV"
    say "installing cfn-lint $want into tools/cfn-lint/.venv (pip install -r requirements.lock)"
    quietly "$VENV/bin/python" -m pip install "${pip_quiet[@]}" -r "$LOCK_FILE" ||
        die "pip install -r $LOCK_FILE into $VENV failed (see above)"
    got="$(installed_version)"
    [[ $got == "$want" ]] || die "installed requirements.lock, but cfn-lint reports version '${got:-none}', not $want"
    lock_sha >"$STAMP"
    say "installed cfn-lint $got"
}

# What the run ignored: the rules in cdk/.cfnlintrc's ignore_checks, and the rules a resource's
# Metadata (cfn-lint.config.ignore_checks) ignores, with how many resources do.
ignores() {
    "$VENV/bin/python" - "$CONFIG" "$@" <<'PY'
import collections, json, sys, yaml
config = yaml.safe_load(open(sys.argv[1])) or {}
found = [f"{rule} in every template (.cfnlintrc)" for rule in config.get("ignore_checks") or []]
per_rule = collections.Counter()
for path in sys.argv[2:]:
    for resource in json.load(open(path)).get("Resources", {}).values():
        config = (resource.get("Metadata") or {}).get("cfn-lint", {}).get("config", {})
        per_rule.update(config.get("ignore_checks") or [])
found += [f"{rule} on {n} resource(s) by their Metadata" for rule, n in sorted(per_rule.items())]
print(", ".join(found) or "none")
PY
}

cmd_lint() {
    (($#)) || die "usage: $0 lint TEMPLATE..."
    [[ -x $VENV/bin/cfn-lint && -f $STAMP && $(cat "$STAMP") == "$(lock_sha)" ]] ||
        die "cfn-lint is not installed from the current requirements.lock: run 'scripts/cfn-lint.sh install' (or ./scripts/cdk.sh install)"
    [[ -f $CONFIG ]] || die "$CONFIG is missing"
    local template
    for template in "$@"; do
        [[ -s $template ]] || die "no template at $template"
    done
    # Exit status is non-zero for any finding at all, informational included.
    if ! "$VENV/bin/cfn-lint" --config-file "$CONFIG" --non-zero-exit-code informational -- "$@"; then
        die "findings in $# template(s) (above): fix them, or ignore the rule in cdk/.cfnlintrc with the reason"
    fi
    say "clean on $# template(s) (cfn-lint $(installed_version); ignored: $(ignores "$@"))"
}

# Regenerates requirements.lock: requirements.txt into a scratch venv, then pip freeze.
cmd_lock() {
    local py scratch
    py="$(base_python)"
    scratch="$(mktemp -d)"
    trap "rm -rf $(printf %q "$scratch")" EXIT
    make_venv "$py" "$scratch/venv"
    say "resolving tools/cfn-lint/requirements.txt in a scratch venv"
    quietly "$scratch/venv/bin/python" -m pip install "${pip_quiet[@]}" -r "$TOOL_DIR/requirements.txt" ||
        die "pip install -r $TOOL_DIR/requirements.txt failed (see above)"
    {
        echo "# Generated by 'scripts/cfn-lint.sh lock' from requirements.txt: every package of cfn-lint's"
        echo "# install, pinned. $("$scratch/venv/bin/python" -c 'import platform, sys; print("Resolved on CPython %d.%d, %s %s." % (sys.version_info[0], sys.version_info[1], platform.system(), platform.machine()))')"
        echo "# Do not edit by hand: change requirements.txt and run 'scripts/cfn-lint.sh lock'."
        "$scratch/venv/bin/python" -m pip freeze --disable-pip-version-check
    } >"$LOCK_FILE.tmp"
    mv "$LOCK_FILE.tmp" "$LOCK_FILE"
    say "wrote $LOCK_FILE (cfn-lint $(locked_version), $(grep -c '==' "$LOCK_FILE") packages)"
}

case "${1:-}" in
install) cmd_install ;;
lint) shift; cmd_lint "$@" ;;
lock) cmd_lock ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
