#!/usr/bin/env bash
# Captures real ClientHellos from local TLS stacks on loopback (run as root; needs tcpdump,
# openssl, curl, gnutls-cli, python3). Peer: a local `openssl s_server` on 127.0.0.1:4433.
# Usage: tests/data/tls/capture.sh [output-dir]   (default: this directory)
set -euo pipefail
out=$(cd "${1:-$(dirname "$0")}" && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out cert.pem \
    -days 3650 -subj /CN=localhost 2>/dev/null
openssl s_server -accept 127.0.0.1:4433 -cert cert.pem -key key.pem -www -alpn http/1.1 -quiet &
sleep 1

capture() { # name, command...
    local name=$1; shift
    tcpdump -i lo -U -s 0 -w "$out/$name.pcap" 'tcp port 4433' 2>/dev/null &
    local dump=$!
    sleep 1
    timeout 10 "$@" </dev/null >/dev/null 2>&1 || true
    sleep 1
    kill -INT $dump; wait $dump || true
}

capture openssl_tls13_sni openssl s_client -connect 127.0.0.1:4433 -servername openssl.example.com
capture openssl_alpn openssl s_client -connect 127.0.0.1:4433 -servername alpn.example.com -alpn h2,http/1.1
capture openssl_tls12 openssl s_client -connect 127.0.0.1:4433 -servername tls12.example.com -tls1_2
capture openssl_nosni openssl s_client -connect 127.0.0.1:4433 -noservername
capture curl curl -sk --resolve curl.example.com:4433:127.0.0.1 https://curl.example.com:4433/
capture gnutls gnutls-cli --insecure --sni-hostname=gnutls.example.com -p 4433 127.0.0.1
capture python python3 -c '
import socket, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", 4433)) as s:
    with ctx.wrap_socket(s, server_hostname="python.example.com") as t:
        t.sendall(b"GET / HTTP/1.0\r\n\r\n"); t.recv(100)
'
