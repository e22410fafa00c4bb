#!/usr/bin/env bash
# Forwarding between two network namespaces over veth: the dataplane with one worker on
# AF_PACKET ports, then on AF_XDP ports, and the kernel's own bridge between the same veths as
# the reference, each measured in the same run with the same iperf3 traffic:
#   - TCP, 4 streams: goodput (Gbps, iperf3's receiver) and packets forwarded per second;
#   - UDP, 64-byte payloads as fast as one iperf3 sender goes: packets sent and received per
#     second (Mpps) and the loss.
# Packets forwarded are read off the namespace ends of the veths (what reached each side), so
# every forwarder is counted the same way.
#
#   sudo scripts/veth-bench.sh                 # DURATION=5 BIN=target/release/dataplane
#   DURATION=10 WORKER_CPU=1 BIN=... sudo scripts/veth-bench.sh
#
# Needs root, iperf3, ethtool, ip, python3, and bpffs for AF_XDP (scripts/setup.sh mounts it).
# The worker polls WORKER_CPU; iperf3 and the kernel share the other CPUs: on a 2-CPU machine
# the sender, the receiver and the veths' softirqs all run on the one CPU left, so every row
# is bounded by that as much as by the forwarder. Other work on the machine moves the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5}"
BIN="${BIN:-target/release/dataplane}"
WORKER_CPU="${WORKER_CPU:-1}"
P=vb$$
NS_A=${P}a NS_B=${P}b
HA=${P}ha PA=${P}pa HB=${P}hb PB=${P}pb BR=${P}br
IP_A=10.79.0.1 IP_B=10.79.0.2

for t in iperf3 ethtool ip python3; do
  command -v "$t" >/dev/null || { echo "veth-bench: $t is missing (apt-get install $t)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "veth-bench: needs root (namespaces, veths, AF_PACKET/AF_XDP)"; exit 1; }
[ -x "$BIN" ] || { echo "veth-bench: no $BIN (cargo build --release -p dataplane)"; exit 1; }

work=$(mktemp -d)
dp_pid=
server_pid=
cleanup() {
  [ -n "$dp_pid" ] && kill "$dp_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  ip link del "$BR" 2>/dev/null || true
  ip link del "$HA" 2>/dev/null || true
  ip link del "$HB" 2>/dev/null || true
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for s in a b; do
  ns=${P}$s host=${P}h$s peer=${P}p$s
  ip netns add "$ns"
  ip link add "$host" type veth peer name "$peer"
  ip link set "$peer" netns "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$peer" up
  ip link set "$host" up
  # A veth leaves TX checksums for a NIC to fill; AF_PACKET and AF_XDP forward them unfilled.
  ethtool -K "$host" tx off >/dev/null
  ip netns exec "$ns" ethtool -K "$peer" tx off >/dev/null
done
ip -n "$NS_A" addr add "$IP_A/24" dev "$PA"
ip -n "$NS_B" addr add "$IP_B/24" dev "$PB"

ip netns exec "$NS_B" iperf3 -s >/dev/null 2>&1 &
server_pid=$!
sleep 0.5

# Packets the two namespaces received so far (what the forwarder delivered).
delivered() {
  echo $(( $(ip netns exec "$NS_A" cat /sys/class/net/$PA/statistics/rx_packets) + \
           $(ip netns exec "$NS_B" cat /sys/class/net/$PB/statistics/rx_packets) ))
}

start_dataplane() { # driver
  local d=$1 a b
  case $d in
    net_af_packet) a="net_af_packet0,iface=$HA"; b="net_af_packet1,iface=$HB" ;;
    net_af_xdp) a="net_af_xdp0,iface=$HA,start_queue=0,queue_count=1"; b="net_af_xdp1,iface=$HB,start_queue=0,queue_count=1" ;;
  esac
  cat > "$work/dp.toml" <<EOF
eal = ["--no-pci", "--no-shconf", "--file-prefix", "$P", "-m", "512", "--lcores", "0@0,1@$WORKER_CPU",
  "--vdev", "$a", "--vdev", "$b", "--log-level", "lib.eal:warning", "--no-telemetry"]
rules = []
stats_period = 0
[mempool]
size = 16383
[[ports]]
device = "${d}0"
[[ports]]
device = "${d}1"
[forward]
${d}0 = "${d}1"
${d}1 = "${d}0"
[[workers]]
lcore = 1
rx = [{ port = "${d}0" }, { port = "${d}1" }]
EOF
  "$BIN" run --config "$work/dp.toml" > "$work/dp.out" 2> "$work/dp.err" &
  dp_pid=$!
  for _ in $(seq 300); do
    grep -q '^running:' "$work/dp.out" 2>/dev/null && return 0
    kill -0 "$dp_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "veth-bench: the dataplane did not start on $d:"; grep -v '^libbpf: elf' "$work/dp.err" | tail -5
  exit 1
}

stop_dataplane() { # driver; its clean exit noted in $work/notes
  kill -TERM "$dp_pid"
  local rc=0 mbufs
  wait "$dp_pid" || rc=$?
  dp_pid=
  mbufs=$(grep '^mbufs in use' "$work/dp.out" || true)
  [ "$rc" -eq 0 ] || { echo "veth-bench: the dataplane on $1 exited with $rc ($mbufs)"; grep -v '^libbpf' "$work/dp.err" | tail -3; exit 1; }
  echo "$1: exit 0, $mbufs" >> "$work/notes"
}

# One row: TCP then UDP through whatever forwards now.
measure() { # name
  local before after tcp udp
  ip netns exec "$NS_A" ping -c 1 -W 2 "$IP_B" >/dev/null || { echo "veth-bench: $1 does not forward"; exit 1; }
  before=$(delivered)
  tcp=$(ip netns exec "$NS_A" iperf3 -c "$IP_B" -t "$DURATION" -P 4 --json)
  after=$(delivered)
  udp=$(ip netns exec "$NS_A" iperf3 -c "$IP_B" -t "$DURATION" -u -l 64 -b 0 --json)
  python3 - "$1" "$DURATION" "$((after - before))" "$tcp" "$udp" <<'EOF'
import json, sys
name, duration, tcp_packets = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
tcp, udp = json.loads(sys.argv[4]), json.loads(sys.argv[5])
gbps = tcp["end"]["sum_received"]["bits_per_second"] / 1e9
s = udp["end"]["sum"]
sent, lost, secs = s["packets"], s["lost_packets"], s["seconds"]
print(f"| {name} | {gbps:.2f} | {tcp_packets / duration / 1e6:.3f} | {sent / secs / 1e6:.3f} | "
      f"{(sent - lost) / secs / 1e6:.3f} | {100 * lost / max(sent, 1):.1f} % |")
EOF
}

echo "veth-bench: $(nproc) CPUs, worker on CPU $WORKER_CPU, $DURATION s per test, $(uname -r), $("$BIN" --version 2>/dev/null || echo dataplane)"
echo
echo "| forwarder | TCP Gbps (4 streams) | TCP Mpps forwarded | UDP 64 B Mpps sent | UDP 64 B Mpps received | UDP loss |"
echo "|---|---|---|---|---|---|"

ip link add "$BR" type bridge
ip link set "$HA" master "$BR"
ip link set "$HB" master "$BR"
ip link set "$BR" up
measure "kernel bridge (reference)"
ip link del "$BR"

for d in net_af_packet net_af_xdp; do
  start_dataplane "$d"
  measure "dataplane, $d, 1 worker"
  stop_dataplane "$d"
done
echo
cat "$work/notes"
