#!/usr/bin/env bash
# DPDK's own exact-match forwarder, `l3fwd -E`, as a reference for the dataplane's flow lookup:
# one hash lookup of each packet's 5-tuple at line rate, on the devices, traffic and core that
# scripts/bench.sh gives testpmd and `dataplane bench`. Prints the receive rate in Mpps.
#   scripts/l3fwd_em.sh TRAFFIC.pcap SECONDS MBUFS
#
# l3fwd is built from the DPDK 22.11 examples (Debian's dpdk-doc) into target/l3fwd, with four
# changes, all needed to run it here or to make the comparison like for like:
#   - RX offloads limited to what the device offers (net_pcap offers none; l3fwd asks for
#     checksum offload and refuses to start);
#   - the mbuf count from L3FWD_MBUFS (net_pcap's infinite_rx holds the whole capture in
#     mbufs; bench.sh gives testpmd the same count);
#   - hash tables of 131072 entries, the flow-table capacity bench.sh gives the dataplane
#     (l3fwd's own 4M entries are 30 times the flows);
#   - both IPv4 and IPv6 rules loaded (l3fwd loads one family, by --ipv6).
# Every IPv4/IPv6 TCP/UDP packet of the capture has its rule (the `em_rules` example, which
# reads the capture with the dataplane's own pcap reader and parser), so every
# lookup hits; packets are parsed in software (--parse-ptype: virtual devices set no types).
# The rate is read from the ports' counters by dpdk-proc-info, a secondary process.
# `scripts/l3fwd_em.sh --build` only builds it (scripts/l3fwd_acl.sh runs the same build with
# --lookup=acl).
set -euo pipefail
build_only=
if [ "${1:-}" = --build ] && [ $# -eq 1 ]; then
  build_only=1
else
  [ $# -eq 3 ] || { echo "usage: $0 TRAFFIC.pcap SECONDS MBUFS | $0 --build" >&2; exit 2; }
  # The capture's path as given (relative to the caller's directory), before moving to the repo.
  pcap=$(realpath "$1")
  seconds=$2
  mbufs=$3
fi
self=$(realpath "$0")
cd "$(dirname "$self")/.."
src=/usr/share/dpdk/examples
out=target/l3fwd

# Built once, and again when this script (its changes to the example) is newer.
if [ ! -x "$out/l3fwd/build/l3fwd" ] || [ "$self" -nt "$out/l3fwd/build/l3fwd" ]; then
  [ -d "$src/l3fwd" ] || { apt-get update -qq && apt-get install -y -qq dpdk-doc > /dev/null; }
  rm -rf "$out" && mkdir -p "$out"
  # The example's Makefile expects the examples' common headers beside it.
  cp -r "$src/l3fwd" "$src/common" "$out/"
  python3 - "$out/l3fwd" <<'PY'
import sys
root = sys.argv[1]
def patch(name, old, new):
    path = f'{root}/{name}'
    text = open(path).read()
    if text.count(old) != 1:
        sys.exit(f'{path}: expected exactly one "{old.strip()}" (another DPDK version?)')
    open(path, 'w').write(text.replace(old, new))
patch('main.c', 'local_port_conf.rx_adv_conf.rss_conf.rss_hf &=',
      'local_port_conf.rxmode.offloads &= dev_info.rx_offload_capa;\n\t\tlocal_port_conf.rx_adv_conf.rss_conf.rss_hf &=')
patch('main.c', 'rxq_conf.offloads = port_conf.rxmode.offloads;',
      'rxq_conf.offloads = port_conf.rxmode.offloads & dev_info.rx_offload_capa;')
patch('main.c', 'init_mem(0, NB_MBUF(nb_ports))',
      'init_mem(0, getenv("L3FWD_MBUFS") ? (unsigned int)atoi(getenv("L3FWD_MBUFS")) : NB_MBUF(nb_ports))')
patch('l3fwd.h', '#define L3FWD_HASH_ENTRIES\t\t(1024*1024*4)', '#define L3FWD_HASH_ENTRIES\t\t(1024*128)')
patch('l3fwd_em.c', '\tif (ipv6 == 0) {\n\t\t/* populate the ipv4 hash */',
      '\t{\n\t\t/* populate the ipv4 hash */')
patch('l3fwd_em.c', '\t} else {\n\t\t/* populate the ipv6 hash */', '\t}\n\t{\n\t\t/* populate the ipv6 hash */')
PY
  make -s -C "$out/l3fwd" shared > /dev/null
fi
[ -z "$build_only" ] || exit 0

work=$(mktemp -d)
prefix="l3fwd-ref-$$"
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill -INT "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release -q -p dataplane --example em_rules
target/release/examples/em_rules "$pcap" "$work/v4.cfg" "$work/v6.cfg" 1 2> "$work/rules.log"

L3FWD_MBUFS="$mbufs" "$out/l3fwd/build/l3fwd" -l 1 --no-pci --file-prefix "$prefix" \
  --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" --vdev "net_null0,no-rx=1" --log-level lib.eal:warning \
  -- -p 0x3 -E --parse-ptype --config="(0,0,1),(1,0,1)" \
  --rule_ipv4="$work/v4.cfg" --rule_ipv6="$work/v6.cfg" > "$work/l3fwd.log" 2>&1 &
pid=$!
for _ in $(seq 120); do
  grep -q "entering main loop" "$work/l3fwd.log" && break
  kill -0 "$pid" 2> /dev/null || { grep -v "Adding route" "$work/l3fwd.log" >&2; exit 1; }
  sleep 0.5
done
sleep 2
# Port 0's RX packets, port 0's and port 1's TX packets.
counters() {
  dpdk-proc-info --file-prefix "$prefix" --log-level lib.eal:error -- --stats 2> /dev/null | awk '
    /statistics for port 0/ { p = 0 } /statistics for port 1/ { p = 1 }
    /^  RX-packets/ && p == 0 { rx = $2 } /^  TX-packets/ { tx[p] = $2 }
    END { print rx + 0, tx[0] + 0, tx[1] + 0 }'
}
read -r rx0 back0 out0 < <(counters)
t0=$(date +%s.%N)
sleep "$seconds"
read -r rx1 back1 out1 < <(counters)
t1=$(date +%s.%N)
python3 - "$rx0" "$rx1" "$out0" "$out1" "$back0" "$back1" "$t0" "$t1" <<'PY'
import sys
rx0, rx1, out0, out1, back0, back1 = map(int, sys.argv[1:7])
seconds = float(sys.argv[8]) - float(sys.argv[7])
if rx1 <= rx0:
    sys.exit('l3fwd forwarded nothing')
# Packets without a rule would go back out of port 0: there must be none.
print(f'{(rx1 - rx0) / seconds / 1e6:.2f} Mpps (sent {(out1 - out0) / seconds / 1e6:.2f}, '
      f'unmatched {(back1 - back0) / seconds / 1e6:.2f})')
PY
