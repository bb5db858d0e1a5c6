# cargo-lambda from PyPI (pip), which brings zig (PyPI `ziglang`) as the cross linker. Sourced,
# not run, by scripts/lambda-dev.sh and scripts/package-lambdas.sh: the one pin.
#
# The sourcing script defines say and die (its stderr messages).

CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"

# Puts pip's console-script directory on PATH and installs cargo-lambda there when
# `cargo lambda` does not run.
ensure_cargo_lambda() {
    # pip puts console scripts here; a pyenv shim may not know a fresh one until a rehash.
    local scripts
    scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
        || die "python3 is needed to install cargo-lambda from PyPI"
    export PATH="$PATH:$scripts"
    if ! cargo lambda --version >/dev/null 2>&1; then
        say "installing cargo-lambda $CARGO_LAMBDA_VERSION from PyPI (brings zig)"
        local log
        log="$(mktemp)"
        if ! python3 -m pip install --disable-pip-version-check --root-user-action=ignore \
            "cargo-lambda==$CARGO_LAMBDA_VERSION" >"$log" 2>&1; then
            cat "$log" >&2
            die "pip install cargo-lambda==$CARGO_LAMBDA_VERSION failed"
        fi
        rm -f "$log"
        command -v pyenv >/dev/null && pyenv rehash 2>/dev/null || true
        cargo lambda --version >/dev/null 2>&1 \
            || die "cargo-lambda was installed but 'cargo lambda --version' does not run (is $scripts on PATH?)"
    fi
}
