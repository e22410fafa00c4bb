#!/usr/bin/env bash
# Does the kernel's AF_PACKET fanout keep both directions of a connection on the same socket
# index? Two namespaces joined by one veth pair; on each end, a fanout group of two packet
# sockets (as DPDK's net_af_packet makes with qpairs=2) records which socket each TCP
# connection's incoming packets reached; iperf3 runs connections between the two. A
# connection whose two directions reached different indexes would be split between two
# workers polling one queue each. Run once per fanout flag set:
#   none      PACKET_FANOUT_HASH alone
#   defrag    + PACKET_FANOUT_FLAG_DEFRAG
#   rollover  + PACKET_FANOUT_FLAG_ROLLOVER
#   dpdk      + both, what DPDK 22.11's net_af_packet sets
#
#   sudo scripts/fanout-probe.sh          # CONNECTIONS=16 RATE=2M DURATION=3
set -euo pipefail

CONNECTIONS="${CONNECTIONS:-16}"
RATE="${RATE:-2M}"
DURATION="${DURATION:-3}"
P=fp$$
for t in iperf3 ip python3 ethtool; do
  command -v "$t" >/dev/null || { echo "fanout-probe: $t is missing"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "fanout-probe: needs root"; exit 1; }

work=$(mktemp -d)
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  ip netns del ${P}a 2>/dev/null || true
  ip netns del ${P}b 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add ${P}a
ip netns add ${P}b
ip link add ${P}va netns ${P}a type veth peer name ${P}vb netns ${P}b
ip -n ${P}a addr add 10.80.0.1/24 dev ${P}va
ip -n ${P}b addr add 10.80.0.2/24 dev ${P}vb
for s in a b; do
  ip -n ${P}$s link set lo up
  ip -n ${P}$s link set ${P}v$s up
done
ip netns exec ${P}b iperf3 -s >/dev/null 2>&1 &

cat > "$work/probe.py" <<'EOF'
# Records, for each TCP connection, the fanout socket indexes its incoming packets reached.
import json, select, socket, struct, sys, time
ifname, flags, seconds, out = sys.argv[1], int(sys.argv[2], 0), float(sys.argv[3]), sys.argv[4]
socks = []
for q in range(2):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((ifname, 0))
    s.setsockopt(263, 18, struct.pack("I", 0x4242 | (flags << 16)))  # SOL_PACKET, PACKET_FANOUT
    s.setblocking(False)
    socks.append(s)
print("ready", flush=True)
seen = {}
end = time.time() + seconds
while time.time() < end:
    ready, _, _ = select.select(socks, [], [], 0.1)
    for q, s in enumerate(socks):
        if s not in ready:
            continue
        while True:
            try:
                data, addr = s.recvfrom(2048)
            except BlockingIOError:
                break
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 54 or data[12:14] != b"\x08\x00" or data[23] != 6:
                continue
            ihl = (data[14] & 15) * 4
            ports = struct.unpack("!HH", data[14 + ihl:18 + ihl])
            ends = sorted([(data[26:30].hex(), ports[0]), (data[30:34].hex(), ports[1])])
            seen.setdefault(repr(ends), set()).add(q)
json.dump({k: sorted(v) for k, v in seen.items()}, open(out, "w"))
EOF

echo "| fanout flags | connections | reached the same index both ways | split |"
echo "|---|---|---|---|"
for mode in none:0x0 defrag:0x8000 rollover:0x1000 dpdk:0x9000; do
  name=${mode%%:*} flags=${mode#*:}
  probe_seconds=$((DURATION + 3))
  for s in a b; do
    ip netns exec ${P}$s python3 "$work/probe.py" ${P}v$s "$flags" "$probe_seconds" "$work/$s.json" > "$work/$s.ready" &
  done
  sleep 1
  ip netns exec ${P}a iperf3 -c 10.80.0.2 -t "$DURATION" -P "$CONNECTIONS" -b "$RATE" >/dev/null
  wait $(jobs -p | tail -2)
  python3 - "$name" "$work/a.json" "$work/b.json" <<'EOF'
import json, sys
name, a, b = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
both = [k for k in a if k in b]
split = sum(1 for k in both if a[k] != b[k] or len(a[k]) > 1 or len(b[k]) > 1)
print(f"| {name} | {len(both)} | {len(both) - split} | {split} |")
EOF
done
