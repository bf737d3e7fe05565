#!/usr/bin/env bash
# Resident memory per session, in one run, side by side: the same SESSIONS (default
# 1,000,000) sessions of exactly 1 KiB of compact JSON (examples/memory_load.rs) held by
#   - mem:// in a process of its own: the RSS of a process that opened the store and wrote
#     them, minus its RSS before; then after it wrote each again whole (SessionData's text
#     keeps the capacity from_json gave it), and that again with each JSON sent with one
#     trailing space (which gives the text the capacity it needs: docs/benchmarks.md);
#   - sessyncd (mem://, a Unix socket in a temp dir): its RSS after redis-cli --pipe wrote
#     them (SESS.WRITE), minus its idle RSS; then after a second pass;
#   - redis-server (no persistence, a free loopback port): SET sess:<id> <the same JSON> EX
#     1800 through redis-cli --pipe, the same loader, minus its idle RSS; and, with
#     REDIS_LAYOUT=1 (the default), a second redis-server filled through sessync's own
#     Redis backend (Store::write on redis://, 8 threads): one hash per session.
# Prints a Markdown table: bytes per session and the ratio to Redis's plain strings.
# Needs redis-server, redis-cli (apt-get install redis-server redis-tools) and python3;
# about 4 GiB of free memory at the default count. SESSIONS=100000 for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in redis-server redis-cli python3; do
  command -v "$t" >/dev/null || { echo "missing: $t (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done
N=${SESSIONS:-1000000}
REDIS_LAYOUT=${REDIS_LAYOUT:-1}
cargo build --quiet --release --locked --bin sessyncd --example memory_load
load=target/release/examples/memory_load

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }   # KiB
# start_redis NAME: a redis-server on a free port; sets $rport and $rpid.
start_redis() {
  rport=$(port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/$1.log" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  until redis-cli -p "$rport" PING >/dev/null 2>&1; do sleep 0.1; done
}
used_memory() { redis-cli -p "$1" INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
# pipe_in ARGS…: redis-cli --pipe ARGS, failing unless every reply came back without error.
pipe_in() {
  local out
  out=$(redis-cli "$@" --pipe 2>&1)
  echo "$out" | grep -q "errors: 0, replies: $N" || { echo "fill failed: $out" >&2; exit 1; }
}
# Settled RSS: the kernel's figure a second after the last write.
settle() { sleep 1; }

res="$dir/results.csv"
echo "store,sessions,rss_idle_kib,rss_full_kib,heap_bytes,allocations,used_memory_idle,used_memory_full" >"$res"
echo "writing $N sessions of 1024 bytes of JSON into each store (one at a time)"

echo "mem:// in this process"
line=$($load mem "$N")
IFS=, read -r _ _ r0 r1 heap1 allocs1 r2 heap2 allocs2 <<<"$line"
echo "mem://,$N,$r0,$r1,$heap1,$allocs1,," >>"$res"
echo "mem://: each session written again whole,$N,$r0,$r2,$heap2,$allocs2,," >>"$res"
line=$($load mem "$N" pad)
IFS=, read -r _ _ r0 r1 heap1 allocs1 r2 heap2 allocs2 <<<"$line"
echo "mem://: each written again whole; JSON sent with a trailing space,$N,$r0,$r2,$heap2,$allocs2,," >>"$res"

echo "sessyncd"
target/release/sessyncd --unix "$dir/s.sock" --store "mem://?max_sessions=0" --log error >"$dir/sessyncd.log" 2>&1 &
spid=$!
pids+=("$spid")
until redis-cli -s "$dir/s.sock" PING >/dev/null 2>&1; do sleep 0.1; done
settle
s0=$(rss "$spid")
pipe_in -s "$dir/s.sock" < <($load resp sessync "$N")
settle
s1=$(rss "$spid")
[ -n "$(redis-cli -s "$dir/s.sock" SESS.FETCH "memory-session-$(printf %024d 0)")" ] || { echo "sessyncd lost the sessions" >&2; exit 1; }
echo "sessyncd,$N,$s0,$s1,,,," >>"$res"
pipe_in -s "$dir/s.sock" < <($load resp sessync "$N")
settle
echo "sessyncd: each session written again whole,$N,$s0,$(rss "$spid"),,,," >>"$res"
kill "$spid"

echo "redis-server, plain strings"
start_redis plain
settle
p0=$(rss "$rpid"); u0=$(used_memory "$rport")
pipe_in -p "$rport" < <($load resp redis "$N")
settle
p1=$(rss "$rpid"); u1=$(used_memory "$rport")
[ "$(redis-cli -p "$rport" DBSIZE)" = "$N" ] || { echo "redis-server holds $(redis-cli -p "$rport" DBSIZE) keys, not $N" >&2; exit 1; }
echo "redis-server (SET sess:<id> json EX 1800),$N,$p0,$p1,,,$u0,$u1" >>"$res"
redis_version=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')
kill "$rpid"

if [ "$REDIS_LAYOUT" = 1 ]; then
  echo "redis-server, through sessync's Redis backend"
  start_redis layout
  settle
  p0=$(rss "$rpid"); u0=$(used_memory "$rport")
  $load store "redis://127.0.0.1:$rport/" "$N" 8
  settle
  p1=$(rss "$rpid"); u1=$(used_memory "$rport")
  keys=$(redis-cli -p "$rport" DBSIZE)
  enc=$(redis-cli -p "$rport" OBJECT ENCODING "sessync:{memory-session-$(printf %024d 0)}" 2>/dev/null || true)
  echo "redis-server via sessync's Redis backend (a hash per session; $keys keys; encoding ${enc:-?}),$N,$p0,$p1,,,$u0,$u1" >>"$res"
  kill "$rpid"
fi

python3 - "$res" "$redis_version" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def per(r, a, b):
    return (float(r[b]) - float(r[a])) * (1024 if a.startswith("rss") else 1) / int(r["sessions"])
base = next(r for r in rows if r["store"].startswith("redis-server (SET"))
b = per(base, "rss_idle_kib", "rss_full_kib")
print(f"\n{rows[0]['sessions']} sessions of 1024 bytes of JSON; redis-server {sys.argv[2]}; RSS from /proc/PID/status (VmRSS)\n")
print("| store | RSS idle | RSS full | bytes per session (RSS) | vs Redis | heap asked per session | allocations per session | Redis used_memory per session |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    p = per(r, "rss_idle_kib", "rss_full_kib")
    heap = f"{float(r['heap_bytes']) / int(r['sessions']):.0f}" if r["heap_bytes"] else ""
    allocs = f"{float(r['allocations']) / int(r['sessions']):.1f}" if r["allocations"] else ""
    used = f"{per(r, 'used_memory_idle', 'used_memory_full'):.0f}" if r["used_memory_full"] else ""
    print(f"| {r['store']} | {int(r['rss_idle_kib']) / 1024:.0f} MiB | {int(r['rss_full_kib']) / 1024:.0f} MiB | "
          f"{p:.0f} | {p / b:.2f}× | {heap} | {allocs} | {used} |")
PY
