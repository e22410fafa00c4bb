#!/usr/bin/env python3
"""Real QUIC handshakes, aioquic client to aioquic server, captured with tcpdump.

    python3 make_captures.py            # as root; needs tcpdump, iproute2 (ip netns), aioquic 1.7.2

Everything runs in a network namespace of its own (its loopback up, nothing else), so port 443
is free and no other traffic is captured: an aioquic server on 127.0.0.1:443 (ALPN h3, a fresh
self-signed P-256 certificate), and one client connection per entry of CAPTURES below, one after
the other, each from a fixed local port. Each client completes the handshake, makes one PING
round trip (time for the server's session ticket) and closes the connection. `tcpdump -i lo -U -s 0 -w all.pcap udp port 443` records the lot; Linux loopback
frames are Ethernet (DLT_EN10MB, zero MAC addresses), which is what `dataplane classify`
reads. The capture is then split by client port into the files below; nothing in a frame is
changed. The one derived file, `aioquic_v1_reordered.pcap`, is `aioquic_v1_pq_two_initials.pcap`
with its first two frames (the two client datagrams that carry the ClientHello) swapped, the
timestamps left in place: the second Initial arrives first.

Each run draws new keys, connection IDs and randoms: regenerating changes the files, so
regenerate `expected.json` too (`python3 expected.py`).
"""
import asyncio
import datetime
import os
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import time

SERVER_PORT = 443

# file -> its connections, each a dict: client port, server name, ALPN list, and optionally the
# QUIC version (v1 unless said), "quantum" (quantum_readiness_test), "ciphers", "resume" (offer the
# session ticket the previous connection received) and "early" (send a stream's first bytes
# as 0-RTT data).
V1, V2 = 0x00000001, 0x6B3343CF
CAPTURES = {
    "aioquic_v1_names.pcap": [
        dict(port=50001, name="alpha.example.com", alpn=["h3"]),
        dict(port=50002, name="beta.example.org", alpn=["h3"]),
        # Two cipher suites, ChaCha20 first: another JA3 and JA4.
        dict(port=50003, name="www.gamma.example.net", alpn=["h3"], ciphers=["CHACHA20_POLY1305_SHA256", "AES_128_GCM_SHA256"]),
    ],
    # quantum_readiness_test adds a 1200-byte transport parameter (0x0c37) to the hello: it
    # then needs two Initial packets, in two datagrams.
    "aioquic_v1_pq_two_initials.pcap": [dict(port=50011, name="big.example.com", alpn=["h3"], quantum=True)],
    # 122 ALPN values (hq-interop first, then h3, then 120 made-up ones): three Initial packets.
    "aioquic_v1_many_alpn.pcap": [
        dict(port=50021, name="alpn.example.com", alpn=["hq-interop", "h3"] + [f"x-exp-{i:03d}.example" for i in range(120)])
    ],
    # A full handshake that leaves a session ticket, then a resumption with it (pre_shared_key,
    # psk_key_exchange_modes, early_data) sending its first stream bytes as 0-RTT.
    "aioquic_v1_resumed.pcap": [
        dict(port=50041, name="resume.example.com", alpn=["h3"]),
        dict(port=50042, name="resume.example.com", alpn=["h3"], resume=True, early=True),
    ],
    "aioquic_v2.pcap": [
        dict(port=50031, name="v2.example.net", alpn=["h3"], version=V2),
        dict(port=50032, name="big-v2.example.net", alpn=["h3"], version=V2, quantum=True),
    ],
}
REORDERED = ("aioquic_v1_pq_two_initials.pcap", "aioquic_v1_reordered.pcap")


def self_signed(directory):
    """A fresh P-256 certificate for CN=localhost: (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


async def handshakes(directory):
    """Inside the namespace: the server, and every client connection in turn."""
    from aioquic.asyncio import connect, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.tls import CipherSuite

    server_tickets = {}
    server_config = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    server_config.load_cert_chain(*self_signed(directory))
    server = await serve(
        "127.0.0.1",
        SERVER_PORT,
        configuration=server_config,
        session_ticket_handler=lambda t: server_tickets.__setitem__(t.ticket, t),
        session_ticket_fetcher=server_tickets.pop,
    )
    client_tickets = []
    try:
        for file, connections in CAPTURES.items():
            for c in connections:
                config = QuicConfiguration(is_client=True, alpn_protocols=c["alpn"], server_name=c["name"])
                config.verify_mode = ssl.CERT_NONE
                config.supported_versions = [c.get("version", V1)]
                config.quantum_readiness_test = c.get("quantum", False)
                if "ciphers" in c:
                    config.cipher_suites = [CipherSuite[s] for s in c["ciphers"]]
                if c.get("resume"):
                    config.session_ticket = client_tickets[-1]
                early = c.get("early", False)
                async with connect(
                    "127.0.0.1",
                    SERVER_PORT,
                    configuration=config,
                    local_port=c["port"],
                    session_ticket_handler=client_tickets.append,
                    wait_connected=not early,
                ) as client:
                    if early:
                        _reader, writer = await client.create_stream()
                        writer.write(b"0-RTT bytes")
                        await client.wait_connected()
                    await client.ping()  # a round trip after the handshake: the ticket arrives
                    tls = client._quic.tls
                    print(
                        f"{file}: {c['name']} from port {c['port']}: connected, ALPN {tls.alpn_negotiated},"
                        f" resumed {tls.session_resumed}, 0-RTT accepted {tls.early_data_accepted}",
                        file=sys.stderr,
                    )
                await asyncio.sleep(0.5)  # the server's last packets
    finally:
        server.close()


# pcap files (classic format, as tcpdump writes them), read and written by hand.
def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data)[0]
    if magic == 0xA1B2C3D4:
        endian = "<"
    elif magic == 0xD4C3B2A1:
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a microsecond pcap file")
    header = data[:24]
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, not Ethernet (1)")
    frames, at = [], 24
    while at < len(data):
        sec, usec, caplen, length = struct.unpack_from(endian + "IIII", data, at)
        frames.append((data[at : at + 16], data[at + 16 : at + 16 + caplen]))
        at += 16 + caplen
    return header, frames


def write_pcap(path, header, frames):
    with open(path, "wb") as f:
        f.write(header)
        for record, frame in frames:
            f.write(record + frame)


def udp_ports(frame):
    """(source, destination) ports of an Ethernet/IPv4/UDP frame, else None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    return struct.unpack_from("!HH", frame, 14 + ihl)


def split(all_pcap, out):
    header, frames = read_pcap(all_pcap)
    for file, connections in CAPTURES.items():
        ports = {c["port"] for c in connections}
        mine = [(r, f) for r, f in frames if (udp_ports(f) or (0, 0))[0] in ports or (udp_ports(f) or (0, 0))[1] in ports]
        write_pcap(os.path.join(out, file), header, mine)
        print(f"{file}: {len(mine)} frames", file=sys.stderr)
    source, reordered = REORDERED
    _, frames = read_pcap(os.path.join(out, source))
    assert udp_ports(frames[0][1])[1] == SERVER_PORT and udp_ports(frames[1][1])[1] == SERVER_PORT
    swapped = [(frames[0][0], frames[1][1]), (frames[1][0], frames[0][1])] + frames[2:]
    write_pcap(os.path.join(out, reordered), header, swapped)
    print(f"{reordered}: {source} with frames 1 and 2 swapped", file=sys.stderr)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        asyncio.run(handshakes(sys.argv[2]))
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespace, tcpdump)")
    for tool in ("tcpdump", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    out = os.path.dirname(os.path.abspath(__file__))
    netns = f"quic-captures-{os.getpid()}"
    with tempfile.TemporaryDirectory() as work:
        all_pcap = os.path.join(work, "all.pcap")
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            inside = ["ip", "netns", "exec", netns]
            subprocess.run(inside + ["ip", "link", "set", "lo", "up"], check=True)
            dump = subprocess.Popen(
                inside + ["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", all_pcap, f"udp port {SERVER_PORT}"],
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(1)
                subprocess.run(inside + [sys.executable, os.path.abspath(__file__), "--inside", work], check=True)
                time.sleep(1)
            finally:
                dump.send_signal(2)  # SIGINT: tcpdump flushes and exits
                dump.wait()
        finally:
            subprocess.run(["ip", "netns", "del", netns], check=True)
        split(all_pcap, out)


if __name__ == "__main__":
    main()
