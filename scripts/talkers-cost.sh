#!/usr/bin/env bash
# Instructions per top-talkers update (what each policy drop pays, `SpaceSaving::add`), by
# traffic shape, counted by callgrind (steady on a shared machine, unlike nanoseconds), and
# the nanoseconds of the same updates beside exact counting in a HashMap, in one run.
#   UPDATES=200000 scripts/talkers-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATES="${UPDATES:-200000}"
target="${CARGO_TARGET_DIR:-target}"
command -v valgrind > /dev/null || { apt-get update -qq && apt-get install -y -qq valgrind > /dev/null; }
cargo build --release -q -p dataplane --example talkers_cost
bin="$target/release/examples/talkers_cost"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" 2000000
for shape in one 16 new; do
  valgrind --tool=callgrind --callgrind-out-file="$work/$shape.out" --toggle-collect='talkers_cost::updates' \
    "$bin" "$UPDATES" "$shape" > /dev/null 2> "$work/valgrind.log"
  total=$(callgrind_annotate "$work/$shape.out" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$shape: $(( total / UPDATES )) instructions per update"
done
