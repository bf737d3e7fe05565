#!/usr/bin/env bash
# The Node binding's tests: installs the packages that package-lock.json pins from the npm
# registry (npm ci), then runs `node --test` on this repository's release library and
# header (built here if needed), with its own sessyncd. Fails, never skips, when node,
# npm or cargo is missing.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"

for tool in node npm cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool (scripts/setup.sh installs node and npm)" >&2; exit 1; }
done
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || { echo "node $(node --version) is too old: the binding needs Node 20 or later" >&2; exit 1; }

(cd "$root" && cargo build --release --locked --quiet --lib --bin sessyncd)
npm ci --no-audit --no-fund --loglevel=error

# This tree's library and header, not an installed one that the search order would find first.
export SESSYNC_LIB="$root/target/release/libsessync.so"
export SESSYNC_INCLUDE="$root/include"
export SESSYNCD="$root/target/release/sessyncd"
node --test --test-concurrency=1 test/*.test.js
