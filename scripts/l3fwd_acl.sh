#!/usr/bin/env bash
# DPDK's ACL forwarder, `l3fwd --lookup=acl` (rte_acl, the classifier a DPDK user would pick
# for CIDR policy), as a reference for the dataplane's policy lookup: the bench's rules
# converted to l3fwd's rule files by scripts/acl_rules.py (what it cannot express, TLS rules,
# left out; connections approximated per packet: see that script), on the devices, traffic and
# core that scripts/bench.sh gives testpmd and `dataplane bench`. Prints the receive rate in
# Mpps, then what went out and what the DROP rules dropped.
#   scripts/l3fwd_acl.sh TRAFFIC.pcap SECONDS MBUFS RULES.json
#
# The same l3fwd build as scripts/l3fwd_em.sh (its four changes to the example; the hash table
# size and the rule families of -E do not concern --lookup=acl), run with --lookup=acl and the
# default classify method (the best the CPU has). Unlike -E, and unlike the dataplane, it keeps
# no state: each packet is classified alone, one rte_acl_classify per burst and family.
# Packets are parsed in software (--parse-ptype: virtual devices set no types).
# The rate is read from the ports' counters by dpdk-proc-info, a secondary process.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 TRAFFIC.pcap SECONDS MBUFS RULES.json" >&2; exit 2; }
pcap=$(realpath "$1")
rules=$(realpath "$4")
self=$(realpath "$0")
cd "$(dirname "$self")/.."
seconds=$2
mbufs=$3

scripts/l3fwd_em.sh --build
l3fwd=target/l3fwd/l3fwd/build/l3fwd

work=$(mktemp -d)
prefix="l3fwd-acl-$$"
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill -INT "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
python3 scripts/acl_rules.py "$rules" "$work/v4.cfg" "$work/v6.cfg"

L3FWD_MBUFS="$mbufs" "$l3fwd" -l 1 --no-pci --file-prefix "$prefix" \
  --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" --vdev "net_null0,no-rx=1" --log-level lib.eal:warning \
  -- -p 0x3 --lookup=acl --parse-ptype --config="(0,0,1),(1,0,1)" \
  --rule_ipv4="$work/v4.cfg" --rule_ipv6="$work/v6.cfg" > "$work/l3fwd.log" 2>&1 &
pid=$!
# rte_acl builds its tries from 22k rules before the loop starts: allow a minute.
for _ in $(seq 120); do
  grep -q "entering main loop" "$work/l3fwd.log" && break
  kill -0 "$pid" 2> /dev/null || { grep -v "^\s*[@R]\|Adding route" "$work/l3fwd.log" | tail -30 >&2; exit 1; }
  sleep 0.5
done
grep -q "entering main loop" "$work/l3fwd.log" || { echo "l3fwd ACL did not start" >&2; exit 1; }
if [ -n "${L3FWD_ACL_LOG:-}" ]; then cp "$work/l3fwd.log" "$L3FWD_ACL_LOG"; fi
sleep 2
# Port 0's RX packets, port 1's TX packets.
counters() {
  dpdk-proc-info --file-prefix "$prefix" --log-level lib.eal:error -- --stats 2> /dev/null | awk '
    /statistics for port 0/ { p = 0 } /statistics for port 1/ { p = 1 }
    /^  RX-packets/ && p == 0 { rx = $2 } /^  TX-packets/ { tx[p] = $2 }
    END { print rx + 0, tx[1] + 0 }'
}
read -r rx0 out0 < <(counters)
t0=$(date +%s.%N)
sleep "$seconds"
read -r rx1 out1 < <(counters)
t1=$(date +%s.%N)
python3 - "$rx0" "$rx1" "$out0" "$out1" "$t0" "$t1" <<'PY'
import sys
rx0, rx1, out0, out1 = map(int, sys.argv[1:5])
seconds = float(sys.argv[6]) - float(sys.argv[5])
if rx1 <= rx0:
    sys.exit('l3fwd forwarded nothing')
rx, out = (rx1 - rx0) / seconds / 1e6, (out1 - out0) / seconds / 1e6
print(f'{rx:.2f} Mpps (sent {out:.2f}, dropped {rx - out:.2f})')
PY
