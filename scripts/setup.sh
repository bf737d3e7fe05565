#!/usr/bin/env bash
# Makes sure the tools the tests need are here, installing what is missing when it can:
# a C and a C++ compiler (the C tests, the C++ wrappers), Ruby's Rack, Puma, minitest and
# rack-test (the Ruby binding), Go (the Go binding), valgrind, pkg-config, readelf (binutils),
# taskset (util-linux: the benchmarks pin servers and load generators to CPUs), redis-cli and
# redis-server (Debian packages, as root; the tests start their own servers on free
# ports), the loaders that parse include/sessync_ffi.h (PHP's CLI with FFI, Ruby with
# Fiddle: Debian packages; Python's cffi: PyPI), redis-py (PyPI), python3-venv (for the
# Python binding's tests, whose own script installs their PyPI packages in a venv),
# phpunit, php8.2-fpm and nginx (the PHP binding's tests: Debian packages), and
# the pinned cbindgen (from crates.io). Otherwise it says exactly what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN=0.29.4

command -v cargo >/dev/null 2>&1 || { echo "missing: cargo (install Rust with rustup)" >&2; exit 1; }
cargo fmt --version >/dev/null 2>&1 || { echo "missing: rustfmt (rustup component add rustfmt)" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "missing: clippy (rustup component add clippy)" >&2; exit 1; }

packages=()
command -v cc >/dev/null 2>&1 || packages+=(gcc)
command -v c++ >/dev/null 2>&1 || packages+=(g++)
command -v valgrind >/dev/null 2>&1 || packages+=(valgrind)
command -v pkg-config >/dev/null 2>&1 || packages+=(pkg-config)
command -v readelf >/dev/null 2>&1 || packages+=(binutils)
command -v taskset >/dev/null 2>&1 || packages+=(util-linux)
command -v php >/dev/null 2>&1 || packages+=(php-cli)
# The PHP binding's tests (bindings/php/run-tests.sh): phpunit, php-fpm behind nginx.
command -v phpunit >/dev/null 2>&1 || packages+=(phpunit)
command -v php-fpm8.2 >/dev/null 2>&1 || [ -x /usr/sbin/php-fpm8.2 ] || packages+=(php8.2-fpm)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
command -v ruby >/dev/null 2>&1 || packages+=(ruby)
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v redis-cli >/dev/null 2>&1 || packages+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v python3 >/dev/null 2>&1 || packages+=(python3 python3-pip)
# The Python binding's tests run in a venv (bindings/python/run-tests.sh).
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
# The Ruby binding (bindings/ruby): Rack 2, Puma, minitest and rack-test, Debian's packages.
ruby -e 'require "rack"' >/dev/null 2>&1 </dev/null || packages+=(ruby-rack)
command -v puma >/dev/null 2>&1 || packages+=(puma)
ruby -e 'require "minitest"' >/dev/null 2>&1 </dev/null || packages+=(ruby-minitest)
ruby -e 'require "rack/test"' >/dev/null 2>&1 </dev/null || packages+=(ruby-rack-test)
# The Go binding (bindings/go): Debian's Go (1.19), standard library only.
command -v go >/dev/null 2>&1 || packages+=(golang-go)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "missing: ${packages[*]} (as root: apt-get install ${packages[*]})" >&2
    exit 1
  fi
fi

# The Node binding (bindings/node) needs Node 20 or later (Debian 12's nodejs is 18).
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "missing: Node 20 or later for bindings/node (node $(node --version) is installed)" >&2; exit 1; }

# redis-py, for the test that a real Redis client library connects to sessyncd.
if ! python3 -c 'import redis' >/dev/null 2>&1; then
  echo "installing redis-py"
  python3 -m pip install -q redis 2>&1 | grep -v -i warning || true
  python3 -c 'import redis' || { echo "missing: redis-py (python3 -m pip install redis)" >&2; exit 1; }
fi

# cffi, for the test that Python's loader parses include/sessync_ffi.h.
if ! python3 -c 'import cffi' >/dev/null 2>&1; then
  echo "installing cffi"
  python3 -m pip install -q cffi 2>&1 | grep -v -i warning || true
  python3 -c 'import cffi' || { echo "missing: cffi (python3 -m pip install cffi)" >&2; exit 1; }
fi
# PHP's FFI extension (in php8.2-common on Debian) and Ruby's Fiddle, for the same test.
php -m 2>/dev/null | grep -x FFI >/dev/null || { echo "missing: PHP's FFI extension (php -m lists no FFI)" >&2; exit 1; }
ruby -e 'require "fiddle/import"' >/dev/null 2>&1 || { echo "missing: Ruby's Fiddle (ruby -e 'require \"fiddle/import\"' fails)" >&2; exit 1; }

if ! command -v cbindgen >/dev/null 2>&1 || [ "$(cbindgen --version | awk '{print $2}')" != "$CBINDGEN" ]; then
  echo "installing cbindgen $CBINDGEN"
  cargo install --quiet --locked cbindgen --version "$CBINDGEN"
fi

# The Redis backend's tests need a real redis-server: fail here rather than skip them.
command -v redis-server >/dev/null 2>&1 || { echo "missing: redis-server (apt-get install redis-server)" >&2; exit 1; }
