//! Packets of connections the flow table does not know, after Suricata's `stream.midstream`
//! and its midstream exception policy: mid-stream pickups (a TCP segment without SYN or RST
//! whose connection has no entry: evicted, expired, its start took another path, the
//! dataplane restarted), and connections that get no entry because none may give way
//! (`flow/evict.rs`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::{initiator_query, Midstream};
use crate::policy::decision::Decision;
use crate::policy::{Action, CompiledPolicy};
use crate::wire::{ip_proto, tcp_flags, PacketSummary};

/// A TCP segment without SYN or RST: from the middle of a connection. A SYN or a SYN-ACK
/// starts one (and tells its initiator); a RST ends one.
#[inline]
pub(super) fn is_pickup(p: &PacketSummary) -> bool {
    p.protocol == ip_proto::TCP && p.tcp_flags & (tcp_flags::SYN | tcp_flags::RST) == 0
}

/// What the policy answers for a connection the dataplane has not seen start, and whether
/// the end it takes as the initiator is the first one.
///
/// `midstream = "drop"` drops it. With `"decide"`, it is classified from both ends
/// (`first`, `second`: the policy's answers with each as the initiator), as which end opened
/// it is unknown: a DROP from either wins (so a connection evicted or forgotten gets its DROP
/// again whichever end speaks first); else a TLS rule from either makes it pending, with the
/// end the rule concerns as the client (`may_turn`: the initiator may still be chosen), whose
/// bytes are inspected if they begin a ClientHello and follow `tls_fail` if not; else the
/// first end's answer.
pub(super) fn decide(first: Decision, second: Decision, may_turn: bool, midstream: Midstream) -> (Decision, bool) {
    let dropped = |d: &Decision| !d.pending && d.action.denies();
    if midstream == Midstream::Drop {
        (Decision::new(Action::Drop, None), true)
    } else if dropped(&first) {
        (first, true)
    } else if dropped(&second) {
        (second, false)
    } else if first.pending || !second.pending || !may_turn {
        (first, true)
    } else {
        (second, false)
    }
}

/// [`decide`] for packet `p`, the first of a connection picked up mid-stream: `sender` is the
/// policy's answer with `p`'s sender as the initiator. Also returns whether the sender is
/// taken as the initiator.
pub(super) fn pick_up(
    policy: &CompiledPolicy,
    p: &PacketSummary,
    sender: Decision,
    midstream: Midstream,
) -> (Decision, bool) {
    let receiver = match midstream {
        Midstream::Decide => policy.classify(&initiator_query(p, false)),
        Midstream::Drop => sender,
    };
    decide(sender, receiver, true, midstream)
}

/// [`decide`] again for a picked-up connection under a new policy generation: `d` is the
/// policy's answer with its recorded initiator as the initiator, who stays it;
/// `from_initiator` tells whether `p` was sent by it.
pub(super) fn again(
    policy: &CompiledPolicy,
    p: &PacketSummary,
    from_initiator: bool,
    d: Decision,
    midstream: Midstream,
) -> Decision {
    let other = match midstream {
        Midstream::Decide => policy.classify(&initiator_query(p, !from_initiator)),
        Midstream::Drop => d,
    };
    decide(d, other, false, midstream).0
}

/// The decision for a packet whose connection has no entry and gets none: `d` is the
/// policy's answer (or the pickup's). A connection that waits for its ClientHello cannot be
/// followed without an entry, so its packets are dropped whatever `tls_fail` says (letting
/// them pass would turn the TLS rules off for every connection that comes while the table is
/// full); the client's retries find room once entries expire or give way. Any other packet
/// gets `d`, decided from addresses and ports.
pub(super) fn untracked(d: Decision) -> Decision {
    if d.pending {
        Decision::new(Action::Drop, None)
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_from_either_end_wins_then_a_tls_rule() {
        let (allow, pending) = (Decision::new(Action::Allow, Some(3)), Decision::pending());
        let drop = Decision::new(Action::Drop, Some(1));
        let decide = |a, b, turn| decide(a, b, turn, Midstream::Decide);
        assert_eq!(decide(allow, drop, true), (drop, false));
        assert_eq!(decide(drop, pending, true), (drop, true));
        assert_eq!(decide(pending, drop, true), (drop, false));
        assert_eq!(decide(allow, pending, true), (pending, false));
        assert_eq!(decide(allow, pending, false), (allow, true), "the initiator is known");
        assert_eq!(decide(pending, allow, true), (pending, true));
        assert_eq!(decide(allow, Decision::new(Action::Allow, None), true), (allow, true));
        let dropped = Decision::new(Action::Drop, None);
        assert_eq!(super::decide(allow, allow, true, Midstream::Drop), (dropped, true));
        assert_eq!(untracked(pending), dropped);
        assert_eq!(untracked(allow), allow);
    }
}
