#!/usr/bin/env bash
# Two builds of the dataplane measured at the same time, for a change of a few percent on a
# shared host, where bench.sh's single runs move 10-30% from one minute to the next with the
# other tenants. Each pair runs OLD and NEW together, one on each CPU (its main thread and its
# worker on that CPU, its own DPDK file prefix), then swapped, so both builds see the same
# minutes on both CPUs (two vCPUs of a VM do not see the same load). The traffic and rules
# are bench.sh's (TLS row); `--phases` splits each run's cycles into DPDK's receive and
# transmit and the pipeline's steps.
#   OLD=old/dataplane scripts/compare.sh             # NEW: this tree's build
#   OLD=a/dataplane NEW=b/dataplane FLOWS=1024 PAIRS=10 DURATION=6 WARMUP=2 scripts/compare.sh
#   TRAFFIC=x.pcap scripts/compare.sh               # both replay this capture (FLOWS: its flow
#                                                   # count, for the table's size)
#   OLD=b NEW=b TRAFFIC=x.pcap NEW_TRAFFIC=y.pcap scripts/compare.sh
#                                                   # one build, two captures: what a change of
#                                                   # the traffic alone costs (e.g. y made by
#                                                   # scripts/sort_by_shape.py from x)
# Prints each run, then for the cycles per packet and the pipeline's: each build's mean, the
# median and mean of NEW / OLD over the pairs, and in how many pairs NEW was the lower. One
# build against itself (OLD=NEW, eight pairs at 1k flows on a busy 2-vCPU VM): single pairs
# 0.88-1.17 (the two vCPUs' load differs, hence the swaps), the median 1.008, the mean 1.014
# (docs/forwarding-notes.md): eight pairs tell about 5% apart, not 1%. The two processes
# share the L3 cache (and, at 64k flows, the memory bandwidth): the figures are for comparing
# builds, not the absolute cost (bench.sh gives that). Needs two CPUs, 0 and 1.
set -euo pipefail
cd "$(dirname "$0")/.."

OLD="${OLD:?OLD=path/to/old/dataplane}"
FLOWS="${FLOWS:-1024}"
PACKETS="${PACKETS:-131072}"
PAIRS="${PAIRS:-5}"
DURATION="${DURATION:-6}"
WARMUP="${WARMUP:-2}"
if [ "$DURATION" -le "$WARMUP" ]; then
  echo "compare.sh: DURATION ($DURATION s) must be longer than WARMUP ($WARMUP s)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/setup.sh
if [ -z "${NEW:-}" ]; then
  cargo build --release -q -p dataplane
  NEW="${CARGO_TARGET_DIR:-target}/release/dataplane"
fi
. scripts/bench-inputs.sh
if [ -n "${TRAFFIC:-}" ]; then
  cp "$TRAFFIC" "$work/traffic.pcap"
else
  bench_traffic "$NEW" "$work/traffic.pcap" "$FLOWS" "$PACKETS"
fi
cp "${NEW_TRAFFIC:-$work/traffic.pcap}" "$work/new-traffic.pcap"
bench_rules "$work/rules.json"

# One run of build $1 on CPU $2, tagged $3: prints "tag cpu cycles/packet pipeline rx tx"
# (what went wrong on standard error when the run fails). NEW replays NEW_TRAFFIC if given.
run() {
  local bin=$1 cpu=$2 tag=$3 pcap="$work/traffic.pcap"
  if [ "$tag" = NEW ]; then pcap="$work/new-traffic.pcap"; fi
  "$bin" bench --pcap "$pcap" --rules "$work/rules.json" --duration "$DURATION" --warmup "$WARMUP" \
    --cpus "$cpu,$cpu" --flow-capacity $((FLOWS * 2)) --json --phases -- --file-prefix "compare$$-$cpu" \
    > "$work/run-$cpu.json" 2> "$work/run-$cpu.log" || { echo "$tag on cpu $cpu failed:" >&2; cat "$work/run-$cpu.log" >&2; return 1; }
  python3 - "$work/run-$cpu.json" "$tag" "$cpu" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["phase_cycles"]
print(sys.argv[2], sys.argv[3], f'{d["cycles_per_packet"]:.1f}', f'{p["parse"] + p["resolve"] + p["settle"]:.1f}',
      f'{p["receive"]:.1f}', f'{p["transmit"]:.1f}')
PY
}

echo "pair  build  cpu  cycles/packet  pipeline  receive  transmit"
for pair in $(seq "$PAIRS"); do
  # Even pairs swap the CPUs; every other two swap which build starts first (the one started
  # first was faster by ~1% in runs of one build against itself): four pairs see every case.
  if [ $((pair % 2)) = 1 ]; then old_cpu=0 new_cpu=1; else old_cpu=1 new_cpu=0; fi
  if [ $(((pair - 1) / 2 % 2)) = 0 ]; then
    run "$OLD" "$old_cpu" OLD > "$work/old.line" &
    first=$!
    run "$NEW" "$new_cpu" NEW > "$work/new.line" &
  else
    run "$NEW" "$new_cpu" NEW > "$work/new.line" &
    first=$!
    run "$OLD" "$old_cpu" OLD > "$work/old.line" &
  fi
  second=$!
  failed=0
  wait "$first" || failed=1
  wait "$second" || failed=1
  if [ "$failed" = 1 ]; then
    exit 1
  fi
  for f in old new; do
    read -r tag cpu cpp pipe rx tx < "$work/$f.line"
    printf '%-5s %-6s %-4s %14s %9s %8s %9s\n' "$pair" "$tag" "$cpu" "$cpp" "$pipe" "$rx" "$tx"
    echo "$pair $tag $cpp $pipe" >> "$work/all"
  done
done

python3 - "$work/all" <<'PY'
import statistics, sys
runs = [line.split() for line in open(sys.argv[1])]
by = {t: [(float(c), float(p)) for _, tag, c, p in runs if tag == t] for t in ("OLD", "NEW")}
pairs = list(zip(by["OLD"], by["NEW"]))
for i, what in ((0, "cycles/packet"), (1, "pipeline cycles/packet")):
    old, new = (statistics.mean(x[i] for x in by[t]) for t in ("OLD", "NEW"))
    ratios = [n[i] / o[i] for o, n in pairs]
    print(f"{what}: mean OLD {old:.1f}, NEW {new:.1f}; NEW / OLD per pair: median {statistics.median(ratios):.3f},"
          f" mean {statistics.mean(ratios):.3f}; NEW lower in {sum(r < 1 for r in ratios)} of {len(pairs)} pairs")
PY
