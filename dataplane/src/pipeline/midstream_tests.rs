//! Mid-stream pickups: TCP segments without SYN or RST of connections the flow table does not
//! know, under `midstream = "decide"` (both ends asked; a ClientHello inspected if the
//! client's bytes begin one, `tls_fail` if not) and `"drop"`.

use super::flood_tests::{policy, run, Conn, BAD_SNI, CLIENT, PASS, SERVER};
use super::{Midstream, Pipeline, PipelineConfig, TlsFail};
use crate::counters::Counter;
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::wire::build;
use crate::wire::tcp_flags::{ACK, FIN, PSH, RST, SYN};

const DROPPED: (Action, Option<u32>) = (Action::Drop, None);
const APP_DATA: &[u8] = b"\x17\x03\x03\x00\x05hello";

fn pipeline(midstream: Midstream, tls_fail: TlsFail) -> Pipeline {
    Pipeline::new(PipelineConfig { midstream, tls_fail, ..PipelineConfig::default() })
}

/// Pickup, TlsPending, TlsFailed, TlsDecided, Untracked counts.
fn counts(p: &Pipeline) -> [u64; 5] {
    [Counter::Midstream, Counter::TlsPending, Counter::TlsFailed, Counter::TlsDecided, Counter::Untracked]
        .map(|c| p.counters.get(c))
}

/// A connection to 443 picked up in the middle (a restart, say): the client's bytes are not a
/// ClientHello, so it follows `tls_fail`; never a silent pass. It gets an entry: its later
/// packets, both ways, share the verdict and are not picked up again.
#[test]
fn a_pickup_a_tls_rule_concerns_follows_tls_fail_when_the_bytes_are_not_a_hello() {
    let policy = policy();
    for (fail, verdict) in [(TlsFail::Open, PASS), (TlsFail::Closed, DROPPED)] {
        let mut p = pipeline(Midstream::Decide, fail);
        let c = Conn::tls(CLIENT, 40000, "www.bad.example", false);
        let frames = [c.client(PSH | ACK, 7000, APP_DATA), c.server(ACK, 9000, b"data"), c.client(ACK, 7010, APP_DATA)];
        assert_eq!(run(&mut p, &policy, &frames, 0), [verdict; 3], "{fail:?}");
        assert_eq!(counts(&p), [1, 1, 1, 0, 0], "{fail:?}");
        assert_eq!(p.flows.len(), 1);
    }
}

/// Issue 18's bypass, had the entry gone: the second half of a post-quantum hello arrives for
/// a connection the table does not know. It cannot be inspected: `tls_fail` decides.
#[test]
fn the_second_half_of_a_hello_picked_up_follows_tls_fail() {
    let policy = policy();
    for (fail, verdict) in [(TlsFail::Open, PASS), (TlsFail::Closed, DROPPED)] {
        let mut p = pipeline(Midstream::Decide, fail);
        let c = Conn::tls(CLIENT, 40001, "www.bad.example", true);
        let second = c.hello_segments().pop().unwrap();
        assert_eq!(run(&mut p, &policy, &[second, c.reply()], 0), [verdict; 2], "{fail:?}");
        assert_eq!(counts(&p), [1, 1, 1, 0, 0]);
    }
}

/// Client bytes that begin a ClientHello are inspected, in one segment or two.
#[test]
fn a_pickup_whose_bytes_begin_a_hello_is_inspected() {
    let policy = policy();
    let mut p = pipeline(Midstream::Decide, TlsFail::Closed);
    let whole = Conn::tls(CLIENT, 40002, "www.bad.example", false);
    assert_eq!(run(&mut p, &policy, &[whole.hello_segments()[0].clone(), whole.reply()], 0), [BAD_SNI; 2]);
    let good = Conn::tls(CLIENT, 40003, "www.good.example", false);
    assert_eq!(run(&mut p, &policy, &[good.hello_segments()[0].clone(), good.reply()], 0), [PASS; 2]);
    let halves = Conn::tls(CLIENT, 40004, "www.bad.example", true);
    let mut frames = halves.hello_segments();
    frames.push(halves.reply());
    assert_eq!(run(&mut p, &policy, &frames, 0), [PASS, BAD_SNI, BAD_SNI]);
    assert_eq!(counts(&p), [3, 3, 0, 3, 0]);
    assert_eq!(p.hellos.available(), p.hellos.capacity());
}

/// A pickup without client bytes (an ACK, the server's data) waits for them, as any
/// connection a TLS rule concerns: the hello that follows is inspected; other bytes follow
/// `tls_fail`. The server's packet makes the client the initiator: the TLS rule concerns it.
#[test]
fn a_pickup_without_client_bytes_waits_for_them() {
    let policy = policy();
    let mut p = pipeline(Midstream::Decide, TlsFail::Closed);
    let c = Conn::tls(CLIENT, 40005, "www.bad.example", false);
    let frames = [c.client(ACK, 1000, b""), c.server(ACK, 5000, b""), c.hello_segments()[0].clone(), c.reply()];
    assert_eq!(run(&mut p, &policy, &frames, 0), [PASS, PASS, BAD_SNI, BAD_SNI]);
    let d = Conn::tls(CLIENT, 40006, "www.bad.example", false);
    let frames = [d.server(PSH | ACK, 5000, b"more data"), d.client(ACK, 1000, APP_DATA), d.reply()];
    assert_eq!(run(&mut p, &policy, &frames, 0), [PASS, DROPPED, DROPPED]);
    assert_eq!(counts(&p), [2, 2, 1, 1, 0]);
}

/// Connections no TLS rule concerns are decided by addresses and ports, from both ends: the
/// SSH rule drops connections initiated from 10.1.0.0/16, and a DROP from either end wins, so
/// the server's packet of such a connection is dropped too.
#[test]
fn a_pickup_no_tls_rule_concerns_is_decided_from_both_ends() {
    let policy = policy();
    let mut p = pipeline(Midstream::Decide, TlsFail::Open);
    let ssh = Conn::plain(CLIENT, 40007, 22);
    assert_eq!(
        run(&mut p, &policy, &[ssh.server(ACK, 5000, b"banner"), ssh.client(ACK, 1, b"x")], 0),
        [(Action::Drop, Some(2)); 2]
    );
    let allowed = Conn::plain([10, 2, 0, 1], 40008, 22);
    assert_eq!(
        run(&mut p, &policy, &[allowed.server(ACK, 5000, b"banner"), allowed.client(ACK, 1, b"x")], 0),
        [PASS; 2]
    );
    let telnet = Conn::plain(CLIENT, 40009, 23);
    assert_eq!(run(&mut p, &policy, &[telnet.client(FIN | ACK, 1, b"")], 0), [(Action::Drop, Some(1))]);
    let web = Conn::plain(CLIENT, 40010, 80);
    assert_eq!(run(&mut p, &policy, &[web.client(ACK, 1, b"GET / HTTP/1.1\r\n\r\n")], 0), [PASS]);
    assert_eq!(counts(&p), [4, 0, 0, 0, 0]);
}

/// SYNs, SYN-ACKs and RSTs of unknown connections are not pickups, nor is UDP.
#[test]
fn syns_syn_acks_rsts_and_udp_are_not_pickups() {
    let policy = policy();
    let mut p = pipeline(Midstream::Drop, TlsFail::Open);
    let frames = [
        build::tcp_v4(CLIENT, SERVER, 40011, 80, SYN, 1, b""),
        build::tcp_v4(SERVER, CLIENT, 80, 40012, SYN | ACK, 1, b""),
        build::tcp_v4(CLIENT, SERVER, 40013, 80, RST, 1, b""),
        build::tcp_v4(CLIENT, SERVER, 40014, 80, RST | ACK, 1, b""),
        build::udp_v4(CLIENT, SERVER, 40015, 53, b"q"),
    ];
    assert_eq!(run(&mut p, &policy, &frames, 0), [PASS; 5]);
    assert_eq!(p.counters.get(Counter::Midstream), 0);
}

/// `midstream = "drop"`: every pickup is dropped, whichever port and end, and its connection
/// stays dropped (an entry remembers it), under a new policy generation too.
#[test]
fn midstream_drop_drops_every_pickup() {
    let mut gen1 = policy();
    gen1.set_generation(1);
    let mut gen2 = policy();
    gen2.set_generation(2);
    let mut p = pipeline(Midstream::Drop, TlsFail::Open);
    let web = Conn::plain(CLIENT, 40016, 80);
    let tls = Conn::tls(CLIENT, 40017, "www.good.example", false);
    let frames = [web.server(ACK, 5000, b"x"), web.client(ACK, 1, b"y"), tls.hello_segments()[0].clone(), tls.reply()];
    assert_eq!(run(&mut p, &gen1, &frames, 0), [DROPPED; 4]);
    assert_eq!(counts(&p), [2, 0, 0, 0, 0]);
    assert_eq!(run(&mut p, &gen2, &frames, 1), [DROPPED; 4]);
    assert_eq!(p.counters.get(Counter::Midstream), 2);
    // A connection seen from its SYN is decided as usual.
    let seen = Conn::tls(CLIENT, 40018, "www.good.example", false);
    assert_eq!(run(&mut p, &gen2, &seen.all(), 1), [PASS; 5]);
}

/// A picked-up connection under a new policy generation is decided as a pickup again.
#[test]
fn a_new_generation_decides_a_pickup_as_a_pickup() {
    let open = CompiledPolicy::compile(rule_set_from_str("[]", "t").unwrap(), Action::Allow).unwrap();
    let mut tls = policy();
    tls.set_generation(1);
    let mut p = pipeline(Midstream::Decide, TlsFail::Closed);
    let c = Conn::tls(CLIENT, 40019, "www.good.example", false);
    assert_eq!(run(&mut p, &open, &[c.client(ACK, 7000, APP_DATA)], 0), [PASS]);
    // Now a TLS rule concerns it: its next client bytes are not a hello, and cannot be.
    assert_eq!(run(&mut p, &tls, &[c.server(ACK, 9000, b"x"), c.client(ACK, 7010, APP_DATA)], 1), [PASS, DROPPED]);
    assert_eq!(counts(&p), [1, 1, 1, 0, 0]);
}
