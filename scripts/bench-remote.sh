#!/usr/bin/env bash
# The remote backend's connections under load: one process whose THREADS threads share one
# Store on one sessyncd, with shared=0 (every request takes a pooled connection of its own:
# the client as it was before pipelining) beside shared=1, 2 and 4 (requests pipelined on
# that many shared connections). Same build, same daemon, same run.
#
#   scripts/bench-remote.sh                 # unix socket, 5 s per figure
#   TRANSPORT=tcp SECONDS_EACH=10 scripts/bench-remote.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-5}
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
echo "transport,mode,threads,shared,ops_per_s,p50_us,p99_us"
for mode in $MODES; do
  for threads in 1 8; do
    for shared in 0 1 2 4; do
      line=$(target/release/examples/remote_load "${base}shared=$shared" "$threads" "$SECONDS_EACH" "$mode")
      echo "$TRANSPORT,${line%%,*},$threads,$shared,$(echo "$line" | cut -d, -f3-)"
    done
  done
done
