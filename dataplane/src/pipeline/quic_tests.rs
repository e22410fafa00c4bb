//! The pipeline on QUIC connections: a UDP flow that TLS rules concern is pending until the
//! ClientHello in its Initials completes; the completing datagram gets the verdict, and so does
//! the rest of the connection in both directions.

use super::{Pipeline, PipelineConfig, TlsFail, Verdict};
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
    frames
        .iter()
        .map(|f| {
            let mut v = [Verdict::default()];
            p.process_burst(policy, std::slice::from_ref(f), 0, &mut v);
            (v[0].action, v[0].rule)
        })
        .collect()
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
