//! `dataplane classify --json` on IPv6 extension chains and packets it cannot read completely
//! (issue 18): the chains a Linux receiver accepts are decided by their ports, packets whose
//! transport is unknown by what is known, broken IP headers dropped; each with its cause.
//! When scapy is installed, it dissects the crafted capture independently: the frames are
//! what the test says they are (the transport behind each chain, checksums right).

use dataplane::pcap::write_all;
use dataplane::wire::build::{self, FrameBuilder};
use dataplane::wire::ip_proto::TCP;
use dataplane::wire::ipv6_ext::next_header::{DEST_OPTS, FRAGMENT, HOP_BY_HOP, ROUTING};
use dataplane::wire::ipv6_ext::MAX_EXT_HEADERS;
use dataplane::wire::tcp_flags::SYN;
use dataplane_tests::{classify_json, rule_yaml};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CLIENT: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// 2001:db8:b::5, inside the DROP rule's cidrBlocks.
const BLOCKED: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
/// 2001:db8:a::7, inside the ALLOW (port 443) rule's cidrBlocks.
const WEB: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

fn behind(kinds: &[u8], dst: [u8; 16], port: u16) -> Vec<u8> {
    let mut p = build::ipv6_ext_chain(kinds, TCP);
    p.extend(build::tcp_segment_v6(CLIENT, dst, 40000, port, SYN, 1, b""));
    FrameBuilder::new().ipv6(CLIENT, dst, kinds.first().copied().unwrap_or(TCP), &p)
}

fn write_rules(dir: &Path) -> PathBuf {
    let path = dir.join("rules.yaml");
    let text = rule_yaml(
        "blocked",
        "  cidrBlocks: [\"2001:db8:b::/48\"]\n  direction: egress\n  ports: [{port: 22}]\n  action: DROP\n  reason: no ssh\n",
    ) + &rule_yaml(
        "web",
        "  cidrBlocks: [\"2001:db8:a::/48\"]\n  direction: egress\n  ports: [{port: 443}]\n  action: ALLOW\n  reason: web\n",
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// What an independent dissector must see in a frame: (destination, transport protocol,
/// destination port), or `None` for a frame it cannot read as IPv6 + TCP.
type Dissected = Option<(&'static str, u8, u16)>;

/// The frames, and what an independent dissector must see in each.
fn frames() -> Vec<(Vec<u8>, Dissected)> {
    let blocked = "2001:db8:b::5";
    vec![
        // 1: the first bypass: 8 (and more) destination options headers.
        (behind(&[DEST_OPTS; 8], BLOCKED, 22), Some((blocked, TCP, 22))),
        (behind(&[DEST_OPTS; 10], BLOCKED, 22), Some((blocked, TCP, 22))),
        // 3: the second: hop-by-hop, routing (type 0, segments left 0), atomic fragment.
        (behind(&[HOP_BY_HOP, ROUTING, FRAGMENT], BLOCKED, 22), Some((blocked, TCP, 22))),
        // 4: a chain past the walk's bound: the transport is unknown; the DROP rule may match.
        (behind(&[DEST_OPTS; MAX_EXT_HEADERS + 1], BLOCKED, 80), Some((blocked, TCP, 80))),
        // 5: the same to the ALLOW rule's addresses: its port cannot be known to be 443.
        (behind(&[DEST_OPTS; MAX_EXT_HEADERS + 1], WEB, 443), Some(("2001:db8:a::7", TCP, 443))),
        // 6: a frame cut inside its IPv6 header.
        (behind(&[], WEB, 443)[..40].to_vec(), None),
        // 7: ARP passes.
        (FrameBuilder::new().ethernet(0x0806, &[0u8; 28]), None),
    ]
}

#[test]
fn classify_json_gives_exact_verdicts_and_causes_for_chains() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_rules(dir.path());
    let frames = frames();
    let pcap = dir.path().join("chains.pcap");
    write_all(&pcap, frames.iter().enumerate().map(|(i, (f, _))| (Duration::from_millis(i as u64), f.as_slice())))
        .unwrap();
    scapy_agrees(&pcap, &frames);
    let lines = classify_json(&[], &rules, &pcap);
    let expected = [
        r#"{"packet":1,"verdict":"DROP","rule":"blocked","reason":"no ssh"}"#,
        r#"{"packet":2,"verdict":"DROP","rule":"blocked","reason":"no ssh"}"#,
        r#"{"packet":3,"verdict":"DROP","rule":"blocked","reason":"no ssh"}"#,
        r#"{"packet":4,"verdict":"DROP","rule":"blocked","reason":"no ssh","malformed":"ext-chain"}"#,
        r#"{"packet":5,"verdict":"ALLOW","rule":null,"reason":null,"malformed":"ext-chain"}"#,
        r#"{"packet":6,"verdict":"DROP","rule":null,"reason":null,"malformed":"truncated-ip"}"#,
        r#"{"packet":7,"verdict":"ALLOW","rule":null,"reason":null}"#,
    ];
    let expected: Vec<serde_json::Value> = expected.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, expected);
}

/// Scapy, when installed, reads each frame: the destination, the transport behind the whole
/// chain and its port, and a TCP checksum that verifies.
fn scapy_agrees(pcap: &Path, frames: &[(Vec<u8>, Dissected)]) {
    if !Command::new("python3").args(["-c", "import scapy"]).status().is_ok_and(|s| s.success()) {
        eprintln!("scapy is not installed: the crafted frames are not dissected independently");
        return;
    }
    let script = r#"
import sys
from scapy.all import rdpcap, IPv6, TCP
for p in rdpcap(sys.argv[1]):
    if IPv6 in p and TCP in p:
        t = p[TCP]
        sent = t.chksum
        del t.chksum
        ok = p.__class__(bytes(p))[TCP].chksum == sent
        print(p[IPv6].dst, 6, t.dport, "ok" if ok else "bad-checksum")
    else:
        print("none")
"#;
    let out = Command::new("python3").args(["-c", script]).arg(pcap).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    let expected: Vec<String> = frames
        .iter()
        .map(|(_, e)| e.map_or_else(|| "none".to_string(), |(dst, proto, port)| format!("{dst} {proto} {port} ok")))
        .collect();
    assert_eq!(seen, expected, "scapy's dissection");
}
