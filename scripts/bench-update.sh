#!/usr/bin/env bash
# Rule updates under load: `dataplane bench` forwards traffic (net_pcap -> one worker ->
# net_null, 10k CIDR + 1k SNI rules) with its control API on loopback and a state directory,
# while this script
#   1. changes one rule 200 times (POST /v1/rules: one rule upserted, a new generation each),
#   2. replaces the whole set with 100k rules 10 times (PUT /v1/rules, two sets alternating),
#   3. changes one rule of that 100k-rule set ONE_RULE/4 times (POST),
# and reports, per kind, p50/p99 of the phases the API reports (parse, compile, activate:
# until every worker runs the new generation), of their sum ("server": apply-to-active from
# the request's body) and of the whole request as the client sees it (sending the body, and
# the answer, which waits for the set to be persisted). At the end: packets lost, which must
# be 0 (every packet received was transmitted or dropped by policy).
set -euo pipefail
cd "$(dirname "$0")/.."

ONE_RULE="${ONE_RULE:-200}"
FULL="${FULL:-10}"
work=$(mktemp -d)
bench_pid=
trap '[ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null; rm -rf "$work"' EXIT

scripts/setup.sh
# BIN=path: measure that binary instead of building this tree's.
if [ -z "${BIN:-}" ]; then cargo build --release -q -p dataplane; fi
bin="${BIN:-target/release/dataplane}"
. scripts/bench-inputs.sh
bench_traffic "$bin" "$work/traffic.pcap" 65536 131072
bench_rules "$work/base.json"
python3 scripts/gen_rules.py "$work/full1.json" --cidr 80000 --v6 20000 --sni 0 --seed 11
python3 scripts/gen_rules.py "$work/full2.json" --cidr 80000 --v6 20000 --sni 0 --seed 12

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" bench --pcap "$work/traffic.pcap" --rules "$work/base.json" --duration 600 --warmup 1 --cpus 0,1 \
  --control "127.0.0.1:$port" --state-dir "$work/state" --json > "$work/bench.json" 2> "$work/bench.log" &
bench_pid=$!
for _ in $(seq 1 300); do
  grep -q "control API listening" "$work/bench.log" 2>/dev/null && break
  sleep 0.1
done
grep "control API listening" "$work/bench.log"

python3 - "http://127.0.0.1:$port" "$work" "$ONE_RULE" "$FULL" <<'PY'
import json, sys, time, urllib.request

url, work, one_rule, full = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def call(method, path, body):
    req = urllib.request.Request(url + path, data=body, method=method)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.load(r)
    return answer, (time.perf_counter() - t) * 1e3

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def measure(method, path, body):
    a, ms = call(method, path, body)
    assert not a.get("unchanged"), a
    return a, {"parse": a["parse_ms"], "compile": a["compile_ms"], "activate": a["activate_ms"],
               "server": a["parse_ms"] + a["compile_ms"] + a["activate_ms"], "client": ms}

rows = []
samples = []
def one_rule_document(i):
    rule = {"apiVersion": "policy.secure.example.com/v1", "kind": "NetworkPolicyRule",
            "metadata": {"name": "changing"},
            "spec": {"cidrBlocks": [f"100.{64 + i // 256 % 64}.{i % 256}.0/24"], "action": "DROP"}}
    return json.dumps(rule).encode()

for i in range(one_rule):
    a, m = measure("POST", "/v1/rules", one_rule_document(i))
    samples.append(m)
rows.append(("one rule changed (POST)", a["rules"], samples))
sets = [open(f"{work}/full1.json", "rb").read(), open(f"{work}/full2.json", "rb").read()]
samples = []
for i in range(full):
    a, m = measure("PUT", "/v1/rules", sets[i % 2])
    samples.append(m)
rows.append(("100k rules replaced (PUT)", a["rules"], samples))
samples = []
for i in range(one_rule // 4):
    a, m = measure("POST", "/v1/rules", one_rule_document(i))
    samples.append(m)
rows.append(("one rule changed in 100k", a["rules"], samples))
print()
print("apply-to-active, ms, p50 / p99. server = parse + compile + activate (request body received ->")
print("every worker runs the new generation); client = the whole HTTP request as the client sees it.")
cols = ["parse", "compile", "activate", "server", "client"]
print(f"{'':<28} {'n':>4} {'rules':>7} " + " ".join(f"{c:>17}" for c in cols))
for name, rules, s in rows:
    cells = " ".join(f"{pct([x[c] for x in s], 50):>8.2f}/{pct([x[c] for x in s], 99):<8.2f}" for c in cols)
    print(f"{name:<28} {len(s):>4} {rules:>7} {cells}")
PY

kill -TERM "$bench_pid"
wait "$bench_pid" || true
bench_pid=
python3 - "$work/bench.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
# Received must equal transmitted plus policy drops: anything else is a packet lost.
lost = s["total_rx"] - s["total_tx"] - s["total_drop_policy"]
print()
print(f"traffic during the updates: {s['rx_mpps']:.2f} Mpps; received {s['total_rx']}, transmitted {s['total_tx']},"
      f" dropped by policy {s['total_drop_policy']}, malformed {s['total_drop_malformed']}, tx full {s['total_drop_tx_full']}")
print(f"packets lost: {lost}")
sys.exit(1 if lost != 0 else 0)
PY
