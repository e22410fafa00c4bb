//! REJECT against real network stacks: the dataplane between two network namespaces
//! (`netns_common`), curl, ping and Python sockets on the client side, Python's HTTPS server
//! and the server's kernel on the other. What the README promises: a rejected client fails at
//! once instead of waiting for its timeout, and the server does not keep a half-open
//! connection for a rejected ClientHello.
//!
//! Needs root, `ip netns`, veth and the tools `scripts/setup.sh` installs; where something is
//! missing each test says why on stderr and skips.

mod netns_common;

use std::time::{Duration, Instant};

use netns_common::bench::{json, rule_packets_when, stat, stop_clean, Bench, ALLOWED_TIMEOUT_S, BLOCKED_TIMEOUT_S};
use netns_common::gateway::Pmd;
use netns_common::tools::{curl_command, fetch_result, ping, Fetch};
use netns_common::{Topology, SERVER_V4, SERVER_V4_OTHER, SERVER_V6};

/// curl from a fixed local port (so the server's socket can be found), and how long it took.
fn curl_from(bench: &Bench, url: &str, local_port: u16, max_s: u32) -> (Fetch, Duration) {
    let mut cmd = curl_command(&bench.topo, url, &bench.pki, max_s);
    cmd.args(["--local-port", &local_port.to_string()]);
    let started = Instant::now();
    let out = cmd.output().unwrap();
    (fetch_result(out), started.elapsed())
}

/// The server's TCP sockets on port 443 whose peer is the client's `port`, in any state the
/// kernel still lists (`ss` in the server namespace): one line each, the state first.
fn server_sockets(topo: &Topology, port: u16) -> Vec<String> {
    let filter = format!("( sport = :443 and dport = :{port} )");
    let out = topo.in_server("ss").args(["-Htan", &filter]).output().unwrap();
    assert!(out.status.success(), "ss: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// [`server_sockets`] once they settle: polled until `want` holds, at most 3 s.
fn server_sockets_when(topo: &Topology, port: u16, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = server_sockets(topo, port);
        if want(&now) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A connected UDP socket in the client namespace sends one datagram to `addr`:`port` and
/// waits for an answer: the errno the kernel reports (an ICMP error turns into one), or
/// "timeout".
fn udp_probe(topo: &Topology, addr: &str, port: u16) -> String {
    const PROBE: &str = r#"
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((addr, port))
s.send(b"probe")
try:
    s.recv(100)
    print("answer")
except socket.timeout:
    print("timeout")
except OSError as e:
    import errno
    print(errno.errorcode.get(e.errno, str(e.errno)))
"#;
    let out = topo.in_client("python3").args(["-c", PROBE, addr, &port.to_string()]).output().unwrap();
    assert!(out.status.success(), "the UDP probe failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const NAME_RULES: &str =
    "  priority: 20\n  tls:\n    serverNames: [\"shop.test\"]\n  action: REJECT\n  reason: e2e rejected name\n";

/// `shop.test` rejected (`reject-name`), `blocked.test` dropped (`drop-name`).
fn name_rules() -> String {
    let dropped = NAME_RULES.replace("shop.test", "blocked.test").replace("REJECT", "DROP");
    format!(
        "{}{}",
        dataplane_tests::rule_yaml("reject-name", NAME_RULES),
        dataplane_tests::rule_yaml("drop-name", &dropped)
    )
}

/// A ClientHello rejected after the handshake: curl fails at once with a reset, and the
/// server's connection is reset too. The same hello dropped (DROP) leaves curl waiting for
/// its timeout and the server holding the connection: the contrast is what REJECT is for.
#[test]
fn af_packet_rejected_name_resets_the_client_at_once_and_the_servers_connection() {
    let test = "af_packet_rejected_name_resets_the_client_at_once_and_the_servers_connection";
    let Some(bench) = Bench::new(test, "r") else { return };
    let rules = name_rules();
    let gw = bench.gateway(Pmd::AfPacket, &rules);
    let topo = &bench.topo;

    // DROP: the hello vanishes; curl times out, the server still holds the connection.
    let (dropped, took) = curl_from(&bench, "https://blocked.test/", 41001, BLOCKED_TIMEOUT_S);
    assert_eq!((dropped.exit, dropped.connected, dropped.tls_done), (28, true, false), "DROP: {dropped:?}");
    assert!(took >= Duration::from_secs(u64::from(BLOCKED_TIMEOUT_S) - 1), "DROP: curl gave up after {took:?}");
    let held = server_sockets(topo, 41001);
    assert!(
        held.len() == 1 && held[0].starts_with("ESTAB"),
        "after a dropped hello the server should hold the connection: {held:?}"
    );

    // REJECT: curl is told at once, and the server's socket is gone.
    let (rejected, took) = curl_from(&bench, "https://shop.test/", 41002, BLOCKED_TIMEOUT_S);
    assert_eq!((rejected.exit, rejected.connected, rejected.tls_done), (35, true, false), "REJECT: {rejected:?}");
    assert!(rejected.stderr.contains("Connection reset by peer"), "REJECT: curl's words: {}", rejected.stderr);
    assert!(took < Duration::from_secs(2), "REJECT: curl took {took:?} (its timeout is {BLOCKED_TIMEOUT_S} s)");
    let left = server_sockets_when(topo, 41002, |s| s.is_empty());
    assert!(left.is_empty(), "after a rejected hello the server should have no connection: {left:?}");

    // Another name to the same server passes, from the same port as the rejected one.
    let (allowed, _) = curl_from(&bench, "https://allowed.test/", 41002, ALLOWED_TIMEOUT_S);
    assert!(allowed.ok(), "HTTPS to allowed.test after the reset: {allowed:?}");

    assert_eq!(rule_packets_when(&gw, "reject-name", 1), 1, "one hello rejected");
    let (_, status) = gw.api("GET", "/v1/status", None);
    let status = json(&status);
    let stats = stop_clean(gw);
    // One answered rejection: a RST each way (one token, two packets).
    assert_eq!(stat(&stats, "rejects", "tcp_rst"), 2, "{stats}\n{status}");
    assert_eq!(stat(&stats, "rejects", "limited"), 0, "{stats}");
    assert_eq!(stat(&stats, "rejects", "unsent"), 0, "{stats}");
}

/// An address rejected: a TCP connection is refused at once, ping hears "packet filtered",
/// a UDP socket gets the ICMP error as EHOSTUNREACH (Linux's errno for "communication
/// administratively prohibited"), and over IPv6 as EACCES.
#[test]
fn af_packet_rejected_addresses_refuse_tcp_and_answer_icmp_to_ping_and_udp() {
    let test = "af_packet_rejected_addresses_refuse_tcp_and_answer_icmp_to_ping_and_udp";
    let Some(bench) = Bench::new(test, "s") else { return };
    // IPv6 by port: a rule on the whole address would also reject the server's neighbour
    // advertisements, and the client would never reach it at all.
    let rules = format!(
        "{}{}",
        dataplane_tests::rule_yaml(
            "reject-address",
            &format!("  cidrBlocks: [\"{SERVER_V4_OTHER}/32\"]\n  action: REJECT\n  reason: e2e rejected address\n")
        ),
        dataplane_tests::rule_yaml(
            "reject-udp6",
            &format!(
                "  cidrBlocks: [\"{SERVER_V6}/128\"]\n  direction: egress\n  ports: [{{protocol: UDP, port: 5353}}]\n  action: REJECT\n  reason: e2e rejected port\n"
            )
        )
    );
    let gw = bench.gateway(Pmd::AfPacket, &rules);
    let topo = &bench.topo;

    let started = Instant::now();
    let f = fetch_result(
        curl_command(topo, &format!("http://{SERVER_V4_OTHER}/"), &bench.pki, BLOCKED_TIMEOUT_S).output().unwrap(),
    );
    let took = started.elapsed();
    assert_eq!((f.exit, f.connected), (7, false), "TCP to the rejected address: {f:?}");
    assert!(f.stderr.contains("Connection refused"), "curl's words: {}", f.stderr);
    assert!(took < Duration::from_secs(2), "curl took {took:?}");

    let out = topo.in_client("ping").args(["-n", "-c", "1", "-w", "3", SERVER_V4_OTHER]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("From {SERVER_V4_OTHER} icmp_seq=1 Packet filtered")),
        "ping should be told the packet was filtered:\n{text}"
    );

    assert_eq!(udp_probe(topo, SERVER_V4_OTHER, 5353), "EHOSTUNREACH");
    assert_eq!(udp_probe(topo, SERVER_V6, 5353), "EACCES");
    // Only that port: the server's other ports and addresses answer.
    assert_eq!(ping(topo, SERVER_V6, 2, ALLOWED_TIMEOUT_S), 2);
    assert_eq!(ping(topo, SERVER_V4, 2, ALLOWED_TIMEOUT_S), 2);
    assert!(bench.http(&format!("[{SERVER_V6}]"), ALLOWED_TIMEOUT_S).ok());

    // The SYN, the echo request and the IPv4 datagram; the IPv6 datagram.
    assert_eq!(rule_packets_when(&gw, "reject-address", 3), 3);
    assert_eq!(rule_packets_when(&gw, "reject-udp6", 1), 1);
    let stats = stop_clean(gw);
    assert_eq!((stat(&stats, "rejects", "tcp_rst"), stat(&stats, "rejects", "icmp")), (1, 3), "{stats}");
}

/// `openssl s_server` in the server namespace on port 8443, one connection at a time (`-www`
/// answers a status page); killed on Drop. Waits until it listens.
struct SServer(std::process::Child);

impl SServer {
    fn start(bench: &Bench) -> SServer {
        let child = bench
            .topo
            .in_server("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", "8443", "-cert"])
            .arg(&bench.pki.cert)
            .arg("-key")
            .arg(&bench.pki.key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = SServer(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = bench.topo.in_server("ss").args(["-Htln", "( sport = :8443 )"]).output().unwrap();
            if !out.stdout.is_empty() {
                return server;
            }
            assert!(Instant::now() < deadline, "openssl s_server did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// curl to `name` on the s_server's port 8443.
fn curl_8443(bench: &Bench, name: &str, max_s: u32) -> Fetch {
    let mut cmd = curl_command(&bench.topo, &format!("https://{name}:8443/"), &bench.pki, max_s);
    cmd.args(["--resolve", &format!("{name}:8443:{SERVER_V4}")]);
    fetch_result(cmd.output().unwrap())
}

/// The issue's own story: a single-threaded `openssl s_server` behind the gateway. A hello
/// REJECT answers leaves it serving the next client; a hello DROP swallows leaves it waiting
/// for that hello, and everyone after waits with it.
#[test]
fn af_packet_a_single_threaded_server_keeps_serving_after_a_rejected_hello_not_a_dropped_one() {
    let test = "af_packet_a_single_threaded_server_keeps_serving_after_a_rejected_hello_not_a_dropped_one";
    let Some(bench) = Bench::new(test, "t") else { return };
    let rules = name_rules();
    let gw = bench.gateway(Pmd::AfPacket, &rules);
    let _server = SServer::start(&bench);
    let served = |f: &Fetch| f.exit == 0 && f.status == "200" && f.tls_done;

    let f = curl_8443(&bench, "allowed.test", ALLOWED_TIMEOUT_S);
    assert!(served(&f), "s_server before any rejection: {f:?}");
    for round in 0..3 {
        let f = curl_8443(&bench, "shop.test", BLOCKED_TIMEOUT_S);
        assert_eq!((f.exit, f.tls_done), (35, false), "rejected hello, round {round}: {f:?}");
        let f = curl_8443(&bench, "allowed.test", ALLOWED_TIMEOUT_S);
        assert!(served(&f), "s_server after rejected hello {round}: {f:?}");
    }
    assert_eq!(rule_packets_when(&gw, "reject-name", 3), 3);

    // The contrast, last (it leaves the server stuck): a dropped hello, and the next client
    // waits in vain.
    let f = curl_8443(&bench, "blocked.test", 3);
    assert_eq!((f.exit, f.connected, f.tls_done), (28, true, false), "dropped hello: {f:?}");
    let f = curl_8443(&bench, "allowed.test", 3);
    assert_eq!((f.exit, f.tls_done), (28, false), "s_server should be stuck on the dropped hello: {f:?}");
    stop_clean(gw);
}
