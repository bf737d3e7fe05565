#!/usr/bin/env bash
# Runs every check and every test of the project, as CI does.
# Needs: cargo with rustfmt and clippy (rustup's default profile), a C toolchain's linker.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "missing: $1 ($2)" >&2; exit 1; }
}
need cargo "install Rust with rustup: https://rustup.rs"
need cc "install a C compiler, e.g. apt-get install gcc"
need c++ "install a C++ compiler, e.g. apt-get install g++ (tests/c_abi.rs checks the header as C++)"
cargo fmt --version >/dev/null 2>&1 || { echo "missing: rustfmt (rustup component add rustfmt)" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "missing: clippy (rustup component add clippy)" >&2; exit 1; }

echo "== format"
cargo fmt --all -- --check
echo "== lint"
cargo clippy --locked --all-targets -- -D warnings
echo "== docs"
RUSTDOCFLAGS=-Dwarnings cargo doc --locked --no-deps --quiet
echo "== tests"
cargo test --locked
