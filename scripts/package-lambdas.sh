#!/usr/bin/env bash
# Build the Lambda bootstraps for arm64 (Graviton) and zip them, then print each zip's size.
#
#   ./scripts/package-lambdas.sh            build and zip every Lambda binary of the workspace
#   ./scripts/package-lambdas.sh --install  only install the tools (cargo-lambda, zig, the target)
#
# Output: target/lambda/<bin>/bootstrap.zip for command-api, query-api, projector and publisher.
# Tools, installed when missing:
#   - cargo-lambda from PyPI (pip), which brings zig (PyPI `ziglang`) as the cross linker;
#   - the Rust standard library for aarch64-unknown-linux-gnu (rustup target add).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
REQUIRED_BINS=(command-api query-api projector publisher)
ZIP_LIMIT=4000000 # the issue's target: each zipped bootstrap ≤ 4 MB

say() { printf 'package-lambdas: %s\n' "$*" >&2; }
die() { printf 'package-lambdas: error: %s\n' "$*" >&2; exit 1; }

# cargo-lambda's install and version pin: one copy, shared with scripts/lambda-dev.sh.
# shellcheck source=lib/cargo-lambda.sh
source "$(dirname "$0")/lib/cargo-lambda.sh"

# cargo-lambda, and zig, which it cross-links with (PyPI's ziglang, a dependency of its wheel).
ensure_cross_tools() {
    ensure_cargo_lambda
    python3 -m ziglang version >/dev/null 2>&1 || command -v zig >/dev/null \
        || die "zig is missing: 'python3 -m pip install ziglang' (cargo-lambda cross-links with it)"
    say "$(cargo lambda --version), zig $(python3 -m ziglang version 2>/dev/null || zig version)"
}

ensure_target() {
    if rustup target list --installed | grep -qx "$TARGET"; then
        return 0
    fi
    say "adding the Rust target $TARGET (rustup)"
    rustup target add "$TARGET" >&2 \
        || die "'rustup target add $TARGET' failed: the arm64 build needs the Rust standard library for $TARGET"
}

mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB (%d B)", b / 1e6, b }'; }

# The workspace's binary targets, one "BIN PACKAGE" pair per line.
workspace_bins() {
    cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
for pkg in json.load(sys.stdin)["packages"]:
    for t in pkg["targets"]:
        if "bin" in t["kind"]:
            print(t["name"], pkg["name"])'
}

ensure_cross_tools
ensure_target
if [[ ${1:-} == --install ]]; then
    exit 0
fi
[[ $# -eq 0 ]] || die "unknown arguments: $* (usage: $0 [--install])"

declare -A package_of=()
while read -r bin package; do package_of[$bin]=$package; done < <(workspace_bins)
bins=()
for bin in "${REQUIRED_BINS[@]}"; do
    [[ -n ${package_of[$bin]:-} ]] || die "the workspace has no binary '$bin' (binaries: ${!package_of[*]})"
    bins+=("$bin")
done

# Select the functions' own packages: cargo unifies features over every selected package, and
# from the workspace root that would be all of them, pulling the CLI's SQLite and log filter
# into every bootstrap.
bin_args=()
declare -A selected=()
for bin in "${bins[@]}"; do
    bin_args+=(--bin "$bin")
    package=${package_of[$bin]}
    if [[ -z ${selected[$package]:-} ]]; then
        selected[$package]=1
        bin_args+=(--package "$package")
    fi
done
say "cargo lambda build --profile lambda --arm64 --output-format zip --locked ${bin_args[*]}"
start=$SECONDS
cargo lambda build --profile lambda --arm64 --output-format zip --locked "${bin_args[@]}"
say "built in $((SECONDS - start)) s"

printf '\n| binary | bootstrap.zip | bootstrap (unzipped) |\n|---|---:|---:|\n'
over=()
for bin in "${bins[@]}"; do
    zip="target/lambda/$bin/bootstrap.zip"
    [[ -f $zip ]] || die "cargo lambda reported success but $zip is missing"
    zipped=$(stat -c %s "$zip")
    unzipped=$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo("bootstrap").file_size)' "$zip")
    printf '| `%s` | %s | %s |\n' "$bin" "$(mb "$zipped")" "$(mb "$unzipped")"
    ((zipped <= ZIP_LIMIT)) || over+=("$bin")
done
echo
((${#over[@]} == 0)) || say "warning: over the 4 MB target: ${over[*]}"
