# Shared by scripts/moto.sh and scripts/cfn-lint.sh: a PyPI tool pinned in tools/NAME/ and
# installed into a venv there. Finds a Python 3.9+, makes the venv (installing Debian's
# python3-venv when it is missing), pip-installs requirements.lock into it, stamps the install
# with the lock's sha256, and regenerates the lock from requirements.txt. Sourced, not run.
#
# The sourcing script defines:
#   ROOT            the checkout; messages name paths relative to it
#   TOOL            the PyPI package that requirements.lock pins as TOOL==VERSION, e.g. "moto"
#   TOOL_LABEL      how messages name the tool, e.g. "the moto server"
#   TOOL_DIR        tools/NAME: requirements.txt, requirements.lock, .install.lock
#   VENV            the venv, e.g. $TOOL_DIR/.venv
#   LOCK_FILE       $TOOL_DIR/requirements.lock
#   STAMP           the file in $VENV that holds the sha256 of the lock it was installed from
#   PYTHON          the base interpreter, and PYTHON_VAR the variable that picks another one
#   LOCK_PINS       the lock header's words for what it pins, as its two lines wrap them:
#                   ("every package of cfn-lint's" "install, pinned.")
#   say, die        its stderr messages
#   installed_version   prints the installed tool's version, or fails when it is not installed
# and, to fall back to pip install --target when no venv can be made (else that is an error):
#   TARGET_DIR      where the packages then go (run with PYTHONPATH, see tool_python)
#   TARGET_PYTHON   the file that records the interpreter they were installed for
#
# Commands print their own name in messages as scripts/<the sourcing script's file name>.

pip_quiet=(--disable-pip-version-check --no-input --no-cache-dir --quiet)
export PIP_ROOT_USER_ACTION=ignore # as root in CI; pip before 22.1 ignores it

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

# The base interpreter's absolute path, once it is known to be Python 3.9+.
base_python() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON is needed for $TOOL_LABEL, and it is not on PATH"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
        die "$TOOL_LABEL needs Python 3.9 or newer; $PYTHON is $("$PYTHON" --version 2>&1)"
    "$PYTHON" -c 'import sys; print(sys.executable)'
}

# Debian splits venv (ensurepip) out of python3 into python3-venv: install it when the python
# $1 is Debian's and we are root with apt. Succeeds when it was installed.
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
}

# make_venv PY DIR: a fresh venv at DIR made by PY, with python3-venv installed first when it
# can be (see apt_install_venv). Fails, with what venv said, when none can be made.
make_venv() {
    local py="$1" dir="$2" log
    rm -rf "$dir"
    log="$(mktemp)"
    if "$py" -m venv "$dir" >"$log" 2>&1; then
        rm -f "$log"
        return 0
    fi
    if apt_install_venv "$py"; then
        rm -rf "$dir"
        if "$py" -m venv "$dir" >"$log" 2>&1; then
            rm -f "$log"
            return 0
        fi
        say "$py -m venv failed, even with python3-venv installed:"
    else
        say "$py -m venv failed, and python3-venv could not be installed (not Debian's python, not root, or no apt):"
    fi
    sed 's/^/    /' "$log" >&2
    rm -f "$log"
    rm -rf "$dir"
    return 1
}

# How to run the installed tool's python, as words for "$@": the venv's python, or (with
# TARGET_DIR) the base one with PYTHONPATH on the --target install. Fails when not installed.
tool_python() {
    if [[ -x $VENV/bin/python ]]; then
        echo "$VENV/bin/python"
    elif [[ -n ${TARGET_DIR:-} && -d $TARGET_DIR && -f $TARGET_PYTHON ]]; then
        echo "env"
        echo "PYTHONPATH=$TARGET_DIR"
        cat "$TARGET_PYTHON"
    else
        return 1
    fi
}

# The version requirements.lock pins.
locked_version() { sed -n "s/^$TOOL==\\([^ ;]*\\).*/\\1/p" "$LOCK_FILE"; }

lock_sha() { sha256sum "$LOCK_FILE" | cut -d' ' -f1; }

# Succeeds when $VENV holds an install of the current requirements.lock.
installed_from_lock() {
    [[ -f $STAMP && $(cat "$STAMP") == "$(lock_sha)" && $(installed_version || true) == "$(locked_version)" ]]
}

# A fresh install of requirements.lock into $VENV: a venv when one can be made, otherwise (with
# TARGET_DIR) pip install --target with the base interpreter's pip.
install_packages() {
    local py
    py="$(base_python)"
    if make_venv "$py" "$VENV"; then
        say "installing $TOOL $(locked_version) into ${VENV#"$ROOT/"} (pip install -r requirements.lock)"
        quietly "$VENV/bin/python" -m pip install "${pip_quiet[@]}" -r "$LOCK_FILE" ||
            die "pip install -r $LOCK_FILE into $VENV failed (see above)"
        return 0
    fi
    [[ -n ${TARGET_DIR:-} ]] ||
        die "$py -m venv failed: install python3-venv (Debian), or set $PYTHON_VAR to a python with venv"
    "$py" -m pip --version >/dev/null 2>&1 ||
        die "no venv and no pip for $py: install python3-venv (Debian) or pip, or set $PYTHON_VAR to a python that has them"
    say "falling back to pip install --target ${TARGET_DIR#"$ROOT/"} with $py"
    mkdir -p "$TARGET_DIR"
    # Its check against the base interpreter's own packages may report conflicts that do not
    # concern this directory: the log is shown only when pip fails.
    quietly "$py" -m pip install "${pip_quiet[@]}" --target "$TARGET_DIR" -r "$LOCK_FILE" ||
        die "pip install --target $TARGET_DIR -r $LOCK_FILE failed (see above)"
    echo "$py" >"$TARGET_PYTHON"
}

# install_tool [MODULE]: installs requirements.lock unless the stamp says it already is (then
# quietly), checks the version it reports and, when given, that its python imports MODULE.
install_tool() {
    local module="${1:-}" want got out
    local -a py
    mkdir -p "$TOOL_DIR"
    # Two runs at once must not pip-install into the same venv together.
    exec 9>"$TOOL_DIR/.install.lock"
    flock 9
    [[ -f $LOCK_FILE ]] || die "$LOCK_FILE is missing: run 'scripts/${0##*/} lock' to make it from requirements.txt"
    want="$(locked_version)"
    [[ -n $want ]] || die "$LOCK_FILE pins no $TOOL==VERSION"
    if ! installed_from_lock; then
        install_packages
        got="$(installed_version || true)"
        [[ $got == "$want" ]] || die "installed requirements.lock, but $TOOL reports version '${got:-none}', not $want"
        if [[ -n $module ]]; then
            mapfile -t py < <(tool_python)
            out="$("${py[@]}" -c "import $module" 2>&1)" || {
                tail -n 20 <<<"$out" >&2
                die "$TOOL $got is installed, but 'import $module' fails (see above)"
            }
        fi
        lock_sha >"$STAMP"
        say "installed $TOOL $got"
    fi
    exec 9>&-
}

# Regenerates requirements.lock: requirements.txt into a scratch venv, then pip freeze.
lock_tool() {
    local py scratch self="scripts/${0##*/}"
    py="$(base_python)"
    scratch="$(mktemp -d)"
    trap "rm -rf $(printf %q "$scratch")" EXIT
    make_venv "$py" "$scratch/venv" || die "$py -m venv failed: the lock is made in a venv (install python3-venv)"
    say "resolving ${TOOL_DIR#"$ROOT/"}/requirements.txt in a scratch venv"
    quietly "$scratch/venv/bin/python" -m pip install "${pip_quiet[@]}" -r "$TOOL_DIR/requirements.txt" ||
        die "pip install -r $TOOL_DIR/requirements.txt failed (see above)"
    {
        echo "# Generated by '$self lock' from requirements.txt: ${LOCK_PINS[0]}"
        echo "# ${LOCK_PINS[1]} $("$scratch/venv/bin/python" -c 'import platform, sys; print("Resolved on CPython %d.%d, %s %s." % (sys.version_info[0], sys.version_info[1], platform.system(), platform.machine()))')"
        echo "# Do not edit by hand: change requirements.txt and run '$self lock'."
        "$scratch/venv/bin/python" -m pip freeze --disable-pip-version-check
    } >"$LOCK_FILE.tmp"
    mv "$LOCK_FILE.tmp" "$LOCK_FILE"
    say "wrote $LOCK_FILE ($TOOL $(locked_version), $(grep -c '==' "$LOCK_FILE") packages)"
}
