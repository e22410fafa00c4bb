//! The flow table under a flood: SYN floods from many sources, floods of TLS connections to
//! blocked names, answered or not, and mixed floods past the table's and the hello buffers'
//! capacity. A ClientHello in progress and a connection decided by its ClientHello keep their
//! verdicts; new connections keep having their ClientHellos inspected (or, when the table is
//! full of connections that may not give way, go without an entry and cannot pass a hello).

use super::{Pipeline, PipelineConfig, Verdict};
use crate::counters::Counter;
use crate::policy::{rule_set_from_str, Action, CompiledPolicy};
use crate::tls::build::client_hello_record;
use crate::wire::build;
use crate::wire::tcp_flags::{ACK, PSH, SYN};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub(super) const SERVER: [u8; 4] = [192, 0, 2, 10];
pub(super) const CLIENT: [u8; 4] = [10, 1, 1, 1];

pub(super) const PASS: (Action, Option<u32>) = (Action::Allow, None);
/// Dropped by the `bad-sni` rule.
pub(super) const BAD_SNI: (Action, Option<u32>) = (Action::Drop, Some(0));

/// Rule 0 drops TLS to `*.bad.example` on 443, rule 1 telnet, rule 2 SSH initiated from
/// 10.1.0.0/16 (an `ingress` rule: which end initiated decides).
pub(super) fn policy() -> CompiledPolicy {
    let rule = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\n";
    let yaml = format!(
        "{rule}metadata: {{name: bad-sni}}\nspec:\n  action: DROP\n  ports: [{{port: 443}}]\n  tls: {{serverNames: [\"*.bad.example\"]}}\n---\n\
         {rule}metadata: {{name: no-telnet}}\nspec:\n  action: DROP\n  priority: 2000\n  ports: [{{port: 23}}]\n---\n\
         {rule}metadata: {{name: no-ssh}}\nspec:\n  action: DROP\n  priority: 3000\n  cidrBlocks: [\"10.1.0.0/16\"]\n  direction: ingress\n  ports: [{{port: 22}}]\n"
    );
    CompiledPolicy::compile(rule_set_from_str(&yaml, "t").unwrap(), Action::Allow).unwrap()
}

/// A TCP connection from `client`:`sport` to SERVER:`port` (443 for TLS), its packets built
/// on demand; the ClientHello (if any) is cut into segments of `mss` bytes.
#[derive(Clone)]
pub(super) struct Conn {
    pub client: [u8; 4],
    pub sport: u16,
    pub port: u16,
    pub hello: Vec<u8>,
    pub mss: usize,
}

impl Conn {
    /// A TLS connection to `sni`; a post-quantum hello spans two segments.
    pub fn tls(client: [u8; 4], sport: u16, sni: &str, post_quantum: bool) -> Conn {
        let hello = client_hello_record(sni, post_quantum, &mut SmallRng::seed_from_u64(u64::from(sport)));
        Conn { client, sport, port: 443, hello, mss: if post_quantum { 1400 } else { 4000 } }
    }

    /// A connection to `port` that carries no ClientHello.
    pub fn plain(client: [u8; 4], sport: u16, port: u16) -> Conn {
        Conn { client, sport, port, hello: b"GET / HTTP/1.1\r\n\r\n".to_vec(), mss: 1400 }
    }

    pub fn client(&self, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        build::tcp_v4(self.client, SERVER, self.sport, self.port, flags, seq, payload)
    }

    pub fn server(&self, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        build::tcp_v4(SERVER, self.client, self.port, self.sport, flags, seq, payload)
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&self) -> Vec<Vec<u8>> {
        vec![self.client(SYN, 999, b""), self.server(SYN | ACK, 4999, b""), self.client(ACK, 1000, b"")]
    }

    /// The client's first bytes, segment by segment.
    pub fn hello_segments(&self) -> Vec<Vec<u8>> {
        let mut seq = 1000u32;
        let mut out = Vec::new();
        for seg in self.hello.chunks(self.mss) {
            out.push(self.client(PSH | ACK, seq, seg));
            seq += seg.len() as u32;
        }
        out
    }

    /// The server's answer, after the hello.
    pub fn reply(&self) -> Vec<u8> {
        self.server(PSH | ACK, 5000, b"\x16\x03\x03\x00\x04server hello")
    }

    /// The whole connection: handshake, hello, reply.
    pub fn all(&self) -> Vec<Vec<u8>> {
        let mut frames = self.handshake();
        frames.extend(self.hello_segments());
        frames.push(self.reply());
        frames
    }
}

pub(super) use super::tests::one_per_burst as run;

/// The frames in bursts of 32 (a flood arrives in full bursts): the verdicts.
pub(super) fn flood(p: &mut Pipeline, policy: &CompiledPolicy, frames: &[Vec<u8>], now_ms: u64) -> Vec<Verdict> {
    let mut verdicts = vec![Verdict::default(); frames.len()];
    for (fs, vs) in frames.chunks(32).zip(verdicts.chunks_mut(32)) {
        p.process_burst(policy, fs, now_ms, vs);
    }
    verdicts
}

/// A source address of the flood: anywhere in 100.64.0.0/10.
pub(super) fn source(rng: &mut SmallRng) -> [u8; 4] {
    let a: u32 = 0x6440_0000 | (rng.random::<u32>() & 0x003f_ffff);
    a.to_be_bytes()
}

/// `n` SYNs to SERVER:443 from random sources and ports (each one is pending: a TLS rule
/// waits for its ClientHello).
pub(super) fn syns(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| build::tcp_v4(source(&mut rng), SERVER, rng.random_range(1024..65535), 443, SYN, rng.random(), b""))
        .collect()
}

fn config(flow_capacity: usize) -> PipelineConfig {
    PipelineConfig { flow_capacity, ..PipelineConfig::default() }
}

/// Issue 18's bypass: the first half of a post-quantum ClientHello to a blocked name passes
/// (pending), a SYN flood from many sources overflows the table, and the second half arrives.
/// It used to find no entry, be taken as a mid-stream segment that is not TLS, and pass. The
/// hello in progress is never evicted: the second half completes it and is dropped.
#[test]
fn a_syn_flood_does_not_evict_a_hello_in_progress() {
    let policy = policy();
    for capacity in [1024, 65536] {
        let mut p = Pipeline::new(config(capacity));
        let c = Conn::tls(CLIENT, 40000, "www.bad.example", true);
        let mut frames = c.handshake();
        frames.extend(c.hello_segments());
        assert_eq!(frames.len(), 5);
        assert_eq!(run(&mut p, &policy, &frames[..4], 0), [PASS; 4]);
        let n = 3 * p.flows.capacity();
        let v = flood(&mut p, &policy, &syns(n, 1), 1);
        assert!(v.iter().all(|v| v.action == Action::Allow));
        let c_ = &p.flows.counters;
        assert_eq!(c_.get(Counter::FlowsCreated), n as u64 + 1);
        assert!(c_.get(Counter::Evictions) >= 2 * capacity as u64, "{capacity}: the flood overflowed the table");
        assert_eq!(p.counters.get(Counter::Untracked), 0, "SYNs give way to each other");
        // The second half completes the hello: dropped, as is the server's answer.
        assert_eq!(run(&mut p, &policy, &[frames[4].clone(), c.reply()], 2), [BAD_SNI; 2], "{capacity}");
        assert_eq!(p.counters.get(Counter::Midstream), 0);
        assert_eq!((p.counters.get(Counter::TlsDecided), p.counters.get(Counter::TlsPending)), (1, n as u64 + 1));
    }
}

/// New connections that come during a SYN flood have their ClientHellos inspected: each of
/// their packets arrives after another wave of the flood.
#[test]
fn a_syn_flood_leaves_the_tls_rules_on_for_connections_that_come_after() {
    let policy = policy();
    let mut p = Pipeline::new(config(1024));
    let conns = [
        (Conn::tls(CLIENT, 41000, "www.bad.example", true), BAD_SNI),
        (Conn::tls(CLIENT, 41001, "www.good.example", true), PASS),
        (Conn::tls(CLIENT, 41002, "x.bad.example", false), BAD_SNI),
    ];
    let mut wave = 0;
    for (c, verdict) in &conns {
        let frames = c.all();
        let hello_end = frames.len() - 2;
        for (i, f) in frames.iter().enumerate() {
            wave += 1;
            flood(&mut p, &policy, &syns(2048, wave), wave);
            let v = run(&mut p, &policy, std::slice::from_ref(f), wave);
            assert_eq!(v[0], if i < hello_end { PASS } else { *verdict }, "{} packet {i}", c.sport);
        }
    }
    assert_eq!((p.counters.get(Counter::Untracked), p.counters.get(Counter::Midstream)), (0, 0));
    assert_eq!(p.counters.get(Counter::TlsDecided), 3);
}

/// Answered connections decided by their ClientHello never give way: a flood of them fills
/// the table, and then new connections go without an entry. A connection that waits for a
/// ClientHello cannot pass without one (whatever `tls_fail` says): nothing to a blocked name
/// gets through, nor, while the table stays full, to any name (a denial of service, not a
/// bypass); connections no TLS rule concerns are decided by their addresses and ports.
#[test]
fn a_table_full_of_answered_tls_connections_leaves_new_ones_without_an_entry_and_the_tls_rules_on() {
    let policy = policy();
    let mut p = Pipeline::new(config(64));
    let mut rng = SmallRng::seed_from_u64(5);
    let attackers: Vec<Conn> =
        (0..200).map(|i| Conn::tls(source(&mut rng), 20000 + i, "a.bad.example", true)).collect();
    for c in &attackers {
        let v = run(&mut p, &policy, &c.all(), 0);
        assert!(v[v.len() - 2..].iter().all(|v| v.0 == Action::Drop), "the hello never passes: {v:?}");
    }
    assert_eq!(p.flows.len(), 64);
    let untracked = p.counters.get(Counter::Untracked);
    assert!(untracked > 0);
    assert_eq!(p.flows.counters.get(Counter::Evictions), 0, "nothing could give way");
    // New connections: a blocked name and a good one get nothing through.
    for c in [Conn::tls(CLIENT, 42000, "www.bad.example", true), Conn::tls(CLIENT, 42001, "www.good.example", false)] {
        let v = run(&mut p, &policy, &c.all(), 1);
        assert!(v.iter().all(|&v| v == (Action::Drop, None)), "{v:?}");
    }
    // Plain connections are decided alone, by their addresses and ports.
    let web = Conn::plain(CLIENT, 42002, 80);
    assert_eq!(run(&mut p, &policy, &web.all(), 1), [PASS; 5]);
    let telnet = Conn::plain(CLIENT, 42003, 23);
    assert_eq!(run(&mut p, &policy, &telnet.all(), 1), [(Action::Drop, Some(1)); 5]);
    assert_eq!(p.counters.get(Counter::Untracked), untracked + 6 + 5 + 5 + 5);
    // The connections in the table keep their verdicts.
    for c in &attackers[..10] {
        let last = c.hello_segments().pop().unwrap();
        let v = run(&mut p, &policy, &[last, c.reply()], 2);
        assert!(v.iter().all(|v| v.0 == Action::Drop));
    }
    assert_eq!(p.flows.len(), 64);
}

/// Connections allowed by a ClientHello that nobody answered (spoofed sources) give way, last:
/// a flood of them does not keep new connections out of the table.
#[test]
fn a_flood_of_unanswered_allowed_hellos_gives_way_to_new_connections() {
    let policy = policy();
    let mut p = Pipeline::new(config(1024));
    let mut rng = SmallRng::seed_from_u64(6);
    let mut frames = Vec::new();
    for i in 0..4096u16 {
        let c = Conn::tls(source(&mut rng), 1024 + i, "a.good.example", false);
        frames.push(c.client(SYN, 999, b""));
        frames.extend(c.hello_segments());
    }
    let v = flood(&mut p, &policy, &frames, 0);
    assert!(v.iter().all(|v| v.action == Action::Allow));
    assert!(p.flows.counters.get(Counter::Evictions) >= 4096 - 1024);
    for (c, verdict) in [
        (Conn::tls(CLIENT, 43000, "www.bad.example", true), BAD_SNI),
        (Conn::tls(CLIENT, 43001, "www.good.example", true), PASS),
    ] {
        let v = run(&mut p, &policy, &c.all(), 1);
        assert_eq!(v[v.len() - 2..], [verdict; 2]);
    }
    assert_eq!(p.counters.get(Counter::Untracked), 0);
}

/// Connections dropped by their ClientHello never give way, answered or not (a retransmitted
/// last segment, picked up after an eviction, would not begin a hello): a flood of unanswered
/// blocked hellos fills the table, and new connections go without an entry, never letting a
/// blocked hello through.
#[test]
fn a_flood_of_unanswered_blocked_hellos_never_gives_way() {
    let policy = policy();
    let mut p = Pipeline::new(config(1024));
    let mut rng = SmallRng::seed_from_u64(7);
    let mut frames = Vec::new();
    for i in 0..4096u16 {
        let c = Conn::tls(source(&mut rng), 1024 + i, "a.bad.example", false);
        frames.push(c.client(SYN, 999, b""));
        frames.extend(c.hello_segments());
    }
    let v = flood(&mut p, &policy, &frames, 0);
    let hellos: Vec<_> = v.iter().skip(1).step_by(2).collect();
    assert!(hellos.iter().all(|v| v.action == Action::Drop), "every blocked hello dropped, with or without an entry");
    assert!(p.counters.get(Counter::Untracked) > 0, "the table filled with them");
    let v = run(&mut p, &policy, &Conn::tls(CLIENT, 43000, "www.bad.example", true).all(), 1);
    assert!(v.iter().all(|v| v.0 == Action::Drop) || v[v.len() - 2..] == [BAD_SNI; 2], "{v:?}");
}

/// Memory stays bounded whatever arrives: a mixed flood far past the table's capacity and the
/// hello buffers' (SYNs, unanswered first halves of hellos, mid-stream segments, UDP) leaves
/// the table and the pool within their sizes, and every connection decided before it keeps
/// its forwarding and verdict, in both directions; hellos in progress complete as they would
/// have.
#[test]
fn a_mixed_flood_keeps_memory_bounded_and_decided_connections_decided() {
    let policy = policy();
    let mut p = Pipeline::new(PipelineConfig { flow_capacity: 1024, hello_buffers: 8, ..PipelineConfig::default() });
    let decided = [
        (Conn::tls(CLIENT, 44000, "www.bad.example", true), BAD_SNI),
        (Conn::tls(CLIENT, 44001, "www.good.example", true), PASS),
        (Conn::tls(CLIENT, 44002, "x.bad.example", false), BAD_SNI),
        (Conn::tls(CLIENT, 44003, "x.good.example", false), PASS),
        (Conn::plain(CLIENT, 44004, 23), (Action::Drop, Some(1))),
        (Conn::plain(CLIENT, 44005, 22), (Action::Drop, Some(2))),
        (Conn::plain([10, 2, 0, 1], 44006, 22), PASS),
        (Conn::plain(CLIENT, 44007, 80), PASS),
    ];
    for (c, _) in &decided {
        run(&mut p, &policy, &c.all(), 0);
    }
    // Two hellos in progress: first halves only.
    let pending = [
        (Conn::tls(CLIENT, 45000, "www.bad.example", true), BAD_SNI),
        (Conn::tls(CLIENT, 45001, "ok.example", true), PASS),
    ];
    for (c, _) in &pending {
        let mut frames = c.handshake();
        frames.push(c.hello_segments()[0].clone());
        assert_eq!(run(&mut p, &policy, &frames, 0), [PASS; 4]);
    }
    let mut rng = SmallRng::seed_from_u64(7);
    let syns = syns(8192, 8);
    let mut frames = Vec::new();
    for i in 0..4096u16 {
        frames.extend_from_slice(&syns[2 * usize::from(i)..2 * usize::from(i) + 2]);
        let c = Conn::tls(source(&mut rng), 1024 + i, "flood.bad.example", true);
        frames.push(c.client(SYN, 999, b""));
        frames.push(c.hello_segments()[0].clone());
        frames.push(build::tcp_v4(source(&mut rng), SERVER, 2000 + i, 443, ACK, 7, b"\x17\x03\x03\x00\x01x"));
        frames.push(build::udp_v4(source(&mut rng), SERVER, 3000 + i, 53, b"q"));
    }
    flood(&mut p, &policy, &frames, 1);
    assert!(p.flows.len() <= p.flows.capacity());
    let (used, buffers) = p.flows.held();
    assert_eq!(used, p.flows.len());
    assert_eq!(p.hellos.available() + buffers, p.hellos.capacity());
    assert!(p.counters.get(Counter::TlsFailed) > 0, "the flood exhausted the hello buffers");
    assert!(p.counters.get(Counter::Midstream) >= 4096);
    assert_eq!(p.counters.get(Counter::Untracked), 0);
    // Decided connections: the server speaks first (so an evicted one is picked up from the
    // responder's end), then the client.
    for (c, verdict) in &decided {
        let v = run(&mut p, &policy, &[c.reply(), c.client(PSH | ACK, 9000, b"more")], 2);
        assert_eq!(v, [*verdict; 2], "{}:{}", c.port, c.sport);
    }
    for (c, verdict) in &pending {
        let v = run(&mut p, &policy, &[c.hello_segments()[1].clone(), c.reply()], 2);
        assert_eq!(v, [*verdict; 2], "{}", c.sport);
    }
}
