#!/usr/bin/env python3
"""Crafted ClientHellos derived from the real captures in this directory (stdlib only).

  python3 tests/data/tls/craft.py    (writes the pq_*.pcap and two_records.pcap files beside it)

- pq_split.pcap: curl.pcap's hello, edited to look like a post-quantum browser hello: a GREASE
  cipher suite, GREASE extensions first and last, GREASE + X25519MLKEM768 (0x11ec) prepended to
  supported_groups, a 1216-byte X25519MLKEM768 key share (deterministic filler bytes) plus a
  GREASE share before the x25519 one, and an encrypted_client_hello (0xfe0d) extension with
  filler. One TLS record of ~3 KB sent in two TCP segments (1400 bytes, then the rest).
- pq_out_of_order.pcap: the same two segments, the second one first.
- two_records.pcap: openssl_tls13_sni.pcap's hello, its handshake message split into two TLS
  records (the first carries 100 bytes), in one TCP segment.
Each file has the client's SYN, the server's SYN-ACK and the ACK before the data, IPv4 on
Ethernet, valid checksums.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def read_pcap(path):
    data = open(path, "rb").read()
    off, out = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def client_hello_record(path):
    """The TCP payload of the first client segment starting with a handshake record."""
    for frame in read_pcap(path):
        ihl = (frame[14] & 0xF) * 4
        tcp = frame[14 + ihl:]
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload[:1] == b"\x16" and struct.unpack(">H", tcp[2:4])[0] == 4433:
            return payload
    raise SystemExit(f"{path}: no ClientHello")


def split_hello(record):
    assert record[0] == 0x16 and record[5] == 1
    body = record[9:9 + int.from_bytes(record[6:9], "big")]
    r = 2 + 32
    r += 1 + body[r]  # session id
    cs_len = struct.unpack(">H", body[r:r + 2])[0]
    ciphers = body[r + 2:r + 2 + cs_len]
    r += 2 + cs_len
    comp = body[r:r + 1 + body[r]]
    r += 1 + body[r]
    ext_block = body[r + 2:]
    exts, i = [], 0
    while i < len(ext_block):
        t, n = struct.unpack(">HH", ext_block[i:i + 4])
        exts.append([t, ext_block[i + 4:i + 4 + n]])
        i += 4 + n
    return body[:2 + 32 + 1 + body[34]], ciphers, comp, exts


def join_hello(head, ciphers, comp, exts):
    ext_block = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    body = head + struct.pack(">H", len(ciphers)) + ciphers + comp + struct.pack(">H", len(ext_block)) + ext_block
    return b"\x01" + len(body).to_bytes(3, "big") + body


def record(fragment, version=0x0301):
    return struct.pack(">BHH", 0x16, version, len(fragment)) + fragment


def filler(n, seed):
    out = b""
    while len(out) < n:
        out += hashlib.sha256(seed + len(out).to_bytes(4, "big")).digest()
    return out[:n]


def pq_hello():
    head, ciphers, comp, exts = split_hello(client_hello_record(os.path.join(HERE, "curl.pcap")))
    ciphers = b"\x5a\x5a" + ciphers
    for e in exts:
        if e[0] == 0x000A:  # supported_groups: GREASE, X25519MLKEM768, then the original ones
            groups = b"\xda\xda\x11\xec" + e[1][2:]
            e[1] = struct.pack(">H", len(groups)) + groups
        if e[0] == 0x0033:  # key_share: GREASE (1 byte), X25519MLKEM768 (1216 bytes), then x25519
            shares = (struct.pack(">HH", 0xDADA, 1) + b"\x00"
                      + struct.pack(">HH", 0x11EC, 1216) + filler(1216, b"mlkem768")
                      + e[1][2:])
            e[1] = struct.pack(">H", len(shares)) + shares
    exts = [[0x0A0A, b""]] + exts + [[0xFE0D, filler(218, b"ech")], [0x1A1A, b"\x00"]]
    return join_hello(head, ciphers, comp, exts)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = bytes(src) + bytes(dst) + struct.pack(">BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack(">H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack(">H", csum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + tcp


def write_pcap(name, segments):
    """segments: list of (offset into the client stream, bytes)."""
    c, s, cp, sp, isn, sisn = [10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, 1000, 5000
    frames = [frame(c, s, cp, sp, isn, 0, 0x02), frame(s, c, sp, cp, sisn, isn + 1, 0x12),
              frame(c, s, cp, sp, isn + 1, sisn + 1, 0x10)]
    frames += [frame(c, s, cp, sp, isn + 1 + off, sisn + 1, 0x18, data) for off, data in segments]
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000, i * 1000, len(fr), len(fr)) + fr)


def main():
    pq = record(pq_hello())
    write_pcap("pq_split.pcap", [(0, pq[:1400]), (1400, pq[1400:])])
    write_pcap("pq_out_of_order.pcap", [(1400, pq[1400:]), (0, pq[:1400])])
    msg = client_hello_record(os.path.join(HERE, "openssl_tls13_sni.pcap"))[5:]
    write_pcap("two_records.pcap", [(0, record(msg[:100]) + record(msg[100:], 0x0303))])


if __name__ == "__main__":
    main()
