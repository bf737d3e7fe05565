#!/usr/bin/env bash
# Generates include/sessync.h from src/ffi with cbindgen (the pinned version below).
#   scripts/gen-header.sh           write the header
#   scripts/gen-header.sh --check   fail if the checked-in header differs from a fresh one
set -euo pipefail
cd "$(dirname "$0")/.."
PINNED=0.29.4
if ! command -v cbindgen >/dev/null 2>&1 || [ "$(cbindgen --version | awk '{print $2}')" != "$PINNED" ]; then
  echo "needs cbindgen $PINNED: cargo install cbindgen --version $PINNED --locked" >&2
  exit 1
fi
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  cbindgen --quiet --config cbindgen.toml --crate sessync --output "$tmp"
  if ! diff -u include/sessync.h "$tmp"; then
    echo "include/sessync.h is stale: run scripts/gen-header.sh" >&2
    exit 1
  fi
  echo "include/sessync.h is up to date"
else
  cbindgen --quiet --config cbindgen.toml --crate sessync --output include/sessync.h
fi
