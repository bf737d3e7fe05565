# Sourced by the benchmark scripts that run a server beside its load generator
# (scripts/bench-daemon.sh, scripts/bench-redis.sh): pins the server(s) to
# one CPU and the load generator(s) to another with taskset (util-linux), so that the
# scheduler cannot put both on one core in one round and apart in the next, and sessyncd
# and redis-server get the same treatment. Fails, saying why, when taskset is missing or
# fewer than 2 CPUs are available: it never runs unpinned silently.
#
#   SERVER_CPU=n LOAD_CPU=m   choose the CPUs (default: the first two this shell may use)
#
# Provides: "${on_server[@]}" CMD… and "${on_load[@]}" CMD… (run CMD pinned: taskset
# execs CMD, so a server started in the background with them is $!), show_pin NAME PID
# (prints a running process's affinity, as the kernel reports it), pin_summary (a line
# for the end).

command -v taskset >/dev/null 2>&1 || {
  echo "missing: taskset, needed to pin the server and the load generator to separate CPUs (apt-get install util-linux)" >&2
  exit 1
}
# The CPUs this shell may run on (Cpus_allowed_list: "0-1", "0,2-3", …), one per line.
pin_cpus=$(awk '/^Cpus_allowed_list:/ {
  n = split($2, r, ",")
  for (i = 1; i <= n; i++) { split(r[i], ab, "-"); hi = (ab[2] == "" ? ab[1] : ab[2]); for (c = ab[1]; c <= hi; c++) print c }
}' /proc/self/status)
pin_count=$(echo "$pin_cpus" | grep -c .)
if [ "$pin_count" -lt 2 ]; then
  echo "this benchmark pins the server and the load generator to separate CPUs and needs at least 2; only $pin_count available (${pin_cpus//$'\n'/,}). Not running unpinned." >&2
  exit 1
fi
SERVER_CPU=${SERVER_CPU:-$(echo "$pin_cpus" | sed -n 1p)}
LOAD_CPU=${LOAD_CPU:-$(echo "$pin_cpus" | sed -n 2p)}
if [ "$SERVER_CPU" = "$LOAD_CPU" ]; then
  echo "SERVER_CPU and LOAD_CPU are both $SERVER_CPU: they must differ" >&2
  exit 1
fi
echo "pinning (taskset): servers on CPU $SERVER_CPU, load generators on CPU $LOAD_CPU ($pin_count CPUs available)"

on_server=(taskset -c "$SERVER_CPU")
on_load=(taskset -c "$LOAD_CPU")
show_pin() {
  local list
  list=$(taskset -pc "$2" | sed 's/.*: //')
  echo "  $1 (pid $2): CPU $list"
  [ "$list" = "$SERVER_CPU" ] || { echo "$1 (pid $2) is not pinned to CPU $SERVER_CPU" >&2; exit 1; }
}
pin_summary() { echo "Pinned with taskset: servers on CPU $SERVER_CPU, load generators on CPU $LOAD_CPU."; }
