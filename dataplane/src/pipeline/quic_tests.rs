//! The pipeline on QUIC connections: a UDP flow that TLS rules concern is pending until the
//! ClientHello in its Initials completes; the completing datagram gets the verdict, and so does
//! the rest of the connection in both directions.

use super::{Pipeline, PipelineConfig, TlsFail};
use crate::counters::Counter;
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::tls::quic::build::{client_hello_message, first_flight, initial_packet, InitialSpec};
use crate::tls::quic::Version;
use crate::wire::build;
use rand::rngs::SmallRng;
use rand::SeedableRng;

const CLIENT: [u8; 4] = [10, 1, 1, 1];
const SERVER: [u8; 4] = [192, 0, 2, 10];
const DCID: &[u8] = b"\x51\x52\x53\x54\x55\x56\x57\x58";

/// `ports` of the SNI rule, as YAML.
fn policy(ports: &str) -> CompiledPolicy {
    let yaml = format!(
        "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: bad-sni}}\nspec:\n  action: DROP\n{ports}  tls: {{serverNames: [\"*.bad.example\"]}}\n"
    );
    CompiledPolicy::compile(rule_set_from_str(&yaml, "t").unwrap(), Action::Allow).unwrap()
}

fn both() -> CompiledPolicy {
    policy("  ports: [{port: 443}, {protocol: UDP, port: 443}]\n")
}

/// The client's first flight for `sni` (two datagrams when `post_quantum`), then a server
/// datagram and a later client one (short header).
fn connection(sni: &str, post_quantum: bool, version: Version, sport: u16) -> Vec<Vec<u8>> {
    let message = client_hello_message(sni, post_quantum, &mut SmallRng::seed_from_u64(3));
    let mut frames: Vec<Vec<u8>> =
        first_flight(version, DCID, &message).iter().map(|d| build::udp_v4(CLIENT, SERVER, sport, 443, d)).collect();
    frames.push(build::udp_v4(SERVER, CLIENT, 443, sport, b"\xc0server initial"));
    frames.push(build::udp_v4(CLIENT, SERVER, sport, 443, b"\x40short header"));
    frames
}

fn run(p: &mut Pipeline, policy: &CompiledPolicy, frames: &[Vec<u8>]) -> Vec<(Action, Option<u32>)> {
    super::tests::one_per_burst(p, policy, frames, 0)
}

const PASS: (Action, Option<u32>) = (Action::Allow, None);
const DROP: (Action, Option<u32>) = (Action::Drop, Some(0));

#[test]
fn a_blocked_name_in_one_initial_is_dropped_from_that_datagram_on_both_ways() {
    let policy = both();
    for version in [Version::V1, Version::V2] {
        let mut p = Pipeline::new(PipelineConfig::default());
        let frames = connection("www.bad.example", false, version, 40000);
        assert_eq!(frames.len(), 3);
        assert_eq!(run(&mut p, &policy, &frames), [DROP; 3], "{version:?}");
        let c = |k| p.counters.get(k);
        assert_eq!((c(Counter::QuicPending), c(Counter::QuicDecided), c(Counter::TlsPending)), (1, 1, 0));
        assert_eq!(p.hellos.counters().acquired, 0, "a hello in one datagram takes no buffer");
    }
}

#[test]
fn a_two_datagram_hello_passes_its_first_half_and_is_decided_by_the_second_in_either_order() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = connection("x.bad.example", true, Version::V1, 40001);
    assert_eq!(frames.len(), 4, "two Initials, a server datagram, a short header");
    assert_eq!(run(&mut p, &policy, &frames), [PASS, DROP, DROP, DROP]);
    assert_eq!(p.hellos.available(), p.hellos.capacity(), "the buffer went back");
    // The second Initial first.
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut frames = connection("x.bad.example", true, Version::V2, 40002);
    frames.swap(0, 1);
    assert_eq!(run(&mut p, &policy, &frames), [PASS, DROP, DROP, DROP]);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
    // An allowed name: everything passes, the same bytes decided by no rule.
    let mut p = Pipeline::new(PipelineConfig::default());
    assert_eq!(run(&mut p, &policy, &connection("bad.example", true, Version::V1, 40003)), [PASS; 4]);
    assert_eq!(p.counters.get(Counter::QuicDecided), 1);
}

#[test]
fn which_rules_concern_quic_follows_their_ports() {
    let frames = connection("www.bad.example", false, Version::V1, 40004);
    for (ports, quic) in
        [("", true), ("  ports: [{protocol: UDP, port: 443}]\n", true), ("  ports: [{port: 443}]\n", false)]
    {
        let mut p = Pipeline::new(PipelineConfig::default());
        let want = if quic { [DROP; 3] } else { [PASS; 3] };
        assert_eq!(run(&mut p, &policy(ports), &frames), want, "{ports:?}");
        assert_eq!(p.counters.get(Counter::QuicPending), u64::from(quic));
    }
}

#[test]
fn udp_that_is_not_quic_is_decided_on_its_first_datagram() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = [build::udp_v4(CLIENT, SERVER, 40005, 443, b"plain"), build::udp_v4(SERVER, CLIENT, 443, 40005, b"r")];
    assert_eq!(run(&mut p, &policy, &frames), [PASS, PASS]);
    assert_eq!((p.counters.get(Counter::QuicPending), p.counters.get(Counter::QuicNotQuic)), (1, 1));
}

#[test]
fn an_unreadable_initial_follows_tls_fail() {
    let policy = both();
    // An Initial that opens but carries a STREAM frame, which no Initial may.
    let bad = initial_packet(&InitialSpec::new(Version::V1, DCID), &[0x08, 0, 1, b'x'], 1100);
    let frames = [build::udp_v4(CLIENT, SERVER, 40006, 443, &bad)];
    for (fail, want) in [(TlsFail::Open, PASS), (TlsFail::Closed, (Action::Drop, None))] {
        let mut p = Pipeline::new(PipelineConfig { tls_fail: fail, ..PipelineConfig::default() });
        assert_eq!(run(&mut p, &policy, &frames), [want], "{fail:?}");
        assert_eq!(p.counters.get(Counter::QuicFailed), 1);
    }
}

#[test]
fn an_initial_no_server_opens_is_skipped_while_the_hello_is_awaited() {
    let policy = both();
    // Sealed with keys of another connection ID than the one it is sent to.
    let mut spec = InitialSpec::new(Version::V1, DCID);
    spec.key_dcid = b"\x01\x02\x03\x04\x05\x06\x07\x08";
    let message = client_hello_message("www.bad.example", false, &mut SmallRng::seed_from_u64(4));
    let forged = initial_packet(&spec, &crate::tls::quic::build::crypto_frame(0, &message), 1100);
    let mut frames = vec![build::udp_v4(CLIENT, SERVER, 40011, 443, &forged)];
    frames.extend(connection("www.bad.example", false, Version::V1, 40011));
    let mut p = Pipeline::new(PipelineConfig { tls_fail: TlsFail::Open, ..PipelineConfig::default() });
    assert_eq!(run(&mut p, &policy, &frames), [PASS, DROP, DROP, DROP]);
    assert_eq!((p.counters.get(Counter::QuicFailed), p.counters.get(Counter::QuicDecided)), (0, 1));
}

#[test]
fn a_client_that_never_finishes_its_hello_is_decided_by_tls_fail() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig { tls_fail: TlsFail::Closed, ..PipelineConfig::default() });
    // 0-RTT-looking datagrams (long header, type 1) before any Initial: they pass while the
    // hello may still come, up to the bound.
    let zero_rtt =
        build::udp_v4(CLIENT, SERVER, 40007, 443, &[0xd0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 5, 1, 2, 3, 4, 5]);
    let v = run(&mut p, &policy, &vec![zero_rtt; 10]);
    let limit = usize::from(crate::tls::quic::assembly::MAX_DATAGRAMS);
    assert!(v[..limit].iter().all(|&v| v == PASS), "{v:?}");
    assert!(v[limit..].iter().all(|&v| v == (Action::Drop, None)), "{v:?}");
    assert_eq!(p.counters.get(Counter::QuicFailed), 1);
}

#[test]
fn a_quic_verdict_survives_a_new_generation() {
    let mut old = both();
    old.set_generation(1);
    let mut new = policy("");
    new.set_generation(2);
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = connection("www.bad.example", false, Version::V1, 40008);
    assert_eq!(run(&mut p, &old, &frames[..1]), [DROP]);
    // Later datagrams under generation 2 (which also wants the hello): still dropped, not
    // read as a new connection's first datagram.
    assert_eq!(run(&mut p, &new, &frames[1..]), [DROP; 2]);
}

#[test]
fn junk_first_does_not_let_a_later_initial_by() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut frames = vec![build::udp_v4(CLIENT, SERVER, 40009, 443, b"not quic")];
    frames.extend(connection("www.bad.example", false, Version::V1, 40009));
    // The junk is decided as not QUIC (allowed); the Initial that follows is read all the same.
    assert_eq!(run(&mut p, &policy, &frames), [PASS, DROP, DROP, DROP]);
    assert_eq!((p.counters.get(Counter::QuicNotQuic), p.counters.get(Counter::QuicDecided)), (1, 1));
}

#[test]
fn a_second_connection_on_the_same_ports_is_read_too() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let allowed = connection("ok.example", true, Version::V1, 40010);
    assert_eq!(run(&mut p, &policy, &allowed), [PASS; 4]);
    // The first connection's Initial again (a retransmission, same DCID): nothing new.
    assert_eq!(run(&mut p, &policy, &allowed[..1]), [PASS]);
    // A new connection (another DCID) from the same client port to a blocked name: its first
    // Initial passes under the verdict the flow has, its second completes the hello and drops.
    let message = client_hello_message("www.bad.example", true, &mut SmallRng::seed_from_u64(5));
    let second: Vec<Vec<u8>> = first_flight(Version::V1, b"\x99\x98\x97\x96\x95\x94\x93\x92", &message)
        .iter()
        .map(|d| build::udp_v4(CLIENT, SERVER, 40010, 443, d))
        .collect();
    assert_eq!(run(&mut p, &policy, &second), [PASS, DROP]);
    assert_eq!(run(&mut p, &policy, &allowed[2..]), [DROP; 2], "the whole flow, both ways");
    assert_eq!(p.counters.get(Counter::QuicDecided), 2);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
    // Short-header datagrams of a decided flow never go back to the reader.
    let before = p.counters.get(Counter::QuicFailed) + p.counters.get(Counter::QuicDecided);
    assert_eq!(run(&mut p, &policy, &vec![allowed[3].clone(); 4]), [DROP; 4]);
    assert_eq!(p.counters.get(Counter::QuicFailed) + p.counters.get(Counter::QuicDecided), before);
}

/// A decided flow watching for QUIC, its datagrams in one burst: a client datagram in long form
/// among short-header ones is read in its place, and a second connection's hello to a blocked
/// name drops it and every later datagram of the flow in the same burst, as it does one packet
/// at a time (whichever way the run of known flows treats the short ones).
#[test]
fn a_watched_flows_long_datagram_in_a_burst_of_short_ones_is_read_in_its_place() {
    let policy = both();
    let allowed = connection("ok.example", false, Version::V1, 40030);
    let short = allowed[2].clone();
    let server_short = build::udp_v4(SERVER, CLIENT, 443, 40030, b"\x40server short");
    let blocked = flight("www.bad.example", OTHER, false, 40030);
    assert_eq!(blocked.len(), 1);
    let frames = [&short, &server_short, &short, &blocked[0], &short, &server_short].map(|f| f.clone());
    for (name, whole) in [("one burst", true), ("one packet at a time", false)] {
        let mut p = Pipeline::new(PipelineConfig::default());
        assert_eq!(run(&mut p, &policy, &allowed), [PASS; 3], "{name}");
        let verdicts =
            if whole { super::tests::in_one_burst(&mut p, &policy, &frames, 0) } else { run(&mut p, &policy, &frames) };
        assert_eq!(verdicts, [PASS, PASS, PASS, DROP, DROP, DROP], "{name}");
        assert_eq!(p.counters.get(Counter::QuicDecided), 2, "{name}");
        assert_eq!(p.counters.get(Counter::DropPolicy), 3, "{name}");
    }
}

/// A client's first flight to `sni` under connection ID `dcid`, from client port `sport`.
fn flight(sni: &str, dcid: &[u8], post_quantum: bool, sport: u16) -> Vec<Vec<u8>> {
    let message = client_hello_message(sni, post_quantum, &mut SmallRng::seed_from_u64(6));
    first_flight(Version::V1, dcid, &message).iter().map(|d| build::udp_v4(CLIENT, SERVER, sport, 443, d)).collect()
}

const OTHER: &[u8] = b"\x71\x72\x73\x74\x75\x76\x77\x78";

#[test]
fn a_decoy_hello_never_lets_a_blocked_connection_through() {
    let policy = both();
    let later = connection("www.bad.example", true, Version::V1, 40020)[2..].to_vec();
    // Blocked, then a decoy connection to an allowed name on the same ports: the flow stays
    // dropped, so the blocked connection's server and short-header datagrams never pass.
    let mut p = Pipeline::new(PipelineConfig::default());
    let blocked = flight("www.bad.example", DCID, false, 40020);
    assert_eq!(run(&mut p, &policy, &blocked), [DROP]);
    assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40020)), [DROP]);
    assert_eq!(run(&mut p, &policy, &later), [DROP; 2]);
    // A split blocked hello: the first half passed while pending, the second dropped. A decoy,
    // then the second half again: still dropped, the server never gets the whole hello.
    let mut p = Pipeline::new(PipelineConfig::default());
    let split = flight("www.bad.example", DCID, true, 40021);
    assert_eq!(run(&mut p, &policy, &split), [PASS, DROP]);
    assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40021)), [DROP]);
    assert_eq!(run(&mut p, &policy, &split[1..]), [DROP]);
    // An unreadable decoy (an Initial with a STREAM frame) under tls_fail = open: the same.
    let mut p = Pipeline::new(PipelineConfig { tls_fail: TlsFail::Open, ..PipelineConfig::default() });
    assert_eq!(run(&mut p, &policy, &blocked), [DROP]);
    let bad = initial_packet(&InitialSpec::new(Version::V1, OTHER), &[0x08, 0, 1, b'x'], 1100);
    assert_eq!(run(&mut p, &policy, &[build::udp_v4(CLIENT, SERVER, 40020, 443, &bad)]), [DROP]);
    assert_eq!(run(&mut p, &policy, &later), [DROP; 2]);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
}

#[test]
fn another_connections_initial_while_a_hello_is_read_is_refused() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let split = flight("x.bad.example", DCID, true, 40022);
    // The first half is read (pending, passes); a complete hello of another connection in
    // between is dropped alone (it would reach the server unread); the second half decides.
    assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
    assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40022)), [(Action::Drop, None)]);
    assert_eq!(p.counters.get(Counter::QuicRefused), 1);
    assert_eq!(run(&mut p, &policy, &split[1..]), [DROP]);
    // The same on an allowed flow reading a second hello.
    let mut p = Pipeline::new(PipelineConfig::default());
    assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40023)), [PASS]);
    let split = flight("x.bad.example", DCID, true, 40023);
    assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
    let third = flight("also-ok.example", b"\x01\x02\x03\x04\x05\x06\x07\x08", false, 40023);
    assert_eq!(run(&mut p, &policy, &third), [(Action::Drop, None)]);
    assert_eq!(run(&mut p, &policy, &split[1..]), [DROP]);
}

#[test]
fn crypto_data_that_disagrees_with_what_was_read_is_refused() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let message = client_hello_message("x.bad.example", true, &mut SmallRng::seed_from_u64(6));
    let real = flight("x.bad.example", DCID, true, 40024);
    // The first half, then the same offsets with other bytes: refused, so the server only ever
    // has the bytes the verdict was made from.
    let mut altered = message[..600].to_vec();
    altered[100] ^= 0x55;
    let mut spec = InitialSpec::new(Version::V1, DCID);
    spec.packet_number = 5;
    let twin = initial_packet(&spec, &crate::tls::quic::build::crypto_frame(0, &altered), 1100);
    assert_eq!(run(&mut p, &policy, &real[..1]), [PASS]);
    assert_eq!(run(&mut p, &policy, &[build::udp_v4(CLIENT, SERVER, 40024, 443, &twin)]), [(Action::Drop, None)]);
    assert_eq!(run(&mut p, &policy, &real[1..]), [DROP]);
    assert_eq!(p.counters.get(Counter::QuicRefused), 1);
}

#[test]
fn an_initial_behind_another_packet_is_read_on_a_decided_flow() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40025)), [PASS]);
    // A 0-RTT-like packet, then the blocked Initial, in one datagram.
    let zero_rtt = [0xd0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 5, 1, 2, 3, 4, 5];
    let message = client_hello_message("www.bad.example", false, &mut SmallRng::seed_from_u64(6));
    let initial =
        initial_packet(&InitialSpec::new(Version::V1, DCID), &crate::tls::quic::build::crypto_frame(0, &message), 1000);
    let datagram = [&zero_rtt[..], &initial].concat();
    assert_eq!(run(&mut p, &policy, &[build::udp_v4(CLIENT, SERVER, 40025, 443, &datagram)]), [DROP]);
    // Counted as a connection read: pending and decided twice.
    assert_eq!((p.counters.get(Counter::QuicPending), p.counters.get(Counter::QuicDecided)), (2, 2));
}

#[test]
fn a_retry_lets_the_hello_continue_under_the_new_connection_id() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let first = flight("x.bad.example", DCID, true, 40026);
    assert_eq!(run(&mut p, &policy, &first[..1]), [PASS]);
    // The server's Retry (its new ID 0x0a.., a token), then the client's Initials to it.
    let new_cid: &[u8] = b"\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11";
    let retry =
        [&[0xf0, 0, 0, 0, 1, 8][..], b"\x01\x02\x03\x04\x05\x06\x07\x08", &[8], new_cid, b"tok", &[0; 16]].concat();
    assert_eq!(run(&mut p, &policy, &[build::udp_v4(SERVER, CLIENT, 443, 40026, &retry)]), [PASS]);
    let message = client_hello_message("x.bad.example", true, &mut SmallRng::seed_from_u64(6));
    let retried: Vec<Vec<u8>> = message
        .chunks(1000)
        .enumerate()
        .map(|(n, chunk)| {
            let mut spec = InitialSpec::new(Version::V1, new_cid);
            spec.token = b"tok";
            spec.packet_number = n as u64;
            let frame = crate::tls::quic::build::crypto_frame((n * 1000) as u64, chunk);
            build::udp_v4(CLIENT, SERVER, 40026, 443, &initial_packet(&spec, &frame, 1100))
        })
        .collect();
    assert_eq!(run(&mut p, &policy, &retried), [PASS, DROP]);
    assert_eq!(p.counters.get(Counter::QuicRefused), 0);
}

#[test]
fn a_second_hello_read_across_a_new_generation_keeps_its_pieces() {
    let mut old = both();
    old.set_generation(1);
    let mut new = both();
    new.set_generation(2);
    let mut p = Pipeline::new(PipelineConfig::default());
    assert_eq!(run(&mut p, &old, &flight("ok.example", OTHER, false, 40027)), [PASS]);
    let split = flight("x.bad.example", DCID, true, 40027);
    assert_eq!(run(&mut p, &old, &split[..1]), [PASS]);
    assert_eq!(p.hellos.available(), p.hellos.capacity() - 1, "the first half waits in a buffer");
    // The server's answer under the new generation: the flow is re-decided, the reading and
    // its buffer stay; the second half completes the hello.
    assert_eq!(run(&mut p, &new, &[build::udp_v4(SERVER, CLIENT, 443, 40027, b"\xc0answer")]), [PASS]);
    assert_eq!(run(&mut p, &new, &split[1..]), [DROP]);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
}

// Adversarial review: a client that wants a blocked name's ClientHello to reach an honest
// QUIC server through the gateway. Each test asserts the secure outcome.

use super::flow::FlowTimeouts;
use crate::tls::quic::build::crypto_frame;
use crate::wire::build::{udp_segment_v4, udp_segment_v6};
use crate::wire::fragment_build::{ipv4_fragments, ipv6_fragments, Piece};
use crate::wire::ip_proto;

/// `run`, every frame at `now_ms`.
use super::tests::one_per_burst as run_at;

/// One client datagram (UDP payload) of port `sport`.
fn client(sport: u16, payload: &[u8]) -> Vec<u8> {
    build::udp_v4(CLIENT, SERVER, sport, 443, payload)
}

/// A complete blocked ClientHello in one Initial to `dcid` (`spec` tweaks the header).
fn blocked_initial(spec: &InitialSpec<'_>) -> Vec<u8> {
    let message = client_hello_message("www.bad.example", false, &mut SmallRng::seed_from_u64(7));
    initial_packet(spec, &crypto_frame(0, &message), 1100)
}

const FAILS: [TlsFail; 2] = [TlsFail::Open, TlsFail::Closed];

fn config(tls_fail: TlsFail) -> PipelineConfig {
    PipelineConfig { tls_fail, ..PipelineConfig::default() }
}

#[test]
fn a_fragmented_initial_never_reaches_the_server_unread() {
    // QUIC datagrams must not be fragmented (RFC 9000 section 14), but a server reassembles
    // and reads one. The first fragment holds only part of the Initial (or only the UDP
    // header): what the gateway reads of it is not what the server reads.
    let policy = both();
    let initial = blocked_initial(&InitialSpec::new(Version::V1, DCID));
    let segment = udp_segment_v4(CLIENT, SERVER, 40100, 443, &initial);
    let segment6 = udp_segment_v6(CLIENT6, SERVER6, 40100, 443, &initial);
    let ok_message = client_hello_message("ok.example", false, &mut SmallRng::seed_from_u64(6));
    let ok_datagram = first_flight(Version::V1, OTHER, &ok_message).remove(0);
    let ok_v4 = vec![build::udp_v4(CLIENT, SERVER, 40100, 443, &ok_datagram)];
    let ok_v6 = vec![build::udp_v6(CLIENT6, SERVER6, 40100, 443, &ok_datagram)];
    for cut in [8, 200] {
        let pieces = [Piece { start: 0, end: cut, more: true }, Piece { start: cut, end: segment.len(), more: false }];
        for fail in FAILS {
            for (frames, ok) in [
                (ipv4_fragments(CLIENT, SERVER, ip_proto::UDP, 7, &segment, &pieces), &ok_v4),
                (ipv6_fragments(CLIENT6, SERVER6, ip_proto::UDP, 7, &segment6, &pieces), &ok_v6),
            ] {
                // On a new flow.
                let mut p = Pipeline::new(config(fail));
                let v = run(&mut p, &policy, &frames);
                assert!(v.iter().all(|v| v.0 == Action::Drop), "cut {cut}, {fail:?}: {v:?}");
                // On a flow an allowed hello decided.
                let mut p = Pipeline::new(config(fail));
                assert_eq!(run(&mut p, &policy, ok), [PASS]);
                let v = run(&mut p, &policy, &frames);
                assert!(v.iter().all(|v| v.0 == Action::Drop), "decided, cut {cut}, {fail:?}: {v:?}");
            }
        }
    }
}

const CLIENT6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const SERVER6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];

#[test]
fn ipv6_initials_are_read_as_ipv4_ones() {
    let policy = both();
    let message = client_hello_message("www.bad.example", true, &mut SmallRng::seed_from_u64(6));
    let frames: Vec<Vec<u8>> = first_flight(Version::V2, DCID, &message)
        .iter()
        .map(|d| build::udp_v6(CLIENT6, SERVER6, 40101, 443, d))
        .collect();
    let mut p = Pipeline::new(PipelineConfig::default());
    assert_eq!(run(&mut p, &policy, &frames), [PASS, DROP]);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
}

#[test]
fn another_connections_initial_coalesced_behind_a_known_one_is_refused_on_a_decided_flow() {
    // Coalesced packets with different connection IDs: a server reads the ones whose ID is
    // the first packet's, or (not following RFC 9000's SHOULD) each by its own ID.
    let policy = both();
    for fail in FAILS {
        let mut p = Pipeline::new(config(fail));
        let message = client_hello_message("ok.example", false, &mut SmallRng::seed_from_u64(6));
        let ok = first_flight(Version::V1, OTHER, &message);
        assert_eq!(run(&mut p, &policy, &[client(40102, &ok[0])]), [PASS]);
        let blocked = blocked_initial(&InitialSpec::new(Version::V1, DCID));
        let zero_rtt = [0xd0, 0, 0, 0, 1, 8, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0, 5, 1, 2, 3, 4, 5];
        // The known connection's Initial first, the blocked one behind it.
        let behind = [&ok[0][..], &blocked].concat();
        assert_eq!(run(&mut p, &policy, &[client(40102, &behind)])[0].0, Action::Drop, "{fail:?}");
        // A 0-RTT packet of the blocked connection first (the server routes by it), the known
        // Initial, then the blocked Initial.
        let routed = [&zero_rtt[..], &ok[0], &blocked].concat();
        assert_eq!(run(&mut p, &policy, &[client(40102, &routed)])[0].0, Action::Drop, "{fail:?}");
        // The blocked Initial first is read as before.
        let first = [&blocked[..], &ok[0]].concat();
        assert_eq!(run(&mut p, &policy, &[client(40102, &first)])[0].0, Action::Drop, "{fail:?}");
        assert_eq!(p.hellos.available(), p.hellos.capacity());
    }
}

/// An Initial of `len` bytes to `dcid` that opens with no keys (a forgery no server opens).
fn forged_initial(dcid: &[u8]) -> Vec<u8> {
    let mut spec = InitialSpec::new(Version::V1, dcid);
    spec.key_dcid = b"\xee\xee\xee\xee\xee\xee\xee\xee";
    spec.scid = &[];
    initial_packet(&spec, &[1], 4)
}

#[test]
fn initials_under_many_connection_ids_cost_a_bounded_number_of_key_derivations() {
    // Each Initial under an unknown connection ID costs a key derivation (~1.3 µs); a
    // datagram of tiny Initials, each to another ID, would cost a hundred. A client sends one
    // connection's packets per datagram: past a few IDs the datagram is refused unread.
    let policy = both();
    let ids: Vec<[u8; 8]> = (0..30u8).map(|n| [n, 1, 2, 3, 4, 5, 6, n]).collect();
    let spray: Vec<u8> = ids.iter().flat_map(|id| forged_initial(id)).collect();
    assert!(spray.len() < 1500, "{}", spray.len());
    let blocked = blocked_initial(&InitialSpec::new(Version::V1, DCID));
    let tail = [&spray[..], &blocked].concat();
    for fail in FAILS {
        // While the hello is awaited, and on a flow an allowed hello decided.
        for decided in [false, true] {
            let mut p = Pipeline::new(config(fail));
            if decided {
                assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40103)), [PASS]);
            }
            let v = run(&mut p, &policy, &[client(40103, &spray), client(40103, &tail)]);
            assert_eq!(v, [(Action::Drop, None); 2], "{fail:?} decided {decided}");
            assert!(p.counters.get(Counter::QuicRefused) >= 2);
        }
    }
}

#[test]
fn a_decided_flow_reading_a_second_hello_is_never_evicted() {
    // One bucket of 16 flows. Fifteen dropped by their hello (never given way), the attacker's
    // flow allowed by a hello its server never answered (may give way), then the first half
    // of a blocked hello on it (a second connection, read in a buffer). A new flow must not
    // evict it: the second half would come back as a new flow's first datagram and pass.
    let policy = both();
    let cfg = PipelineConfig { flow_capacity: 16, ..PipelineConfig::default() };
    for fail in FAILS {
        let mut p = Pipeline::new(PipelineConfig { tls_fail: fail, ..cfg });
        for port in 41000..41015 {
            assert_eq!(run(&mut p, &policy, &flight("www.bad.example", DCID, false, port)), [DROP]);
        }
        assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40104)), [PASS]);
        let split = flight("x.bad.example", DCID, true, 40104);
        assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
        // Another flow wants an entry.
        let _ = run(&mut p, &policy, &[client(40105, b"\x40short")]);
        assert_eq!(run(&mut p, &policy, &split[1..]), [DROP], "{fail:?}");
        assert_eq!(p.hellos.available(), p.hellos.capacity());
    }
}

#[test]
fn a_pending_flow_evicted_or_expired_returns_its_buffer() {
    let policy = both();
    // Expiry: the first half in a buffer, then the flow idles out and a packet finds it.
    let cfg = PipelineConfig {
        timeouts: FlowTimeouts { udp_ms: 1000, ..FlowTimeouts::default() },
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(cfg);
    let split = flight("x.bad.example", DCID, true, 40106);
    assert_eq!(run_at(&mut p, &policy, &split[..1], 0), [PASS]);
    assert_eq!(p.hellos.available(), p.hellos.capacity() - 1);
    let _ = run_at(&mut p, &policy, &[client(40106, b"\x40short")], 5000);
    assert_eq!(p.hellos.available(), p.hellos.capacity(), "the expired flow's buffer came back");
    // A 0-RTT datagram before any Initial, then the flow expires: nothing held, nothing lost.
    let zero_rtt = [0xd0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 5, 1, 2, 3, 4, 5];
    let mut p = Pipeline::new(cfg);
    assert_eq!(run_at(&mut p, &policy, &[client(40107, &zero_rtt)], 0), [PASS]);
    let _ = run_at(&mut p, &policy, &[client(40107, b"\x40short")], 5000);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
    // A second hello read on a decided flow that expires.
    let mut p = Pipeline::new(cfg);
    assert_eq!(run_at(&mut p, &policy, &flight("ok.example", OTHER, false, 40108), 0), [PASS]);
    assert_eq!(run_at(&mut p, &policy, &flight("x.bad.example", DCID, true, 40108)[..1], 0), [PASS]);
    assert_eq!(p.hellos.available(), p.hellos.capacity() - 1);
    let _ = run_at(&mut p, &policy, &[client(40108, b"\x40short")], 5000);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
}

#[test]
#[ignore = "open hole: a pending QUIC flow that idles out forgets the hello bytes it passed; the \
            rest of the hello then starts a new flow's reading mid-stream and passes (needs \
            udp_ms shorter than the server's handshake timeout; default 300 s)"]
fn the_rest_of_a_hello_after_its_flow_expired_does_not_pass() {
    let policy = both();
    let cfg = PipelineConfig {
        tls_fail: TlsFail::Closed,
        timeouts: FlowTimeouts { udp_ms: 1000, ..FlowTimeouts::default() },
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(cfg);
    let split = flight("x.bad.example", DCID, true, 40109);
    assert_eq!(run_at(&mut p, &policy, &split[..1], 0), [PASS]);
    // The server got the first half; the flow idles out; the second half completes the
    // server's hello.
    assert_eq!(run_at(&mut p, &policy, &split[1..], 5000)[0].0, Action::Drop);
}

#[test]
fn initials_of_the_other_version_are_another_connection() {
    let policy = both();
    for (first, other) in [(Version::V1, Version::V2), (Version::V2, Version::V1)] {
        let mut p = Pipeline::new(PipelineConfig::default());
        let message = client_hello_message("x.bad.example", true, &mut SmallRng::seed_from_u64(6));
        let split: Vec<Vec<u8>> = first_flight(first, DCID, &message).iter().map(|d| client(40110, d)).collect();
        assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
        // The same ID under the other version, an allowed hello: refused.
        let message = client_hello_message("ok.example", false, &mut SmallRng::seed_from_u64(6));
        let twin = initial_packet(&InitialSpec::new(other, DCID), &crypto_frame(0, &message), 1100);
        assert_eq!(run(&mut p, &policy, &[client(40110, &twin)]), [(Action::Drop, None)], "{first:?}");
        assert_eq!(run(&mut p, &policy, &split[1..]), [DROP]);
    }
}

#[test]
fn a_token_without_a_retry_does_not_restart_the_reading() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let split = flight("x.bad.example", DCID, true, 40111);
    assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
    let message = client_hello_message("ok.example", false, &mut SmallRng::seed_from_u64(6));
    let mut spec = InitialSpec::new(Version::V1, OTHER);
    spec.token = b"made-up token";
    let restart = initial_packet(&spec, &crypto_frame(0, &message), 1100);
    assert_eq!(run(&mut p, &policy, &[client(40111, &restart)]), [(Action::Drop, None)]);
    assert_eq!(run(&mut p, &policy, &split[1..]), [DROP]);
    // The server's datagrams that are not a Retry (an Initial, a Retry of the other version)
    // do not open the door either.
    let mut p = Pipeline::new(PipelineConfig::default());
    assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
    let v2_retry = [&[0xc0, 0x6b, 0x33, 0x43, 0xcf, 8][..], DCID, &[8], OTHER, b"tok", &[0; 16]].concat();
    for server in [&b"\xc0\x00\x00\x00\x01server initial"[..], &v2_retry] {
        assert_eq!(run(&mut p, &policy, &[build::udp_v4(SERVER, CLIENT, 443, 40111, server)]), [PASS]);
    }
    assert_eq!(run(&mut p, &policy, &[client(40111, &restart)]), [(Action::Drop, None)]);
    assert_eq!(run(&mut p, &policy, &split[1..]), [DROP]);
}

#[test]
#[ignore = "open hole (needs a forged Retry seen in the server's direction): after a Retry the \
            reading restarts under the new ID and forgets the first connection's bytes that \
            passed; that connection's later Initials then start a reading mid-stream on the \
            decided flow and pass"]
fn a_forged_retry_does_not_let_the_rest_of_a_hello_through() {
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig { tls_fail: TlsFail::Closed, ..PipelineConfig::default() });
    let split = flight("x.bad.example", DCID, true, 40112);
    assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
    // A Retry that no server sent (the client forges the server's address), then a decoy
    // under a new ID with a made-up token: read as the continuation, allowed.
    let retry =
        [&[0xf0, 0, 0, 0, 1, 8][..], b"\x01\x02\x03\x04\x05\x06\x07\x08", &[8], OTHER, b"tok", &[0; 16]].concat();
    assert_eq!(run(&mut p, &policy, &[build::udp_v4(SERVER, CLIENT, 443, 40112, &retry)]), [PASS]);
    let message = client_hello_message("ok.example", false, &mut SmallRng::seed_from_u64(6));
    let mut spec = InitialSpec::new(Version::V1, OTHER);
    spec.token = b"tok";
    let decoy = initial_packet(&spec, &crypto_frame(0, &message), 1100);
    assert_eq!(run(&mut p, &policy, &[client(40112, &decoy)]), [PASS]);
    // The real server kept the first connection: its second half completes the blocked hello.
    assert_eq!(run(&mut p, &policy, &split[1..])[0].0, Action::Drop);
}

#[test]
fn pool_exhaustion_follows_tls_fail_and_retries_get_no_further() {
    let policy = both();
    let cfg = PipelineConfig { hello_buffers: 1, tls_fail: TlsFail::Closed, ..PipelineConfig::default() };
    let mut p = Pipeline::new(cfg);
    // Another flow holds the only buffer.
    let holder = flight("ok.example", OTHER, true, 40113);
    assert_eq!(run(&mut p, &policy, &holder[..1]), [PASS]);
    // A blocked hello in two datagrams finds no buffer: failed, closed: dropped, then its
    // retransmissions and a decoy on the same ports stay dropped.
    let split = flight("x.bad.example", DCID, true, 40114);
    assert_eq!(run(&mut p, &policy, &split[..1]), [(Action::Drop, None)]);
    assert_eq!(p.counters.get(Counter::QuicFailed), 1);
    assert_eq!(run(&mut p, &policy, &split), [(Action::Drop, None); 2]);
    assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40114)), [(Action::Drop, None)]);
    // The holder finishes; its buffer comes back, and a new client port can be read.
    assert_eq!(run(&mut p, &policy, &holder[1..]), [PASS]);
    assert_eq!(p.hellos.available(), 1);
    assert_eq!(run(&mut p, &policy, &flight("x.bad.example", DCID, true, 40115)), [PASS, DROP]);
    assert_eq!(p.hellos.available(), 1);
    // A decided flow whose second hello finds no buffer: closed drops the flow.
    let mut p = Pipeline::new(cfg);
    assert_eq!(run(&mut p, &policy, &flight("ok.example", OTHER, false, 40116)), [PASS]);
    assert_eq!(run(&mut p, &policy, &holder[..1]), [PASS]);
    assert_eq!(run(&mut p, &policy, &flight("x.bad.example", DCID, true, 40116)), [(Action::Drop, None); 2]);
}

#[test]
fn a_new_generation_mid_reading_keeps_the_buffer_and_the_reading() {
    let mut one = both();
    one.set_generation(1);
    let mut two = both();
    two.set_generation(2);
    let mut p = Pipeline::new(PipelineConfig::default());
    let split = flight("x.bad.example", DCID, true, 40117);
    assert_eq!(run(&mut p, &one, &split[..1]), [PASS]);
    assert_eq!(run(&mut p, &two, &split[1..]), [DROP]);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
    // A generation that no longer wants the hello returns the buffer at once.
    let mut none = policy("  ports: [{protocol: TCP, port: 443}]\n");
    none.set_generation(3);
    let mut p = Pipeline::new(PipelineConfig::default());
    assert_eq!(run(&mut p, &one, &split[..1]), [PASS]);
    assert_eq!(run(&mut p, &none, &split[1..]), [PASS]);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
}

#[test]
fn the_servers_initials_are_never_read_as_a_hello() {
    // The responder's datagrams are only looked at for a Retry: a ClientHello in them (which
    // no honest server sends) neither decides nor restarts anything.
    let policy = both();
    let mut p = Pipeline::new(PipelineConfig::default());
    let split = flight("x.bad.example", DCID, true, 40118);
    assert_eq!(run(&mut p, &policy, &split[..1]), [PASS]);
    let from_server = blocked_initial(&InitialSpec::new(Version::V1, b"\x01\x02\x03\x04\x05\x06\x07\x08"));
    assert_eq!(run(&mut p, &policy, &[build::udp_v4(SERVER, CLIENT, 443, 40118, &from_server)]), [PASS]);
    assert_eq!(p.counters.get(Counter::QuicDecided), 0);
    assert_eq!(run(&mut p, &policy, &split[1..]), [DROP]);
}

#[test]
fn crypto_data_far_past_the_bound_follows_tls_fail() {
    // A CRYPTO frame at a huge offset (near 2^62) in an Initial that opens.
    let policy = both();
    let huge = [crypto_frame(0, b"\x01\x00\x00\x10"), crypto_frame((1 << 62) - 10, b"x")].concat();
    let packet = initial_packet(&InitialSpec::new(Version::V1, DCID), &huge, 1100);
    for (fail, want) in [(TlsFail::Open, PASS), (TlsFail::Closed, (Action::Drop, None))] {
        let mut p = Pipeline::new(config(fail));
        assert_eq!(run(&mut p, &policy, &[client(40119, &packet)]), [want], "{fail:?}");
        assert_eq!(p.counters.get(Counter::QuicFailed), 1);
        assert_eq!(p.hellos.available(), p.hellos.capacity());
    }
}

/// A complete, readable blocked hello followed in the same datagram by CRYPTO pieces past what
/// is tracked (17 disjoint runs): decided by the hello, not failed (which `open` would allow).
#[test]
fn a_readable_hello_with_an_unreadable_tail_is_decided_by_the_hello() {
    let policy = both();
    let message = client_hello_message("www.bad.example", false, &mut SmallRng::seed_from_u64(7));
    let mut frames = crypto_frame(0, &message);
    for n in 0..17u64 {
        frames.extend(crypto_frame(message.len() as u64 + 2 + 2 * n, b"x"));
    }
    let packet = initial_packet(&InitialSpec::new(Version::V1, DCID), &frames, 1100);
    let mut p = Pipeline::new(config(TlsFail::Open));
    assert_eq!(run(&mut p, &policy, &[client(40120, &packet)]), [DROP]);
}

#[test]
fn a_refused_datagram_leaves_nothing_in_the_reading() {
    // The attacker's plan: the bytes of an allowed name placed by a datagram that is then
    // refused (so the server never gets them), the rest of the hello completing it as allowed,
    // then the blocked name's bytes at those offsets: the server completes its hello with them.
    let policy = both();
    let mut rng = SmallRng::seed_from_u64(8);
    let bad = client_hello_message("www.bad.example", false, &mut rng);
    let ok = client_hello_message("www.okk.example", false, &mut SmallRng::seed_from_u64(8));
    assert_eq!(bad.len(), ok.len());
    let x0 = (0..bad.len()).find(|&i| bad[i] != ok[i]).unwrap();
    let x1 = (0..bad.len()).rfind(|&i| bad[i] != ok[i]).unwrap() + 1;
    assert!(x0 > 8);
    let initial = |pn: u64, frames: &[u8]| {
        let mut spec = InitialSpec::new(Version::V1, DCID);
        spec.packet_number = pn;
        initial_packet(&spec, frames, 1100)
    };
    let other = initial_packet(&InitialSpec::new(Version::V1, OTHER), &crypto_frame(0, &ok), 1100);
    for fail in FAILS {
        // Refused for disagreeing bytes (in the same packet), or for another connection's
        // Initial coalesced behind.
        for by_conflict in [true, false] {
            let mut p = Pipeline::new(config(fail));
            let start = initial(0, &crypto_frame(0, &bad[..4]));
            assert_eq!(run(&mut p, &policy, &[client(40121, &start)]), [PASS]);
            let planted = if by_conflict {
                initial(1, &[crypto_frame(x0 as u64, &ok[x0..x1]), crypto_frame(0, b"zzzz")].concat())
            } else {
                [initial(1, &crypto_frame(x0 as u64, &ok[x0..x1])), other.clone()].concat()
            };
            assert_eq!(run(&mut p, &policy, &[client(40121, &planted)]), [(Action::Drop, None)]);
            let rest = [crypto_frame(4, &bad[4..x0]), crypto_frame(x1 as u64, &bad[x1..])].concat();
            assert_eq!(run(&mut p, &policy, &[client(40121, &initial(2, &rest))]), [PASS], "{fail:?}");
            let last = initial(3, &crypto_frame(x0 as u64, &bad[x0..x1]));
            assert_eq!(run(&mut p, &policy, &[client(40121, &last)]), [DROP], "{fail:?} {by_conflict}");
            assert_eq!(p.hellos.available(), p.hellos.capacity());
        }
    }
}
