#!/usr/bin/env bash
# Builds the C test programs of tests/c against libsessync.a and runs each one under
# valgrind's memcheck (tests/c_abi.rs does the work; this sets its wrapper).
#
#   scripts/c-tests.sh                 every program, under valgrind
#   scripts/c-tests.sh errors          only the tests whose name contains "errors"
#   scripts/c-tests.sh --sanitize      instead: the C side built with ASan + UBSan, no valgrind
#
# Under valgrind a program fails on any memory error and on any definite or indirect leak.
# Memory that Rust's standard library and parking_lot keep for the life of the process
# (thread-locals, globals: "still reachable", "possibly lost") is not counted.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--sanitize" ]; then
  shift
  unset SESSYNC_TEST_WRAPPER
  SESSYNC_TEST_SANITIZE=1 exec cargo test --locked --test c_abi -- "$@"
fi

if ! command -v valgrind >/dev/null 2>&1; then
  echo "scripts/c-tests.sh: valgrind is missing; install it (e.g. apt-get install valgrind)" >&2
  exit 1
fi
if [ -n "${SESSYNC_TEST_SANITIZE:-}" ] && [ "${SESSYNC_TEST_SANITIZE}" != 0 ]; then
  echo "scripts/c-tests.sh: SESSYNC_TEST_SANITIZE is set; sanitizers and valgrind do not mix" >&2
  exit 1
fi

export SESSYNC_TEST_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect -q"
exec cargo test --locked --test c_abi -- "$@"
