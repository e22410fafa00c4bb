//! Which entry gives way when both buckets of a new connection are full, after Linux
//! conntrack's `early_drop` (a full table drops a connection that never saw an answer, and
//! when there is none it refuses the new one rather than an assured one).
//!
//! An entry may give way only if the packets its connection sends later would get its
//! verdict again, from the policy alone: they come back as a new connection (a SYN, a
//! SYN-ACK), or as a mid-stream pickup (`pipeline::pickup`), which is classified from both
//! ends (a DROP from either wins) and whose client bytes are inspected if they begin a
//! ClientHello. In the order they give way (stalest first within each):
//!
//! 0. Embryonic: a TCP connection whose responder was never seen (a SYN, no answer) and whose
//!    ClientHello is not in progress: what a SYN flood creates.
//! 1. Decided by addresses and ports (no TLS involvement), allowed; or waiting for a
//!    ClientHello none of whose bytes came yet (a pickup would inspect the hello).
//! 2. The same, dropped (given way last among them, as a pickup from one end only would be
//!    the least sure to drop it again).
//! 3. Allowed by its client's first bytes (its ClientHello, bytes that are not one, or
//!    `tls_fail`) without its responder ever answering: a connection nobody accepted, whose
//!    later packets pass anyway.
//!
//! Never: a ClientHello in progress (bytes of it held in a buffer: the hello buffers bound
//! how many; also on a decided UDP flow reading a second QUIC connection's hello), nor a
//! connection decided by its ClientHello that its responder answered, nor one its ClientHello
//! dropped, answered or not (its retransmitted last hello segment would be
//! a pickup that does not begin a hello, which `tls_fail = open` would pass; with asymmetric
//! routing no responder is ever seen). When every candidate is one of those, the new
//! connection goes without an entry: a flood of blocked hellos can deny new TLS connections
//! until they expire, never let one through.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::super::huge_array::HugeArray;
use super::FlowEntry;
use super::HelloState;
use crate::policy::Action;
use crate::wire::ip_proto;

/// How readily entry `e` (with its reassembly state `hello`) gives way: lower first; `None`
/// never.
fn rank(e: &FlowEntry, hello: &HelloState) -> Option<u8> {
    // A hello in progress, pending or not: a UDP flow already decided may be reading the hello
    // of a second QUIC connection on its ports, whose first bytes went by; evicted, the rest
    // would come back as a new flow's first datagram and pass.
    if hello.holds_slot() {
        return None;
    }
    if e.inspected() {
        return (!e.responder_seen() && e.action == Action::Allow).then_some(3);
    }
    if e.key.protocol() == ip_proto::TCP && !e.responder_seen() {
        return Some(0);
    }
    Some(if !e.pending() && e.action.denies() { 2 } else { 1 })
}

/// The entry among `indexes` that gives way first (the stalest of the lowest rank), if any
/// may.
pub(super) fn victim(
    indexes: impl Iterator<Item = usize>,
    entries: &HugeArray<FlowEntry>,
    hellos: &HugeArray<HelloState>,
) -> Option<usize> {
    indexes
        .filter_map(|i| {
            let e = entries.get(i)?;
            let r = rank(e, hellos.get(i)?)?;
            Some(((r, e.last_seen_ms), i))
        })
        .min()
        .map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::flow::IdleTimes;
    use crate::policy::decision::Decision;
    use crate::tls::HelloBufferPool;
    use crate::wire::{build, tcp_flags, PacketSummary};

    fn entry(protocol: u8) -> FlowEntry {
        let frame = match protocol {
            ip_proto::TCP => build::tcp_v4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, tcp_flags::SYN, 0, b""),
            _ => build::udp_v4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 53, b""),
        };
        let mut p = PacketSummary::EMPTY;
        crate::wire::parse_frame_into(&frame, &mut p).unwrap();
        let (key, forward) = super::super::FlowKey::of(&p);
        FlowEntry::new(key, forward, 0, &IdleTimes::default())
    }

    #[test]
    fn ranks() {
        let none = HelloState::default();
        let mut tcp = entry(ip_proto::TCP);
        let lo = tcp.initiator_is_lo();
        // A SYN alone, allowed or dropped, waiting for its hello or not: embryonic.
        tcp.observe(lo, tcp_flags::SYN, 0, &IdleTimes::default());
        for d in [Decision::pending(), Decision::new(Action::Drop, Some(1)), Decision::new(Action::Allow, None)] {
            tcp.set_decision(d, 0);
            assert_eq!(rank(&tcp, &none), Some(0), "{d:?}");
        }
        // Answered: by its verdict.
        tcp.observe(!lo, tcp_flags::SYN | tcp_flags::ACK, 1, &IdleTimes::default());
        assert_eq!(rank(&tcp, &none), Some(1));
        tcp.set_decision(Decision::new(Action::Drop, Some(1)), 0);
        assert_eq!(rank(&tcp, &none), Some(2));
        tcp.set_decision(Decision::pending(), 0);
        assert_eq!(rank(&tcp, &none), Some(1), "no hello byte yet");
        // A hello in progress holds a buffer: never.
        let mut pool = HelloBufferPool::new(1);
        let mut held = crate::tls::HelloReassembly::new();
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
        let record = crate::tls::build::client_hello_record("x.example", true, &mut rng);
        assert!(matches!(held.feed(&mut pool, 1, &record[..100]), crate::tls::FeedResult::NeedMore));
        assert!(held.holds_slot());
        assert_eq!(rank(&tcp, &HelloState::Tcp(held)), None);
        // Decided by its hello: never once answered, last otherwise.
        tcp.set_decision(Decision::new(Action::Drop, Some(0)), 0);
        tcp.set_inspected();
        assert_eq!(rank(&tcp, &none), None);
        let mut unanswered = entry(ip_proto::TCP);
        unanswered.observe(lo, tcp_flags::ACK, 0, &IdleTimes::default());
        unanswered.set_inspected();
        assert_eq!(rank(&unanswered, &none), Some(3), "allowed by its hello, never answered");
        unanswered.set_decision(Decision::new(Action::Drop, Some(0)), 0);
        assert_eq!(rank(&unanswered, &none), None, "dropped by its hello: never, answered or not");
        // UDP: by its verdict from the first packet on.
        let mut udp = entry(ip_proto::UDP);
        udp.observe(udp.initiator_is_lo(), 0, 0, &IdleTimes::default());
        assert_eq!(rank(&udp, &none), Some(1));
        udp.set_decision(Decision::new(Action::Drop, None), 0);
        assert_eq!(rank(&udp, &none), Some(2));
        // A QUIC hello in progress (first of two Initials) holds a buffer: never.
        let quic = crate::tls::quic::build::two_datagram_hello("y.example", &mut rng);
        let mut scratch = crate::tls::quic::QuicScratch::for_pool(&pool);
        held.release(&mut pool);
        let mut q = crate::tls::quic::QuicHello::new();
        assert!(matches!(q.feed(&mut pool, &mut scratch, &quic[0]), crate::tls::quic::QuicFeed::NeedMore));
        assert!(q.holds_slot());
        udp.set_decision(Decision::pending(), 0);
        assert_eq!(rank(&udp, &HelloState::Quic(q)), None);
        // Decided by a first hello and reading a second one (on the same ports): never either.
        udp.set_decision(Decision::new(Action::Allow, None), 0);
        udp.set_inspected();
        assert_eq!(rank(&udp, &none), Some(3), "allowed by its hello, never answered");
        assert_eq!(rank(&udp, &HelloState::Quic(q)), None);
        q.release(&mut pool);
    }
}
