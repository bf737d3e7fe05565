#!/usr/bin/env bash
# sessyncd beside a real redis-server, in one run, same machine, same clients:
#  (a) GET and SET of 1 KiB values over 100k keys, 1 and 50 connections, unpipelined and
#      16 in flight (redis-benchmark, against both servers);
#  (b) the session update (1 KiB JSON sessions, 100k ids, 1 and 8 clients):
#      sessyncd's SESS.INCR (1 round trip) and SESS.LOCK + SESS.APPLY (2) against, on
#      Redis, the phpredis way (SET lock NX PX, GET, SET EX, DEL: 4) and a Lua script (1).
# Prints Markdown tables with ratios and writes docs/daemon-bench.png from the same data.
# Needs redis-server, redis-benchmark (apt-get install redis-server redis-tools) and
# python3 (matplotlib is installed from PyPI if missing). SESSYNCD_ARGS adds flags to
# sessyncd's command line (e.g. "--threads 2"). About a minute per round
# (ROUNDS=3 by default); RESULTS_CSV=file keeps the raw figures.
# Both servers run on one CPU and every load generator (redis-benchmark, daemon_load) on
# another, pinned with taskset (scripts/pin.sh: needs util-linux and 2 CPUs; SERVER_CPU and
# LOAD_CPU choose them).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pin.sh
. scripts/pin.sh
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
"${on_server[@]}" redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
# shellcheck disable=SC2086 # SESSYNCD_ARGS is split into flags on purpose
"${on_server[@]}" target/release/sessyncd --tcp "127.0.0.1:$SP" --log error ${SESSYNCD_ARGS:-} >"$dir/sessyncd.log" 2>&1 &
pids+=($!)
for p in "$RP" "$SP"; do
  until redis-cli -p "$p" PING >/dev/null 2>&1; do sleep 0.1; done
done
show_pin redis-server "${pids[0]}"
show_pin sessyncd "${pids[1]}"

csv="$dir/results.csv"
echo "round,kind,server,test,clients,pipeline,ops_per_s,p50_ms,p99_ms" >"$csv"
# CPU time the host took from this VM while the rounds ran ("steal" in /proc/stat): a
# busy host lengthens tails and moves the figures from round to round.
cpu_ticks() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# ROUNDS rounds, each running every cell once on both servers back to back (which goes
# first alternates), so that a slow spell of this VM falls on both alike. The tables give
# each cell's median and the median of the rounds' own ratios.
ROUNDS=${ROUNDS:-3}
"${on_load[@]}" target/release/examples/daemon_load fill-redis "127.0.0.1:$RP"
"${on_load[@]}" target/release/examples/daemon_load fill-sessync "127.0.0.1:$SP"
read -r steal0 total0 < <(cpu_ticks)
for round in $(seq "$ROUNDS"); do
  order="redis sessyncd"; [ $((round % 2)) = 0 ] && order="sessyncd redis"
  for c in 1 50; do
    for pl in 1 16; do
      n=100000; [ "$c" = 1 ] && [ "$pl" = 1 ] && n=20000
      for server in $order; do
        p=$RP; [ "$server" = sessyncd ] && p=$SP
        "${on_load[@]}" redis-benchmark -h 127.0.0.1 -p "$p" -t set,get -n "$n" -r 100000 -d 1024 -c "$c" -P "$pl" --csv 2>/dev/null |
          python3 -c '
import csv, sys
for row in csv.reader(sys.stdin):
    if row and row[0] in ("SET", "GET"):
        print(f"'"$round"',kv,'"$server"',{row[0]},'"$c"','"$pl"',{float(row[1]):.0f},{row[4]},{row[6]}")
' >>"$csv"
      done
    done
  done
  for c in 1 8; do
    for mode in phpredis lua; do
      "${on_load[@]}" target/release/examples/daemon_load "$mode" "127.0.0.1:$RP" "$c" 3 | awk -F, -v r="$round" '{printf "%s,update,redis,%s,%s,1,%s,%.3f,%.3f\n",r,$1,$2,$3,$4/1000,$5/1000}' >>"$csv"
    done
    for mode in sessync-incr sessync-lock; do
      "${on_load[@]}" target/release/examples/daemon_load "$mode" "127.0.0.1:$SP" "$c" 3 | awk -F, -v r="$round" '{printf "%s,update,sessyncd,%s,%s,1,%s,%.3f,%.3f\n",r,$1,$2,$3,$4/1000,$5/1000}' >>"$csv"
    done
  done
done
read -r steal1 total1 < <(cpu_ticks)
[ -n "${RESULTS_CSV:-}" ] && cp "$csv" "$RESULTS_CSV"

python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rounds = sorted({r["round"] for r in rows}, key=int)
def cells(kind, server, test, c, p):
    return {r["round"]: r for r in rows
            if (r["kind"], r["server"], r["test"], r["clients"], r["pipeline"]) == (kind, server, test, str(c), str(p))}
def med(kind, server, test, c, p, field="ops_per_s"):
    v = [float(r[field]) for r in cells(kind, server, test, c, p).values()]
    return statistics.median(v) if v else None
def ratio(a, b):
    """The median of the rounds' own ratios a/b, and each round's."""
    per = [float(a[x]["ops_per_s"]) / float(b[x]["ops_per_s"]) for x in rounds if x in a and x in b]
    return statistics.median(per), per
def k(x):
    return f"{x/1000:.1f} k/s"
def fr(r, digits=2):
    m, per = r
    return f"{m:.{digits}f}× ({', '.join(f'{x:.{digits}f}' for x in per)})"
print(f"{len(rounds)} rounds; medians; each ratio is the median of the rounds' own ratios (each round's in brackets).\n")
print("### (a) GET and SET, 1 KiB values, 100k keys (redis-benchmark)\n")
print("| test | clients | in flight | Redis | sessyncd | ratio | p99 Redis | p99 sessyncd |")
print("|---|---|---|---|---|---|---|---|")
for t in ("SET", "GET"):
    for c in (1, 50):
        for p in (1, 16):
            r, s = cells("kv", "redis", t, c, p), cells("kv", "sessyncd", t, c, p)
            if r and s:
                print(f"| {t} | {c} | {p} | {k(med('kv', 'redis', t, c, p))} | {k(med('kv', 'sessyncd', t, c, p))} | "
                      f"{fr(ratio(s, r))} | {med('kv', 'redis', t, c, p, 'p99_ms'):.3f} ms | {med('kv', 'sessyncd', t, c, p, 'p99_ms'):.3f} ms |")
print("\n### (b) the session update, 1 KiB JSON sessions, 100k ids\n")
print("| clients | phpredis way (4 RT) | Lua (1 RT) | SESS.INCR (1 RT) | SESS.LOCK+APPLY (2 RT) | INCR vs phpredis | INCR vs Lua | LOCK+APPLY vs phpredis | LOCK+APPLY vs Lua |")
print("|---|---|---|---|---|---|---|---|---|")
for c in (1, 8):
    ph, lu = cells("update", "redis", "phpredis", c, 1), cells("update", "redis", "lua", c, 1)
    si, sl = cells("update", "sessyncd", "sessync-incr", c, 1), cells("update", "sessyncd", "sessync-lock", c, 1)
    m = lambda srv, mode: k(med("update", srv, mode, c, 1))
    print(f"| {c} | {m('redis', 'phpredis')} | {m('redis', 'lua')} | {m('sessyncd', 'sessync-incr')} | {m('sessyncd', 'sessync-lock')} | "
          f"{fr(ratio(si, ph), 1)} | {fr(ratio(si, lu), 1)} | {fr(ratio(sl, ph), 1)} | {fr(ratio(sl, lu), 1)} |")

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8))
labels, rv, sv = [], [], []
for t in ("SET", "GET"):
    for c in (1, 50):
        for p in (1, 16):
            r, s = med("kv", "redis", t, c, p), med("kv", "sessyncd", t, c, p)
            if r and s:
                labels.append(f"{t}\n{c}c P{p}"); rv.append(r/1000); sv.append(s/1000)
x = range(len(labels))
a1.bar([i - 0.2 for i in x], rv, 0.4, label="redis-server")
a1.bar([i + 0.2 for i in x], sv, 0.4, label="sessyncd")
a1.set_xticks(list(x)); a1.set_xticklabels(labels, fontsize=8); a1.set_ylabel("k ops/s"); a1.set_title(f"GET / SET, 1 KiB (redis-benchmark, median of {len(rounds)} rounds)"); a1.legend()
modes = [("redis", "phpredis", "phpredis way (Redis)"), ("redis", "lua", "Lua script (Redis)"),
         ("sessyncd", "sessync-incr", "SESS.INCR"), ("sessyncd", "sessync-lock", "SESS.LOCK+APPLY")]
for j, (srv, m, name) in enumerate(modes):
    vals = [med("update", srv, m, c, 1)/1000 for c in (1, 8)]
    a2.bar([i + (j - 1.5) * 0.2 for i in range(2)], vals, 0.2, label=name)
a2.set_xticks([0, 1]); a2.set_xticklabels(["1 client", "8 clients"]); a2.set_ylabel("k updates/s"); a2.set_title("Session update, 1 KiB JSON"); a2.legend(fontsize=8)
fig.tight_layout()
fig.savefig("docs/daemon-bench.png", dpi=110)
print("\nchart: docs/daemon-bench.png")
PY
awk -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) 'BEGIN {
  printf "\nThe host took %.1f %% of this VM'"'"'s CPU time while the rounds ran (steal, /proc/stat).\n", 100 * s / (t > 0 ? t : 1) }'
pin_summary
