#!/usr/bin/env bash
# A bounded soak of sessyncd: mixed session traffic through sessync's own client
# (examples/soak_load.rs: Store on a Unix socket, 8 threads over 4 stores; short-TTL
# writes, fetches, begin/get/set/commit, begin/abort, patches, increments, destroys,
# rotations, connections opened and dropped), a large share of the sessions with TTLs of
# 1–6 s so that many expire during the run. Prints ops/s, the daemon's RSS and open
# descriptors (/proc/PID/fd) and its SESS.STATS every 10 s; the RSS and descriptors of the
# idle daemon before and after (clients closed); and a verdict line.
#
#   scripts/soak.sh                  # 2 minutes
#   scripts/soak.sh --seconds 30     # or SOAK_SECONDS=30: a quick run
#
# SOAK_THREADS (8), SOAK_EVERY (10 s between reports), SOAK_RSS_TOLERANCE (10 %: how far
# the end RSS may be above the plateau, the median of the second half's samples, and how
# much the RSS may grow over the second half), SOAK_STORE (the daemon's --store, default
# mem://?ttl=60s&tombstone_ttl=10s&rotate_grace=2s: every session, tombstone, alias and
# timer lives at most a minute, so the second half of a 2-minute run shows the steady
# state; with the store's default TTL of 30 minutes the expiry timers of destroyed and
# rotated sessions stay queued for up to 30 minutes, and memory grows for that long: see
# docs/benchmarks.md). Exit status 1 if the verdict is not steady or a client call failed
# unexpectedly.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SOAK_SECONDS:-120}
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --seconds=*) SECS=${1#*=}; shift ;;
    *) echo "usage: scripts/soak.sh [--seconds N]" >&2; exit 2 ;;
  esac
done
THREADS=${SOAK_THREADS:-8}
EVERY=${SOAK_EVERY:-10}
TOL=${SOAK_RSS_TOLERANCE:-10}
STORE=${SOAK_STORE:-mem://?ttl=60s&tombstone_ttl=10s&rotate_grace=2s}
command -v python3 >/dev/null || { echo "missing: python3" >&2; exit 1; }
cargo build --quiet --release --locked --bin sessyncd --example soak_load

dir=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
target/release/sessyncd --unix "$dir/s.sock" --store "$STORE" --log warn >"$dir/out" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
[ -S "$dir/s.sock" ] || { echo "sessyncd did not start: $(cat "$dir/out")" >&2; exit 1; }
sleep 1
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }   # KiB
fds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rss0=$(rss); fd0=$(fds)
echo "sessyncd pid $pid, idle: RSS $rss0 KiB, $fd0 open descriptors"
echo "soak: $SECS s, $THREADS client threads, a report every $EVERY s, store $STORE"
status=0
target/release/examples/soak_load "unix://$dir/s.sock" "$SECS" "$THREADS" "$pid" "$EVERY" | tee "$dir/run.csv" || status=$?
sleep 2   # the clients have closed their connections
rss1=$(rss); fd1=$(fds)
echo "sessyncd after the clients closed: RSS $rss1 KiB, $fd1 open descriptors"
python3 - "$dir/run.csv" "$rss0" "$fd0" "$rss1" "$fd1" "$TOL" "$status" <<'PY'
import statistics, sys
path, rss0, fd0, rss1, fd1, tol, status = sys.argv[1], *map(int, sys.argv[2:])
rows = []
for line in open(path):
    f = line.strip().split(",")
    if len(f) == 10 and f[0].replace(".", "").isdigit():
        rows.append([float(x) for x in f])
rss = [r[3] for r in rows]
second = rss[len(rss) // 2:]
plateau = statistics.median(second)
end = rss[-1]
growth = (second[-1] - second[0]) / second[0] * 100
ops = [r[2] for r in rows]
print(f"\nthroughput: {statistics.median(ops):.0f} ops/s median of {len(rows)} intervals "
      f"(min {min(ops):.0f}, max {max(ops):.0f}); {int(rows[-1][1])} operations")
print(f"RSS: idle {rss0 / 1024:.1f} MiB, plateau {plateau / 1024:.1f} MiB (median of the second half), "
      f"end of load {end / 1024:.1f} MiB ({(end - plateau) / plateau * 100:+.1f} %), growth over the second half "
      f"{growth:+.1f} %, after the clients closed {rss1 / 1024:.1f} MiB")
print(f"descriptors: idle {fd0}, under load {int(min(r[4] for r in rows))}–{int(max(r[4] for r in rows))}, "
      f"after the clients closed {fd1}")
mem_ok = end <= plateau * (1 + tol / 100) and growth <= tol
fd_ok = fd1 == fd0
verdict = "PASS" if mem_ok and fd_ok and status == 0 else "FAIL"
print(f"verdict: {verdict}: memory {'steady' if mem_ok else 'NOT steady'} (end within {tol} % of the plateau "
      f"and at most {tol} % growth over the second half); descriptors "
      f"{'the same at the end as at the start' if fd_ok else f'{fd0} at the start, {fd1} at the end'}; "
      f"{'no unexpected client errors' if status == 0 else 'client errors (see above)'}")
sys.exit(0 if verdict == "PASS" else 1)
PY
