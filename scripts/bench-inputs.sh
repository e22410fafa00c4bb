# The benchmarks' traffic and rules, defined once for the scripts that measure the bench's
# case (bench.sh, compare.sh, instructions.sh, armed-cost.sh, bench-update.sh). Sourced.

# bench_traffic GEN OUT FLOWS PACKETS [QUIC_RATIO]: the `gen` of the dataplane binary GEN writes
# OUT: FLOWS connections over PACKETS packets, 5% of the TCP ones TLS, 20% IPv6, and
# QUIC_RATIO of all connections QUIC to UDP 443 when given and not 0 (builds from before QUIC
# inspection do not know the option).
bench_traffic() {
  local gen=$1 out=$2 flows=$3 packets=$4 quic=${5:-0}
  local args=(--out "$out" --packets "$packets" --flows "$flows" --tls-ratio 0.05 --ipv6-ratio 0.2)
  if [ "$quic" != 0 ]; then
    args+=(--quic-ratio "$quic")
  fi
  "$gen" gen "${args[@]}"
}

# bench_rules OUT: 10k CIDR rules and 1k SNI rules (scripts/gen_rules.py, seed 1).
bench_rules() {
  python3 scripts/gen_rules.py "$1" --cidr 10000 --sni 1000
}
