#!/usr/bin/env bash
# The main job, in C: builds the C example server, then runs it with four worker threads
# sharing one in-process store, on 127.0.0.1:${PORT:-8080}. Extra arguments go to the
# server (e.g. --store 'mem://?ttl=30m'; a later --port or --workers wins).
#   examples/c/run.sh
#   PORT=9000 examples/c/run.sh --store 'mem://?ttl=30m'
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(examples/c/build.sh)
exec "$bin" --workers 4 --port "${PORT:-8080}" "$@"
