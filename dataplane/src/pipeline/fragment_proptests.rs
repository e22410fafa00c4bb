//! Random fragmentations (sizes, order, duplicates, overlaps, tiny first fragments) of random
//! allowed and dropped connections, interleaved and cut into random bursts: each fragment gets
//! its connection's verdict or is dropped for a cause, a fragment of a dropped connection
//! never passes, a cleanly fragmented datagram of an allowed one passes whole, and nothing
//! stays held.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use proptest::prelude::*;

use super::fragments::tests::{drop_445, Caller, CLIENT, CLIENT6, SERVER, SERVER6};
use super::PipelineConfig;
use crate::policy::Action;
use crate::wire::build::{tcp_segment_v4, tcp_segment_v6, udp_segment_v4, udp_segment_v6};
use crate::wire::fragment_build::{ipv4_fragments, ipv6_fragments, Piece};
use crate::wire::{ip_proto, tcp_flags::SYN};

#[derive(Clone, Debug)]
struct Datagram {
    /// Dropped by the policy (TCP to 445) or allowed (TCP/UDP elsewhere).
    dropped: bool,
    udp: bool,
    v6: bool,
    payload: usize,
    /// Cut points, in 8-byte units, before dedup and sorting.
    cuts: Vec<usize>,
    /// Extra pieces `(start unit, length units)` laid over the others (overlaps, duplicates).
    extra: Vec<(usize, usize)>,
    /// A permutation seed for the order the pieces are sent in.
    order: Vec<usize>,
}

fn datagram() -> impl Strategy<Value = Datagram> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..120,
        prop::collection::vec(1usize..18, 0..8),
        prop::collection::vec((0usize..18, 1usize..6), 0..2),
        prop::collection::vec(any::<usize>(), 12),
    )
        .prop_map(|(dropped, udp, v6, payload, cuts, extra, order)| Datagram {
            dropped,
            udp: udp && !dropped,
            v6,
            payload,
            cuts,
            extra,
            order,
        })
}

impl Datagram {
    /// Its frames, and whether it is cleanly fragmented (no overlap, the whole transport
    /// header in the first fragment).
    fn frames(&self, ident: u16) -> (Vec<Vec<u8>>, bool) {
        let payload = vec![0xab; self.payload];
        let sport = 20000 + ident;
        let dport = if self.dropped { 445 } else { 80 };
        let seg = match (self.udp, self.v6) {
            (false, false) => tcp_segment_v4(CLIENT, SERVER, sport, dport, SYN, 1, &payload),
            (false, true) => tcp_segment_v6(CLIENT6, SERVER6, sport, dport, SYN, 1, &payload),
            (true, false) => udp_segment_v4(CLIENT, SERVER, sport, dport, &payload),
            (true, true) => udp_segment_v6(CLIENT6, SERVER6, sport, dport, &payload),
        };
        let len = seg.len();
        let mut cuts: Vec<usize> = self.cuts.iter().map(|c| c * 8).filter(|&c| c < len).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0));
        bounds.push(len);
        let mut pieces: Vec<Piece> =
            bounds.windows(2).map(|w| Piece { start: w[0], end: w[1], more: w[1] < len }).collect();
        let header = if self.udp { 8 } else { 20 };
        let clean = self.extra.is_empty() && pieces.len() > 1 && pieces[0].end >= header;
        for &(start, units) in &self.extra {
            let start = (start * 8).min(len.saturating_sub(1) / 8 * 8);
            let end = (start + units * 8).min(len);
            pieces.push(Piece { start, end, more: end < len });
        }
        // Send in a shuffled order.
        let mut keyed: Vec<(usize, Piece)> =
            pieces.into_iter().enumerate().map(|(i, p)| (self.order[i % self.order.len()] ^ i, p)).collect();
        keyed.sort_by_key(|(k, _)| *k);
        let pieces: Vec<Piece> = keyed.into_iter().map(|(_, p)| p).collect();
        let protocol = if self.udp { ip_proto::UDP } else { ip_proto::TCP };
        let frames = if self.v6 {
            ipv6_fragments(CLIENT6, SERVER6, protocol, u32::from(ident), &seg, &pieces)
        } else {
            ipv4_fragments(CLIENT, SERVER, protocol, ident, &seg, &pieces)
        };
        (frames, clean)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn fragments_get_their_connections_verdict_or_are_dropped(
        datagrams in prop::collection::vec(datagram(), 1..8),
        interleave in prop::collection::vec(any::<usize>(), 0..100),
        burst_sizes in prop::collection::vec(1usize..40, 1..10),
    ) {
        let policy = drop_445();
        // Frames of each datagram in its own order, interleaved across datagrams.
        let mut queues: Vec<(usize, std::collections::VecDeque<Vec<u8>>, bool)> = datagrams
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let (frames, clean) = d.frames(i as u16 + 1);
                (i, frames.into(), clean)
            })
            .collect();
        let mut frames = Vec::new();
        let mut owner = Vec::new();
        let mut pick = interleave.iter().cycle();
        while queues.iter().any(|q| !q.1.is_empty()) {
            let live: Vec<usize> = (0..queues.len()).filter(|&q| !queues[q].1.is_empty()).collect();
            let q = live[pick.next().copied().unwrap_or(0) % live.len()];
            frames.push(queues[q].1.pop_front().unwrap());
            owner.push(queues[q].0);
        }
        let mut c = Caller::new(PipelineConfig::default());
        let mut at = 0;
        for (n, size) in burst_sizes.iter().cycle().enumerate() {
            if at >= frames.len() {
                break;
            }
            let end = (at + size).min(frames.len());
            c.burst(&policy, &frames[at..end], n as u64);
            at = end;
        }
        c.finish();
        for (i, fate) in c.fates.iter().enumerate() {
            let d = &datagrams[owner[i]];
            let (verdict, cause) = fate.unwrap();
            if d.dropped {
                prop_assert_eq!(verdict.action, Action::Drop, "frame {} of a dropped connection passed", i);
            } else if verdict.action == Action::Drop {
                prop_assert!(cause.is_some(), "frame {} of an allowed connection dropped without a cause", i);
                prop_assert!(!queues[owner[i]].2, "frame {} of a clean datagram dropped: {:?}", i, cause);
            } else {
                prop_assert_eq!(verdict.rule(), None);
            }
        }
    }
}
