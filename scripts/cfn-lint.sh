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
PYTHON_VAR=CFN_LINT_PYTHON
TOOL=cfn-lint
TOOL_LABEL=cfn-lint
LOCK_PINS=("every package of cfn-lint's" "install, pinned.") # the lock header's words

say() { printf 'cfn-lint: %s\n' "$*" >&2; }
die() { printf 'cfn-lint: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/python-tool.sh
source "$ROOT/scripts/lib/python-tool.sh"

# The installed cfn-lint's version, or nothing.
installed_version() { "$VENV/bin/cfn-lint" --version 2>/dev/null | sed -n 's/^cfn-lint \([^ ]*\).*/\1/p'; }

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

case "${1:-}" in
install) install_tool ;;
lint) shift; cmd_lint "$@" ;;
lock) lock_tool ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
