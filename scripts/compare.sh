#!/usr/bin/env bash
# Two builds of the dataplane measured at the same time, for a change of a few percent on a
# shared host, where bench.sh's single runs move 10-30% from one minute to the next with the
# other tenants. Each pair runs OLD and NEW together, one on each CPU (its main thread and its
# worker on that CPU, its own DPDK file prefix), then swapped, so both builds see the same
# minutes on both CPUs (two vCPUs of a VM do not see the same load). The traffic and rules
# are bench.sh's (TLS row); `--phases` splits each run's cycles into DPDK's receive and
# transmit and the pipeline's steps.
#   OLD=old/dataplane scripts/compare.sh             # NEW: this tree's build
#   OLD=a/dataplane NEW=b/dataplane FLOWS=1024 PAIRS=10 DURATION=6 scripts/compare.sh
# Prints each run, then per build the mean cycles per packet and pipeline cycles per packet,
# NEW / OLD for both, and in how many pairs NEW was the faster. The two processes share the
# L3 cache (and, at 64k flows, the memory bandwidth): the figures are for comparing builds,
# not the absolute cost (bench.sh gives that). Needs two CPUs, 0 and 1.
set -euo pipefail
cd "$(dirname "$0")/.."

OLD="${OLD:?OLD=path/to/old/dataplane}"
FLOWS="${FLOWS:-1024}"
PACKETS="${PACKETS:-131072}"
PAIRS="${PAIRS:-5}"
DURATION="${DURATION:-6}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/setup.sh
if [ -z "${NEW:-}" ]; then
  cargo build --release -q -p dataplane
  NEW="${CARGO_TARGET_DIR:-target}/release/dataplane"
fi
"$NEW" gen --out "$work/traffic.pcap" --packets "$PACKETS" --flows "$FLOWS" --tls-ratio 0.05 --ipv6-ratio 0.2
python3 scripts/gen_rules.py "$work/rules.json" --cidr 10000 --sni 1000

# One run of build $1 on CPU $2, tagged $3: appends "tag cpu cycles/packet pipeline rx tx".
run() {
  local bin=$1 cpu=$2 tag=$3
  "$bin" bench --pcap "$work/traffic.pcap" --rules "$work/rules.json" --duration "$DURATION" --warmup 2 \
    --cpus "$cpu,$cpu" --flow-capacity $((FLOWS * 2)) --json --phases -- --file-prefix "compare$$-$cpu" \
    > "$work/run-$cpu.json" 2> "$work/run-$cpu.log" || { echo "$tag on cpu $cpu failed:"; cat "$work/run-$cpu.log"; return 1; }
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
  # Even pairs swap the CPUs.
  if [ $((pair % 2)) = 1 ]; then old_cpu=0 new_cpu=1; else old_cpu=1 new_cpu=0; fi
  run "$OLD" "$old_cpu" OLD > "$work/old.line" &
  old_pid=$!
  run "$NEW" "$new_cpu" NEW > "$work/new.line"
  wait "$old_pid"
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
old_cpp, old_pipe = (statistics.mean(x[i] for x in by["OLD"]) for i in (0, 1))
new_cpp, new_pipe = (statistics.mean(x[i] for x in by["NEW"]) for i in (0, 1))
wins = sum(n[0] < o[0] for o, n in zip(by["OLD"], by["NEW"]))
print(f"mean cycles/packet: OLD {old_cpp:.1f}, NEW {new_cpp:.1f}, NEW / OLD {new_cpp / old_cpp:.3f}")
print(f"mean pipeline cycles/packet: OLD {old_pipe:.1f}, NEW {new_pipe:.1f}, NEW / OLD {new_pipe / old_pipe:.3f}")
print(f"NEW faster in {wins} of {len(by['NEW'])} pairs")
PY
