#!/usr/bin/env bash
# Runs every check and every test of the project, as CI does: format, lint, the Cargo
# feature combinations, docs, the generated header, the Rust and C tests, then the C tests
# again under valgrind, and the bindings' tests (Python, PHP, Node, C++, Ruby, Go).
# Installs what it needs first (scripts/setup.sh), or says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== format"
cargo fmt --all -- --check
echo "== lint"
cargo clippy --locked --all-targets -- -D warnings
echo "== features (none, each alone, the default; mem:// alone builds without tokio)"
for features in "" redis client daemon tls rt; do
  echo "-- cargo check --no-default-features ${features:+--features $features}"
  cargo check --locked --quiet --no-default-features ${features:+--features "$features"}
done
cargo check --locked --quiet
cargo clippy --locked --quiet --no-default-features --all-targets -- -D warnings
cargo test --locked --quiet --no-default-features --lib
if cargo tree --locked --no-default-features -e normal --prefix none |
  grep -E '^(tokio|tokio-rustls|rustls|redis|url) '; then
  echo "the build without default features depends on the crates above" >&2
  exit 1
fi
echo "== docs"
RUSTDOCFLAGS=-Dwarnings cargo doc --locked --no-deps --quiet
echo "== header"
./scripts/gen-header.sh --check
echo "== tests"
cargo test --locked
echo "== Python binding (pytest: Flask/gunicorn, Django, ASGI/uvicorn, the API)"
./bindings/python/run-tests.sh
echo "== PHP binding (phpunit: the session handler under php-cli, php-fpm and nginx)"
./bindings/php/run-tests.sh
echo "== C tests under valgrind"
./scripts/c-tests.sh
echo "== C tests with AddressSanitizer and UBSan"
./scripts/c-tests.sh --sanitize
echo "== Node binding (bindings/node)"
./bindings/node/run-tests.sh
echo "== C++ wrappers (bindings/cpp) under valgrind"
./bindings/cpp/run-tests.sh
echo "== Ruby binding (minitest: the API, the Rack middleware, Puma with 4 workers)"
./bindings/ruby/run-tests.sh
echo "== Go binding (go test: the API, net/http middleware, scs store, 4 processes)"
./bindings/go/run-tests.sh
