#!/usr/bin/env python3
"""Reorder a capture so that each aligned window of packets (a worker's chunk, 32) holds its
packets sorted by shape: ethertype, then IP protocol (stable within a shape). The packets and
flows stay the same; only how often the parse's tests of the family and the protocol change
from one packet to the next does. Against the original with scripts/compare.sh (OLD=NEW, TRAFFIC=
the original, NEW_TRAFFIC= this one) it measures what the traffic mix's branch mispredictions
cost (docs/forwarding-notes.md, sixth session).

usage: scripts/sort_by_shape.py IN.pcap OUT.pcap [--window N]
"""
import argparse
import struct

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--window", type=int, default=32)
a = p.parse_args()

data = open(a.src, "rb").read()
if len(data) < 24 or data[:4] not in (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"):
    raise SystemExit(f"{a.src}: not a pcap file (pcapng is not read)")
# The magic as written tells the byte order of every header field.
order = ">" if data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d") else "<"
records, off = [], 24
while off + 16 <= len(data):
    (incl,) = struct.unpack(order + "I", data[off + 8:off + 12])
    records.append(data[off:off + 16 + incl])
    off += 16 + incl
if off != len(data):
    raise SystemExit(f"{a.src}: truncated record at byte {off}")


def shape(record):
    frame = record[16:]
    ethertype = frame[12:14]
    if ethertype == b"\x08\x00" and len(frame) > 23:
        return ethertype, frame[23]
    if ethertype == b"\x86\xdd" and len(frame) > 20:
        return ethertype, frame[20]
    return ethertype, 0


out = [data[:24]]
for i in range(0, len(records), a.window):
    out += sorted(records[i:i + a.window], key=shape)
open(a.dst, "wb").write(b"".join(out))
print(f"wrote {a.dst}: {len(records)} packets, windows of {a.window} sorted by shape")
