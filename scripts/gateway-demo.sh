#!/usr/bin/env bash
# The dataplane as a gateway between two network namespaces, with real clients and servers:
#
#   [client] eth0 ==veth== to-client [gateway: dataplane] to-server ==veth== eth0 [server]
#   10.77.0.1                                                           10.77.0.2 (HTTP, HTTPS)
#
# It builds (release), makes the namespaces, starts a threaded HTTP/HTTPS server (Python) and
# the dataplane (net_af_packet ports, no hugepages) with a rule blocking the name blocked.test,
# then: ping, curl to an allowed and to a blocked name, a rule applied through the control API
# and taken back, the stats. Says what it does step by step; everything it made is removed on
# exit (trap). Exits 1 if something did not behave as announced. Needs root.
#
#   PMD=af_xdp scripts/gateway-demo.sh    # the same through net_af_xdp ports
#   BIN=path/to/dataplane                 # another build (skips cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."

PMD="${PMD:-af_packet}"
case "$PMD" in af_packet|af_xdp) ;; *) echo "PMD must be af_packet or af_xdp, not $PMD" >&2; exit 2 ;; esac
if [ "$(id -u)" -ne 0 ]; then
  echo "gateway-demo: needs root (network namespaces, veth pairs); try: sudo $0" >&2
  exit 2
fi

step() { printf '\n== %s\n' "$*"; }
failures=0
ok() { echo "   ok: $*"; }
bad() { echo "   FAILED: $*"; failures=$((failures + 1)); }

scripts/setup.sh
if [ -z "${BIN:-}" ]; then
  step "building (release)"
  cargo build --release -q -p dataplane
  BIN=target/release/dataplane
fi
BIN=$(realpath "$BIN")

ns="gwdemo-$$"
C="$ns-client" S="$ns-server" G="$ns-gw"
work=$(mktemp -d)
dp_pid="" server_pid=""
cleanup() {
  local status=$?
  set +e
  for pid in $dp_pid $server_pid; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for n in "$C" "$S" "$G"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
# Interrupted: stop at once (the EXIT trap cleans up), not at the next failing command.
trap 'exit 130' INT TERM

step "network namespaces $C, $S and $G (the gateway), joined by two veth pairs"
for n in "$C" "$S" "$G"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add to-client netns "$G" type veth peer name eth0 netns "$C"
ip link add to-server netns "$G" type veth peer name eth0 netns "$S"
for p in to-client to-server; do
  # The dataplane's ends have no address: the gateway's own stack stays off the wire.
  ip netns exec "$G" sysctl -qw "net.ipv6.conf.$p.disable_ipv6=1"
  ip -n "$G" link set "$p" up
done
ip -n "$C" addr add 10.77.0.1/24 dev eth0
ip -n "$S" addr add 10.77.0.2/24 dev eth0
for n in "$C" "$S"; do
  # A veth leaves TCP/UDP checksums for the receiver to fill in; a frame the dataplane reads
  # from an AF_PACKET socket and sends on would reach the peer unfinished and be dropped.
  ip netns exec "$n" ethtool -K eth0 tx off >/dev/null
  ip -n "$n" link set eth0 up
done
echo "   $C: 10.77.0.1   $S: 10.77.0.2   $G: to-client, to-server (ethtool -K eth0 tx off on both ends)"

step "a certificate for allowed.test, blocked.test, shop.test (openssl req), and the servers in $S"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=allowed.test \
  -addext "subjectAltName=DNS:allowed.test,DNS:blocked.test,DNS:shop.test" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/www" "$work/rules"
echo "hello from the server namespace" > "$work/www/index.html"
cat > "$work/server.py" <<'PY'
import http.server, socket, ssl, sys, threading
root, cert, key = sys.argv[1:4]
class Handler(http.server.SimpleHTTPRequestHandler):
    timeout = 20
    def __init__(self, *a, **k): super().__init__(*a, directory=root, **k)
    def log_message(self, *a): pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
plain, tls = Server(("0.0.0.0", 80), Handler), Server(("0.0.0.0", 443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
# The handshake runs in the request's thread: a client the dataplane cut holds up no other.
tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
for s in (plain, tls): threading.Thread(target=s.serve_forever, daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
PY
ip netns exec "$S" python3 "$work/server.py" "$work/www" "$work/cert.pem" "$work/key.pem" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do grep -q listening "$work/server.log" && break; sleep 0.1; done
grep -q listening "$work/server.log" || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
echo "   python3 http.server: HTTP on 10.77.0.2:80, HTTPS on 10.77.0.2:443"

step "the dataplane in $G: net_${PMD} ports on to-client and to-server, rule block-blocked-name"
cat > "$work/rules/block.yaml" <<'YAML'
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata:
  name: block-blocked-name
spec:
  ports: [{port: 443}, {protocol: UDP, port: 443}]
  tls:
    serverNames: ["blocked.test"]
  action: DROP
  reason: "scripts/gateway-demo.sh: a blocked name"
YAML
cat > "$work/dataplane.toml" <<TOML
eal = ["--no-huge", "--no-shconf", "--no-pci", "--file-prefix", "$ns", "-m", "256", "--lcores", "0@0,1@1",
       "--vdev", "net_${PMD}0,iface=to-client", "--vdev", "net_${PMD}1,iface=to-server",
       "--log-level", "lib.eal:warning", "--no-telemetry"]
stats_period = 0
rules = ["rules"]
[mempool]
size = 8191
[control]
listen = "127.0.0.1:0"
[[ports]]
device = "net_${PMD}0"
[[ports]]
device = "net_${PMD}1"
[forward]
net_${PMD}0 = "net_${PMD}1"
net_${PMD}1 = "net_${PMD}0"
[[workers]]
lcore = 1
rx = [{ port = "net_${PMD}0" }, { port = "net_${PMD}1" }]
TOML
ip netns exec "$G" "$BIN" run --config "$work/dataplane.toml" > "$work/dataplane.log" 2>&1 &
dp_pid=$!
url=""
for _ in $(seq 1 600); do
  url=$(sed -n 's/^control API listening on //p' "$work/dataplane.log")
  [ -n "$url" ] && break
  kill -0 "$dp_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then cat "$work/dataplane.log"; echo "the dataplane did not start" >&2; exit 1; fi
grep -v '^libbpf: elf: skipping' "$work/dataplane.log" | sed 's/^/   | /'

in_client() { ip netns exec "$C" "$@"; }
api() { ip netns exec "$G" curl -sS --max-time 30 "$@"; }
# curl from the client: prints the page or the failure; status 0 when the page came.
fetch() {
  local name=$1 max=$2 out
  echo "   \$ curl --max-time $max --resolve $name:443:10.77.0.2 https://$name/"
  if out=$(in_client curl -sS --max-time "$max" --cacert "$work/cert.pem" --resolve "$name:443:10.77.0.2" "https://$name/" 2>&1); then
    echo "     $out"; return 0
  else
    echo "     $out"; return 1
  fi
}

step "ping 10.77.0.2 from the client"
if in_client ping -n -c 3 -i 0.2 -W 2 10.77.0.2 | sed 's/^/   /'; then ok "3 replies"; else bad "ping 10.77.0.2"; fi

step "HTTPS to allowed.test: passes"
if fetch allowed.test 20; then ok "allowed.test served"; else bad "allowed.test should pass"; fi

step "HTTPS to blocked.test (same server, same address): its ClientHello is dropped, the handshake never completes"
if fetch blocked.test 5; then bad "blocked.test should be cut"; else ok "blocked.test cut"; fi

step "HTTPS to shop.test: passes, for now"
if fetch shop.test 20; then ok "shop.test served"; else bad "shop.test should pass before the rule"; fi

step "a rule applied through the control API ($url, in $G): DROP the name shop.test"
cat > "$work/shop.yaml" <<'YAML'
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata:
  name: block-shop
spec:
  tls:
    serverNames: ["shop.test"]
  action: DROP
  reason: "scripts/gateway-demo.sh: applied through the API"
YAML
echo "   \$ curl -X POST --data-binary @shop.yaml $url/v1/rules"
answer=$(api -X POST --data-binary @"$work/shop.yaml" "$url/v1/rules")
echo "     $answer"
case "$answer" in *'"generation":2'*) ok "generation 2 runs on every worker" ;; *) bad "the apply" ;; esac
if fetch shop.test 5; then bad "shop.test should be cut now"; else ok "shop.test cut"; fi
if fetch allowed.test 20; then ok "allowed.test still served"; else bad "allowed.test should still pass"; fi

step "the rule taken back: DELETE $url/v1/rules/block-shop"
answer=$(api -X DELETE "$url/v1/rules/block-shop")
echo "     $answer"
case "$answer" in *'"generation":3'*) ok "generation 3" ;; *) bad "the delete" ;; esac
if fetch shop.test 20; then ok "shop.test served again"; else bad "shop.test should pass again"; fi

step "packets per rule ($url/metrics)"
api "$url/metrics" | grep '^dataplane_rule_packets_total' | sed 's/^/   /'

step "SIGTERM: the dataplane stops, prints its final stats and the mbufs still in use"
kill -TERM "$dp_pid"
set +e
wait "$dp_pid"
code=$?
set -e
dp_pid=""
sed -n '/final stats/,$p' "$work/dataplane.log" | sed 's/^/   | /'
if [ "$code" -eq 0 ] && grep -Eq '^mbufs in use: 0( |$)' "$work/dataplane.log"; then
  ok "exit 0, mbufs in use: 0"
else
  bad "the dataplane exited with $code"
fi

echo
if [ "$failures" -eq 0 ]; then
  echo "gateway-demo: everything behaved as announced"
else
  echo "gateway-demo: $failures step(s) did not behave as announced"
  exit 1
fi
