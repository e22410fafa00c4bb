//! Per-source connection limits (`spec.limit`): a per-worker table of token buckets.
//!
//! When a new connection is decided (a flow entry created, a mid-stream pickup, a packet
//! decided without an entry), the limit rules ahead of its decision in evaluation order whose
//! predicates hold are read in turn: each takes a token of the connection's source's bucket for
//! that rule (an IPv6 source by its /64); with a token, the connection falls through to the
//! next rule; without, the limit rule decides (its action), and the flow entry remembers it.
//! Only new connections reach this: never a packet of a known flow.
//!
//! The buckets live in a fixed table of `slots` (a power of two, preallocated), indexed by a
//! keyed hash of (rule name, source): nothing grows. A source whose slot holds another source's
//! bucket takes the slot over only when that bucket is full (its owner quiet for at least
//! `burst / rate` seconds); otherwise the two share the incumbent's bucket (counted as
//! `limits.shared`), so a flood of distinct sources past the table's size limits them
//! together, never less strictly. The clock is the pipeline's `now_ms`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::reject::{Credit, RateConfig, TokenRate};
use super::source::{self, Source};
use crate::counters::{Counter, Counters};
use crate::policy::compile::LimitRule;
use crate::policy::decision::{Decision, Query};
use crate::policy::{CompiledPolicy, ConnectionLimit};

/// Most slots a table may have: 2^22, 192 MiB per worker at 48 bytes a slot.
pub const MAX_SLOTS: usize = 1 << 22;
/// Slots by default (`[limits] slots`): 16384 x 48 bytes, 768 KiB per worker.
pub const DEFAULT_SLOTS: usize = 1 << 14;

/// `slots` if it is a power of two from 1 to [`MAX_SLOTS`]; otherwise what it must be.
pub fn check_slots(slots: usize) -> Result<usize, String> {
    if slots.is_power_of_two() && slots <= MAX_SLOTS {
        Ok(slots)
    } else {
        Err(format!("a power of two from 1 to {MAX_SLOTS}"))
    }
}

/// One bucket: whose it is, its credit, and the rate it was filled at.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    credit: Credit,
    /// Hash of (rule, source), never 0; 0: the slot is free.
    tag: u64,
    limit: RateConfig,
}

/// One worker's buckets.
pub struct LimitTable {
    slots: Box<[Slot]>,
    mask: usize,
    /// The secret of the sources' hash: a sender cannot choose sources that share a slot.
    seed: u64,
}

/// The clock ticks in milliseconds.
const TICKS_PER_SECOND: u64 = 1000;

impl LimitTable {
    /// A table of `slots` buckets (rounded up to a power of two, at least 1).
    pub fn new(slots: usize) -> LimitTable {
        let n = slots.clamp(1, MAX_SLOTS).next_power_of_two();
        LimitTable { slots: vec![Slot::default(); n].into_boxed_slice(), mask: n - 1, seed: source::random_seed() }
    }

    /// This table with a fixed secret instead of a random one: for tests that need two
    /// sources or rules in slots of their own (with a random secret, two keys share one of
    /// 1024 slots once in 1024 runs).
    #[cfg(test)]
    pub fn with_seed(slots: usize, seed: u64) -> LimitTable {
        LimitTable { seed, ..LimitTable::new(slots) }
    }

    /// Bytes this table takes.
    pub fn memory(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }

    /// Takes a token of `source`'s bucket for the limit rule `rule_key` at `now_ms`; `false`
    /// when there is none (the source is over the limit).
    pub fn take(
        &mut self,
        rule_key: u64,
        source: Source,
        limit: ConnectionLimit,
        now_ms: u64,
        counters: &mut Counters,
    ) -> bool {
        let tag = mix(rule_key ^ source.hash(self.seed)) | 1;
        let limit = RateConfig { rate: limit.per_second, burst: limit.burst };
        // The index from the high half: the tag's lowest bit is always set.
        let Some(slot) = self.slots.get_mut((tag >> 32) as usize & self.mask) else { return true };
        let rate = TokenRate::new(limit, TICKS_PER_SECOND);
        if slot.tag != tag {
            let incumbent = TokenRate::new(slot.limit, TICKS_PER_SECOND);
            if slot.tag == 0 || incumbent.is_full(&mut slot.credit, now_ms) {
                *slot = Slot { credit: rate.full(), tag, limit };
            } else {
                // Shared with the active incumbent, at its rate.
                counters.add(Counter::LimitShared, 1);
                incumbent.refill(&mut slot.credit, now_ms);
                return incumbent.take(&mut slot.credit);
            }
        } else if slot.limit != limit {
            // The rule's limit changed (a new generation): the credit carries over, within
            // the new size.
            slot.limit = limit;
            rate.clamp(&mut slot.credit);
        }
        rate.refill(&mut slot.credit, now_ms);
        rate.take(&mut slot.credit)
    }
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the limits made of a new connection's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub decision: Decision,
    /// A limit rule decided (the source was over its limit).
    pub limited: bool,
}

impl LimitTable {
    /// A new connection (`q`, seen from its initiator) that the classifier decided `d`: the
    /// limit rules ahead of `d` whose predicates hold take a token each, in evaluation order,
    /// until one finds none and decides. Counted per rule in row `lane` of the policy's
    /// counters, and in `limits.connections`.
    pub fn apply(
        &mut self,
        policy: &CompiledPolicy,
        q: &Query,
        d: Decision,
        now_ms: u64,
        lane: usize,
        counters: &mut Counters,
    ) -> Limited {
        let source = Source::of(&q.addrs, true);
        for l in ahead(policy, d) {
            if !l.matches(q) || self.take(l.key, source, l.limit, now_ms, counters) {
                continue;
            }
            counters.add(Counter::LimitedConnections, 1);
            policy.hits().add_limited(lane, l.id);
            return Limited { decision: Decision::new(l.action, Some(l.id)), limited: true };
        }
        Limited { decision: d, limited: false }
    }
}

/// A connection that a limit rule decided, decided again by a new policy generation (`d`,
/// from the classifier). It is not a new connection: it takes no token. It stays limited by
/// the first limit rule of the new policy ahead of `d` whose predicates hold, if any; else `d`
/// stands.
pub fn decide_again(policy: &CompiledPolicy, q: &Query, d: Decision) -> Limited {
    match ahead(policy, d).find(|l| l.matches(q)) {
        Some(l) => Limited { decision: Decision::new(l.action, Some(l.id)), limited: true },
        None => Limited { decision: d, limited: false },
    }
}

/// The limit rules ahead of `d` in evaluation order.
fn ahead(policy: &CompiledPolicy, d: Decision) -> impl Iterator<Item = &LimitRule> {
    let bound = d.bound();
    policy.limits().iter().take_while(move |l| l.id < bound)
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
