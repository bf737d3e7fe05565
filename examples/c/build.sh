#!/usr/bin/env bash
# Builds the C example server: the release static library, then examples/c/server.c
# against include/sessync.h and target/release/libsessync.a, into
# target/release/examples/c-server. Prints the binary's path on stdout.
#   examples/c/build.sh            (CC and CFLAGS are honoured: CC=clang, CFLAGS=-O0 -g)
set -euo pipefail
cd "$(dirname "$0")/../.."

CC=${CC:-cc}
command -v cargo >/dev/null 2>&1 || { echo "missing: cargo (install Rust with rustup: https://rustup.rs)" >&2; exit 1; }
command -v "$CC" >/dev/null 2>&1 || { echo "missing: $CC (install a C compiler, e.g. apt-get install gcc)" >&2; exit 1; }

# Cargo's progress goes to stderr; stdout carries only the path.
cargo build --locked --release --lib >&2

# The system libraries the Rust standard library needs, as printed by
#   cargo rustc --release --lib -- --print native-static-libs
# (Linux with glibc; other systems may need a different list).
NATIVE_LIBS=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

out=target/release/examples/c-server
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086 # CFLAGS is a list of flags
"$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 ${CFLAGS:-} \
  -Iinclude examples/c/server.c target/release/libsessync.a \
  -lpthread "${NATIVE_LIBS[@]}" -o "$out"
echo "$out"
