#!/usr/bin/env bash
# The Redis backend beside the phpredis way, in one run, on one real redis-server
# (loopback, persistence off, a free port): the session update of 1 KiB JSON sessions
# over 100k ids, 1 and 8 clients, 3 s each:
#   - sessync's Store on redis:// : Store::incr (one script call) and Store::lock +
#     Store::apply … release (two script calls, any change under the lock);
#   - the phpredis way: SET lock NX PX, GET, SET … EX, DEL lock (4 round trips);
#   - a hand-written Lua read-modify-write (1 round trip), for reference.
# Prints a Markdown table with ratios, Redis's own CPU time per update (INFO cpu),
# and writes docs/redis-bench.png from the same data.
# Needs redis-server, redis-cli and python3 (matplotlib from PyPI if missing). About a
# minute.
set -euo pipefail
cd "$(dirname "$0")/.."
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
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$RP" PING >/dev/null 2>&1; do sleep 0.1; done

URL="redis://127.0.0.1:$RP/?ttl=30m"
load=target/release/examples/daemon_load
$load fill-redis "127.0.0.1:$RP"
$load fill-store "$URL"
csv="$dir/results.csv"
echo "mode,clients,ops_per_s,p50_us,p99_us" >"$csv"
# Redis's own CPU time per update (INFO cpu: user + system, what the server process
# spent, syscalls included, over the updates counted in INFO commandstats), beside each
# run. Not commandstats' usec: a script's includes the commands it calls, which are also
# counted on their own.
srv="$dir/server.csv"
echo "mode,clients,server_us" >"$srv"
cpu() { redis-cli -p "$RP" INFO cpu | python3 -c '
import sys
v = dict(l.strip().split(":", 1) for l in sys.stdin if ":" in l)
print(float(v["used_cpu_user"]) + float(v["used_cpu_sys"]))'; }
run() {
  local mode=$1 addr=$2 c=$3
  redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
  local before
  before=$(cpu)
  $load "$mode" "$addr" "$c" 3 >>"$csv"
  local after
  after=$(cpu)
  redis-cli -p "$RP" INFO commandstats | python3 -c '
import re, sys
mode, c, secs = sys.argv[1], sys.argv[2], float(sys.argv[4]) - float(sys.argv[3])
calls = {}
for line in sys.stdin:
    m = re.match(r"cmdstat_([a-z|]+):calls=(\d+)", line)
    if m:
        calls[m.group(1)] = int(m.group(2))
# One update is: a DEL (phpredis), an EVALSHA (lua), an FCALL (incr), two FCALLs (lock).
n = {"phpredis": calls.get("del", 0), "lua": calls.get("evalsha", 0),
     "store-incr": calls.get("fcall", 0), "store-lock": calls.get("fcall", 0) / 2}[mode]
print(f"{mode},{c},{secs * 1e6 / max(n, 1):.1f}")
' "$mode" "$c" "$before" "$after" >>"$srv"
}
for c in 1 8; do
  for mode in phpredis lua; do run "$mode" "127.0.0.1:$RP" "$c"; done
  for mode in store-incr store-lock; do run "$mode" "$URL" "$c"; done
done

python3 - "$csv" "$srv" <<'PY'
import csv, sys
rows = {(r["mode"], r["clients"]): r for r in csv.DictReader(open(sys.argv[1]))}
srv = {(r["mode"], r["clients"]): r["server_us"] for r in csv.DictReader(open(sys.argv[2]))}
k = lambda r: f"{float(r['ops_per_s'])/1000:.1f} k/s (p99 {int(r['p99_us'])} µs)"
f = lambda a, b: f"{float(a['ops_per_s'])/float(b['ops_per_s']):.1f}×"
print("| clients | phpredis way (4 RT) | Lua RMW (1 RT) | sessync incr (1 script) | sessync lock+apply (2 scripts) | incr vs phpredis | lock+apply vs phpredis | incr vs Lua |")
print("|---|---|---|---|---|---|---|---|")
for c in ("1", "8"):
    ph, lu, si, sl = (rows[(m, c)] for m in ("phpredis", "lua", "store-incr", "store-lock"))
    print(f"| {c} | {k(ph)} | {k(lu)} | {k(si)} | {k(sl)} | {f(si, ph)} | {f(sl, ph)} | {f(si, lu)} |")
print("\nRedis's own CPU time per update (µs, INFO cpu over the updates done):\n")
print("| clients | phpredis way | Lua RMW | sessync incr | sessync lock+apply |")
print("|---|---|---|---|---|")
for c in ("1", "8"):
    print(f"| {c} | " + " | ".join(srv[(m, c)] for m in ("phpredis", "lua", "store-incr", "store-lock")) + " |")
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(8, 4.5))
modes = [("phpredis", "phpredis way (4 RT)"), ("lua", "Lua RMW (1 RT)"),
         ("store-incr", "sessync incr (1 script)"), ("store-lock", "sessync lock+apply (2 scripts)")]
for j, (m, name) in enumerate(modes):
    vals = [float(rows[(m, c)]["ops_per_s"]) / 1000 for c in ("1", "8")]
    ax.bar([i + (j - 1.5) * 0.2 for i in range(2)], vals, 0.2, label=name)
ax.set_xticks([0, 1]); ax.set_xticklabels(["1 client", "8 clients"]); ax.set_ylabel("k updates/s")
ax.set_title("Session update on one redis-server, 1 KiB JSON sessions, 100k ids"); ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig("docs/redis-bench.png", dpi=110)
print("\nchart: docs/redis-bench.png")
PY
