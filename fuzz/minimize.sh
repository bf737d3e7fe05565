#!/usr/bin/env bash
# Minimizes fuzz/corpus/<target> after a run: keeps the seeds (seed-*) and the inputs that
# once failed (crash-*), and of the rest only the files that keep the edges covered
# (libFuzzer's merge on edges alone, then its set-cover merge). Build the target first
# (cargo +nightly fuzz build -O <target>). Usage: fuzz/minimize.sh <target>
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/minimize.sh <target>}
bin=target/x86_64-unknown-linux-gnu/release/$target
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/edges" "$work/cover"
"$bin" -merge=1 -use_counters=0 "$work/edges" "corpus/$target" 2>"$work/log" || { cat "$work/log"; exit 1; }
"$bin" -set_cover_merge=1 -use_counters=0 "$work/cover" "$work/edges" 2>"$work/log" || { cat "$work/log"; exit 1; }
find "corpus/$target" -type f ! -name 'seed-*' ! -name 'crash-*' -delete
cp "$work/cover/"* "corpus/$target/" 2>/dev/null || true
echo "corpus/$target: $(ls "corpus/$target" | wc -l) files, $(cat "corpus/$target"/* | wc -c) bytes"
