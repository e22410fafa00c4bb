#!/usr/bin/env bash
# testpmd (5tswap) and `dataplane bench` back to back on the same virtual devices, the same
# traffic file and the same core, with hugepages; prints both rates and the ratio.
#   net_pcap0 (replaying the capture forever) -> one forwarding core -> net_null0 (sink)
# Rules: 10k CIDR rules + 1k SNI rules; traffic: 64k connections, 5% TLS.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
FLOWS="${FLOWS:-65536}"
PACKETS="${PACKETS:-131072}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

scripts/setup.sh
cargo build --release -q -p dataplane
bin=target/release/dataplane
"$bin" gen --out "$work/traffic.pcap" --packets "$PACKETS" --flows "$FLOWS" --tls-ratio 0.05 --ipv6-ratio 0.2
python3 scripts/gen_rules.py "$work/rules.json" --cidr 10000 --sni 1000
"$bin" rules check "$work/rules.json"
mbufs=$(( (PACKETS / 32768 + 2) * 32768 * 2 - 1 ))
vdevs=(--vdev "net_pcap0,rx_pcap=$work/traffic.pcap,infinite_rx=1" --vdev "net_null0,no-rx=1")

echo "== testpmd --forward-mode=5tswap, ${DURATION}s"
timeout -s INT "$((DURATION + 2))" dpdk-testpmd -l 0,1 --no-pci --file-prefix "bench-tp-$$" "${vdevs[@]}" \
  --log-level lib.eal:warning -- --forward-mode=5tswap --nb-cores=1 --total-num-mbufs="$mbufs" \
  --stats-period 1 -a > "$work/testpmd.log" 2>&1 || true
# Port 1's Tx-pps, averaged over the per-second samples after the first.
testpmd_pps=$(awk '/Tx-pps:/ { n++; if (n % 2 == 0 && n > 2) { s += $2; c++ } } END { printf "%.0f", c ? s / c : 0 }' "$work/testpmd.log")

echo "== dataplane bench, ${DURATION}s"
"$bin" bench --pcap "$work/traffic.pcap" --rules "$work/rules.json" --duration "$DURATION" --cpus 0,1 \
  --flow-capacity $((FLOWS * 2)) --json > "$work/bench.json" 2> "$work/dataplane.log"
cat "$work/dataplane.log"
dataplane_pps=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["rx_mpps"] * 1e6))' "$work/bench.json")
cycles=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["cycles_per_packet"], 1))' "$work/bench.json")

echo
printf '%-34s %12s\n' "" "Mpps"
printf '%-34s %12.2f\n' "testpmd 5tswap (1 core)" "$(echo "$testpmd_pps" | awk '{print $1/1e6}')"
printf '%-34s %12.2f   (%s cycles/packet)\n' "dataplane bench (1 worker core)" "$(echo "$dataplane_pps" | awk '{print $1/1e6}')" "$cycles"
awk -v a="$dataplane_pps" -v b="$testpmd_pps" 'BEGIN { if (b > 0) printf "ratio dataplane / testpmd: %.2f\n", a / b }'
echo "summary: $(cat "$work/bench.json")"
