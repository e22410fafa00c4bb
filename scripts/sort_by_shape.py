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

from scapy.utils import PcapWriter, RawPcapReader

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--window", type=int, default=32)
a = p.parse_args()

reader = RawPcapReader(a.src)
records = list(reader)
linktype = reader.linktype
reader.close()


def shape(record):
    frame, _ = record
    ethertype = frame[12:14]
    if ethertype == b"\x08\x00" and len(frame) > 23:
        return ethertype, frame[23]
    if ethertype == b"\x86\xdd" and len(frame) > 20:
        return ethertype, frame[20]
    return ethertype, 0


writer = PcapWriter(a.dst, linktype=linktype, sync=False)
writer.write_header(None)
for i in range(0, len(records), a.window):
    for frame, meta in sorted(records[i:i + a.window], key=shape):
        writer.write_packet(frame, sec=meta.sec, usec=meta.usec, caplen=meta.caplen, wirelen=meta.wirelen)
writer.close()
print(f"wrote {a.dst}: {len(records)} packets, windows of {a.window} sorted by shape")
