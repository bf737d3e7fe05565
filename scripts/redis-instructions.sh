#!/usr/bin/env bash
# Instructions that redis-server spends on one increment of a 1 KiB session through the
# Redis backend's Lua code, counted by valgrind's callgrind (instructions, not time: the
# same on every run, whatever else the machine does). Four calls: the increment's own path
# as Store::incr sends it (FCALL), the general patch path for the same change (FCALL),
# the increment's path as a script (EVALSHA), and an empty function called with the same
# arguments (what any call costs). Each figure is (total after setup + 2N calls - total
# after setup + N calls) / N. Needs redis-server, redis-cli, valgrind, python3. About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in redis-server redis-cli valgrind python3; do
  command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done
N=${N:-500}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The calls, as redis-cli input: setup (load the code, write the session), then N calls.
python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
src = open("src/backend/redis/store.lua").read()
# The settings the client writes in for redis://…/?ttl=30m (see Redis::new).
for k, v in {"@TTL@": "1800000", "@ABS@": "86400000", "@TOUCH@": "180000", "@FRAC@": "0.1",
             "@TOMB@": "300000", "@GRACE@": "10000", "@MAXB@": "65536", "@MAXS@": "0",
             "@LRU@": "false", "@SAME@": "true", "@PREFIX@": "'sessync:'",
             "@LAYOUT@": "'n'"}.items():
    src = src.replace(k, v)
lib = "#!lua name=bench\n" + src.replace("@TAIL@", "redis.register_function('bench', main)")
script = src.replace("@TAIL@", "return main(KEYS, ARGV)")
empty = "#!lua name=empty\nredis.register_function('empty', function(k, a) return 1 end)"
sid = "bench-session-000000000000000007"
keys = f"sessync:{{{sid}}} sessync:{{{sid}}}:t sessync:{{{sid}}}:a"
data = {"cart": [{"price": 1999, "qty": 1, "sku": f"SKU-{n:05}"} for n in range(8)],
        "flash": "x" * 500, "user": {"id": 7, "name": "visitor-7"}, "views": 0}
q = lambda t: "'" + t.replace("\\", "\\\\").replace("'", "\\'") + "'"
members = " ".join(q(json.dumps(k)) + " " + q(json.dumps(v, separators=(",", ":")))
                   for k, v in data.items())
now = "w1700000000000"
open(f"{d}/lib.lua", "w").write(lib)
open(f"{d}/empty.lua", "w").write(empty)
open(f"{d}/script.lua", "w").write(script)
# What Store::incr sends: the increment's own path (1 key; now, now + TTL, now + TTL -
# absolute TTL), and the general patch it falls back to.
t = 1700000000000
fast = f"1 sessync:{{{sid}}} + {t} {t + 1800000} {t + 1800000 - 86400000:013} '\"views\"' 1"
patch = f"3 {keys} patch {now} {sid} '' '' '' 0 0 '' I '\"views\"' 1"
open(f"{d}/setup", "w").write(f"FCALL bench 3 {keys} write {now} {sid} '' '' '' 0 '' {members}\n")
open(f"{d}/fcall", "w").write(f"FCALL bench {fast}\n")
open(f"{d}/patch", "w").write(f"FCALL bench {patch}\n")
open(f"{d}/empty", "w").write(f"FCALL empty {fast}\n")
open(f"{d}/eval", "w").write(f"EVALSHA @SHA@ {fast}\n")
PY

# Total instructions of a redis-server that ran the setup and then n copies of a call.
count() {
  local call=$1 n=$2 out="$dir/cg.out"
  rm -f "$out"
  valgrind --tool=callgrind --callgrind-out-file="$out" redis-server --port "$port" \
    --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 &
  local pid=$!
  # A failure stops the server too (it would run on under valgrind).
  stop() { redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true; wait "$pid" || true; }
  fail() { echo "$1" >&2; stop; exit 1; }
  until redis-cli -p "$port" PING >/dev/null 2>&1; do sleep 0.2; done
  local sha setup
  # A code that does not load or a set-up that fails says so (not a count of errors).
  for lib in lib empty; do
    setup=$(redis-cli -p "$port" -x FUNCTION LOAD REPLACE <"$dir/$lib.lua")
    case $setup in *ERR*) fail "$lib.lua does not load: $setup" ;; esac
  done
  sha=$(redis-cli -p "$port" -x SCRIPT LOAD <"$dir/script.lua")
  setup=$(redis-cli -p "$port" <"$dir/setup")
  case $setup in *ERR*) fail "the set-up failed: $setup" ;; esac
  if [ "$n" -gt 0 ]; then
    for _ in $(seq "$n"); do sed "s/@SHA@/$sha/" "$dir/$call"; done | redis-cli -p "$port" >"$dir/replies"
    if grep -q ERR "$dir/replies"; then fail "$call failed: $(grep -m1 ERR "$dir/replies")"; fi
  fi
  stop
  grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}'
}

# (2N calls - N calls) / N: what one more call costs, without the setup and without what
# redis-cli's start asks of the server.
for call in fcall patch eval empty; do
  base=$(count "$call" "$N")
  total=$(count "$call" $((2 * N)))
  echo "$call: $(( (total - base) / N )) instructions per call"
done
