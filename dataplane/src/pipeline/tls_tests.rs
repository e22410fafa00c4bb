//! The pipeline on TLS connections: pending until the ClientHello completes, the completing
//! segment gets the verdict, buffers return to the pool, `tls_fail` when a hello cannot be read.

use super::flow::FlowTimeouts;
use super::{Pipeline, PipelineConfig, TlsFail, Verdict};
use crate::counters::Counter;
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::tls::build::client_hello_record;
use crate::wire::build;
use crate::wire::tcp_flags::{ACK, PSH, SYN};
use rand::rngs::SmallRng;
use rand::SeedableRng;

const CLIENT: [u8; 4] = [10, 1, 1, 1];
const SERVER: [u8; 4] = [192, 0, 2, 10];

fn policy() -> CompiledPolicy {
    let yaml = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: bad-sni}\nspec:\n  action: DROP\n  ports: [{port: 443}]\n  tls: {serverNames: [\"*.bad.example\"]}\n---\napiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: no-telnet}\nspec:\n  action: DROP\n  priority: 2000\n  ports: [{port: 23}]\n";
    CompiledPolicy::compile(rule_set_from_str(yaml, "t").unwrap(), Action::Allow).unwrap()
}

/// SYN, SYN-ACK, ACK, the hello in `segments` pieces (client), then a server reply.
fn connection(sni: &str, post_quantum: bool, sport: u16) -> Vec<Vec<u8>> {
    let record = client_hello_record(sni, post_quantum, &mut SmallRng::seed_from_u64(7));
    let mss = if post_quantum { 1400 } else { 4000 };
    let mut frames = vec![
        build::tcp_v4(CLIENT, SERVER, sport, 443, SYN, 999, b""),
        build::tcp_v4(SERVER, CLIENT, 443, sport, SYN | ACK, 4999, b""),
        build::tcp_v4(CLIENT, SERVER, sport, 443, ACK, 1000, b""),
    ];
    let mut seq = 1000u32;
    for seg in record.chunks(mss) {
        frames.push(build::tcp_v4(CLIENT, SERVER, sport, 443, PSH | ACK, seq, seg));
        seq += seg.len() as u32;
    }
    frames.push(build::tcp_v4(SERVER, CLIENT, 443, sport, PSH | ACK, 5000, b"server hello"));
    frames
}

fn run(p: &mut Pipeline, policy: &CompiledPolicy, frames: &[Vec<u8>]) -> Vec<(Action, Option<u32>)> {
    super::tests::one_per_burst(p, policy, frames, 0)
}

#[test]
fn a_dropped_sni_passes_the_handshake_then_drops_from_the_completing_segment_on() {
    let policy = policy();
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = connection("www.bad.example", true, 40000);
    assert_eq!(frames.len(), 6, "SYN, SYN-ACK, ACK, two hello segments, reply");
    let pass = (Action::Allow, None);
    let drop = (Action::Drop, Some(0));
    assert_eq!(run(&mut p, &policy, &frames), [pass, pass, pass, pass, drop, drop]);
    assert_eq!((p.counters.get(Counter::TlsPending), p.counters.get(Counter::TlsDecided)), (1, 1));
    assert_eq!(p.hellos.available(), p.hellos.capacity(), "the reassembly buffer went back");
    // The same connection later: still dropped, without inspection.
    assert_eq!(run(&mut p, &policy, &frames[3..4]), [drop]);
}

#[test]
fn an_allowed_sni_and_a_single_segment_hello() {
    let policy = policy();
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = connection("bad.example", false, 40001);
    let pass = (Action::Allow, None);
    assert_eq!(run(&mut p, &policy, &frames), [pass; 5]);
    assert_eq!((p.counters.get(Counter::TlsDecided), p.counters.get(Counter::TlsFailed)), (1, 0));
    assert_eq!(p.hellos.counters().acquired, 0, "a hello in one segment is parsed in place");
}

#[test]
fn plain_text_on_a_pending_connection_is_decided_as_not_tls() {
    let policy = policy();
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = [
        build::tcp_v4(CLIENT, SERVER, 40002, 443, SYN, 9, b""),
        build::tcp_v4(CLIENT, SERVER, 40002, 443, PSH | ACK, 10, b"GET / HTTP/1.1\r\n\r\n"),
    ];
    assert_eq!(run(&mut p, &policy, &frames), [(Action::Allow, None), (Action::Allow, None)]);
    assert_eq!(p.counters.get(Counter::TlsNotTls), 1);
    // Telnet is never pending: a non-TLS rule wins before any TLS rule could.
    let telnet = [build::tcp_v4(CLIENT, SERVER, 40003, 23, SYN, 9, b"")];
    assert_eq!(run(&mut p, &policy, &telnet), [(Action::Drop, Some(1))]);
    assert_eq!(p.counters.get(Counter::TlsPending), 1);
}

#[test]
fn no_reassembly_buffer_applies_tls_fail() {
    let policy = policy();
    for (fail, last) in [(TlsFail::Open, (Action::Allow, None)), (TlsFail::Closed, (Action::Drop, None))] {
        let mut p = Pipeline::new(PipelineConfig { hello_buffers: 0, tls_fail: fail, ..PipelineConfig::default() });
        let frames = connection("www.bad.example", true, 40004);
        let v = run(&mut p, &policy, &frames);
        // The first hello segment needs a buffer (the hello spans two): none is free.
        assert_eq!(v[3], last, "{fail:?}");
        assert_eq!(v[5], last, "{fail:?}");
        assert_eq!(p.counters.get(Counter::TlsFailed), 1);
    }
}

/// A ClientHello in progress is never evicted (its second half, picked up mid-stream, could
/// not be inspected): newer connections evict each other or go without an entry, and its
/// buffer comes back when it expires.
#[test]
fn hellos_in_progress_are_never_evicted_and_return_their_buffers_when_they_expire() {
    let policy = policy();
    let timeouts = FlowTimeouts { tcp_established_ms: 1000, tcp_transitory_ms: 1000, udp_ms: 1000 };
    let config = PipelineConfig { flow_capacity: 1, hello_buffers: 4, timeouts, ..PipelineConfig::default() };
    let mut p = Pipeline::new(config);
    // Four connections stop after the first of two hello segments: four buffers held.
    let conns: Vec<_> = (0..4).map(|port| connection("www.bad.example", true, 41000 + port)).collect();
    for frames in &conns {
        run(&mut p, &policy, &frames[..4]);
    }
    assert_eq!(p.hellos.available(), 0);
    // Newer connections fill the one-bucket table and evict each other, never those four.
    for port in 0..super::flow::WAYS as u16 + 4 {
        let mut v = [Verdict::default()];
        p.process_burst(&policy, &[build::udp_v4(CLIENT, SERVER, 50000 + port, 53, b"q")], 1 + u64::from(port), &mut v);
    }
    assert_eq!(p.flows.counters.get(Counter::Evictions), 8);
    assert_eq!((p.hellos.available(), p.counters.get(Counter::Untracked)), (0, 0));
    // The second halves find their connections: dropped by the hello.
    for frames in &conns {
        assert_eq!(run(&mut p, &policy, &frames[4..5]), [(Action::Drop, Some(0))]);
    }
    // Expired entries are reclaimed, and the buffers come back.
    for port in 0..super::flow::WAYS as u16 {
        let mut v = [Verdict::default()];
        p.process_burst(&policy, &[build::udp_v4(CLIENT, SERVER, 60000 + port, 53, b"q")], 5000, &mut v);
    }
    assert_eq!((p.hellos.available(), p.flows.counters.get(Counter::Expired)), (4, 16));
}

/// A new policy generation re-decides connections on their next packet, but a ClientHello
/// cannot be read twice: a connection decided by its hello keeps that TLS verdict when the
/// new policy would wait for a hello again (it must not pass as "not TLS" mid-stream).
#[test]
fn a_tls_verdict_survives_a_new_generation() {
    let mut old = policy();
    old.set_generation(1);
    let mut new = policy();
    new.set_generation(2);
    let mut p = Pipeline::new(PipelineConfig::default());
    let frames = connection("www.bad.example", true, 40010);
    let drop = (Action::Drop, Some(0));
    assert_eq!(run(&mut p, &old, &frames)[4..], [drop, drop]);
    // The client's next bytes (application data) under generation 2: still dropped.
    let data = build::tcp_v4(CLIENT, SERVER, 40010, 443, PSH | ACK, 5000, b"\x17\x03\x03\x00\x05hello");
    assert_eq!(run(&mut p, &new, std::slice::from_ref(&data)), [drop]);
    assert_eq!(p.counters.get(Counter::TlsNotTls), 0);
    // A new connection to the same name under generation 2 is inspected as usual.
    let again = connection("www.bad.example", true, 40011);
    assert_eq!(run(&mut p, &new, &again)[4..], [drop, drop]);
    // And one that passed under generation 1 keeps passing.
    let good = connection("www.good.example", true, 40012);
    assert_eq!(run(&mut p, &old, &good)[5], (Action::Allow, None));
    let data = build::tcp_v4(CLIENT, SERVER, 40012, 443, PSH | ACK, 5000, b"\x17\x03\x03\x00\x05hello");
    assert_eq!(run(&mut p, &new, std::slice::from_ref(&data)), [(Action::Allow, None)]);
}

/// A REJECT answers a TCP connection with RSTs at both ends, so its entry goes at once: the
/// client's next connection from the same port is decided anew (found by a real curl, which
/// was refused when it reused the port of a rejected connection), and a later segment of the
/// rejected one is a mid-stream pickup, rejected again.
#[test]
fn a_rejected_connection_leaves_no_entry_and_the_same_ports_open_a_new_one() {
    let yaml = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: reject-sni}\nspec:\n  action: REJECT\n  ports: [{port: 443}]\n  tls: {serverNames: [\"*.bad.example\"]}\n";
    let policy = CompiledPolicy::compile(rule_set_from_str(yaml, "t").unwrap(), Action::Allow).unwrap();
    let mut p = Pipeline::new(PipelineConfig::default());
    let pass = (Action::Allow, None);
    let reject = (Action::Reject, Some(0));
    let bad = connection("www.bad.example", false, 40000);
    assert_eq!(run(&mut p, &policy, &bad[..4]), [pass, pass, pass, reject]);
    assert_eq!(p.flows.len(), 0, "the rejected connection's entry went");
    assert_eq!(p.hellos.available(), p.hellos.capacity());
    // Its hello again (a retransmission): a pickup, inspected, rejected.
    assert_eq!(run(&mut p, &policy, &bad[3..4]), [reject]);
    assert_eq!((p.counters.get(Counter::Midstream), p.flows.len()), (1, 0));
    // A new connection from the same port, to an allowed name: a new flow, allowed.
    let good = connection("www.good.example", false, 40000);
    assert_eq!(run(&mut p, &policy, &good), [pass; 5]);
    assert_eq!(p.flows.len(), 1);
    // All in one burst: the entry freed mid-chunk is not trusted by the later packets.
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut frames = bad[..4].to_vec();
    frames.extend(good);
    let mut v = vec![Verdict::default(); frames.len()];
    p.process_burst(&policy, &frames, 0, &mut v);
    let got: Vec<_> = v.iter().map(|v| (v.action, v.rule())).collect();
    assert_eq!(got, [pass, pass, pass, reject, pass, pass, pass, pass, pass]);
    assert_eq!(p.flows.len(), 1);
}
