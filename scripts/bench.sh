#!/usr/bin/env bash
# testpmd (5tswap) and `dataplane bench` back to back on the same virtual devices, the same
# traffic file and the same core, with hugepages, for ROUNDS rounds; prints both rates and
# their ratio for each round and the medians.
#   net_pcap0 (replaying the capture forever) -> one forwarding core -> net_null0 (sink)
# Rules: 10k CIDR rules + 1k SNI rules. The SNI rules name TCP 443 and UDP 443 among their
# ports (scripts/gen_rules.py), so they concern QUIC too: the dataplane reads the ClientHello
# of every QUIC connection of the second traffic file from its Initials.
# Traffic, two files measured in the same rounds, each its own table:
#   row "TLS":        64k connections, 5% of the TCP ones TLS (gen --tls-ratio 0.05), 20% IPv6;
#   row "TLS + QUIC": the same, and QUIC_RATIO (default 0.05) of all connections QUIC to UDP
#                     443 (gen --quic-ratio; a quarter of the hellos in two Initials).
#                     QUIC_RATIO=0 leaves this row out.
# A third reference, DPDK's exact-match forwarder `l3fwd -E` with one rule per 5-tuple of the
# traffic (scripts/l3fwd_em.sh), runs between them: one hash lookup per packet, the part of
# the dataplane's work that the flow count makes expensive. A fourth, DPDK's ACL forwarder
# `l3fwd --lookup=acl` (scripts/l3fwd_acl.sh), classifies every packet with rte_acl against the
# bench's CIDR rules converted to its rule files (scripts/acl_rules.py): the library a DPDK user
# would pick for CIDR policy. What differs: it keeps no state (each packet classified alone,
# a rule's address and port matched on either side of the packet instead of per connection),
# it reads no TLS or QUIC (the 1k SNI rules are left out: it cannot express them), and it has
# no flow table, so the flow count moves it only through the rules' tries staying in cache.
# L3FWD=0 leaves both l3fwd columns out.
# testpmd also runs in `io` forwarding (no header touched) right before and right after the
# dataplane in every round, and the script prints "our share": the dataplane's cycles per
# packet (its busy TSC cycles / packets, from its JSON summary) minus testpmd io's (TSC Hz, as
# the dataplane reports it, / the mean of io's two rates): the cost of our work without
# net_pcap's replay and the null device, which a real NIC does not have. Like every figure
# here it moves with the host's other tenants; "io drift" (how far apart io's two runs were)
# says when a round's host moved under it. A second table takes the same share for l3fwd -E,
# l3fwd ACL and BIN (TSC Hz / their rate - io's cycles per packet; they run earlier in the
# round than io's first run): what DPDK's own lookups cost above the replay, beside ours.
# BIN=path/to/old/dataplane adds that build's `dataplane bench` to every round and row, on the
# same devices, traffic and core, so a change is measured against the build before it in one
# run (a build from before QUIC inspection passes the QUIC connections as plain UDP).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
FLOWS="${FLOWS:-65536}"
PACKETS="${PACKETS:-131072}"
L3FWD="${L3FWD:-1}"
BIN="${BIN:-}"
QUIC_RATIO="${QUIC_RATIO:-0.05}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/setup.sh
cargo build --release -q -p dataplane
bin="${CARGO_TARGET_DIR:-target}/release/dataplane"
. scripts/bench-inputs.sh
rows=(tls)
bench_traffic "$bin" "$work/tls.pcap" "$FLOWS" "$PACKETS"
if [ "$QUIC_RATIO" != 0 ]; then
  rows+=(quic)
  bench_traffic "$bin" "$work/quic.pcap" "$FLOWS" "$PACKETS" "$QUIC_RATIO"
fi
bench_rules "$work/rules.json"
"$bin" rules check "$work/rules.json"
mbufs=$(( (PACKETS / 32768 + 2) * 32768 * 2 - 1 ))

label() {
  case "$1" in
    tls) echo "TLS: ${FLOWS} connections, 5% of the TCP ones TLS" ;;
    quic) echo "TLS + QUIC: the same, and ${QUIC_RATIO} of all connections QUIC (UDP 443)" ;;
  esac
}

# testpmd in forward mode $1 on $2 for DURATION seconds; prints port 1's Tx-pps, averaged over
# the per-second samples after the first.
run_testpmd() {
  local mode=$1 pcap=$2
  timeout -s INT "$((DURATION + 2))" dpdk-testpmd -l 0,1 --no-pci --file-prefix "bench-tp-$$" \
    --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" --vdev "net_null0,no-rx=1" \
    --log-level lib.eal:warning -- --forward-mode="$mode" --nb-cores=1 --total-num-mbufs="$mbufs" \
    --stats-period 1 -a > "$work/testpmd.log" 2>&1 || true
  awk '/Tx-pps:/ { n++; if (n % 2 == 0 && n > 2) { s += $2; c++ } } END { printf "%.0f", c ? s / c : 0 }' "$work/testpmd.log"
}

# One row's measurements in one round: testpmd 5tswap and io, l3fwd -E and ACL, BIN, the
# dataplane, on $work/$row.pcap; appends a line to $work/rounds-$row.
measure() {
  local row=$1 round=$2
  local pcap="$work/$row.pcap"
  echo "== round $round, $row: testpmd --forward-mode=5tswap, ${DURATION}s"
  local testpmd_pps io_before io_after
  testpmd_pps=$(run_testpmd 5tswap "$pcap")

  local l3fwd_mpps=- acl_mpps=-
  if [ "$L3FWD" = 1 ]; then
    echo "== round $round, $row: l3fwd -E, ${DURATION}s"
    l3fwd_mpps=$(scripts/l3fwd_em.sh "$pcap" "$DURATION" "$mbufs" | awk '{ print $1 }') || l3fwd_mpps=-
    echo "== round $round, $row: l3fwd --lookup=acl, ${DURATION}s"
    acl_mpps=$(scripts/l3fwd_acl.sh "$pcap" "$DURATION" "$mbufs" "$work/rules.json" | awk '{ print $1 }') ||
      acl_mpps=-
  fi

  local old_mpps=-
  if [ -n "$BIN" ]; then
    echo "== round $round, $row: dataplane bench of BIN=$BIN, ${DURATION}s"
    "$BIN" bench --pcap "$pcap" --rules "$work/rules.json" --duration "$DURATION" --cpus 0,1 \
      --flow-capacity $((FLOWS * 2)) --json > "$work/old.json" 2> "$work/old.log" &&
      old_mpps=$(python3 -c 'import json, sys; print("%.2f" % json.load(open(sys.argv[1]))["rx_mpps"])' "$work/old.json") ||
      old_mpps=-
  fi

  # testpmd io right before and right after the dataplane: our share is taken against their
  # mean, so that the host's drift within a round moves both sides alike (measured a minute
  # apart, one round's share once came out negative).
  echo "== round $round, $row: testpmd --forward-mode=io, ${DURATION}s"
  io_before=$(run_testpmd io "$pcap")
  echo "== round $round, $row: dataplane bench, ${DURATION}s"
  "$bin" bench --pcap "$pcap" --rules "$work/rules.json" --duration "$DURATION" --cpus 0,1 \
    --flow-capacity $((FLOWS * 2)) --json > "$work/bench-$row.json" 2> "$work/dataplane.log"
  echo "== round $round, $row: testpmd --forward-mode=io again, ${DURATION}s"
  io_after=$(run_testpmd io "$pcap")
  if [ "$round" = 1 ]; then cat "$work/dataplane.log"; fi
  python3 - "$work/bench-$row.json" "$testpmd_pps" "$round" "$l3fwd_mpps" "$old_mpps" "$io_before" "$acl_mpps" \
    "$io_after" >> "$work/rounds-$row" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
testpmd = float(sys.argv[2]) / 1e6
ratio = d["rx_mpps"] / testpmd if testpmd else 0
# testpmd io's rate: the mean of its runs before and after the dataplane's; how far apart they
# were (percent of the mean) says how much the host moved during the round.
ios = [float(x) / 1e6 for x in (sys.argv[6], sys.argv[8]) if float(x) > 0]
io = sum(ios) / len(ios) if ios else 0
drift = f'{100 * (max(ios) - min(ios)) / io:.0f}' if io else '-'
# testpmd io's cycles per packet at the TSC frequency the dataplane reports; our share: the
# dataplane's cycles per packet minus those.
io_cpp = f'{d["tsc_hz"] / (io * 1e6):.1f}' if io else '-'
share = f'{d["cycles_per_packet"] - float(io_cpp):.1f}' if io else '-'
# The same share for the other forwarders, from their rates (TSC Hz / rate - io's cycles): what
# DPDK's own lookups cost above the replay, beside ours. BIN's is the build before's share.
def share_of(mpps):
    return f'{d["tsc_hz"] / (float(mpps) * 1e6) - float(io_cpp):.1f}' if io and mpps != '-' and float(mpps) > 0 else '-'
print(f'{sys.argv[3]} {testpmd:.2f} {d["rx_mpps"]:.2f} {d["cycles_per_packet"]:.1f} {ratio:.2f} {sys.argv[4]} '
      f'{sys.argv[5]} {io:.2f} {sys.argv[7]} {io_cpp} {share} {drift} '
      f'{share_of(sys.argv[4])} {share_of(sys.argv[7])} {share_of(sys.argv[5])}')
PY
}

# Rounds alternate testpmd and the dataplane, and the rows within a round, so that all see the
# same host: other tenants of a shared machine move every rate by 10-15% from minute to minute.
for round in $(seq "$ROUNDS"); do
  for row in "${rows[@]}"; do
    measure "$row" "$round"
  done
done

for row in "${rows[@]}"; do
  echo
  echo "## row $row: $(label "$row")"
  python3 - "$work/rounds-$row" "$row" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
tag = sys.argv[2]
# Fields: 0 round, 1 testpmd 5tswap, 2 dataplane, 3 its cycles/packet, 4 ratio, 5 l3fwd -E,
# 6 BIN, 7 testpmd io (mean of before and after), 8 l3fwd ACL, 9 io cycles/packet, 10 our share,
# 11 io drift (%: how far apart testpmd io's two runs of the round were).
cols = [("round", 0, 12), ("testpmd 5tswap Mpps", 1, 22), ("testpmd io Mpps", 7, 18), ("l3fwd -E Mpps", 5, 16),
        ("l3fwd ACL Mpps", 8, 17), ("BIN Mpps", 6, 11), ("dataplane Mpps", 2, 17), ("cycles/packet", 3, 16),
        ("ratio", 4, 8), ("io cycles/packet", 9, 19), ("our share", 10, 12), ("io drift %", 11, 13)]
def median_of(i, digits=2):
    xs = [float(r[i]) for r in rows if r[i] != '-']
    return f'{statistics.median(xs):.{digits}f}' if xs else '-'
def line(cells):
    return ''.join(f'{c:<{w}}' if j == 0 else f'{c:>{w}}' for j, (c, (_, _, w)) in enumerate(zip(cells, cols)))
print(line([name for name, _, _ in cols]))
for r in rows:
    print(line([r[i] for _, i, _ in cols]))
print(line(["median " + tag] + [median_of(i, 0 if i == 11 else 1 if i in (3, 9, 10) else 2) for _, i, _ in cols[1:]]))
# Fields 12-14: l3fwd -E's, l3fwd ACL's and BIN's share, taken like ours (see measure).
print()
cols = [("round", 0, 12), ("io cycles/packet", 9, 19), ("l3fwd -E share", 12, 17), ("l3fwd ACL share", 13, 18),
        ("BIN share", 14, 12), ("our share", 10, 12)]
print(line([name for name, _, _ in cols]))
for r in rows:
    print(line([r[i] for _, i, _ in cols]))
print(line(["median " + tag] + [median_of(i, 1) for _, i, _ in cols[1:]]))
med = [statistics.median(float(r[i]) for r in rows) for i in range(1, 5)]
if median_of(6) != '-':
    print(f"dataplane / BIN ({tag}): {med[1] / float(median_of(6)):.3f}")
PY
done
echo "(one forwarding core each; same devices, traffic and core; ratio: dataplane / testpmd 5tswap;"
echo " our share: dataplane cycles/packet - testpmd io's (TSC Hz / io's rate, io run right before"
echo " and right after the dataplane, their mean), per round, and the median of those per-round"
echo " differences; io drift: how far apart those two io runs were, in % (a large one: the host"
echo " moved during the round); l3fwd ACL: no state, no TLS, the SNI rules left out;"
echo " second table: each forwarder's cycles/packet - testpmd io's, taken like our share;"
echo " BIN: the build given as BIN=, measured in the same rounds)"
for row in "${rows[@]}"; do
  echo "summary of the last round, row $row: $(cat "$work/bench-$row.json")"
done
