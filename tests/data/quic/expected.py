#!/usr/bin/env python3
"""expected.json: what tshark reads in the client Initials of the captures here.

    python3 expected.py [--ja4 PATH/TO/ja4]

For each capture, one entry per ClientHello tshark finds (it decrypts client Initials itself,
QUIC v1 and v2), from

    tshark -r F.pcap -Y tls.handshake.type==1 -T fields -E separator=/t -E aggregator='|'
        -e frame.number -e udp.srcport -e quic.version -e tls.handshake.extensions_server_name
        -e tls.handshake.extensions_alpn_str -e tls.handshake.ja3 -e tls.handshake.ja3_full

(the same command `tests/tests/quic_captures.rs` runs when tshark is installed). This tshark
has no JA4 field; with `--ja4`, FoxIO's `ja4` tool (their Rust implementation, which drives the
same tshark) gives each connection's JA4, matched to the hello by client port.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURES = [
    "aioquic_v1_names.pcap",
    "aioquic_v1_pq_two_initials.pcap",
    "aioquic_v1_reordered.pcap",
    "aioquic_v1_many_alpn.pcap",
    "aioquic_v1_resumed.pcap",
    "aioquic_v2.pcap",
]
FIELDS = [
    "frame.number",
    "udp.srcport",
    "quic.version",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.ja3",
    "tls.handshake.ja3_full",
]
QUIC_VERSIONS = {"0x00000001": 1, "0x6b3343cf": 2}


def tshark_version():
    out = subprocess.run(["tshark", "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0]


def hellos(path):
    command = ["tshark", "-r", path, "-Y", "tls.handshake.type==1", "-T", "fields"]
    command += ["-E", "separator=/t", "-E", "aggregator=|"]
    for f in FIELDS:
        command += ["-e", f]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        frame, port, version, sni, alpn, ja3, ja3_full = line.split("\t")
        found.append(
            {
                "frame": int(frame),
                "client_port": int(port),
                # A datagram of coalesced packets has a version per long-header packet.
                "quic_version": QUIC_VERSIONS[version.split("|")[0]],
                "sni": sni,
                "alpn": alpn.split("|") if alpn else [],
                "ja3": ja3,
                "ja3_full": ja3_full,
            }
        )
    return found


def ja4_by_port(tool, path, ports):
    """FoxIO ja4's JA4 per client port. Run as root, tshark's warning about it sometimes
    reaches the tool mixed into tshark's output, which it then fails to parse (a line on
    stderr, that connection missing): run again, a few times at most."""
    for _attempt in range(5):
        out = subprocess.run([tool, "--json", path], capture_output=True, text=True, check=True).stdout
        found = {}
        for line in out.splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if "ja4" in entry:
                    found[int(entry["src_port"])] = entry["ja4"]
        if ports <= found.keys():
            return found
    raise SystemExit(f"{path}: {tool} gave no JA4 for some of the ports {sorted(ports)}")


def main():
    ja4_tool = None
    if len(sys.argv) == 3 and sys.argv[1] == "--ja4":
        ja4_tool = sys.argv[2]
    elif len(sys.argv) != 1:
        raise SystemExit(__doc__)
    expected = {"tshark": tshark_version(), "ja4": None, "captures": {}}
    if ja4_tool:
        version = subprocess.run([ja4_tool, "--version"], capture_output=True, text=True, check=True).stdout
        expected["ja4"] = "FoxIO " + version.strip()
    for file in CAPTURES:
        path = os.path.join(HERE, file)
        found = hellos(path)
        if ja4_tool:
            by_port = ja4_by_port(ja4_tool, path, {h["client_port"] for h in found})
            for h in found:
                h["ja4"] = by_port[h["client_port"]]
        expected["captures"][file] = found
        print(file, [(h["frame"], h["sni"]) for h in found], file=sys.stderr)
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
