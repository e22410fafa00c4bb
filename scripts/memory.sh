#!/usr/bin/env bash
# The whole process's memory in the edge profile (config/edge.toml) with RULES rules and FLOWS
# flows: `dataplane run` on virtual devices, the edge profile's sizes and lcores unchanged,
# replays a capture of FLOWS distinct connections once (so the flow table fills) while this
# script samples /proc/PID/status; prints the peak and the sizes the program reports.
#   net_pcap0 (the capture, read once) -> the worker -> net_null0 (sink)
# Resident memory is VmRSS (VmHWM its peak) plus HugetlbPages: hugepage mappings (DPDK's
# memory: the mempool, the rings) are not counted in VmRSS. Without free hugepages EAL runs
# with --no-huge and the same -m in ordinary memory (then it is in VmRSS); the script says which.
#   RULES=100000 FLOWS=262144 DURATION=20 scripts/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RULES="${RULES:-100000}"
FLOWS="${FLOWS:-262144}"
DURATION="${DURATION:-20}"
PROFILE="${PROFILE:-config/edge.toml}"
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

scripts/setup.sh >/dev/null
cargo build --release -q -p dataplane
bin="${CARGO_TARGET_DIR:-target}/release/dataplane"

# RULES rules: 90% IPv4 CIDR, 9% IPv6 CIDR, 1% SNI (at least one of each).
sni=$(( RULES / 100 > 0 ? RULES / 100 : 1 ))
v6=$(( RULES * 9 / 100 ))
python3 scripts/gen_rules.py "$work/rules.json" --cidr $(( RULES - v6 - sni )) --v6 "$v6" --sni "$sni" >/dev/null
check=$("$bin" rules check "$work/rules.json")
echo "rules: $check"
# Two packets per connection: every one of them is new to the flow table.
"$bin" gen --out "$work/traffic.pcap" --flows "$FLOWS" --packets $(( FLOWS * 2 )) --quic-ratio 0.01

# Hugepages when the profile's -m (MB) fits in the free 2 MB pages, with a few to spare.
eal_mb=$(grep -o '"-m", *"[0-9]*"' "$PROFILE" | grep -o '[0-9]*"$' | tr -d '"' || true)
free_huge=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
if [ "${free_huge:-0}" -ge $(( ${eal_mb:-64} / 2 + 4 )) ] && grep -qs ' hugetlbfs ' /proc/mounts; then
  memory="hugepages"; no_huge=""
else
  memory="NO hugepages (${free_huge:-0} free 2 MB pages): EAL's -m in ordinary memory"; no_huge="--no-huge"
fi

# The profile with its EAL devices swapped for virtual ones, its rules and state for this
# run's, and the API on a free port; every size, lcore and timeout as the profile has them.
python3 - "$PROFILE" "$work" "$no_huge" > "$work/edge.toml" <<'PY'
import re, sys
profile, work, no_huge = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(profile).read()
eal = re.search(r'^eal = \[(.*?)^\]', text, re.S | re.M)
args = re.findall(r'"([^"]*)"', eal.group(1))
kept, i = [], 0
while i < len(args):
    if args[i] == "--vdev":
        i += 2
        continue
    if args[i] == "--file-prefix":
        kept += [args[i], f"dataplane-memory-{work.rsplit('/', 1)[-1]}"]
        i += 2
        continue
    kept.append(args[i])
    i += 1
kept += ["--no-pci", "--vdev", f"net_pcap0,rx_pcap={work}/traffic.pcap", "--vdev", "net_null0,no-rx=1"]
if no_huge:
    kept += ["--no-huge", "--no-shconf"]
text = text[:eal.start()] + "eal = [" + ", ".join(f'"{a}"' for a in kept) + "]" + text[eal.end():]
text = text.replace("net_af_packet0", "net_pcap0").replace("net_af_packet1", "net_null0")
text = re.sub(r'^rules = .*$', f'rules = ["{work}/rules.json"]', text, flags=re.M)
text = re.sub(r'^state_dir = .*$', f'state_dir = "{work}/state"', text, flags=re.M)
text = re.sub(r'^listen = .*$', 'listen = "127.0.0.1:0"', text, flags=re.M)
text = re.sub(r'^stats_period = .*$', 'stats_period = 2.0', text, flags=re.M)
print(text)
PY
grep '^eal' "$work/edge.toml"
echo "EAL memory: $memory"

"$bin" run --config "$work/edge.toml" --duration "$DURATION" > "$work/run.log" 2>&1 &
pid=$!
# Samples every 100 ms: the peak of each field (VmHWM is the kernel's own peak of VmRSS).
: > "$work/samples"
while kill -0 "$pid" 2>/dev/null; do
  awk '/^(VmRSS|VmHWM|HugetlbPages|RssAnon|RssFile|RssShmem):/ { printf "%s %s ", $1, $2 } END { print "" }' \
    "/proc/$pid/status" >> "$work/samples" 2>/dev/null || true
  sleep 0.1
done
set +e
wait "$pid"
status=$?
set -e
pid=
if [ "$status" -ne 0 ]; then
  cat "$work/run.log"
  echo "memory.sh: dataplane run exited with $status" >&2
  exit 1
fi

echo
grep -E '^(memory|policy|mbufs in use)' "$work/run.log" || true
grep -E 'flows' "$work/run.log" | tail -1 || true
python3 - "$work/samples" "$check" "$RULES" "$FLOWS" "$memory" <<'PY'
import re, sys
peak, last = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    for k, v in zip(f[0::2], f[1::2]):
        peak[k] = max(peak.get(k, 0), int(v))
        last[k] = int(v)
mib = lambda kb: f"{kb / 1024:.1f} MiB"
total = peak.get("VmHWM:", 0) + peak.get("HugetlbPages:", 0)
compiled = re.search(r'([0-9.]+) KiB', sys.argv[2])
print(f"\n## edge profile, {sys.argv[3]} rules, {sys.argv[4]} flows ({sys.argv[5]})")
print(f"| {'what (peak over the run, /proc/PID/status)':<52} | {'size':>12} |")
print(f"|{'-' * 54}|{'-' * 13}:|")
rows = [("VmRSS (resident, hugepages excluded)", peak.get("VmRSS:", 0)),
        ("VmHWM (the kernel's peak of VmRSS)", peak.get("VmHWM:", 0)),
        ("VmRSS at the end (after the rules' load, flows full)", last.get("VmRSS:", 0)),
        ("  of which RssAnon (heap: flow table, rules...)", peak.get("RssAnon:", 0)),
        ("  of which RssFile (the binary, DPDK's libraries)", peak.get("RssFile:", 0)),
        ("  of which RssShmem", peak.get("RssShmem:", 0)),
        ("HugetlbPages (EAL's memory: mempool, rings)", peak.get("HugetlbPages:", 0)),
        ("total: VmHWM + HugetlbPages", total)]
for name, kb in rows:
    print(f"| {name:<52} | {mib(kb):>12} |")
if compiled:
    print(f"compiled policy (dataplane rules check): {float(compiled.group(1)) / 1024:.1f} MiB")
print(f"target: at most 256 MiB: {'met' if total <= 256 * 1024 else 'EXCEEDED'}")
PY
