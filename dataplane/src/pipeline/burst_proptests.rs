//! Bursts against one packet at a time: deciding packets in bursts (staged lookups, one bulk
//! classification, flows created and evicted mid-burst or left without an entry, mid-stream
//! pickups, ClientHellos whole or in halves, a new policy generation) gives every packet the verdict, and the flow table and counters the state,
//! that deciding the same packets one at a time gives.

use crate::counters::{Counter, Counters};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::flow::{FlowTimeouts, HashSeed};
use super::{Midstream, Pipeline, PipelineConfig, TlsFail, Verdict};
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::tls::build::client_hello_record;
use crate::wire::build;

/// A packet of one of a few connections (so that bursts repeat them), in either direction.
#[derive(Clone, Debug)]
enum Packet {
    Tcp {
        conn: u8,
        reply: bool,
        flags: u8,
        v6: bool,
    },
    Udp {
        conn: u8,
        reply: bool,
    },
    /// The client's ClientHello, for a dropped or an allowed name: whole (`part` 0), or the
    /// first or second half (1, 2) of a post-quantum one.
    Hello {
        conn: u8,
        bad: bool,
        part: u8,
    },
    /// Application data: a mid-stream segment when the connection is unknown.
    Data {
        conn: u8,
        reply: bool,
    },
    /// Classified alone, by address.
    Icmp {
        host: u8,
    },
    /// A TCP frame cut short: malformed.
    Truncated {
        conn: u8,
        keep: u8,
    },
}

/// Client, server, client port, server port of connection `conn`.
fn ends(conn: u8) -> ([u8; 4], [u8; 4], u16, u16) {
    let client = [192, 168, 1, conn % 8];
    let server = [10, 0, 0, conn / 8 % 4];
    let port = [22, 80, 443, 53][usize::from(conn % 4)];
    (client, server, 40_000 + u16::from(conn), port)
}

/// [`ends`] over IPv6: the same hosts in 2001:db8::/32.
fn ends6(conn: u8) -> ([u8; 16], [u8; 16], u16, u16) {
    let (c, s, cp, sp) = ends(conn);
    let v6 = |a: [u8; 4], net: u8| {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[4] = net;
        b[12..].copy_from_slice(&a);
        b
    };
    (v6(c, 1), v6(s, 2), cp, sp)
}

/// Source, destination and their ports of a packet between `ends`: the client's, or the
/// server's `reply`.
fn sent<A>(reply: bool, (c, s, cp, sp): (A, A, u16, u16)) -> (A, A, u16, u16) {
    if reply {
        (s, c, sp, cp)
    } else {
        (c, s, cp, sp)
    }
}

fn frame(p: &Packet, hellos: &[Vec<u8>; 4]) -> Vec<u8> {
    match *p {
        Packet::Tcp { conn, reply, flags, v6 } => {
            let seq = if reply { 7 } else { 1 };
            if v6 {
                let (src, dst, sport, dport) = sent(reply, ends6(conn));
                build::tcp_v6(src, dst, sport, dport, flags, seq, b"")
            } else {
                let (src, dst, sport, dport) = sent(reply, ends(conn));
                build::tcp_v4(src, dst, sport, dport, flags, seq, b"")
            }
        }
        Packet::Udp { conn, reply } => {
            let (src, dst, sport, dport) = sent(reply, ends(conn));
            build::udp_v4(src, dst, sport, dport, if reply { b"r" } else { b"q" })
        }
        Packet::Hello { conn, bad, part } => {
            let (c, s, cp, _) = ends(conn);
            let hello = if part == 0 { &hellos[usize::from(bad)] } else { &hellos[2 + usize::from(bad)] };
            let (seq, bytes) = match part {
                0 => (1, &hello[..]),
                1 => (1, &hello[..1400]),
                _ => (1401, &hello[1400..]),
            };
            build::tcp_v4(c, s, cp, 443, 0x18, seq, bytes)
        }
        Packet::Data { conn, reply } => {
            let (src, dst, sport, dport) = sent(reply, ends(conn));
            build::tcp_v4(src, dst, sport, dport, 0x18, 5000, b"\x17\x03\x03\x00\x01x")
        }
        Packet::Icmp { host } => build::icmp_v4([192, 168, 1, host % 8], [10, 0, 0, 1], 8, 0, b"ping"),
        Packet::Truncated { conn, keep } => {
            let (c, s, cp, sp) = ends(conn);
            let mut f = build::tcp_v4(c, s, cp, sp, 0x10, 1, b"");
            f.truncate(14 + usize::from(keep % 30));
            f
        }
    }
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        8 => (0u8..24, any::<bool>(), prop::sample::select(vec![0x02u8, 0x12, 0x10, 0x18, 0x11, 0x04]), prop::bool::weighted(0.25))
            .prop_map(|(conn, reply, flags, v6)| Packet::Tcp { conn, reply, flags, v6 }),
        3 => (0u8..24, any::<bool>()).prop_map(|(conn, reply)| Packet::Udp { conn, reply }),
        2 => (0u8..24, any::<bool>(), 0u8..3).prop_map(|(conn, bad, part)| Packet::Hello { conn, bad, part }),
        1 => (0u8..24, any::<bool>()).prop_map(|(conn, reply)| Packet::Data { conn, reply }),
        1 => (0u8..8).prop_map(|host| Packet::Icmp { host }),
        1 => (0u8..24, any::<u8>()).prop_map(|(conn, keep)| Packet::Truncated { conn, keep }),
    ]
}

fn policy(yaml: &str, generation: u64) -> CompiledPolicy {
    let mut p = CompiledPolicy::compile(rule_set_from_str(yaml, "t").unwrap(), Action::Allow).unwrap();
    p.set_generation(generation);
    p
}

const RULE: &str = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\n";

/// Generation 1: no SSH from the clients' /29, no bad names on 443. Generation 2: no DNS to
/// the servers, everything from two clients dropped, no web from the IPv6 clients.
fn policies() -> [CompiledPolicy; 2] {
    let first = format!(
        "{RULE}metadata: {{name: no-ssh}}\nspec:\n  cidrBlocks: [\"192.168.1.0/29\"]\n  direction: ingress\n  ports: [{{port: 22}}]\n  action: DROP\n---\n{RULE}metadata: {{name: bad-sni}}\nspec:\n  action: DROP\n  ports: [{{port: 443}}]\n  tls: {{serverNames: [\"*.bad.example\"]}}\n"
    );
    let second = format!(
        "{RULE}metadata: {{name: no-dns}}\nspec:\n  cidrBlocks: [\"10.0.0.0/30\"]\n  ports: [{{port: 53, protocol: UDP}}]\n  action: DROP\n---\n{RULE}metadata: {{name: no-ping}}\nspec:\n  cidrBlocks: [\"192.168.1.0/31\"]\n  action: DROP\n---\n{RULE}metadata: {{name: no-web6}}\nspec:\n  cidrBlocks: [\"2001:db8:100::/40\"]\n  ports: [{{port: 80}}]\n  action: DROP\n"
    );
    [policy(&first, 1), policy(&second, 2)]
}

fn pipeline(capacity: usize, midstream: Midstream, tls_fail: TlsFail) -> Pipeline {
    let timeouts = FlowTimeouts { tcp_established_ms: 400, tcp_transitory_ms: 150, udp_ms: 100 };
    let config = PipelineConfig {
        flow_capacity: capacity,
        timeouts,
        hello_buffers: 4,
        midstream,
        tls_fail,
        ..PipelineConfig::default()
    };
    let mut p = Pipeline::new(config);
    // Both pipelines place (and evict) flows alike only under one hash.
    p.flows.reseed(HashSeed::FIXED);
    p
}

/// The counters but `classified` (a burst asks the policy once per packet of a new flow, one
/// packet at a time once per flow).
fn counters(p: &Pipeline) -> Counters {
    let mut c = p.counters;
    c.set(Counter::Classified, 0);
    c
}

/// Flows created, evicted, expired and held.
fn flows(p: &Pipeline) -> (u64, u64, u64, usize) {
    let c = &p.flows.counters;
    (c.get(Counter::FlowsCreated), c.get(Counter::Evictions), c.get(Counter::Expired), p.flows.len())
}

/// The table's count of flows is the number of entries in use, and every ClientHello buffer
/// is either free or held by one flow.
fn consistent(p: &Pipeline) -> Result<(), TestCaseError> {
    let (used, buffers) = p.flows.held();
    prop_assert_eq!(used, p.flows.len());
    prop_assert_eq!(p.hellos.available() + buffers, p.hellos.capacity());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn bursts_decide_as_one_packet_at_a_time(
        packets in prop::collection::vec(packet(), 1..160),
        bursts in prop::collection::vec((1usize..70, 0u64..60), 1..40),
        switch in 0usize..40,
        capacity in prop::sample::select(vec![1usize, 16, 40, 256]),
        midstream in prop::sample::select(vec![Midstream::Decide, Midstream::Drop]),
        tls_fail in prop::sample::select(vec![TlsFail::Open, TlsFail::Closed]),
    ) {
        let mut rng = SmallRng::seed_from_u64(3);
        let hellos = [
            client_hello_record("www.good.example", false, &mut rng),
            client_hello_record("x.bad.example", false, &mut rng),
            client_hello_record("www.good.example", true, &mut rng),
            client_hello_record("x.bad.example", true, &mut rng),
        ];
        let frames: Vec<Vec<u8>> = packets.iter().map(|p| frame(p, &hellos)).collect();
        let policies = policies();
        let (mut batched, mut single) = (pipeline(capacity, midstream, tls_fail), pipeline(capacity, midstream, tls_fail));
        let (mut got, mut want) = (Vec::new(), Vec::new());
        let (mut at, mut now) = (0, 0);
        for (k, &(len, step)) in bursts.iter().cycle().enumerate() {
            if at == frames.len() {
                break;
            }
            let burst = &frames[at..(at + len).min(frames.len())];
            at += burst.len();
            now += step;
            let policy = &policies[usize::from(k >= switch)];
            let mut v = vec![Verdict::default(); burst.len()];
            batched.process_burst(policy, burst, now, &mut v);
            got.extend(v);
            for f in burst {
                let mut v = [Verdict::default()];
                single.process_burst(policy, std::slice::from_ref(f), now, &mut v);
                want.push(v[0]);
            }
        }
        prop_assert_eq!(got, want);
        consistent(&batched)?;
        consistent(&single)?;
        prop_assert_eq!(counters(&batched), counters(&single));
        prop_assert_eq!(flows(&batched), flows(&single));
    }
}
