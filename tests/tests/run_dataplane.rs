//! `dataplane run` end to end: the real binary on DPDK virtual devices (net_pcap, net_null),
//! without hugepages. Each test runs its own process with its own EAL file prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataplane::wire::build::{tcp_v4, tcp_v6, udp_v4};
use dataplane::wire::tcp_flags::{ACK, FIN, PSH, SYN};
use dataplane_tests::{dataplane_bin, rule_yaml};

mod run_common;
use run_common::{d, eal_line, read_pcap, run, run_pcap_pair, software_pair_config, worker_tx, write_pcap};

/// One connection of the test traffic: its packets from the client, and from the server.
struct Conn {
    id: usize,
    c2s: Vec<Vec<u8>>,
    s2c: Vec<Vec<u8>>,
}

fn tcp_conn(id: usize, client: [u8; 4], server: [u8; 4], sport: u16, dport: u16) -> Conn {
    let data = format!("request {id}");
    let c2s = vec![
        tcp_v4(client, server, sport, dport, SYN, 1000, &[]),
        tcp_v4(client, server, sport, dport, ACK, 1001, &[]),
        tcp_v4(client, server, sport, dport, PSH | ACK, 1001, data.as_bytes()),
        tcp_v4(client, server, sport, dport, FIN | ACK, 1001 + data.len() as u32, &[]),
    ];
    let s2c = vec![
        tcp_v4(server, client, dport, sport, SYN | ACK, 5000, &[]),
        tcp_v4(server, client, dport, sport, PSH | ACK, 5001, format!("response {id}").as_bytes()),
        tcp_v4(server, client, dport, sport, FIN | ACK, 5020, &[]),
    ];
    Conn { id, c2s, s2c }
}

fn tcp6_conn(id: usize, client: [u8; 16], server: [u8; 16], sport: u16, dport: u16) -> Conn {
    let c2s = vec![
        tcp_v6(client, server, sport, dport, SYN, 1, &[]),
        tcp_v6(client, server, sport, dport, PSH | ACK, 2, b"hello over v6"),
    ];
    let s2c = vec![tcp_v6(server, client, dport, sport, SYN | ACK, 9, &[])];
    Conn { id, c2s, s2c }
}

fn udp_conn(id: usize, client: [u8; 4], server: [u8; 4], sport: u16, dport: u16) -> Conn {
    let c2s = (0..3).map(|i| udp_v4(client, server, sport, dport, format!("query {id}.{i}").as_bytes())).collect();
    let s2c = vec![udp_v4(server, client, dport, sport, format!("answer {id}").as_bytes())];
    Conn { id, c2s, s2c }
}

/// An ARP request (non-IP: always forwarded).
fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
    f.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    f.resize(60, 0);
    f
}

/// Interleaves the packets of `conns` round-robin (client and server sides alternating within
/// each connection), tagging each with its connection id.
fn interleave(conns: &[Conn]) -> Vec<(usize, Vec<u8>)> {
    let per_conn: Vec<Vec<Vec<u8>>> = conns
        .iter()
        .map(|c| {
            let mut v = Vec::new();
            let (mut a, mut b) = (c.c2s.iter(), c.s2c.iter());
            // c2s[0], s2c[0], c2s[1], s2c[1], ...: a plausible exchange order.
            loop {
                let (x, y) = (a.next(), b.next());
                if x.is_none() && y.is_none() {
                    break;
                }
                v.extend(x.cloned());
                v.extend(y.cloned());
            }
            v
        })
        .collect();
    let longest = per_conn.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..longest {
        for (c, pkts) in conns.iter().zip(&per_conn) {
            if let Some(p) = pkts.get(i) {
                out.push((c.id, p.clone()));
            }
        }
    }
    out
}

/// A pcap of known connections through net_pcap0 -> worker -> net_pcap1: the output holds
/// exactly the packets the rules allow, in input order, byte for byte.
#[test]
fn forwards_exactly_the_allowed_packets_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let conns = vec![
        tcp_conn(0, [10, 0, 1, 5], [192, 0, 2, 10], 40000, 80),
        tcp_conn(1, [10, 0, 2, 7], [192, 0, 2, 10], 40001, 80), // client in 10.0.2.0/24: dropped
        udp_conn(2, [10, 0, 1, 6], [192, 0, 2, 53], 5353, 53),  // UDP to port 53: dropped
        udp_conn(3, [10, 0, 1, 6], [192, 0, 2, 99], 5353, 123),
        tcp_conn(4, [10, 0, 3, 1], [10, 0, 2, 200], 40002, 443), // server in 10.0.2.0/24: dropped
        tcp6_conn(5, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0xfd; 16], 50000, 22),
        tcp_conn(6, [10, 0, 9, 9], [198, 51, 100, 1], 40003, 8080),
    ];
    let dropped: BTreeSet<usize> = [1, 2, 4].into();
    let mut input = interleave(&conns);
    input.insert(3, (usize::MAX, arp()));
    let frames: Vec<Vec<u8>> = input.iter().map(|(_, f)| f.clone()).collect();
    let expected: Vec<Vec<u8>> = input.iter().filter(|(id, _)| !dropped.contains(id)).map(|(_, f)| f.clone()).collect();
    assert!(expected.len() < frames.len() && !expected.is_empty());

    let yaml = rule_yaml("block-net", "  cidrBlocks: [\"10.0.2.0/24\"]\n  action: DROP\n  reason: test\n")
        + &rule_yaml("block-dns", "  action: DROP\n  reason: dns\n  ports: [{protocol: UDP, port: 53}]\n");
    let (stdout, got) = run_pcap_pair(dp, "run-fwd", &frames, &yaml);
    assert_eq!(got.len(), expected.len(), "packets forwarded");
    assert!(got == expected, "out.pcap differs from the allowed packets of in.pcap");
    let drops = frames.len() - expected.len();
    assert!(
        stdout.contains(&format!(
            "rx {}  tx {}  drops policy {drops} malformed 0 tx_full 0",
            frames.len(),
            expected.len()
        )),
        "{stdout}"
    );
}

/// A TLS connection whose SNI a rule drops, through the real binary: the handshake and the
/// first hello segment pass (the connection is pending), the segment completing the hello
/// and everything after it are dropped; a connection to another name passes whole.
#[test]
fn a_dropped_sni_is_cut_from_the_completing_segment_on() {
    use dataplane::tls::build::client_hello_record;
    use rand::{rngs::SmallRng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let (client, server) = ([10, 0, 1, 5], [192, 0, 2, 10]);
    // SYN, SYN-ACK, ACK, the hello in two segments, the server's reply, the client's data.
    let tls_conn = |sni: &str, sport: u16| -> Vec<Vec<u8>> {
        let record = client_hello_record(sni, true, &mut SmallRng::seed_from_u64(7));
        let (first, second) = record.split_at(1000);
        let seq2 = 1000 + first.len() as u32;
        let seq3 = seq2 + second.len() as u32;
        vec![
            tcp_v4(client, server, sport, 443, SYN, 999, &[]),
            tcp_v4(server, client, 443, sport, SYN | ACK, 4999, &[]),
            tcp_v4(client, server, sport, 443, ACK, 1000, &[]),
            tcp_v4(client, server, sport, 443, PSH | ACK, 1000, first),
            tcp_v4(client, server, sport, 443, PSH | ACK, seq2, second),
            tcp_v4(server, client, 443, sport, PSH | ACK, 5000, b"server hello"),
            tcp_v4(client, server, sport, 443, PSH | ACK, seq3, b"application data"),
        ]
    };
    let bad = tls_conn("www.bad.example", 40000);
    let good = tls_conn("www.good.example", 40001);
    // The bad connection first, then the good one (one after the other, in order).
    let frames: Vec<Vec<u8>> = bad.iter().chain(&good).cloned().collect();
    let expected: Vec<Vec<u8>> = bad[..4].iter().chain(&good).cloned().collect();

    let yaml = rule_yaml(
        "bad-sni",
        "  action: DROP\n  reason: test\n  ports: [{port: 443}]\n  tls: {serverNames: [\"*.bad.example\"]}\n",
    );
    let (stdout, got) = run_pcap_pair(dp, "run-tls", &frames, &yaml);
    assert_eq!(got.len(), expected.len(), "packets forwarded");
    assert!(got == expected, "out.pcap: not the handshake + first segment of the bad connection and the good one");
    assert!(
        stdout.contains(&format!("rx {}  tx {}  drops policy 3 malformed 0", frames.len(), expected.len())),
        "{stdout}"
    );
    assert!(stdout.contains("tls pending 2 decided 2 not_tls 0 failed 0"), "{stdout}");
}

/// QUIC through the workers: a connection to a blocked name whose post-quantum ClientHello
/// spans two Initials passes its first datagram and is cut from the second on, the server's
/// datagrams and the client's later short-header ones included; a connection to an allowed
/// name passes byte for byte. The rule names UDP 443 among its ports, so it concerns QUIC.
#[test]
fn a_blocked_name_over_quic_is_cut_from_the_datagram_completing_its_hello_on() {
    use dataplane::tls::quic::build::{client_hello_message, first_flight};
    use dataplane::tls::quic::Version;
    use rand::{rngs::SmallRng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let (client, server) = ([10, 0, 1, 6], [192, 0, 2, 11]);
    // The client's two Initials, a server datagram (an Initial and Handshake in long form, as
    // far as the dataplane cares), then short-header datagrams from the client, the server,
    // the client.
    let quic_conn = |sni: &str, sport: u16, dcid: &[u8]| -> Vec<Vec<u8>> {
        let message = client_hello_message(sni, true, &mut SmallRng::seed_from_u64(9));
        let flight = first_flight(Version::V1, dcid, &message);
        assert_eq!(flight.len(), 2, "a post-quantum hello takes two datagrams");
        let mut server_initial = vec![0xc0, 0, 0, 0, 1];
        server_initial.resize(1200, 0x5a);
        let mut frames: Vec<Vec<u8>> = flight.iter().map(|d| udp_v4(client, server, sport, 443, d)).collect();
        frames.extend([
            udp_v4(server, client, 443, sport, &server_initial),
            udp_v4(client, server, sport, 443, b"\x41short header 1 from the client"),
            udp_v4(server, client, 443, sport, b"\x42short header from the server"),
            udp_v4(client, server, sport, 443, b"\x43short header 2 from the client"),
        ]);
        frames
    };
    let bad = quic_conn("www.bad.example", 50000, b"\x01\x02\x03\x04\x05\x06\x07\x08");
    let good = quic_conn("www.good.example", 50001, b"\x11\x12\x13\x14\x15\x16\x17\x18");
    let frames: Vec<Vec<u8>> = bad.iter().chain(&good).cloned().collect();
    // Of the bad connection only its first Initial: the hello is not whole before the second.
    let expected: Vec<Vec<u8>> = bad[..1].iter().chain(&good).cloned().collect();

    let yaml = rule_yaml(
        "bad-sni",
        "  action: DROP\n  reason: test\n  ports: [{port: 443}, {protocol: UDP, port: 443}]\n  tls: {serverNames: [\"*.bad.example\"]}\n",
    );
    let (stdout, got) = run_pcap_pair(dp, "run-quic", &frames, &yaml);
    assert_eq!(got.len(), expected.len(), "packets forwarded");
    assert!(got == expected, "out.pcap: not the bad connection's first Initial and the whole good one");
    assert_eq!((frames.len(), expected.len()), (12, 7));
    assert!(stdout.contains("rx 12  tx 7  drops policy 5 malformed 0"), "{stdout}");
    assert!(stdout.contains("tls pending 0 decided 0 not_tls 0 failed 0"), "{stdout}");
    assert!(stdout.contains("quic pending 2 decided 2 not_quic 0 failed 0"), "{stdout}");
}

/// Software distribution over two workers: a distributor lcore hashes every packet of both
/// directions (client side on port 0, server side on port 1) to one worker; each worker
/// transmits on its own TX queue, which net_pcap writes to its own file.
#[test]
fn software_distribution_keeps_both_directions_on_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let conns: Vec<Conn> = (0..40)
        .map(|i| {
            let client = [10, 1, (i / 200) as u8, (i % 200) as u8 + 1];
            let server = [192, 0, 2, (i % 7) as u8 + 1];
            if i % 3 == 0 {
                udp_conn(i, client, server, 20000 + i as u16, 53)
            } else {
                tcp_conn(i, client, server, 30000 + i as u16, 443)
            }
        })
        .collect();
    // Connection of each frame, by its bytes (every frame of the test is distinct).
    let mut conn_of: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for c in &conns {
        for f in c.c2s.iter().chain(&c.s2c) {
            assert!(conn_of.insert(f.clone(), c.id).is_none());
        }
    }
    let all = interleave(&conns);
    let c2s: Vec<Vec<u8>> = all.iter().filter(|(id, f)| conns[*id].c2s.contains(f)).map(|(_, f)| f.clone()).collect();
    let s2c: Vec<Vec<u8>> = all.iter().filter(|(id, f)| conns[*id].s2c.contains(f)).map(|(_, f)| f.clone()).collect();
    let (in0, in1) = (dp.join("c2s.pcap"), dp.join("s2c.pcap"));
    write_pcap(&in0, &c2s);
    write_pcap(&in1, &s2c);
    let tx = |port: usize, w: usize| worker_tx(dp, port, w);
    let config = software_pair_config("run-sw", dp, &in0, &in1, "", "");
    let o = run(dp, &config, &["--duration", "2"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("mbufs in use: 0"));

    let mut workers_of: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut per_worker = [0usize; 2];
    let mut total = 0;
    for port in 0..2 {
        for (w, count) in per_worker.iter_mut().enumerate() {
            for f in read_pcap(&tx(port, w)) {
                let id = conn_of[&f];
                // Client packets come in on port 0 and leave on port 1, and back.
                assert_eq!(conns[id].c2s.contains(&f), port == 1);
                workers_of.entry(id).or_default().insert(w);
                *count += 1;
                total += 1;
            }
        }
    }
    assert_eq!(total, c2s.len() + s2c.len(), "every packet forwarded once");
    assert_eq!(workers_of.len(), conns.len());
    for (id, ws) in &workers_of {
        assert_eq!(ws.len(), 1, "connection {id} was split over workers {ws:?}");
        // And the worker is the one the symmetric hash names.
        let w = dataplane::worker::software_worker_of(&conns[*id].c2s[0], 2);
        assert_eq!(ws.iter().next(), Some(&w));
    }
    assert!(per_worker.iter().all(|&n| n > 0), "both workers got traffic: {per_worker:?}");
}

/// SIGTERM while traffic flows (net_pcap replaying forever into a net_null sink): a clean
/// exit, final stats, no mbuf left in use.
#[test]
fn sigterm_mid_traffic_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let inp = dp.join("in.pcap");
    let frames: Vec<Vec<u8>> =
        interleave(&[tcp_conn(0, [10, 0, 0, 1], [10, 0, 0, 2], 1234, 80)]).into_iter().map(|(_, f)| f).collect();
    write_pcap(&inp, &frames);
    let config = eal_line(
        "run-sig",
        "0@0,1@1",
        &[format!("net_pcap0,rx_pcap={},infinite_rx=1", d(&inp)), "net_null0,no-rx=1".into()],
    ) + r#"
stats_period = 0.2
[[ports]]
device = "net_pcap0"
[[ports]]
device = "net_null0"
[forward]
net_pcap0 = "net_null0"
net_null0 = "net_pcap0"
[[workers]]
lcore = 1
rx = [{ port = "net_pcap0" }, { port = "net_null0" }]
"#;
    let path = dp.join("dataplane.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(dataplane_bin())
        .args(["run", "--config"])
        .arg(&path)
        .args(["--duration", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a periodic stats line showing forwarded traffic.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = lines.next().expect("stdout closed before traffic flowed").unwrap();
        let busy = line.contains("worker 0") && !line.contains("rx 0 ");
        seen.push(line);
        if busy {
            break;
        }
        assert!(Instant::now() < deadline, "no traffic: {seen:?}");
    }
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    let stdout = rest.join("\n");
    eprintln!("{}\n{stdout}", seen.join("\n"));
    assert_eq!(status.code(), Some(0));
    assert!(stdout.contains("final stats"), "{stdout}");
    assert!(stdout.contains("mbufs in use: 0"), "{stdout}");
    let final_worker = rest.iter().rev().find(|l| l.contains("worker 0")).unwrap();
    assert!(!final_worker.contains("rx 0 "), "{final_worker}");
}

fn base_config(prefix: &str) -> String {
    eal_line(prefix, "0@0,1@1", &["net_null0".into(), "net_null1".into()])
        + r#"
stats_period = 0
[[ports]]
device = "net_null0"
[[ports]]
device = "net_null1"
[forward]
net_null0 = "net_null1"
net_null1 = "net_null0"
[[workers]]
lcore = 1
rx = [{ port = "net_null0" }, { port = "net_null1", queue = 0 }]
"#
}

fn expect_config_error(dir: &Path, config: &str, needle: &str) {
    let o = run(dir, config, &["--duration", "0"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert_eq!(stderr.lines().filter(|l| l.contains(needle)).count(), 1, "printed once: {stderr}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("running:"), "nothing may start");
}

/// Bad configurations: exit code 2, the message names the key, nothing starts.
#[test]
fn bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    // The base configuration is fine.
    let o = run(dp, &base_config("run-cfg0"), &["--duration", "0.2"]);
    assert_eq!(o.status.code(), Some(0));

    expect_config_error(dp, &base_config("run-cfg1").replace("stats_period = 0", "stats_perod = 0"), "stats_perod");
    expect_config_error(
        dp,
        &base_config("run-cfg2").replace("device = \"net_null1\"", "device = \"net_null1\"\nrx_queus = 2"),
        "ports[1].rx_queus",
    );
    expect_config_error(dp, &base_config("run-cfg3").replace("queue = 0", "queue = 4"), "workers[0].rx[1].queue");
    expect_config_error(dp, &base_config("run-cfg4").replace("net_null1 = \"net_null0\"", ""), "forward.net_null1");
    expect_config_error(dp, &base_config("run-cfg5").replace("lcore = 1", "lcore = 7"), "workers[0].lcore");
    // The main lcore is not a worker lcore.
    expect_config_error(dp, &base_config("run-cfg11").replace("lcore = 1", "lcore = 0"), "workers[0].lcore");
    // More queues than the device has: named by key after EAL starts, before any device is
    // configured.
    expect_config_error(
        dp,
        &base_config("run-cfg12").replace("device = \"net_null1\"", "device = \"net_null1\"\nrx_queues = 4000"),
        "ports[1].rx_queues: 4000 queues requested",
    );
    // EAL arguments EAL refuses are invalid input too.
    let o = run(dp, &base_config("run-cfg13"), &["--duration", "0", "--", "--no-such-eal-option"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("config error: eal: rte_eal_init("), "{stderr}");
    expect_config_error(dp, &base_config("run-cfg6").replace("stats_period = 0", "tls_fail = \"ajar\""), "tls_fail");
    expect_config_error(
        dp,
        &base_config("run-cfg6").replace("stats_period = 0", "malformed = \"sometimes\""),
        "malformed",
    );
    expect_config_error(
        dp,
        &base_config("run-cfg7").replace("\"--vdev\", \"net_null1\"", "\"--vdev\", \"net_null7\""),
        "ports[1].device",
    );
    expect_config_error(
        dp,
        &base_config("run-cfg9").replace("stats_period = 0", "stats_period = 0\nflows = { capacity = 100000000000 }"),
        "flows.capacity: from 1 to 67108864",
    );
    expect_config_error(
        dp,
        &base_config("run-cfg10").replace("stats_period = 0", "stats_period = 0\nflows = { hello_buffers = 65536 }"),
        "flows.hello_buffers: at most 65535",
    );

    // Bad rules: every error listed, exit 2.
    let rules = dp.join("bad.yaml");
    std::fs::write(&rules, rule_yaml("bad", "  cidrBlocks: [\"10.0.0.1/24\"]\n  action: DROP\n")).unwrap();
    expect_config_error(
        dp,
        &base_config("run-cfg8").replace("stats_period = 0", &format!("rules = [{:?}]", d(&rules))),
        "spec.cidrBlocks[0]",
    );
}

mod fragments_common;

/// Issue 18's fragment evasions through `dataplane run` on net_pcap: the output holds exactly
/// the fragments of allowed datagrams, byte for byte (the held ones after the rest of their
/// burst, once their first fragment came); the orphan still held at the end is freed
/// (`mbufs in use: 0`).
#[test]
fn fragments_follow_their_datagram_through_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let (frames, released) = fragments_common::capture();
    assert!(frames.len() <= 32, "one burst");
    let input: Vec<Vec<u8>> = frames.iter().map(|f| f.bytes.clone()).collect();
    let mut expected: Vec<Vec<u8>> = frames
        .iter()
        .enumerate()
        .filter(|(i, f)| f.verdict == "ALLOW" && !released.contains(i))
        .map(|(_, f)| f.bytes.clone())
        .collect();
    expected.extend(released.iter().map(|&i| frames[i].bytes.clone()));
    let (stdout, got) = run_pcap_pair(dp, "run-frag", &input, &fragments_common::drop_445());
    assert_eq!(got.len(), expected.len(), "packets forwarded");
    assert!(got == expected, "out.pcap differs from the allowed fragments");
    let dropped = frames.iter().filter(|f| f.verdict == "DROP").count();
    assert!(stdout.contains(&format!("rx {}  tx {}", frames.len(), expected.len())), "{stdout}");
    assert_eq!(frames.len() - expected.len(), dropped);
}
