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
"$bin" gen --out /tmp/dataplane-in.pcap --packets 20000 --flows 4096 --tls-ratio 0.05 --quic-ratio 0.05 --ipv6-ratio 0.2

echo "== rules"
"$bin" rules check config/rules

echo "== what the policy does to this traffic (offline, the same pipeline)"
"$bin" classify --rules config/rules --pcap /tmp/dataplane-in.pcap

echo "== dataplane run for ${DURATION}s: net_pcap0 (replaying the capture) -> net_null0 (sink)"
# The example config runs without hugepages. net_pcap keeps the whole capture in mbufs, so the
# demo's copy of it gets a larger mempool; a unique file prefix lets demos run side by side.
# Its control API listens on a free loopback port; halfway through, a rule dropping all UDP
# is applied through it, and the stats show the new generation and the policy drops.
config=$(mktemp --suffix=.toml -p config)
log=$(mktemp)
update=$(mktemp --suffix=.yaml)
trap 'rm -f "$config" "$log" "$update"' EXIT
sed -e 's/^size = 8191$/size = 32767/' -e 's/^listen = "127.0.0.1:9090"$/listen = "127.0.0.1:0"/' config/dataplane.toml > "$config"
cat config/rules/*.yaml > "$update"
cat >> "$update" <<'YAML'
---
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata:
  name: demo-no-udp
spec:
  action: DROP
  reason: "applied through the control API by scripts/demo.sh"
  ports: [{protocol: UDP}]
YAML
"$bin" run --config "$config" --duration "$DURATION" -- --file-prefix "demo-$$" | tee "$log" &
run_pid=$!
for _ in $(seq 1 100); do grep -q "control API listening on" "$log" && break; sleep 0.1; done
url=$(sed -n 's/^control API listening on //p' "$log")
sleep "$(( DURATION / 2 ))"
echo "== rules apply --control $url (the example rules + one dropping UDP)"
"$bin" rules apply --control "$url" "$update" || true
wait "$run_pid"
