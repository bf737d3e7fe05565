#!/usr/bin/env bash
# Installs the C library: the static library, include/sessync.h and a pkg-config file.
#   scripts/install.sh [PREFIX]         (default /usr/local; builds the release library)
#   SESSYNC_LIB=path/libsessync.a scripts/install.sh PREFIX   (installs an existing build)
# Then: cc app.c $(pkg-config --cflags --libs sessync)
# Static linking is what we recommend before 1.0 (no ABI promise yet).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
lib=${SESSYNC_LIB:-}
if [ -z "$lib" ]; then
  cargo build --locked --release --lib
  lib=target/release/libsessync.a
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 644 "$lib" "$prefix/lib/libsessync.a"
install -m 644 include/sessync.h "$prefix/include/sessync.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" sessync.pc.in >"$prefix/lib/pkgconfig/sessync.pc"
echo "installed sessync $version into $prefix (pkg-config: $prefix/lib/pkgconfig)"
