#!/usr/bin/env bash
# The Ruby binding's tests (minitest): the Store and Session API, errors, the Rack
# middleware under Rack::Test, and the example under Puma with 4 workers on its own
# sessyncd. Builds the library and sessyncd (cargo, a no-op when up to date) and uses this
# tree's library and header. Needs Debian's ruby, ruby-rack, puma, ruby-minitest and
# ruby-rack-test (scripts/setup.sh installs them); fails, never skips, when one is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

command -v ruby >/dev/null 2>&1 || { echo "missing: ruby (apt-get install ruby)" >&2; exit 1; }
command -v puma >/dev/null 2>&1 || { echo "missing: puma (apt-get install puma)" >&2; exit 1; }
for lib in fiddle/import rack rack/test minitest/autorun; do
  ruby -e "require '$lib'" >/dev/null 2>&1 </dev/null || {
    echo "missing: Ruby library $lib (apt-get install ruby ruby-rack ruby-rack-test ruby-minitest)" >&2; exit 1; }
done
command -v cargo >/dev/null 2>&1 || { echo "missing: cargo" >&2; exit 1; }

(cd "$root" && cargo build --release --locked --quiet --lib --bin sessyncd)

# This tree's library and header, not an installed one that the search order would find first.
export SESSYNC_LIB="$root/target/release/libsessync.so"
export SESSYNC_INCLUDE="$root/include"
export SESSYNCD="$root/target/release/sessyncd"
cd "$here"
exec ruby -Ilib -Itest -e 'ARGV.each { |f| require File.expand_path(f) }' test/*_test.rb "$@"
