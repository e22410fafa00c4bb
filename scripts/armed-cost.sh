#!/usr/bin/env bash
# What the storm tools cost when armed, on bench.sh's traffic (64k connections, 5% TLS, 20%
# IPv6) and rules (10k CIDR + 1k SNI), one worker on net_pcap -> net_null, hugepages:
#   plain   the rules as bench.sh has them;
#   reject  every DROP rule made REJECT (the policy drops, 0.35% of packets, answered with RSTs
#           and ICMP errors built in the worker's mempool, within the per-worker rate);
#   limits  two limit rules in front (0.0.0.0/0 and ::/0, DROP over 1,000,000 connections a
#           second per source, so none is limited): every new connection scans them and takes a
#           token; a packet of a known flow never reads them.
# `dataplane bench` Mpps per variant, interleaved over ROUNDS rounds (medians), then callgrind
# instructions per packet (scripts/instructions.sh) of the first pass, where every flow is new,
# plain against limits: the limits' cost per new connection, which the Mpps of a looped capture
# (known flows after the first loop) cannot show. The capture's armed cost is measured through
# the control API (README, "Packet capture").
#   ROUNDS=5 DURATION=8 scripts/armed-cost.sh      BIN=path: another build's dataplane
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-8}"
ROUNDS="${ROUNDS:-3}"
FLOWS="${FLOWS:-65536}"
PACKETS="${PACKETS:-131072}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/setup.sh > /dev/null
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p dataplane
fi
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/dataplane}"
. scripts/bench-inputs.sh
bench_traffic "$bin" "$work/traffic.pcap" "$FLOWS" "$PACKETS" > /dev/null
bench_rules "$work/plain.json" > /dev/null
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
rules = json.load(open(f"{work}/plain.json"))
reject = [dict(r, spec=dict(r["spec"], action="REJECT" if r["spec"]["action"] == "DROP" else r["spec"]["action"]))
          for r in rules]
json.dump(reject, open(f"{work}/reject.json", "w"))
limit = {"connectionsPerSecond": 1000000, "burst": 1000000}
front = [{"apiVersion": "policy.secure.example.com/v1", "kind": "NetworkPolicyRule",
          "metadata": {"name": f"limit-{n}"},
          "spec": {"cidrBlocks": [cidr], "action": "DROP", "priority": 0, "limit": limit}}
         for n, cidr in (("v4", "0.0.0.0/0"), ("v6", "::/0"))]
json.dump(front + rules, open(f"{work}/limits.json", "w"))
PY
variants=(plain reject limits)
for v in "${variants[@]}"; do "$bin" rules check "$work/$v.json" > /dev/null; done

for round in $(seq "$ROUNDS"); do
  for v in "${variants[@]}"; do
    "$bin" bench --pcap "$work/traffic.pcap" --rules "$work/$v.json" --duration "$DURATION" --cpus 0,1 \
      --flow-capacity $((FLOWS * 2)) --json > "$work/$v.json.out" 2> "$work/$v.log" ||
      { cat "$work/$v.log"; exit 1; }
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[2], "%.2f" % d["rx_mpps"], "%.1f" % d["cycles_per_packet"])' \
      "$work/$v.json.out" "$v" | tee -a "$work/rounds"
  done
done

echo
echo "## dataplane bench, medians of $ROUNDS rounds of ${DURATION}s (Mpps, cycles per packet, against plain)"
python3 - "$work/rounds" <<'PY'
import statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    v, mpps, cpp = line.split()
    rounds.setdefault(v, []).append((float(mpps), float(cpp)))
base = statistics.median(m for m, _ in rounds["plain"])
for v, rs in rounds.items():
    m = statistics.median(m for m, _ in rs)
    c = statistics.median(c for _, c in rs)
    print(f"{v:8} {m:6.2f} Mpps  {c:6.1f} cycles/packet  {100 * (m / base - 1):+.1f}%")
PY

if [ -z "${BIN:-}" ]; then
  echo
  echo "## instructions per packet, first pass (every flow new), callgrind"
  for v in plain limits; do
    printf '%-8s ' "$v"
    RULES="$work/$v.json" FIRST=1 scripts/instructions.sh | tail -1
  done
fi
