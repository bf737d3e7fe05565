#!/usr/bin/env bash
# Generates the C headers from src/ffi with cbindgen (the pinned version below):
#   include/sessync.h       the C header and manual (cbindgen.toml)
#   include/sessync_ffi.h   the same declarations flat, for FFI loaders (cbindgen-ffi.toml,
#                           then scripts/flatten-header.awk): no preprocessor lines, no
#                           comments but the first line, constants as enums
#   scripts/gen-header.sh           write both headers
#   scripts/gen-header.sh --check   fail if a checked-in header differs from a fresh one
set -euo pipefail
cd "$(dirname "$0")/.."
PINNED=0.29.4
if ! command -v cbindgen >/dev/null 2>&1 || [ "$(cbindgen --version | awk '{print $2}')" != "$PINNED" ]; then
  echo "needs cbindgen $PINNED: cargo install cbindgen --version $PINNED --locked" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The flat header's version numbers come from Cargo.toml, as the library's do.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
IFS=. read -r major minor patch <<<"${version%%[-+]*}"

# generate DIR: writes DIR/sessync.h and DIR/sessync_ffi.h.
generate() {
  cbindgen --quiet --config cbindgen.toml --crate sessync --output "$1/sessync.h"
  cbindgen --quiet --config cbindgen-ffi.toml --crate sessync --output "$tmp/ffi-raw.h"
  awk -v major="$major" -v minor="$minor" -v patch="$patch" -f scripts/flatten-header.awk \
    "$tmp/ffi-raw.h" >"$1/sessync_ffi.h"
}

if [ "${1:-}" = "--check" ]; then
  mkdir "$tmp/fresh"
  generate "$tmp/fresh"
  stale=0
  for h in sessync.h sessync_ffi.h; do
    if ! diff -u "include/$h" "$tmp/fresh/$h"; then
      echo "include/$h is stale: run scripts/gen-header.sh" >&2
      stale=1
    fi
  done
  [ "$stale" = 0 ] || exit 1
  echo "include/sessync.h and include/sessync_ffi.h are up to date"
else
  mkdir "$tmp/fresh"
  generate "$tmp/fresh"
  cp "$tmp/fresh/sessync.h" "$tmp/fresh/sessync_ffi.h" include/
fi
