//! REJECT end to end: `dataplane run` on net_pcap virtual devices answers rejected packets
//! (RSTs and ICMP errors back out the ingress port, a RST on to a server that holds the
//! connection), byte for byte as the reply builder writes them and as scapy reads them, and
//! within its rate; `dataplane classify` shows the same answers offline.

use std::path::Path;
use std::process::Command;

use dataplane::wire::build::{icmp_v4, tcp_v4, udp_v4, udp_v6, FrameBuilder};
use dataplane::wire::reply::{write_replies, MAX_REPLY_LEN};
use dataplane::wire::tcp_flags::{ACK, PSH, SYN};
use dataplane_tests::{classify, classify_json, rule_yaml};
use rand::{rngs::SmallRng, SeedableRng};

mod run_common;
use run_common::{d, pcap_pair_config_with, read_pcap, run, software_pair_config, worker_tx, write_pcap};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const BLOCKED: [u8; 4] = [192, 0, 2, 7];
const OPEN: [u8; 4] = [198, 51, 100, 1];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const BLOCKED6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

fn reject_rules() -> String {
    rule_yaml("reject-net", "  cidrBlocks: [\"192.0.2.0/24\", \"2001:db8:2::/48\"]\n  action: REJECT\n  reason: test\n")
}

/// The replies the library writes for `frame`: (to the sender, to the receiver if any).
fn expected_replies(frame: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let (mut a, mut b) = ([0u8; MAX_REPLY_LEN], [0u8; MAX_REPLY_LEN]);
    let w = write_replies(frame, &mut a, &mut b).unwrap();
    (a[..w.to_sender].to_vec(), (w.to_receiver > 0).then(|| b[..w.to_receiver].to_vec()))
}

/// Runs `frames` in on net_pcap0 with `extra` config; returns stdout, what left net_pcap1
/// (forwarded, and RSTs to servers) and what went back out net_pcap0 (answers to senders).
fn run_reject(dp: &Path, prefix: &str, frames: &[Vec<u8>], extra: &str) -> (String, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let inp = dp.join("in.pcap");
    write_pcap(&inp, frames);
    let rules = dp.join("rules.yaml");
    std::fs::write(&rules, reject_rules()).unwrap();
    let config = pcap_pair_config_with(prefix, dp, &inp, &rules, extra);
    let o = run(dp, &config, &["--duration", "2"]);
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(stdout.contains("mbufs in use: 0"), "{stdout}");
    (stdout, read_pcap(&dp.join("out.pcap")), read_pcap(&dp.join("back.pcap")))
}

/// The final stats line's `rejects` group.
fn rejects_line(stdout: &str) -> String {
    let line = stdout.lines().rev().find(|l| l.contains("rejects tcp_rst")).unwrap_or_default();
    let group = &line[line.find("rejects tcp_rst").unwrap_or(0)..];
    group.split("  ").next().unwrap_or_default().to_string()
}

fn scapy_installed() -> bool {
    Command::new("python3").args(["-c", "import scapy"]).status().is_ok_and(|s| s.success())
}

/// Scapy's reading of each frame of `pcap`: the transport, addresses, the fields that matter,
/// and whether every checksum (IPv4 header, TCP, ICMP, ICMPv6) verifies when scapy recomputes
/// it; for ICMP errors, the quoted packet's destination.
fn scapy_reads(pcap: &Path) -> Vec<String> {
    let script = r#"
import sys
from scapy.all import rdpcap, Ether, Dot1Q, IP, IPv6, TCP, ICMP, ICMPv6DestUnreach, IPerror, IPerror6, UDPerror
def ok(p):
    fields = []
    for layer, name in ((IP, "chksum"), (TCP, "chksum"), (ICMP, "chksum"), (ICMPv6DestUnreach, "cksum")):
        if layer in p:
            fields.append((layer, name, getattr(p[layer], name)))
    q = Ether(bytes(p))
    for layer, name, _ in fields:
        delattr(q[layer], name)
    q = Ether(bytes(q))
    return all(getattr(q[layer], name) == sent for layer, name, sent in fields)
for p in rdpcap(sys.argv[1]):
    ip = p[IP] if IP in p else p[IPv6]
    vlan = p[Dot1Q].vlan if Dot1Q in p else 0
    head = f"vlan={vlan} {ip.src}>{ip.dst} ttl={ip.ttl if IP in p else ip.hlim}"
    if TCP in p:
        t = p[TCP]
        print(f"{head} tcp {t.sport}>{t.dport} seq={t.seq} ack={t.ack} flags={t.flags} ok={ok(p)}")
    elif ICMP in p:
        i = p[ICMP]
        print(f"{head} icmp type={i.type} code={i.code} quote_dst={p[IPerror].dst} ok={ok(p)}")
    elif ICMPv6DestUnreach in p:
        i = p[ICMPv6DestUnreach]
        print(f"{head} icmp6 type={i.type} code={i.code} quote_dst={p[IPerror6].dst} plen={ip.plen} ok={ok(p)}")
    else:
        print(f"{head} other")
"#;
    let out = Command::new("python3").args(["-c", script]).arg(pcap).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn rejected_packets_are_answered_byte_for_byte_and_the_rest_pass() {
    let dir = tempfile::tempdir().unwrap();
    let syn = tcp_v4(CLIENT, BLOCKED, 40000, 443, SYN, 1000, &[]);
    // A segment after the handshake (as a ClientHello is): both ends are told.
    let data = FrameBuilder { tcp_ack: 0x7000_0001, ..FrameBuilder::new() }.tcp_v4(
        CLIENT,
        BLOCKED,
        40001,
        443,
        ACK | PSH,
        2001,
        b"\x16\x03\x01 hello",
    );
    let udp_tagged = FrameBuilder::new().vlan(42).udp_v4(CLIENT, BLOCKED, 5353, 53, b"query");
    let udp6 = udp_v6(CLIENT6, BLOCKED6, 5353, 53, &[0x5a; 1400]);
    let open = udp_v4(CLIENT, OPEN, 5353, 53, b"allowed");
    // Rejected, never answered: an ICMP error.
    let icmp_error = icmp_v4(CLIENT, BLOCKED, 3, 3, &[0; 28]);
    let frames = vec![syn.clone(), data.clone(), udp_tagged.clone(), open.clone(), udp6.clone(), icmp_error];
    let (stdout, out, back) = run_reject(dir.path(), "rj-exact", &frames, "[reject]\nrate = 1000\nburst = 100\n");

    let (syn_back, none) = expected_replies(&syn);
    assert_eq!(none, None);
    let (data_back, data_on) = expected_replies(&data);
    let (udp_back, _) = expected_replies(&udp_tagged);
    let (udp6_back, _) = expected_replies(&udp6);
    assert_eq!(back, vec![syn_back, data_back, udp_back, udp6_back]);
    assert_eq!(out, vec![open, data_on.unwrap()], "the allowed packet, then the RST to the server");
    assert_eq!(rejects_line(&stdout), "rejects tcp_rst 3 icmp 2 limited 0 silent 1 unsent 0", "{stdout}");

    if !scapy_installed() {
        eprintln!("SKIPPED the independent dissection: scapy is not installed (scripts/setup.sh installs it)");
        return;
    }
    assert_eq!(
        scapy_reads(&dir.path().join("back.pcap")),
        vec![
            "vlan=0 192.0.2.7>10.0.0.1 ttl=64 tcp 443>40000 seq=0 ack=1001 flags=RA ok=True",
            "vlan=0 192.0.2.7>10.0.0.1 ttl=64 tcp 443>40001 seq=1879048193 ack=0 flags=R ok=True",
            "vlan=42 192.0.2.7>10.0.0.1 ttl=64 icmp type=3 code=13 quote_dst=192.0.2.7 ok=True",
            "vlan=0 2001:db8:2::7>2001:db8::1 ttl=64 icmp6 type=1 code=1 quote_dst=2001:db8:2::7 plen=1240 ok=True",
        ]
    );
    let on = scapy_reads(&dir.path().join("out.pcap"));
    assert_eq!(on[1], "vlan=0 10.0.0.1>192.0.2.7 ttl=64 tcp 40001>443 seq=2001 ack=1879048193 flags=RA ok=True");
}

#[test]
fn a_burst_of_rejects_gets_exactly_the_bucket_and_the_rest_are_counted_limited() {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (0..10u16).map(|i| udp_v4(CLIENT, BLOCKED, 2000 + i, 53, b"q")).collect();
    // One burst of 10 (net_pcap reads the file at once), a bucket of 4, one more a second.
    let (stdout, out, back) = run_reject(dir.path(), "rj-rate", &frames, "[reject]\nrate = 1\nburst = 4\n");
    assert!(out.is_empty());
    let expected: Vec<Vec<u8>> = frames.iter().take(4).map(|f| expected_replies(f).0).collect();
    assert_eq!(back, expected);
    assert_eq!(rejects_line(&stdout), "rejects tcp_rst 0 icmp 4 limited 6 silent 0 unsent 0", "{stdout}");
}

#[test]
fn a_bad_reject_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    write_pcap(&inp, &[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, reject_rules()).unwrap();
    let config = pcap_pair_config_with("rj-bad", dir.path(), &inp, &rules, "[reject]\nrate = 10\nburst = 0\n");
    let o = run(dir.path(), &config, &["--duration", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("reject.burst: from 1 to 1000000"));
}

/// Offline, the whole story of a TLS connection whose name is rejected: the handshake passes,
/// the ClientHello is rejected, its client and server each get a RST they accept.
#[test]
fn classify_answers_a_rejected_client_hello_to_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let spec = "  ports: [{port: 443}]\n  tls: {serverNames: [\"blocked.example\"]}\n  action: REJECT\n";
    std::fs::write(&rules, rule_yaml("reject-name", spec)).unwrap();
    let hello = dataplane::tls::build::client_hello_record("blocked.example", false, &mut SmallRng::seed_from_u64(1));
    let server = FrameBuilder { tcp_ack: 101, ..FrameBuilder::new() };
    let client = FrameBuilder { tcp_ack: 9001, ..FrameBuilder::new() };
    let frames = vec![
        tcp_v4(CLIENT, OPEN, 50000, 443, SYN, 100, &[]),
        server.tcp_v4(OPEN, CLIENT, 443, 50000, SYN | ACK, 9000, &[]),
        client.tcp_v4(CLIENT, OPEN, 50000, 443, ACK, 101, &[]),
        client.tcp_v4(CLIENT, OPEN, 50000, 443, ACK | PSH, 101, &hello),
    ];
    let pcap = dir.path().join("in.pcap");
    write_pcap(&pcap, &frames);
    let replies = dir.path().join("replies.pcap");
    let lines = classify_json(&["--replies", replies.to_str().unwrap()], &rules, &pcap);
    let verdicts: Vec<(&str, Option<&str>)> =
        lines.iter().map(|l| (l["verdict"].as_str().unwrap(), l.get("reject").and_then(|r| r.as_str()))).collect();
    assert_eq!(verdicts, vec![("ALLOW", None), ("ALLOW", None), ("ALLOW", None), ("REJECT", Some("tcp-rst-both"))]);
    let (to_client, to_server) = expected_replies(&frames[3]);
    assert_eq!(read_pcap(&replies), vec![to_client, to_server.unwrap()]);
    if !scapy_installed() {
        eprintln!("SKIPPED the independent dissection: scapy is not installed (scripts/setup.sh installs it)");
        return;
    }
    assert_eq!(
        scapy_reads(&replies),
        vec![
            "vlan=0 198.51.100.1>10.0.0.1 ttl=64 tcp 443>50000 seq=9001 ack=0 flags=R ok=True",
            "vlan=0 10.0.0.1>198.51.100.1 ttl=64 tcp 50000>443 seq=101 ack=9001 flags=RA ok=True",
        ]
    );
    // The summary counts the rejected among the dropped.
    let out = classify(&[], &rules, &pcap);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("packets 4  allowed 3  dropped 1  malformed 0\nrejected 1  replies 2\n"), "{text}");
}

#[test]
fn classify_limits_answers_on_the_capture_clock() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, reject_rules()).unwrap();
    let frames: Vec<Vec<u8>> = (0..6u16).map(|i| udp_v4(CLIENT, BLOCKED, 3000 + i, 53, b"q")).collect();
    let pcap = dir.path().join("in.pcap");
    write_pcap(&pcap, &frames);
    let lines = classify_json(&["--reject-rate", "1", "--reject-burst", "2"], &rules, &pcap);
    let answers: Vec<&str> = lines.iter().map(|l| l["reject"].as_str().unwrap()).collect();
    assert_eq!(answers, ["icmp-prohibited", "icmp-prohibited", "limited", "limited", "limited", "limited"]);
}

/// With software distribution each worker answers the packets it was given, on its own TX
/// queue of the port they came in by.
#[test]
fn each_worker_answers_on_its_own_queue_back() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let frames: Vec<Vec<u8>> =
        (0..24u8).map(|i| udp_v4([10, 1, 0, i + 1], BLOCKED, 4000 + u16::from(i), 53, b"q")).collect();
    let (inp, empty) = (dp.join("in.pcap"), dp.join("empty.pcap"));
    write_pcap(&inp, &frames);
    write_pcap(&empty, &[]);
    let rules = dp.join("rules.yaml");
    std::fs::write(&rules, reject_rules()).unwrap();
    let tx = |port: usize, w: usize| worker_tx(dp, port, w);
    let config = software_pair_config(
        "rj-sw",
        dp,
        &inp,
        &empty,
        &format!("rules = [{:?}]", d(&rules)),
        "[reject]\nrate = 1000\nburst = 100\n",
    );
    let o = run(dp, &config, &["--duration", "2"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("mbufs in use: 0"));
    for w in 0..2 {
        let expected: Vec<Vec<u8>> = frames
            .iter()
            .filter(|f| dataplane::worker::software_worker_of(f, 2) == w)
            .map(|f| expected_replies(f).0)
            .collect();
        assert!(!expected.is_empty(), "worker {w} got packets");
        assert_eq!(read_pcap(&tx(0, w)), expected, "worker {w}'s answers, in order, on its queue of port 0");
        assert!(read_pcap(&tx(1, w)).is_empty());
    }
}

/// Forwarding one way, a worker has no TX queue back out the ingress port: its answers are
/// counted unsent, and nothing leaks.
#[test]
fn without_a_queue_back_answers_are_counted_unsent() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dir.path();
    let frames: Vec<Vec<u8>> = (0..3u16).map(|i| udp_v4(CLIENT, BLOCKED, 6000 + i, 53, b"q")).collect();
    let inp = dp.join("in.pcap");
    write_pcap(&inp, &frames);
    let rules = dp.join("rules.yaml");
    std::fs::write(&rules, reject_rules()).unwrap();
    let config =
        pcap_pair_config_with("rj-oneway", dp, &inp, &rules, "").replace("net_pcap1 = \"net_pcap0\"\n", "").replace(
            "rx = [{ port = \"net_pcap0\", queue = 0 }, { port = \"net_pcap1\" }]",
            "rx = [{ port = \"net_pcap0\" }]",
        );
    let o = run(dp, &config, &["--duration", "2"]);
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("mbufs in use: 0"), "{stdout}");
    assert_eq!(rejects_line(&stdout), "rejects tcp_rst 0 icmp 0 limited 0 silent 0 unsent 3", "{stdout}");
    assert!(read_pcap(&dp.join("back.pcap")).is_empty());
}
