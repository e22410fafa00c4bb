//! Random floods never flip a TLS-decided or TLS-pending connection's verdict: whatever
//! arrives (SYNs, spoofed SYN-ACKs, mid-stream segments, UDP, RSTs, hellos answered or not,
//! halves of hellos), on whatever table and pool sizes, a connection decided by its
//! ClientHello keeps its verdict, a hello in progress completes with the verdict it would have
//! had, a hello to a blocked name never passes, and one to an allowed name passes unless its
//! connection had to go without an entry.

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::flood_tests::{policy, run, source, Conn, BAD_SNI, CLIENT, PASS, SERVER};
use super::{Midstream, Pipeline, PipelineConfig, TlsFail, Verdict};
use crate::counters::Counter;
use crate::policy::{Action, CompiledPolicy};
use crate::wire::build;
use crate::wire::tcp_flags::{ACK, FIN, PSH, RST, SYN};

/// One item of a flood; `seed` picks its addresses, ports and bytes.
#[derive(Clone, Copy, Debug)]
enum Flood {
    Syn(u32),
    SynAck(u32),
    /// A segment of an unknown connection to 443, its payload application data, random
    /// bytes, or nothing.
    Midstream(u32),
    Udp(u32),
    Rst(u32),
    Fin(u32),
    /// SYN and a whole hello from a spoofed source, unanswered.
    Unanswered(u32, bool),
    /// A whole connection (handshake, hello, reply); post-quantum or not, to a blocked name or not.
    Answered(u32, bool, bool),
    /// Handshake and the first half of a post-quantum hello.
    Half(u32, bool),
}

fn item() -> impl Strategy<Value = Flood> {
    prop_oneof![
        6 => any::<u32>().prop_map(Flood::Syn),
        2 => any::<u32>().prop_map(Flood::SynAck),
        3 => any::<u32>().prop_map(Flood::Midstream),
        2 => any::<u32>().prop_map(Flood::Udp),
        1 => any::<u32>().prop_map(Flood::Rst),
        1 => any::<u32>().prop_map(Flood::Fin),
        2 => (any::<u32>(), any::<bool>()).prop_map(|(s, b)| Flood::Unanswered(s, b)),
        2 => (any::<u32>(), any::<bool>(), any::<bool>()).prop_map(|(s, pq, b)| Flood::Answered(s, pq, b)),
        1 => (any::<u32>(), any::<bool>()).prop_map(|(s, b)| Flood::Half(s, b)),
    ]
}

fn name(bad: bool) -> &'static str {
    if bad {
        "www.bad.example"
    } else {
        "www.good.example"
    }
}

/// The frames of `f`, and for an answered connection the index (among them) of the packet
/// that completes its hello and whether its name is blocked.
fn frames(f: Flood) -> (Vec<Vec<u8>>, Option<(usize, bool)>) {
    let seed = match f {
        Flood::Syn(s) | Flood::SynAck(s) | Flood::Midstream(s) | Flood::Udp(s) | Flood::Rst(s) | Flood::Fin(s) => s,
        Flood::Unanswered(s, _) | Flood::Answered(s, _, _) | Flood::Half(s, _) => s,
    };
    let mut rng = SmallRng::seed_from_u64(u64::from(seed));
    let (src, sport) = (source(&mut rng), rng.random_range(1024..65535u16));
    let port = [443, 443, 80, 22][rng.random_range(0..4usize)];
    let one = |frame| (vec![frame], None);
    match f {
        Flood::Syn(_) => one(build::tcp_v4(src, SERVER, sport, port, SYN, rng.random(), b"")),
        Flood::SynAck(_) => one(build::tcp_v4(SERVER, src, port, sport, SYN | ACK, rng.random(), b"")),
        Flood::Midstream(_) => {
            let payload: Vec<u8> = match rng.random_range(0..3) {
                0 => b"\x17\x03\x03\x00\x05hello".to_vec(),
                1 => (0..rng.random_range(1..64)).map(|_| rng.random()).collect(),
                _ => Vec::new(),
            };
            one(build::tcp_v4(src, SERVER, sport, 443, PSH | ACK, rng.random(), &payload))
        }
        Flood::Udp(_) => one(build::udp_v4(src, SERVER, sport, 53, b"q")),
        Flood::Rst(_) => one(build::tcp_v4(src, SERVER, sport, port, RST, rng.random(), b"")),
        Flood::Fin(_) => one(build::tcp_v4(src, SERVER, sport, port, FIN | ACK, rng.random(), b"")),
        Flood::Unanswered(_, bad) => {
            let c = Conn::tls(src, sport, name(bad), false);
            (vec![c.client(SYN, 999, b""), c.hello_segments().remove(0)], None)
        }
        Flood::Answered(_, pq, bad) => {
            let c = Conn::tls(src, sport, name(bad), pq);
            let frames = c.all();
            let completing = frames.len() - 2;
            (frames, Some((completing, bad)))
        }
        Flood::Half(_, bad) => {
            let c = Conn::tls(src, sport, name(bad), true);
            let mut frames = c.handshake();
            frames.push(c.hello_segments().remove(0));
            (frames, None)
        }
    }
}

/// What a victim connection had reached before the flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Decided by its ClientHello.
    Decided,
    /// The first half of a post-quantum hello seen.
    InProgress,
    /// Handshake done, no client byte yet.
    Awaiting,
}

/// The victims: every stage, blocked name or not, one or two hello segments.
fn victims() -> Vec<(Conn, Stage, bool)> {
    let mut out = Vec::new();
    let mut sport = 30000;
    for stage in [Stage::Decided, Stage::InProgress, Stage::Awaiting] {
        for bad in [true, false] {
            for pq in [true, false] {
                if stage == Stage::InProgress && !pq {
                    continue;
                }
                sport += 1;
                out.push((Conn::tls(CLIENT, sport, name(bad), pq), stage, bad));
            }
        }
    }
    out
}

/// What happened to a connection's packets besides their verdicts.
#[derive(Clone, Copy, Debug, Default)]
struct Went {
    /// Some went without an entry.
    untracked: bool,
    /// Some were picked up mid-stream.
    picked_up: bool,
    /// Its hello could not be inspected (`tls_fail` applied: no buffer free, say).
    failed: bool,
}

/// The verdicts of `frames`, one burst each, and what happened to them.
fn watched(
    p: &mut Pipeline,
    policy: &CompiledPolicy,
    frames: &[Vec<u8>],
    now: u64,
) -> (Vec<(Action, Option<u32>)>, Went) {
    let counts = |p: &Pipeline| [Counter::Untracked, Counter::Midstream, Counter::TlsFailed].map(|c| p.counters.get(c));
    let before = counts(p);
    let v = run(p, policy, frames, now);
    let after = counts(p);
    let went = Went { untracked: after[0] > before[0], picked_up: after[1] > before[1], failed: after[2] > before[2] };
    (v, went)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_floods_never_flip_a_tls_decided_or_pending_verdict(
        items in prop::collection::vec(item(), 0..600),
        capacity in prop::sample::select(vec![1usize, 40, 256]),
        hello_buffers in 2usize..10,
        midstream in prop::sample::select(vec![Midstream::Decide, Midstream::Drop]),
        tls_fail in prop::sample::select(vec![TlsFail::Open, TlsFail::Closed]),
        burst in 1usize..40,
    ) {
        let policy = policy();
        let config = PipelineConfig { flow_capacity: capacity, hello_buffers, midstream, tls_fail, ..PipelineConfig::default() };
        let mut p = Pipeline::new(config);
        let victims = victims();
        for (c, stage, _) in &victims {
            let mut frames = c.handshake();
            let hello = c.hello_segments();
            match stage {
                Stage::Decided => frames.extend(hello),
                Stage::InProgress => frames.push(hello[0].clone()),
                Stage::Awaiting => {}
            }
            run(&mut p, &policy, &frames, 0);
        }
        // The flood, in bursts of `burst` packets; each answered connection's hello to a
        // blocked name must not pass.
        let mut all = Vec::new();
        let mut blocked = Vec::new();
        for &f in &items {
            let (frames, completing) = frames(f);
            if let Some((at, true)) = completing {
                blocked.push(all.len() + at);
            }
            all.extend(frames);
        }
        let mut verdicts = vec![Verdict::default(); all.len()];
        for (fs, vs) in all.chunks(burst).zip(verdicts.chunks_mut(burst)) {
            p.process_burst(&policy, fs, 1, vs);
        }
        // (With `tls_fail = "open"` a hello that finds no buffer free passes as not TLS: the
        // flood's halves may hold them all.)
        if tls_fail == TlsFail::Closed {
            for &i in &blocked {
                prop_assert_eq!(verdicts[i].action, Action::Drop, "a blocked hello of the flood passed");
            }
        }
        prop_assert!(p.flows.len() <= p.flows.capacity());
        let (used, buffers) = p.flows.held();
        prop_assert_eq!(used, p.flows.len());
        prop_assert_eq!(p.hellos.available() + buffers, p.hellos.capacity());
        // After the flood: decided ones keep their verdicts (the last hello segment again, and
        // the server's answer), hellos in progress and awaited complete with theirs.
        for (c, stage, bad) in &victims {
            let hello = c.hello_segments();
            let verdict = if *bad { BAD_SNI } else { PASS };
            let frames = match stage {
                Stage::Decided | Stage::InProgress => vec![hello[hello.len() - 1].clone(), c.reply()],
                Stage::Awaiting => {
                    let mut f = hello.clone();
                    f.push(c.reply());
                    f
                }
            };
            let (v, went) = watched(&mut p, &policy, &frames, 2);
            let last = &v[v.len() - 2..];
            match stage {
                Stage::Decided | Stage::InProgress => prop_assert_eq!(last, [verdict; 2], "{:?} {}", stage, c.sport),
                // Awaited: its hello is inspected, in its entry or picked up, unless no buffer
                // was free for it (`tls_fail`); without an entry, or picked up under
                // `midstream = "drop"`, it is dropped.
                Stage::Awaiting if went.failed && tls_fail == TlsFail::Open => {}
                Stage::Awaiting if *bad => prop_assert!(last.iter().all(|v| v.0 == Action::Drop), "{:?}", v),
                Stage::Awaiting if went.untracked || went.failed || (went.picked_up && midstream == Midstream::Drop) => {
                    prop_assert!(last.iter().all(|v| v.0 == Action::Drop), "{:?} {:?}", v, went)
                }
                Stage::Awaiting => prop_assert_eq!(last, [verdict; 2], "{:?}", went),
            }
        }
    }
}
