#!/usr/bin/env bash
# Before/after in one run: the README's performance table (scripts/bench.sh) for an older
# revision and for the working tree, alternated round by round on the same machine, then the
# median of each figure per side and the ratio after/before.
#
#   scripts/bench-revisions.sh REV [ROUNDS] [-- ORDERS-BENCH ARGS]
#   scripts/bench-revisions.sh 94ecc29 3 -- --connections 32 --seconds 10
#
# REV is built from a detached worktree in target/bench-revisions/ with its own target dir (a
# full release build the first time), so each side runs its own `orders` and `orders-bench`.
# This machine's speed drifts by 2x from day to day: only ratios from one run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $# -ge 1 ]] || { echo "usage: $0 REV [ROUNDS] [-- ORDERS-BENCH ARGS]" >&2; exit 2; }
rev="$(git rev-parse --short "$1")"; shift
rounds=3
if [[ $# -gt 0 && $1 != "--" ]]; then rounds="$1"; shift; fi
[[ ${1:-} == "--" ]] && shift
bench_args=("$@")

root="$PWD/target/bench-revisions"
src="$root/src-$rev"
mkdir -p "$root"
if [[ ! -d $src ]]; then
    git worktree add --detach "$src" "$rev" >&2
fi
echo "bench-revisions: building $rev (before) and the working tree (after), release" >&2
(cd "$src" && CARGO_TARGET_DIR="$root/target-$rev" cargo build --release --locked --bin orders --bin orders-bench >&2)
cargo build --release --locked --bin orders --bin orders-bench >&2

before_dir="$root/target-$rev/release"
after_dir="$PWD/target/release"
out="$root/runs-$rev.txt"
: >"$out"
run_side() { # side dir round
    echo "bench-revisions: round $3, $1" >&2
    ORDERS_BIN="$2/orders" "$2/orders-bench" "${bench_args[@]}" | sed -n "s/^| /$1 | /p" >>"$out"
}
for ((r = 1; r <= rounds; r++)); do
    # ABBA order, so neither side always runs on the warmer machine.
    if ((r % 2)); then
        run_side before "$before_dir" "$r"; run_side after "$after_dir" "$r"
    else
        run_side after "$after_dir" "$r"; run_side before "$before_dir" "$r"
    fi
done

python3 - "$out" "$rev" "$rounds" <<'PY'
import re, statistics, sys
path, rev, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
figures = {}  # (measure, figure) -> side -> [values]
order = []
for line in open(path, encoding="utf-8"):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 3 or cells[1] in ("measure", "---"):
        continue
    side, measure, result = cells[0], cells[1], cells[2]
    # "15768 creates/s, p50 1.83 ms, p99 6.62 ms, 0 errors" -> rate, p50, p99
    parts = [p.strip() for p in result.split(",")]
    for part in parts:
        m = re.match(r"^(p\d+)\s+([\d.]+)\s*ms", part) or re.match(r"^([\d.]+)\s*(M events/s|\w+/s)", part)
        if not m:
            continue
        if m.group(1).startswith("p"):
            name, value = m.group(1) + " (ms)", float(m.group(2))
        else:
            name, value = m.group(2), float(m.group(1))
        key = (measure, name)
        if key not in figures:
            figures[key] = {}
            order.append(key)
        figures[key].setdefault(side, []).append(value)
print(f"\nmedians of {rounds} rounds each, before = {rev}, after = working tree, alternated\n")
print("| measure | figure | before | after | after/before |\n|---|---|---|---|---|")
for key in order:
    sides = figures[key]
    if "before" not in sides or "after" not in sides:
        continue
    b, a = statistics.median(sides["before"]), statistics.median(sides["after"])
    ratio = f"{a / b:.2f}x" if b else "-"
    print(f"| {key[0]} | {key[1]} | {b:g} | {a:g} | {ratio} |")
PY
