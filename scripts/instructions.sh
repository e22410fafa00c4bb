#!/usr/bin/env bash
# Instructions per packet of the workers' pipeline on known flows, per step, counted by
# callgrind: unlike cycles, the count does not move with the other tenants of a shared
# machine, so a change of a few percent shows. The traffic and rules are bench.sh's.
#   FLOWS=1024 scripts/instructions.sh      # other traffic (default: 65536 flows)
#   REPLAY=old/pipeline_replay BIN=old/dataplane scripts/instructions.sh
#                                           # count prebuilt binaries (e.g. the build before a
#                                           # change) instead of building this tree's
#   QUIC_RATIO=0.05 scripts/instructions.sh # bench.sh's second row: that share of connections
#                                           # QUIC (the traffic then made by GEN=, default this
#                                           # tree's dataplane, as older builds lack the option)
#   RULES=file.json scripts/instructions.sh # other rules than bench.sh's (scripts/armed-cost.sh)
#   FIRST=1 scripts/instructions.sh         # count the first pass instead, where every flow is
#                                           # new (classification, flow creation, limits)
#   WORKER=1 FLOWS=1024 scripts/instructions.sh
#                                           # count the real worker instead of the replay:
#                                           # `dataplane bench` (BIN=) under callgrind, DPDK
#                                           # without hugepages, its pipeline steps divided by
#                                           # every packet it received. The replay gives the
#                                           # pipeline no prefetch, so the compiler drops the
#                                           # prefetches' address arithmetic (about 12
#                                           # instructions per packet of parse); the worker
#                                           # pays it. Its first pass over the flows is counted
#                                           # too: negligible at 1k flows, not at 64k.
# Builds go to $CARGO_TARGET_DIR (default: target).
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWS="${FLOWS:-65536}"
PACKETS="${PACKETS:-131072}"
PASSES="${PASSES:-2}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v valgrind > /dev/null || { apt-get update -qq && apt-get install -y -qq valgrind > /dev/null; }
target="${CARGO_TARGET_DIR:-target}"
# REPLAY=path: the pipeline_replay binary counted; BIN=path: the dataplane binary that makes the
# traffic. Whichever is not given is built from this tree.
if [ -z "${REPLAY:-}" ]; then
  cargo build --release -q -p dataplane --bin dataplane --example pipeline_replay
elif [ -z "${BIN:-}" ]; then
  cargo build --release -q -p dataplane --bin dataplane
fi
bin="${BIN:-$target/release/dataplane}"
replay="${REPLAY:-$target/release/examples/pipeline_replay}"
. scripts/bench-inputs.sh
if [ -n "${QUIC_RATIO:-}" ]; then
  [ -n "${GEN:-}" ] || cargo build --release -q -p dataplane --bin dataplane
  bench_traffic "${GEN:-$target/release/dataplane}" "$work/traffic.pcap" "$FLOWS" "$PACKETS" "$QUIC_RATIO" > /dev/null
else
  bench_traffic "$bin" "$work/traffic.pcap" "$FLOWS" "$PACKETS" > /dev/null
fi
if [ -n "${RULES:-}" ]; then
  cp "$RULES" "$work/rules.json"
else
  bench_rules "$work/rules.json" > /dev/null
fi
capacity=$(( FLOWS * 2 > 1024 ? FLOWS * 2 : 1024 ))
if [ -n "${WORKER:-}" ]; then
  # The real worker: every packet it received is counted (its program total is DPDK's and
  # the control thread's too, so the figure is the sum of the pipeline's steps).
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" --compress-strings=no \
    "$bin" bench --pcap "$work/traffic.pcap" --rules "$work/rules.json" --duration "${DURATION:-20}" \
    --warmup "$(( ${DURATION:-20} / 3 ))" --cpus 0,1 --flow-capacity "$capacity" --json -- --no-huge -m 4096 \
    --file-prefix "instructions$$" > "$work/bench.json" 2> "$work/valgrind.log"
  packets=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["total_rx"])' "$work/bench.json")
  echo "worker received $packets packets under callgrind"
else
  # Known flows: the passes after the warm-up (the warm-up's own replay toggles collection
  # off). FIRST=1: the warm-up alone, every replay inside it collected.
  toggles=(--toggle-collect='pipeline_replay::replay' --toggle-collect='pipeline_replay::warm_up')
  passes="$PASSES"
  if [ -n "${FIRST:-}" ]; then
    toggles=(--toggle-collect='pipeline_replay::warm_up')
    passes=1
  fi
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" --compress-strings=no \
    "${toggles[@]}" "$replay" "$work/rules.json" "$work/traffic.pcap" "$passes" "$capacity" \
    > "$work/replay.log" 2> "$work/valgrind.log"
  cat "$work/replay.log"
  packets=$(( PACKETS * passes ))
fi
callgrind_annotate --inclusive=yes "$work/callgrind.out" > "$work/annotated.txt"
[ -z "${KEEP:-}" ] || cp "$work/annotated.txt" "$KEEP"
python3 - "$work/annotated.txt" "$packets" "${WORKER:-}" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
packets = int(sys.argv[2])
worker = bool(sys.argv[3])
def count(pattern):
    # A function appears once per source file its inlined code comes from; the line with
    # the largest inclusive count is the whole function.
    found = re.findall(r'^\s*([\d,]+) \([^)]*\)\s+(?:\S*:)?' + pattern, text, re.M)
    return max(int(n.replace(',', '')) for n in found) / packets if found else float('nan')
steps = {s: count(rf'[^\n]*Pipeline>?::{s}_chunk\b') for s in ('parse', 'resolve', 'settle')}
label, total = ('pipeline instructions', sum(steps.values())) if worker else ('instructions', count(r'PROGRAM TOTALS'))
print(f'{label} per packet: {total:.1f} (' + ', '.join(f'{s} {v:.1f}' for s, v in steps.items()) + ')')
PY
