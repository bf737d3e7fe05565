#!/usr/bin/env bash
# The PHP binding's tests (phpunit): the Store/Session API and bad input in process, the
# handler under session_start() in php-cli processes on a sessyncd, and php-fpm behind
# nginx (4 workers, one visitor's concurrent requests; ffi.enable=true, and
# ffi.enable=preload with ffi.preload + opcache.preload). Builds the library and sessyncd
# first (cargo, a no-op when up to date). Fails, never skips, when something is missing:
# scripts/setup.sh installs php-cli, php8.2-fpm, nginx and phpunit from Debian's packages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
missing=()
command -v php >/dev/null 2>&1 || missing+=(php-cli)
command -v phpunit >/dev/null 2>&1 || missing+=(phpunit)
command -v php-fpm8.2 >/dev/null 2>&1 || [ -x /usr/sbin/php-fpm8.2 ] || missing+=(php8.2-fpm)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]} (as root: apt-get install ${missing[*]}; or scripts/setup.sh)" >&2
  exit 1
fi
php -m | grep -x FFI >/dev/null || { echo "missing: PHP's FFI extension (php -m lists no FFI; Debian: php8.2-common)" >&2; exit 1; }
php -m | grep -x posix >/dev/null || { echo "missing: PHP's posix extension (Debian: php8.2-common)" >&2; exit 1; }

cargo build --release --locked --lib --bin sessyncd

cd "$here"
# ffi.enable=true: the CLI's default (preload) allows FFI too, but say it.
exec php -d ffi.enable=true "$(command -v phpunit)" --configuration phpunit.xml "$@"
