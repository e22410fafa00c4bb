#!/usr/bin/env python3
"""Exact-match rules for DPDK's l3fwd (-E) from a capture: one rule per directional
5-tuple of TCP/UDP over untagged IPv4/IPv6, all sent to one output port, so that every such
packet of the capture finds its entry.

    scripts/em_rules.py TRAFFIC.pcap OUT_V4.cfg OUT_V6.cfg OUT_PORT

l3fwd's EM rule line: R<dst addr> <src addr> <dst port> <src port> <protocol> <out port>.
"""
import ipaddress
import struct
import sys


def tuples(path):
    """The directional 5-tuples of the capture, IPv4 and IPv6 apart."""
    data = open(path, 'rb').read()
    if len(data) < 24:
        sys.exit(f'{path}: not a pcap file')
    magic = struct.unpack('<I', data[:4])[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        order = '<'
    elif magic in (0xd4c3b2a1, 0x4d3cb2a1):
        order = '>'
    else:
        sys.exit(f'{path}: not a pcap file (magic {magic:#x})')
    v4, v6 = set(), set()
    off = 24
    while off + 16 <= len(data):
        captured = struct.unpack(order + 'I', data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + captured]
        off += 16 + captured
        if len(frame) < 14:
            continue
        ethertype = struct.unpack('!H', frame[12:14])[0]
        if ethertype == 0x0800 and len(frame) >= 34:
            header = (frame[14] & 0x0F) * 4
            proto = frame[23]
            ports = frame[14 + header:18 + header]
            if proto in (6, 17) and len(ports) == 4:
                sport, dport = struct.unpack('!HH', ports)
                src, dst = ipaddress.IPv4Address(frame[26:30]), ipaddress.IPv4Address(frame[30:34])
                v4.add((str(dst), str(src), dport, sport, proto))
        elif ethertype == 0x86DD and len(frame) >= 58:
            proto = frame[20]
            if proto in (6, 17):
                sport, dport = struct.unpack('!HH', frame[54:58])
                src = ipaddress.IPv6Address(frame[22:38]).exploded
                dst = ipaddress.IPv6Address(frame[38:54]).exploded
                v6.add((dst, src, dport, sport, proto))
    return v4, v6


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    pcap, out_v4, out_v6, port = sys.argv[1:]
    v4, v6 = tuples(pcap)
    for path, rules in ((out_v4, v4), (out_v6, v6)):
        with open(path, 'w') as out:
            for dst, src, dport, sport, proto in sorted(rules):
                out.write(f'R{dst} {src} {dport} {sport} {proto} {port}\n')
    print(f'{len(v4)} IPv4 and {len(v6)} IPv6 exact-match rules', file=sys.stderr)


if __name__ == '__main__':
    main()
