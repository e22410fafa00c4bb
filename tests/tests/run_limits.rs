//! Connection limits end to end: `dataplane run` on net_pcap virtual devices. net_pcap
//! replays a file as fast as it can (not paced), so the whole storm arrives within a few
//! milliseconds of the worker's clock: each source gets exactly its bucket (`burst`) through
//! at a rate of one a second, and the rest are limited. A paced check of the rate runs offline,
//! on a generated storm's timestamps (`tests/storm.rs`).

use dataplane::wire::build::{tcp_v4, tcp_v6};
use dataplane::wire::tcp_flags::SYN;
use dataplane::wire::{parse_frame, IpPair, Parsed};
use dataplane_tests::rule_yaml;

mod run_common;
use run_common::{pcap_pair_config_with, run, run_pcap_pair_with, write_pcap};

const SERVER: [u8; 4] = [192, 0, 2, 80];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80];

fn limit_rules() -> String {
    rule_yaml("syn-limit", "  ports: [{port: 443}]\n  action: DROP\n  limit: {connectionsPerSecond: 1, burst: 5}\n")
}

/// The final stats line's `limits` group.
fn limits_line(stdout: &str) -> String {
    let line = stdout.lines().rev().find(|l| l.contains("limits connections")).unwrap_or_default();
    let group = &line[line.find("limits connections").unwrap_or(0)..];
    group.split("  ").next().unwrap_or_default().to_string()
}

/// Two IPv4 storm sources and one IPv6 /64 (each SYN from another address in it), 30 SYNs
/// each, interleaved with a normal source's 3: exactly 5 of each storm source's leave, all of
/// the normal source's, and 75 connections are counted limited.
#[test]
fn each_source_gets_exactly_its_burst_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    for i in 0..30u16 {
        frames.push(tcp_v4([198, 18, 0, 1], SERVER, 10_000 + i, 443, SYN, 1, b""));
        frames.push(tcp_v4([198, 18, 0, 2], SERVER, 10_000 + i, 443, SYN, 1, b""));
        let mut v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        v6[14..].copy_from_slice(&(i + 1).to_be_bytes());
        frames.push(tcp_v6(v6, SERVER6, 10_000, 443, SYN, 1, b""));
        if i % 10 == 0 {
            frames.push(tcp_v4([10, 1, 0, 1], SERVER, 20_000 + i, 443, SYN, 1, b""));
        }
    }
    let (stdout, out) = run_pcap_pair_with(dir.path(), "lim-burst", &frames, &limit_rules(), "");
    let mut by_source = std::collections::BTreeMap::<String, usize>::new();
    for f in &out {
        let Ok(Parsed::Ip(p)) = parse_frame(f) else { panic!("a frame out does not parse") };
        let source = match p.addrs {
            IpPair::V4 { src, .. } => std::net::Ipv4Addr::from(src).to_string(),
            IpPair::V6 { src, .. } => format!("{}/64", std::net::Ipv6Addr::from(src >> 64 << 64)),
        };
        *by_source.entry(source).or_default() += 1;
    }
    let got: Vec<(&str, usize)> = by_source.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    assert_eq!(got, [("10.1.0.1", 3), ("198.18.0.1", 5), ("198.18.0.2", 5), ("2001:db8:5:1::/64", 5)]);
    assert_eq!(limits_line(&stdout), "limits connections 75 shared 0", "{stdout}");
}

#[test]
fn a_bad_limits_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    write_pcap(&inp, &[]);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, limit_rules()).unwrap();
    let config = pcap_pair_config_with("lim-bad", dir.path(), &inp, &rules, "[limits]\nslots = 1000\n");
    let o = run(dir.path(), &config, &["--duration", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("limits.slots: a power of two from 1 to 4194304"), "{stderr}");
}
