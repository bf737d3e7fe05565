#!/usr/bin/env bash
# The C++ wrappers' tests: every bindings/cpp/tests/*.cpp compiled with
# `c++ -std=c++17 -Wall -Wextra -Werror` against the static library (link flags: the
# Libs.private of sessync.pc.in), then run under valgrind, failing on any memory error
# and any definite or indirect leak. Fails, never skips, when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in c++ valgrind cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing: $tool (scripts/setup.sh installs g++ and valgrind)" >&2; exit 1; }
done
cargo build --release --locked --quiet --lib
libs="$(sed -n 's/^Libs.private: //p' sessync.pc.in)"
[ -n "$libs" ] || { echo "sessync.pc.in has no Libs.private line" >&2; exit 1; }
out=target/cpp-tests
mkdir -p "$out"
shopt -s nullglob
tests=(bindings/cpp/tests/*.cpp)
[ ${#tests[@]} -gt 0 ] || { echo "no tests in bindings/cpp/tests" >&2; exit 1; }
for src in "${tests[@]}"; do
  name="$(basename "$src" .cpp)"
  echo "== $name"
  # shellcheck disable=SC2086
  c++ -std=c++17 -Wall -Wextra -Werror -g -O1 -Iinclude -Ibindings/cpp/include "$src" \
    target/release/libsessync.a $libs -o "$out/$name"
  # somalloc=nouserintercepts: a test's own operator new and delete (test_wrappers
  # replaces them to fail allocations on demand) stay its own; their malloc and free
  # are still checked.
  valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect --soname-synonyms=somalloc=nouserintercepts -q "$out/$name"
done
