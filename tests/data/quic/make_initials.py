"""Client Initial datagrams from aioquic, written as hex (one datagram a line).

    pip install aioquic==1.7.2
    python3 make_initials.py

No network: a client QuicConnection is started and the datagrams it would send are taken.
"""
import sys

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicProtocolVersion


def first_flight(name, alpn, version):
    config = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name=name)
    config.supported_versions = [version]
    conn = QuicConnection(configuration=config)
    conn.connect(("192.0.2.1", 443), now=0.0)
    return [data for data, _addr in conn.datagrams_to_send(now=0.0)]


def write(path, datagrams):
    with open(path, "w") as f:
        for d in datagrams:
            f.write(d.hex() + "\n")
    print(path, [len(d) for d in datagrams], file=sys.stderr)


write("aioquic_v1_h3.hex", first_flight("www.example.org", ["h3"], QuicProtocolVersion.VERSION_1))
write("aioquic_v2_h3.hex", first_flight("quic-v2.example.net", ["h3", "h3-29"], QuicProtocolVersion.VERSION_2))
