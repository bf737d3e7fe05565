#!/usr/bin/env bash
# The Redis backend beside the phpredis way, in one run, on one real redis-server
# (loopback, persistence off, a free port): the session update of 1 KiB JSON sessions
# over 100k ids, 1 and 8 clients, 3 s each:
#   - sessync's Store on redis:// : Store::incr (one script call) and Store::lock +
#     Store::apply … release (two script calls, any change under the lock), with the
#     default shared connection (the threads' calls pipelined on one), and Store::incr
#     again with shared=0 (a pooled connection per call);
#   - the phpredis way: SET lock NX PX, GET, SET … EX, DEL lock (4 round trips);
#   - a hand-written Lua read-modify-write (1 round trip), for reference.
# Prints a Markdown table with ratios, Redis's own CPU time per update (INFO cpu),
# and writes docs/redis-bench.png from the same data.
# Needs redis-server, redis-cli and python3 (matplotlib from PyPI if missing). About
# 40 s per round (ROUNDS=3 by default).
# redis-server runs on one CPU and the load generator (daemon_load, sessync's client in
# it) on another, pinned with taskset (scripts/pin.sh: needs util-linux and 2 CPUs;
# SERVER_CPU and LOAD_CPU choose them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pin.sh
. scripts/pin.sh
for t in redis-server redis-cli python3; do
  command -v "$t" >/dev/null || { echo "missing: $t (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
cargo build --quiet --release --locked --example daemon_load

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
RP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${on_server[@]}" redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$RP" PING >/dev/null 2>&1; do sleep 0.1; done
show_pin redis-server "${pids[0]}"

URL="redis://127.0.0.1:$RP/?ttl=30m"
load=("${on_load[@]}" target/release/examples/daemon_load)
"${load[@]}" fill-redis "127.0.0.1:$RP"
"${load[@]}" fill-store "$URL"
csv="$dir/results.csv"
echo "round,mode,clients,ops_per_s,p50_us,p99_us" >"$csv"
# Redis's own CPU time per update (INFO cpu: user + system, what the server process
# spent, syscalls included, over the updates counted in INFO commandstats), beside each
# run. Not commandstats' usec: a script's includes the commands it calls, which are also
# counted on their own.
srv="$dir/server.csv"
echo "round,mode,clients,server_us" >"$srv"
cpu() { redis-cli -p "$RP" INFO cpu | python3 -c '
import sys
v = dict(l.strip().split(":", 1) for l in sys.stdin if ":" in l)
print(float(v["used_cpu_user"]) + float(v["used_cpu_sys"]))'; }
# run ROUND MODE ADDRESS CLIENTS [LABEL]: one cell, recorded under LABEL (default MODE).
run() {
  local round=$1 mode=$2 addr=$3 c=$4 label=${5:-$2}
  redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
  local before
  before=$(cpu)
  "${load[@]}" "$mode" "$addr" "$c" 3 | sed "s/^$mode,/$label,/; s/^/$round,/" >>"$csv"
  local after
  after=$(cpu)
  redis-cli -p "$RP" INFO commandstats | python3 -c '
import re, sys
r, mode, c, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[5]) - float(sys.argv[4])
calls = {}
for line in sys.stdin:
    m = re.match(r"cmdstat_([a-z|]+):calls=(\d+)", line)
    if m:
        calls[m.group(1)] = int(m.group(2))
# One update is: a DEL (phpredis), an EVALSHA (lua), an FCALL (incr), two FCALLs (lock).
n = {"phpredis": calls.get("del", 0), "lua": calls.get("evalsha", 0),
     "store-incr": calls.get("fcall", 0), "store-incr-pooled": calls.get("fcall", 0),
     "store-lock": calls.get("fcall", 0) / 2}[mode]
print(f"{r},{mode},{c},{secs * 1e6 / max(n, 1):.1f}")
' "$round" "$label" "$c" "$before" "$after" >>"$srv"
}
# CPU time the host took from this VM while the rounds ran ("steal" in /proc/stat): a
# busy host lengthens tails and moves the figures from round to round.
cpu_ticks() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
read -r steal0 total0 < <(cpu_ticks)
# ROUNDS rounds, each running every cell once, so that a slow spell of the machine falls
# on all of them alike; the tables give each cell's median, and each ratio is the median
# of the ratios within a round.
ROUNDS=${ROUNDS:-3}
for round in $(seq "$ROUNDS"); do
  for c in 1 8; do
    for mode in phpredis lua; do run "$round" "$mode" "127.0.0.1:$RP" "$c"; done
    for mode in store-incr store-lock; do run "$round" "$mode" "$URL" "$c"; done
    run "$round" store-incr "$URL&shared=0" "$c" store-incr-pooled
  done
done
read -r steal1 total1 < <(cpu_ticks)

python3 - "$csv" "$srv" <<'PY'
import csv, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1])))
srvs = list(csv.DictReader(open(sys.argv[2])))
rounds = sorted({r["round"] for r in runs})
MODES = ("phpredis", "lua", "store-incr", "store-lock", "store-incr-pooled")
def cell(m, c, field="ops_per_s", rows=runs):
    return statistics.median(float(r[field]) for r in rows if r["mode"] == m and r["clients"] == c)
def ratio(a, b, c):
    per = []
    for rd in rounds:
        x = {r["mode"]: float(r["ops_per_s"]) for r in runs if r["round"] == rd and r["clients"] == c}
        per.append(x[a] / x[b])
    return statistics.median(per), per
k = lambda m, c: f"{cell(m, c) / 1000:.1f} k/s (p99 {int(cell(m, c, 'p99_us'))} µs)"
def f(a, b, c):
    med, per = ratio(a, b, c)
    return f"**{med:.2f}×** ({', '.join(f'{x:.2f}' for x in per)})"
print(f"{len(rounds)} rounds; medians; each ratio is the median of the rounds' own ratios (each round's in brackets).\n")
print("| clients | phpredis way (4 RT) | Lua RMW (1 RT) | sessync incr (1 script) | sessync lock+apply (2 scripts) | sessync incr, shared=0 | incr vs phpredis | lock+apply vs phpredis | incr vs Lua | incr, shared=0, vs phpredis |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in ("1", "8"):
    print(f"| {c} | " + " | ".join(k(m, c) for m in MODES)
          + f" | {f('store-incr', 'phpredis', c)} | {f('store-lock', 'phpredis', c)} | {f('store-incr', 'lua', c)}"
          + f" | {f('store-incr-pooled', 'phpredis', c)} |")
print("\nRedis's own CPU time per update (µs, INFO cpu over the updates done; medians):\n")
print("| clients | phpredis way | Lua RMW | sessync incr | sessync lock+apply | sessync incr, shared=0 |")
print("|---|---|---|---|---|---|")
for c in ("1", "8"):
    print(f"| {c} | " + " | ".join(f"{cell(m, c, 'server_us', srvs):.1f}" for m in MODES) + " |")
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(8, 4.5))
modes = [("phpredis", "phpredis way (4 RT)"), ("lua", "Lua RMW (1 RT)"),
         ("store-incr", "sessync incr (1 script)"), ("store-lock", "sessync lock+apply (2 scripts)"),
         ("store-incr-pooled", "sessync incr, shared=0")]
for j, (m, name) in enumerate(modes):
    vals = [cell(m, c) / 1000 for c in ("1", "8")]
    ax.bar([i + (j - 2) * 0.16 for i in range(2)], vals, 0.16, label=name)
ax.set_xticks([0, 1]); ax.set_xticklabels(["1 client", "8 clients"]); ax.set_ylabel("k updates/s")
ax.set_title(f"Session update on one redis-server, 1 KiB JSON sessions, 100k ids (median of {len(rounds)} rounds)", fontsize=10); ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig("docs/redis-bench.png", dpi=110)
print("\nchart: docs/redis-bench.png")
PY
awk -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) 'BEGIN {
  printf "\nThe host took %.1f %% of this VM'"'"'s CPU time while the rounds ran (steal, /proc/stat).\n", 100 * s / (t > 0 ? t : 1) }'
pin_summary
