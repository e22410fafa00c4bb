#!/usr/bin/env bash
# The "run it" command: set up what is missing, build in release mode, generate traffic, run
# the dataplane for about 10 seconds on virtual devices (no NIC, no hugepages needed) with the
# example rules, and show the stats table and the final verdict counts.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
scripts/setup.sh
echo "== building (release)"
cargo build --release -q -p dataplane
bin=target/release/dataplane

echo "== generating traffic: 4096 connections, 5% TLS, 20% IPv6"
"$bin" gen --out /tmp/dataplane-in.pcap --packets 20000 --flows 4096 --tls-ratio 0.05 --ipv6-ratio 0.2

echo "== rules"
"$bin" rules check config/rules

echo "== what the policy does to this traffic (offline, the same pipeline)"
"$bin" classify --rules config/rules --pcap /tmp/dataplane-in.pcap

echo "== dataplane run for ${DURATION}s: net_pcap0 (replaying the capture) -> net_null0 (sink)"
# The example config runs without hugepages. net_pcap keeps the whole capture in mbufs, so the
# demo's copy of it gets a larger mempool; a unique file prefix lets demos run side by side.
config=$(mktemp --suffix=.toml -p config)
trap 'rm -f "$config"' EXIT
sed -e 's/^size = 8191$/size = 32767/' -e 's/^listen = "127.0.0.1:9090"$/listen = "127.0.0.1:0"/' config/dataplane.toml > "$config"
"$bin" run --config "$config" --duration "$DURATION" -- --file-prefix "demo-$$"
