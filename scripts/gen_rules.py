#!/usr/bin/env python3
"""Write a large, deterministic NetworkPolicyRule set for benchmarks (JSON array: fast to parse).

usage: scripts/gen_rules.py OUT.json [--cidr N] [--v6 N] [--sni N] [--seed S]
  --cidr N   rules with one random IPv4 CIDR each (mostly /24, like dpdk-test-fib's mix)
  --v6 N     rules with one random IPv6 CIDR each (mostly /48)
  --sni N    TLS rules, each dropping one server name (a fifth of them *.wildcards); their
             ports are TCP 443 and UDP 443, so they concern QUIC too (the dataplane reads the
             ClientHello of a QUIC connection to UDP 443 from its Initials)
"""
import argparse
import ipaddress
import json
import random

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--cidr", type=int, default=10000)
p.add_argument("--v6", type=int, default=0)
p.add_argument("--sni", type=int, default=1000)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
rng = random.Random(a.seed)


def rule(name, spec):
    return {"apiVersion": "policy.secure.example.com/v1", "kind": "NetworkPolicyRule",
            "metadata": {"name": name}, "spec": spec}


def pick(weights):
    x = rng.random() * sum(w for _, w in weights)
    for v, w in weights:
        if x < w:
            return v
        x -= w
    return weights[-1][0]


rules, seen = [], set()
v4_depths = [(8, 1), (16, 9), (20, 10), (24, 65), (28, 10), (32, 5)]
v6_depths = [(32, 10), (40, 10), (48, 60), (56, 10), (64, 10)]
for family, count, depths, bits in (("v4", a.cidr, v4_depths, 32), ("v6", a.v6, v6_depths, 128)):
    i = 0
    while i < count:
        length = pick(depths)
        addr = rng.getrandbits(bits) & (((1 << length) - 1) << (bits - length))
        net = ipaddress.ip_network((addr, length)) if bits == 32 else ipaddress.IPv6Network((addr, length))
        if net in seen:
            continue
        seen.add(net)
        spec = {"cidrBlocks": [str(net)], "action": "DROP" if i % 3 else "ALLOW", "priority": rng.randrange(0, 5000)}
        if i % 10 == 0:
            spec["ports"] = [{"protocol": "TCP", "port": rng.choice([22, 80, 443, 8080])}]
        rules.append(rule(f"{family}-{i}", spec))
        i += 1
for i in range(a.sni):
    name = f"host{i}.site{i % 97}.example"
    rules.append(rule(f"sni-{i}", {"action": "DROP", "ports": [{"port": 443}, {"protocol": "UDP", "port": 443}],
                                   "tls": {"serverNames": [("*." if i % 5 == 0 else "") + name]}}))
with open(a.out, "w") as f:
    json.dump(rules, f, separators=(",", ":"))
print(f"wrote {a.out}: {len(rules)} rules")
