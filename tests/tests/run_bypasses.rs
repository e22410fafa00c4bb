//! Issue 18's bypasses through the real `dataplane run` on net_pcap virtual devices: what the
//! worker forwards is compared byte for byte with what the rules allow. (Fragments have their
//! own run test in `run_dataplane.rs`; `classify` covers each bypass in `classify_cli.rs` and
//! `classify_chains.rs`.)

use dataplane::tls::build::client_hello_record;
use dataplane::wire::build::{self, FrameBuilder};
use dataplane::wire::ip_proto::TCP;
use dataplane::wire::ipv6_ext::next_header::{DEST_OPTS, FRAGMENT, HOP_BY_HOP, ROUTING};
use dataplane::wire::tcp_flags::{ACK, PSH, SYN};
use dataplane_tests::rule_yaml;
use rand::{rngs::SmallRng, Rng, SeedableRng};

mod run_common;
use run_common::run_pcap_pair_with;

const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Inside the DROP rule's 2001:db8:b::/48.
const BLOCKED6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0xb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];

/// A TCP SYN to `dst`:`port` behind the IPv6 extension headers `kinds`.
fn syn_behind(kinds: &[u8], dst: [u8; 16], port: u16) -> Vec<u8> {
    let mut payload = build::ipv6_ext_chain(kinds, TCP);
    payload.extend(build::tcp_segment_v6(CLIENT6, dst, 40000, port, SYN, 1, b""));
    FrameBuilder::new().ipv6(CLIENT6, dst, kinds.first().copied().unwrap_or(TCP), &payload)
}

/// Chains a Linux receiver accepts (8 and 12 Destination Options headers; Hop-by-Hop +
/// Routing with segments left 0 + an atomic Fragment header) to a port a DROP rule names: all
/// dropped. The same chains to another port, and a plain SYN to it, pass unchanged.
#[test]
fn long_ipv6_header_chains_do_not_walk_around_a_port_rule() {
    let dir = tempfile::tempdir().unwrap();
    let chains: [&[u8]; 3] = [&[DEST_OPTS; 8], &[DEST_OPTS; 12], &[HOP_BY_HOP, ROUTING, FRAGMENT]];
    let mut frames = Vec::new();
    let mut expected = Vec::new();
    for kinds in chains {
        frames.push(syn_behind(kinds, BLOCKED6, 22));
        let other = syn_behind(kinds, BLOCKED6, 80);
        frames.push(other.clone());
        expected.push(other);
    }
    let plain = build::tcp_v6(CLIENT6, BLOCKED6, 40001, 80, SYN, 1, b"");
    frames.push(plain.clone());
    expected.push(plain);
    let yaml = rule_yaml(
        "no-ssh",
        "  cidrBlocks: [\"2001:db8:b::/48\"]\n  direction: egress\n  ports: [{port: 22}]\n  action: DROP\n  reason: ssh\n",
    );
    let (stdout, got) = run_pcap_pair_with(dir.path(), "run-chains", &frames, &yaml, "");
    assert!(got == expected, "forwarded: {} frames, expected {}", got.len(), expected.len());
    assert!(
        stdout.contains(&format!("rx {}  tx {}  drops policy 3 malformed 0", frames.len(), expected.len())),
        "{stdout}"
    );
}

/// The flood bypass: the first half of a post-quantum ClientHello to a blocked name, then
/// 3000 SYNs from as many sources into a flow table of 1024 entries, then the second half.
/// The half-read hello keeps its entry; the second half and the server's answer are dropped;
/// the flood itself passes (no rule drops it).
#[test]
fn a_syn_flood_does_not_evict_a_half_read_hello() {
    let dir = tempfile::tempdir().unwrap();
    let (client, server) = ([192, 168, 211, 9], [10, 0, 0, 5]);
    let mut rng = SmallRng::seed_from_u64(18);
    let hello = client_hello_record("www.bad.example", true, &mut rng);
    let (first, second) = hello.split_at(1400);
    let to_server = |flags, seq, payload: &[u8]| build::tcp_v4(client, server, 40000, 443, flags, seq, payload);
    let mut frames = vec![
        to_server(SYN, 999, b""),
        build::tcp_v4(server, client, 443, 40000, SYN | ACK, 4999, b""),
        to_server(ACK, 1000, b""),
        to_server(PSH | ACK, 1000, first),
    ];
    for _ in 0..3000 {
        let src = [100, 64 + rng.random_range(0..64u8), rng.random(), rng.random()];
        frames.push(build::tcp_v4(src, server, rng.random_range(1024..65535), 443, SYN, rng.random(), b""));
    }
    let expected = frames.clone();
    frames.push(to_server(PSH | ACK, 1000 + first.len() as u32, second));
    frames.push(build::tcp_v4(server, client, 443, 40000, PSH | ACK, 5000, b"answer"));
    let yaml = rule_yaml(
        "bad-sni",
        "  action: DROP\n  reason: blocked name\n  ports: [{port: 443}]\n  tls: {serverNames: [\"*.bad.example\"]}\n",
    );
    let (stdout, got) = run_pcap_pair_with(dir.path(), "run-flood", &frames, &yaml, "[flows]\ncapacity = 1024\n");
    assert_eq!(got.len(), expected.len(), "frames forwarded");
    assert!(got == expected, "out.pcap differs from everything but the second half and the answer");
    assert!(
        stdout.contains(&format!("rx {}  tx {}  drops policy 2 malformed 0", frames.len(), expected.len())),
        "{stdout}"
    );
}
