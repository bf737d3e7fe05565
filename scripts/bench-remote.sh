#!/usr/bin/env bash
# The remote backend's connections under load: one process whose THREADS threads share one
# Store on one sessyncd, with shared=0 (every request takes a pooled connection of its own:
# the client as it was before pipelining) beside shared=1, 2 and 4 (requests pipelined on
# that many shared connections). Same build, same daemon, same run.
#
# Each figure is run ROUNDS times, the configurations interleaved within a round (so a
# burst of load from elsewhere on the machine hits them alike); the table at the end is
# the median of each.
#
#   scripts/bench-remote.sh                 # unix socket, 3 rounds of 3 s per figure
#   TRANSPORT=tcp SECONDS_EACH=5 ROUNDS=5 scripts/bench-remote.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-3}
ROUNDS=${ROUNDS:-3}
TRANSPORT=${TRANSPORT:-unix}
MODES=${MODES:-"incr fetch lock"}
cargo build --release --locked --quiet --bin sessyncd --example remote_load
dir=$(mktemp -d)
token=bench-token-not-secret
SESSYNCD_TOKEN=$token target/release/sessyncd --unix "$dir/s.sock" --tcp 127.0.0.1:0 --log warn >"$dir/out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q unix "$dir/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on tcp:127.0.0.1://p' "$dir/out")
case $TRANSPORT in
  unix) base="unix://$dir/s.sock?" ;;
  tcp) base="tcp://:$token@127.0.0.1:$port?" ;;
  *) echo "TRANSPORT is unix or tcp" >&2; exit 2 ;;
esac
echo "transport,mode,threads,shared,ops_per_s,p50_us,p99_us" | tee "$dir/runs.csv"
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    for threads in 1 8; do
      for shared in 0 1 2 4; do
        line=$(target/release/examples/remote_load "${base}shared=$shared" "$threads" "$SECONDS_EACH" "$mode")
        echo "$TRANSPORT,${line%%,*},$threads,$shared,$(echo "$line" | cut -d, -f3-)" | tee -a "$dir/runs.csv"
      done
    done
  done
done
echo
echo "median of $ROUNDS rounds (ops/s, p99 us), and ops/s over shared=0 of the same mode and threads:"
tail -n +2 "$dir/runs.csv" | sort -t, -k2,2 -k3,3n -k4,4n -k5,5n | awk -F, -v n="$ROUNDS" '
  { key = $2 "," $3 "," $4; ops[key, ++c[key]] = $5; p99[key, c[key]] = $7; keys[key] = 1 }
  END {
    for (k in keys) {
      m = int((c[k] + 1) / 2); split(k, f, ",")
      # ops are sorted by the sort above; p99 sorted here
      for (i = 1; i <= c[k]; i++) q[i] = p99[k, i]
      for (i = 1; i <= c[k]; i++) for (j = i + 1; j <= c[k]; j++) if (q[j] < q[i]) { t = q[i]; q[i] = q[j]; q[j] = t }
      med[k] = ops[k, m]; mp99[k] = q[m]
    }
    printf "%-6s %-7s %-7s %10s %8s %8s\n", "mode", "threads", "shared", "ops/s", "p99_us", "ratio"
    for (k in keys) {
      split(k, f, ","); base = f[1] "," f[2] ",0"
      printf "%-6s %-7s %-7s %10d %8d %7.2fx\n", f[1], f[2], f[3], med[k], mp99[k], med[k] / med[base]
    }
  }' | (read -r header; echo "$header"; sort -k1,1 -k2,2n -k3,3n)
