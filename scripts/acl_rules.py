#!/usr/bin/env python3
"""Convert a NetworkPolicyRule set (JSON array, as scripts/gen_rules.py writes) into the rule
files of DPDK's `l3fwd --lookup=acl` (22.11, examples/l3fwd/l3fwd_acl.c), one per family.

usage: scripts/acl_rules.py RULES.json V4.cfg V6.cfg [--port N]

l3fwd's format, one rule a line, earlier lines first (priority = RTE_ACL_MAX_PRIORITY - line):
  @<src>/<len> <dst>/<len> <sport_lo> : <sport_hi> <dport_lo> : <dport_hi> <proto>/<mask>
      an ACL entry: a match is dropped
  R<src>/<len> <dst>/<len> <sport_lo> : <sport_hi> <dport_lo> : <dport_hi> <proto>/<mask> <port>
      a route entry: a match is sent out of <port>
IPv6 addresses are written with all eight groups (l3fwd's parser takes no "::").

The mapping, and where l3fwd cannot say what the dataplane says:
  - rules in the dataplane's evaluation order (priority, DROP before ALLOW, name), so that
    l3fwd's first-line-wins order keeps their priorities; DROP rules are `@` lines, ALLOW rules
    `R` lines to --port (default 1), and a last `R` line for everything (the default action
    ALLOW) in both files;
  - l3fwd classifies each packet alone: there are no connections. A rule's CIDR (direction any:
    the initiator's or the responder's address) becomes two lines, the CIDR as source and as
    destination; its ports (the responder's port) two more each, the range as destination port
    and as source port (so both directions of a connection match; a client whose ephemeral
    port falls in the range matches too, which the dataplane would not do);
  - TLS rules (spec.tls: server names, versions, JA3/JA4) need the ClientHello: l3fwd cannot
    express them; they are left out and counted;
  - `except` and `direction` other than `any` are refused (gen_rules.py writes neither).
"""
import argparse
import ipaddress
import json
import sys

p = argparse.ArgumentParser()
p.add_argument("rules")
p.add_argument("v4")
p.add_argument("v6")
p.add_argument("--port", type=int, default=1)
a = p.parse_args()

PROTO = {"TCP": 6, "UDP": 17}
ANY_PORTS = (0, 65535)

docs = json.load(open(a.rules))
if isinstance(docs, dict):
    docs = docs.get("items", [docs])


def key(d):
    s = d["spec"]
    return (s.get("priority", 1000), 0 if s["action"] == "DROP" else 1, d["metadata"]["name"])


def addr(net):
    if net.version == 4:
        return f"{net.network_address}/{net.prefixlen}"
    return f"{net.network_address.exploded}/{net.prefixlen}"


lines = {4: [], 6: []}
skipped_tls = 0
used = 0
for d in sorted(docs, key=key):
    s = d["spec"]
    name = d["metadata"]["name"]
    if s.get("tls"):
        skipped_tls += 1
        continue
    if s.get("except"):
        sys.exit(f"{name}: spec.except is not converted")
    if s.get("direction", "any") != "any":
        sys.exit(f"{name}: spec.direction {s['direction']} is not converted")
    used += 1
    nets = [ipaddress.ip_network(c) for c in s.get("cidrBlocks") or []]
    # (family, CIDR) pairs; no CIDR: any address of either family.
    sides = [(n.version, n) for n in nets] or [
        (4, ipaddress.ip_network("0.0.0.0/0")), (6, ipaddress.ip_network("::/0"))]
    # (proto value, mask, port range); no ports: any protocol, any port.
    ports = []
    for pt in s.get("ports") or []:
        proto = PROTO[pt.get("protocol", "TCP")]
        lo = pt.get("port")
        hi = pt.get("endPort", lo)
        ports.append((proto, 0xFF, (lo, hi) if lo is not None else ANY_PORTS))
    if not ports:
        ports = [(0, 0, None)]
    lead = "@" if s["action"] == "DROP" else "R"
    tail = "" if lead == "@" else f" {a.port}"
    for fam, net in sides:
        anyn = addr(ipaddress.ip_network("0.0.0.0/0" if fam == 4 else "::/0"))
        for src, dst in ((addr(net), anyn), (anyn, addr(net))) if net.prefixlen else ((anyn, anyn),):
            for proto, mask, rng in ports:
                for sp, dp in ((ANY_PORTS, rng), (rng, ANY_PORTS)) if rng else ((ANY_PORTS, ANY_PORTS),):
                    lines[fam].append(f"{lead}{src} {dst} {sp[0]} : {sp[1]} {dp[0]} : {dp[1]} "
                                      f"{proto:#x}/{mask:#x}{tail}")

for fam, path in ((4, a.v4), (6, a.v6)):
    anyn = addr(ipaddress.ip_network("0.0.0.0/0" if fam == 4 else "::/0"))
    with open(path, "w") as f:
        f.write(f"# from {a.rules} by scripts/acl_rules.py; first line wins\n")
        for line in lines[fam]:
            f.write(line + "\n")
        f.write(f"R{anyn} {anyn} 0 : 65535 0 : 65535 0x0/0x0 {a.port}\n")
print(f"l3fwd ACL rules: {used} rules as {len(lines[4])} IPv4 and {len(lines[6])} IPv6 lines "
      f"(+1 default route each); {skipped_tls} TLS rules left out (l3fwd cannot express them)",
      file=sys.stderr)
