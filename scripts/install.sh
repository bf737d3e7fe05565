#!/usr/bin/env bash
# Installs the C library into PREFIX:
#   lib/libsessync.a                          the static library
#   lib/libsessync.so.<major>.<minor>.<patch> the shared library (SONAME libsessync.so.<major>),
#   lib/libsessync.so.<major> -> ...          with the symlinks the loader and the linker use
#   lib/libsessync.so -> libsessync.so.<major>
#   include/sessync.h, include/sessync_ffi.h  the C header, the flat header for FFI loaders
#   lib/pkgconfig/sessync.pc                  pkg-config: --libs links the shared library,
#                                             --static --libs adds what the archive needs
#
#   scripts/install.sh [PREFIX]   (default /usr/local; builds the release libraries)
#   SESSYNC_STATIC_LIB=path/libsessync.a SESSYNC_SHARED_LIB=path/libsessync.so \
#       scripts/install.sh PREFIX  (installs an existing build; a library not given is built)
# Then: cc app.c $(pkg-config --cflags --libs sessync)   (README, "Using it from C")
# No ABI promise before 1.0: bindings compare sessync_version_number() with their header.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
# SESSYNC_LIB is what bindings load at run time (a path to the .so); this script once
# took it for the static library, so refuse that old use rather than install a wrong file.
case "${SESSYNC_LIB:-}" in
  *.a) echo "install.sh: SESSYNC_LIB names the shared library for bindings; give the static library as SESSYNC_STATIC_LIB" >&2
       exit 1 ;;
esac
static=${SESSYNC_STATIC_LIB:-}
shared=${SESSYNC_SHARED_LIB:-}
if [ -z "$static" ] || [ -z "$shared" ]; then
  cargo build --locked --release --lib
  static=${static:-target/release/libsessync.a}
  shared=${shared:-target/release/libsessync.so}
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
so_major=libsessync.so.$major
so_full=libsessync.so.${version%%[-+]*}
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 644 "$static" "$prefix/lib/libsessync.a"
install -m 755 "$shared" "$prefix/lib/$so_full"
ln -sfn "$so_full" "$prefix/lib/$so_major"
ln -sfn "$so_major" "$prefix/lib/libsessync.so"
install -m 644 include/sessync.h include/sessync_ffi.h "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" sessync.pc.in >"$prefix/lib/pkgconfig/sessync.pc"
echo "installed sessync $version into $prefix (pkg-config: $prefix/lib/pkgconfig)"
