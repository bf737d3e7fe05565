#!/usr/bin/env bash
# Runs the criterion benchmarks (sessync beside its baselines, and the C ABI beside the
# Rust API, each in one run) and prints throughputs and ratios as Markdown tables. Takes
# about five minutes on two cores.
# Usage: scripts/bench.sh            (extra arguments go to criterion, e.g. a filter)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "missing: python3 (for the report)" >&2; exit 1; }
cargo bench --locked --bench store --bench c_abi -- "$@"
python3 - <<'PY'
import json, pathlib
root = pathlib.Path("target/criterion")
def thr(group, name, n):
    f = root / group / name / str(n) / "new" / "estimates.json"
    if not f.exists():
        return None
    return 1e9 / json.loads(f.read_text())["mean"]["point_estimate"]
def fmt(x):
    return "—" if x is None else (f"{x/1e6:.2f} M/s" if x >= 1e6 else f"{x/1e3:.0f} k/s")
def ratio(a, b):
    return "—" if a is None or b is None else f"{a/b:.1f}×"
for group, ours in [("fetch_1k", "sessync"), ("locked_update", "sessync_flow")]:
    print(f"\n### {group}\n")
    print("| threads | sessync | mutex_map | actor | vs mutex_map | vs actor |")
    print("|---|---|---|---|---|---|")
    for n in (1, 2):
        s, m, a = thr(group, ours, n), thr(group, "mutex_map", n), thr(group, "actor", n)
        print(f"| {n} | {fmt(s)} | {fmt(m)} | {fmt(a)} | {ratio(s, m)} | {ratio(s, a)} |")
    s1, s2 = thr(group, ours, 1), thr(group, ours, 2)
    print(f"\nsessync, 2 threads over 1: {ratio(s2, s1)}")
def cost(r, c):
    return "—" if r is None or c is None else f"{(r / c - 1) * 100:+.0f}%"
print("\n### c_abi_fetch_1k\n")
print("| threads | Rust API | C ABI get (zero-copy) | cost | C ABI fetch (copy) | cost |")
print("|---|---|---|---|---|---|")
for n in (1, 2):
    g = "c_abi_fetch_1k"
    r, z, c = thr(g, "rust", n), thr(g, "c_abi_get", n), thr(g, "c_abi", n)
    print(f"| {n} | {fmt(r)} | {fmt(z)} | {cost(r, z)} | {fmt(c)} | {cost(r, c)} |")
print("\n### c_abi_locked_update\n")
print("| threads | Rust API | C ABI | C ABI cost per operation |")
print("|---|---|---|---|")
for n in (1, 2):
    r, c = thr("c_abi_locked_update", "rust", n), thr("c_abi_locked_update", "c_abi", n)
    print(f"| {n} | {fmt(r)} | {fmt(c)} | {cost(r, c)} |")
PY
