#!/usr/bin/env bash
# sessyncd beside a real redis-server, in one run, same machine, same clients:
#  (a) GET and SET of 1 KiB values over 100k keys, 1 and 50 connections, unpipelined and
#      16 in flight (redis-benchmark, against both servers);
#  (b) the session update (1 KiB JSON sessions, 100k ids, 1 and 8 clients):
#      sessyncd's SESS.INCR (1 round trip) and SESS.LOCK + SESS.APPLY (2) against, on
#      Redis, the phpredis way (SET lock NX PX, GET, SET EX, DEL: 4) and a Lua script (1).
# Prints Markdown tables with ratios and writes docs/daemon-bench.png from the same data.
# Needs redis-server, redis-benchmark (apt-get install redis-server redis-tools) and
# python3 (matplotlib is installed from PyPI if missing). Takes about three minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in redis-server redis-benchmark redis-cli python3; do
  command -v "$t" >/dev/null || { echo "missing: $t (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
cargo build --quiet --release --locked --bin sessyncd --example daemon_load

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RP=$(port); SP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
target/release/sessyncd --tcp "127.0.0.1:$SP" --log error >"$dir/sessyncd.log" 2>&1 &
pids+=($!)
for p in "$RP" "$SP"; do
  until redis-cli -p "$p" PING >/dev/null 2>&1; do sleep 0.1; done
done

csv="$dir/results.csv"
echo "kind,server,test,clients,pipeline,ops_per_s,p50_ms,p99_ms" >"$csv"
for server in redis sessyncd; do
  p=$RP; [ "$server" = sessyncd ] && p=$SP
  for c in 1 50; do
    for pl in 1 16; do
      n=100000; [ "$c" = 1 ] && [ "$pl" = 1 ] && n=20000
      redis-benchmark -h 127.0.0.1 -p "$p" -t set,get -n "$n" -r 100000 -d 1024 -c "$c" -P "$pl" --csv 2>/dev/null |
        python3 -c '
import csv, sys
for row in csv.reader(sys.stdin):
    if row and row[0] in ("SET", "GET"):
        print(f"kv,'"$server"',{row[0]},'"$c"','"$pl"',{float(row[1]):.0f},{row[4]},{row[6]}")
' >>"$csv"
    done
  done
done

target/release/examples/daemon_load fill-redis "127.0.0.1:$RP"
target/release/examples/daemon_load fill-sessync "127.0.0.1:$SP"
for c in 1 8; do
  for mode in phpredis lua; do
    target/release/examples/daemon_load "$mode" "127.0.0.1:$RP" "$c" 3 | awk -F, '{printf "update,redis,%s,%s,1,%s,%.3f,%.3f\n",$1,$2,$3,$4/1000,$5/1000}' >>"$csv"
  done
  for mode in sessync-incr sessync-lock; do
    target/release/examples/daemon_load "$mode" "127.0.0.1:$SP" "$c" 3 | awk -F, '{printf "update,sessyncd,%s,%s,1,%s,%.3f,%.3f\n",$1,$2,$3,$4/1000,$5/1000}' >>"$csv"
  done
done

python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def get(kind, server, test, c, p):
    for r in rows:
        if (r["kind"], r["server"], r["test"], r["clients"], r["pipeline"]) == (kind, server, test, str(c), str(p)):
            return r
def k(x):
    return f"{float(x)/1000:.1f} k/s"
print("### (a) GET and SET, 1 KiB values, 100k keys (redis-benchmark)\n")
print("| test | clients | in flight | Redis | sessyncd | ratio | p99 Redis | p99 sessyncd |")
print("|---|---|---|---|---|---|---|---|")
for t in ("SET", "GET"):
    for c in (1, 50):
        for p in (1, 16):
            r, s = get("kv", "redis", t, c, p), get("kv", "sessyncd", t, c, p)
            if r and s:
                print(f"| {t} | {c} | {p} | {k(r['ops_per_s'])} | {k(s['ops_per_s'])} | "
                      f"{float(s['ops_per_s'])/float(r['ops_per_s']):.2f}× | {r['p99_ms']} ms | {s['p99_ms']} ms |")
print("\n### (b) the session update, 1 KiB JSON sessions, 100k ids\n")
print("| clients | phpredis way (4 RT) | Lua (1 RT) | SESS.INCR (1 RT) | SESS.LOCK+APPLY (2 RT) | INCR vs phpredis | INCR vs Lua | LOCK+APPLY vs phpredis | LOCK+APPLY vs Lua |")
print("|---|---|---|---|---|---|---|---|---|")
for c in (1, 8):
    ph, lu = get("update", "redis", "phpredis", c, 1), get("update", "redis", "lua", c, 1)
    si, sl = get("update", "sessyncd", "sessync-incr", c, 1), get("update", "sessyncd", "sessync-lock", c, 1)
    f = lambda a, b: f"{float(a['ops_per_s'])/float(b['ops_per_s']):.1f}×"
    print(f"| {c} | {k(ph['ops_per_s'])} | {k(lu['ops_per_s'])} | {k(si['ops_per_s'])} | {k(sl['ops_per_s'])} | "
          f"{f(si, ph)} | {f(si, lu)} | {f(sl, ph)} | {f(sl, lu)} |")

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8))
labels, rv, sv = [], [], []
for t in ("SET", "GET"):
    for c in (1, 50):
        for p in (1, 16):
            r, s = get("kv", "redis", t, c, p), get("kv", "sessyncd", t, c, p)
            if r and s:
                labels.append(f"{t}\n{c}c P{p}"); rv.append(float(r["ops_per_s"])/1000); sv.append(float(s["ops_per_s"])/1000)
x = range(len(labels))
a1.bar([i - 0.2 for i in x], rv, 0.4, label="redis-server")
a1.bar([i + 0.2 for i in x], sv, 0.4, label="sessyncd")
a1.set_xticks(list(x)); a1.set_xticklabels(labels, fontsize=8); a1.set_ylabel("k ops/s"); a1.set_title("GET / SET, 1 KiB (redis-benchmark)"); a1.legend()
modes = [("redis", "phpredis", "phpredis way (Redis)"), ("redis", "lua", "Lua script (Redis)"),
         ("sessyncd", "sessync-incr", "SESS.INCR"), ("sessyncd", "sessync-lock", "SESS.LOCK+APPLY")]
for j, (srv, m, name) in enumerate(modes):
    vals = [float(get("update", srv, m, c, 1)["ops_per_s"])/1000 for c in (1, 8)]
    a2.bar([i + (j - 1.5) * 0.2 for i in range(2)], vals, 0.2, label=name)
a2.set_xticks([0, 1]); a2.set_xticklabels(["1 client", "8 clients"]); a2.set_ylabel("k updates/s"); a2.set_title("Session update, 1 KiB JSON"); a2.legend(fontsize=8)
fig.tight_layout()
fig.savefig("docs/daemon-bench.png", dpi=110)
print("\nchart: docs/daemon-bench.png")
PY
