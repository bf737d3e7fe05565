#!/usr/bin/env bash
# The Go binding's tests (go test): the API and its errors, the net/http middleware, the
# scs-shaped store, and 4 worker processes (the test binary started again) on their own
# sessyncd with one visitor's 32 concurrent requests. Builds the library and sessyncd
# (cargo, a no-op when up to date): the package links target/release/libsessync.a.
# Needs Debian's golang-go (scripts/setup.sh installs it) and a C compiler; standard
# library only, so no module proxy is asked (GOPROXY=off). Fails, never skips.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

command -v go >/dev/null 2>&1 || { echo "missing: go (apt-get install golang-go)" >&2; exit 1; }
command -v cc >/dev/null 2>&1 || { echo "missing: a C compiler for cgo (apt-get install gcc)" >&2; exit 1; }
command -v cargo >/dev/null 2>&1 || { echo "missing: cargo" >&2; exit 1; }

(cd "$root" && unset CARGO_TARGET_DIR && cargo build --release --locked --quiet --lib --bin sessyncd)

export SESSYNCD="$root/target/release/sessyncd"
export GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=1
cd "$here"
go vet ./...
go build -o /dev/null ./examples/server
exec go test -count=1 -v "$@" ./...
