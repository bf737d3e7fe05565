#!/usr/bin/env bash
# The multi-process example: builds sessyncd and the C example server, starts sessyncd on
# a Unix socket in a temporary directory, then runs the server as 4 processes x 2 worker
# threads on 127.0.0.1:${PORT:-8080}, every process with its own connection to the one
# sessyncd, so a visitor's session counts on whichever process answers. Ctrl-C (or
# SIGTERM to this script) stops both and removes the temporary directory. Extra
# arguments go to the server (a later --processes or --workers wins).
#   examples/c/prefork.sh
#   curl -s -c /tmp/sessync.jar -b /tmp/sessync.jar http://127.0.0.1:8080/
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --locked --release --bin sessyncd
bin=$(examples/c/build.sh)

dir=$(mktemp -d "${TMPDIR:-/tmp}/sessync-prefork.XXXXXX")
sock="$dir/sessyncd.sock"
daemon_pid=
server_pid=
cleanup() {
  trap - EXIT INT TERM
  # The server first (it forwards the signal to its processes and waits for them), then
  # the daemon the processes were talking to.
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# sessyncd prints "listening on unix:PATH" once the socket accepts connections.
mkfifo "$dir/daemon.out"
target/release/sessyncd --unix "$sock" --log warn >"$dir/daemon.out" &
daemon_pid=$!
exec 3<"$dir/daemon.out"
ready=
while IFS= read -r -t 30 line <&3; do
  echo "sessyncd: $line" >&2
  if [ "$line" = "listening on unix:$sock" ]; then
    ready=1
    break
  fi
done
if [ -z "$ready" ]; then
  echo "sessyncd did not start" >&2
  exit 1
fi
# Keep draining its output so that it never blocks on a full pipe.
cat <&3 >&2 &
exec 3<&-

"$bin" --processes 4 --workers 2 --port "${PORT:-8080}" --store "unix://$sock" "$@" &
server_pid=$!
# `wait` returns early when a trapped signal arrives; the trap then stops both.
status=0
wait "$server_pid" || status=$?
server_pid=
exit "$status"
