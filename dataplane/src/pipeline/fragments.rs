//! Shallow virtual reassembly, after VPP's ip4-sv-reass / ip6-sv-reass: every fragment of a
//! datagram gets the verdict of the whole datagram, which its first fragment (the one with
//! the ports) earns like any packet of its connection. No bytes are copied or reassembled.
//!
//! One [`FragmentTable`] per worker, preallocated and bounded: datagrams keyed by addresses,
//! protocol and identification (IPv4 16-bit, IPv6 32-bit) in buckets of [`WAYS`], each with a
//! deadline `timeout_ms` after its first fragment came. A datagram is *waiting* (no first
//! fragment yet), *decided* (the first fragment's verdict) or *dropped* (a cause: tiny first
//! fragment, TCP offset 8, overlap, IPv6 chain cut short, past 65535 bytes, too many held or
//! pieces). The byte ranges seen are kept (up to [`MAX_PIECES`] disjoint runs): any overlap,
//! exact duplicates included, drops the whole datagram (RFC 5722), and so does a second
//! "last" fragment that disagrees on the length.
//!
//! Fragments that come before their first fragment are *held*: the pipeline does not own
//! packets, so it hands each held one to the caller under a [`HeldId`] (an index into the
//! caller's store, below `held_per_worker`) through [`FragmentTable::events`], and later hands
//! back, through [`FragmentTable::drain_released`], which ids go with which verdict: when the
//! first fragment decides the datagram, when it is dropped, or at its deadline. An id is not
//! reused before its release has been drained.
//!
//! Ordinary packets never come here: parse checks one field (`fragment`) and the burst one
//! mask (see `burst.rs` and `Pipeline::process_chunk`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hash::BuildHasher;

use super::{Verdict, MAX_BURST};
use crate::counters::{Counter, Counters};
use crate::policy::Action;
use crate::wire::fragment::{fragment_view, DatagramKey, FragmentProblem, FragmentView};

/// Datagrams per bucket.
pub const WAYS: usize = 4;
/// Disjoint byte runs remembered per datagram (fragments in order make one run).
pub const MAX_PIECES: usize = 6;
const NONE: u32 = u32::MAX;

/// The fragment table's bounds, fixed at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentConfig {
    /// Datagrams tracked at once per worker (rounded up to a power of two times [`WAYS`]).
    pub table_size: usize,
    /// How long a datagram is tracked after its first fragment came, in ms; fragments held
    /// that long are dropped.
    pub timeout_ms: u64,
    /// Fragments held (waiting for their first fragment) per datagram.
    pub held_per_datagram: usize,
    /// Fragments held per worker.
    pub held_per_worker: usize,
}

impl Default for FragmentConfig {
    fn default() -> Self {
        FragmentConfig { table_size: 1024, timeout_ms: 1000, held_per_datagram: 16, held_per_worker: 256 }
    }
}

/// Why a fragment was dropped whatever the policy says (`classify --json` prints it as
/// `"malformed"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FragmentCause {
    /// First fragment without the whole TCP (data offset counted) or UDP header.
    Tiny,
    /// TCP fragment at offset 8 bytes.
    OffsetOne,
    /// Overlaps (or duplicates) bytes of another fragment, or disagrees on the length.
    Overlap,
    /// IPv6 first fragment without the whole header chain.
    IncompleteChain,
    /// Would reach past 65535 bytes.
    Oversize,
    /// Over the bound of fragments held per datagram or per worker.
    TooManyHeld,
    /// More disjoint pieces than the table remembers per datagram.
    TooManyPieces,
    /// Held until the datagram's deadline (or the end of input) without a first fragment.
    Timeout,
}

impl FragmentCause {
    /// Its name in `classify --json`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FragmentCause::Tiny => "tiny-fragment",
            FragmentCause::OffsetOne => "fragment-offset-8",
            FragmentCause::Overlap => "overlap",
            FragmentCause::IncompleteChain => "incomplete-chain",
            FragmentCause::Oversize => "oversize",
            FragmentCause::TooManyHeld => "too-many-held",
            FragmentCause::TooManyPieces => "too-many-pieces",
            FragmentCause::Timeout => "fragment-timeout",
        }
    }

    /// The drop counter of this cause.
    pub const fn counter(self) -> Counter {
        match self {
            FragmentCause::Tiny => Counter::DropFragmentTiny,
            FragmentCause::OffsetOne => Counter::DropFragmentOffset,
            FragmentCause::Overlap => Counter::DropFragmentOverlap,
            FragmentCause::IncompleteChain => Counter::DropFragmentChain,
            FragmentCause::Oversize => Counter::DropFragmentOversize,
            FragmentCause::TooManyHeld => Counter::DropFragmentHeld,
            FragmentCause::TooManyPieces => Counter::DropFragmentPieces,
            FragmentCause::Timeout => Counter::DropFragmentTimeout,
        }
    }

    fn of(problem: FragmentProblem) -> FragmentCause {
        match problem {
            FragmentProblem::Tiny => FragmentCause::Tiny,
            FragmentProblem::OffsetOne => FragmentCause::OffsetOne,
            FragmentProblem::IncompleteChain => FragmentCause::IncompleteChain,
            FragmentProblem::Oversize => FragmentCause::Oversize,
        }
    }

    /// The verdict of a fragment dropped for this cause (counted under its own drop cause,
    /// not as malformed; `classify --json` names the cause).
    pub const fn verdict(self) -> Verdict {
        Verdict::new(Action::Drop, None, None)
    }
}

/// A held packet's place in the caller's store: below `held_per_worker`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeldId(pub u32);

impl HeldId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What became of a fragment of the last burst that did not simply take a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentEvent {
    /// Packet `packet` (an index into the burst) is held: the caller keeps it under `id`
    /// until [`FragmentTable::drain_released`] hands `id` back. Its verdict in the burst is a
    /// placeholder (drop) that a caller unaware of holding falls back to.
    Held { packet: usize, id: HeldId },
    /// Packet `packet` was dropped for `cause` (its verdict says drop, malformed).
    Dropped { packet: usize, cause: FragmentCause },
}

/// A held packet's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    pub id: HeldId,
    pub verdict: Verdict,
    /// Why it is dropped, when not by the datagram's verdict.
    pub cause: Option<FragmentCause>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    Waiting,
    Decided(Verdict),
    Dropped(FragmentCause),
}

#[derive(Clone, Copy)]
struct Datagram {
    key: DatagramKey,
    state: State,
    expires_ms: u64,
    /// The datagram's length once its last fragment came (`NONE` before).
    end: u32,
    n_pieces: u8,
    /// Sorted, disjoint, not touching: `(start, end)` byte runs seen.
    pieces: [(u32, u32); MAX_PIECES],
    n_held: u32,
    /// Held packets in arrival order, linked through `HeldSlot::next`.
    held_head: u32,
    held_tail: u32,
}

impl Datagram {
    const FREE: Datagram = Datagram {
        key: DatagramKey { addrs: crate::wire::IpPair::V4 { src: 0, dst: 0 }, protocol: 0, id: 0 },
        state: State::Free,
        expires_ms: 0,
        end: NONE,
        n_pieces: 0,
        pieces: [(0, 0); MAX_PIECES],
        n_held: 0,
        held_head: NONE,
        held_tail: NONE,
    };

    /// Records the bytes of `v`; an overlap, a disagreement on the length or one piece too
    /// many is the cause to drop the datagram.
    fn add_piece(&mut self, v: &FragmentView) -> Result<(), FragmentCause> {
        let (start, end) = (v.offset, v.end());
        let pieces = self.pieces.get(..usize::from(self.n_pieces)).unwrap_or_default();
        if pieces.iter().any(|&(s, e)| start < e && s < end) || (start == end && v.more) {
            return Err(FragmentCause::Overlap);
        }
        let last_end = pieces.last().map_or(0, |&(_, e)| e);
        if !v.more {
            if (self.end != NONE && self.end != end) || last_end > end {
                return Err(FragmentCause::Overlap);
            }
            self.end = end;
        } else if self.end != NONE && end >= self.end {
            return Err(FragmentCause::Overlap);
        }
        // Insert in order, merging with the runs it touches.
        let mut merged = [(0u32, 0u32); MAX_PIECES + 1];
        let mut n = 0;
        let mut new = Some((start, end));
        for &(s, e) in pieces {
            match new {
                Some((ns, ne)) if ne == s => {
                    new = Some((ns, e));
                    continue;
                }
                Some((ns, ne)) if e == ns => {
                    new = Some((s, ne));
                    continue;
                }
                Some(piece) if piece.1 < s => {
                    if let Some(m) = merged.get_mut(n) {
                        *m = piece;
                    }
                    n += 1;
                    new = None;
                }
                _ => {}
            }
            if let Some(m) = merged.get_mut(n) {
                *m = (s, e);
            }
            n += 1;
        }
        if let Some(piece) = new {
            if let Some(m) = merged.get_mut(n) {
                *m = piece;
            }
            n += 1;
        }
        if n > MAX_PIECES {
            return Err(FragmentCause::TooManyPieces);
        }
        for (dst, src) in self.pieces.iter_mut().zip(merged) {
            *dst = src;
        }
        self.n_pieces = n as u8;
        Ok(())
    }

    /// Every byte from 0 to the end has come.
    fn complete(&self) -> bool {
        self.end != NONE && self.n_pieces == 1 && self.pieces.first() == Some(&(0, self.end))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Held,
    /// Released, waiting for the caller to drain it.
    Released,
}

#[derive(Clone, Copy)]
struct HeldSlot {
    next: u32,
    state: SlotState,
}

/// One worker's fragment table and held-packet bookkeeping. See the module documentation.
pub struct FragmentTable {
    config: FragmentConfig,
    entries: Box<[Datagram]>,
    bucket_mask: usize,
    hasher: std::collections::hash_map::RandomState,
    slots: Box<[HeldSlot]>,
    free_slot: u32,
    held_now: u64,
    live: u64,
    /// No datagram expires before this (a lower bound, made exact by each sweep).
    earliest_ms: u64,
    /// No sweep before this: at most eight walks of the table per timeout.
    next_sweep_ms: u64,
    /// The fragments of the chunk in hand: bit `i` marks packet `i`, `chunk[i]` its view.
    chunk_mask: u64,
    chunk: [Option<FragmentView>; MAX_BURST],
    events: Vec<FragmentEvent>,
    releases: Vec<Release>,
}

impl FragmentTable {
    pub fn new(config: FragmentConfig) -> FragmentTable {
        let buckets = config.table_size.div_ceil(WAYS).max(1).next_power_of_two();
        let held = config.held_per_worker.min(NONE as usize - 1);
        let slots: Box<[HeldSlot]> = (0..held)
            .map(|i| HeldSlot { next: if i + 1 < held { i as u32 + 1 } else { NONE }, state: SlotState::Free })
            .collect();
        FragmentTable {
            config,
            entries: vec![Datagram::FREE; buckets * WAYS].into_boxed_slice(),
            bucket_mask: buckets - 1,
            hasher: std::collections::hash_map::RandomState::new(),
            free_slot: if held > 0 { 0 } else { NONE },
            slots,
            held_now: 0,
            live: 0,
            earliest_ms: u64::MAX,
            next_sweep_ms: 0,
            chunk_mask: 0,
            chunk: [None; MAX_BURST],
            events: Vec::with_capacity(2 * MAX_BURST),
            releases: Vec::with_capacity(held),
        }
    }

    /// The memory the table holds beyond its own struct (allocated at creation, never again).
    pub fn memory_bytes(&self) -> usize {
        size_of_val(&*self.entries)
            + size_of_val(&*self.slots)
            + self.events.capacity() * size_of::<FragmentEvent>()
            + self.releases.capacity() * size_of::<Release>()
    }

    /// How many packets may be held at once: the ids are below it.
    pub fn held_capacity(&self) -> usize {
        self.slots.len()
    }

    /// Datagrams tracked, and fragments held, now.
    pub fn levels(&self) -> (u64, u64) {
        (self.live, self.held_now)
    }

    /// What became of the last burst's fragments that did not simply take a verdict.
    pub fn events(&self) -> &[FragmentEvent] {
        &self.events
    }

    /// Whether a release waits to be drained.
    pub fn has_released(&self) -> bool {
        !self.releases.is_empty()
    }

    /// Hands each held packet released since the last call to `f` (in the order released),
    /// then lets their ids be reused.
    pub fn drain_released(&mut self, mut f: impl FnMut(Release)) {
        for r in self.releases.drain(..) {
            f(r);
            if let Some(slot) = self.slots.get_mut(r.id.index()) {
                slot.state = SlotState::Free;
                slot.next = self.free_slot;
                self.free_slot = r.id.0;
            }
        }
    }

    pub(super) fn begin_burst(&mut self) {
        self.events.clear();
    }

    /// Parse found packet `i` of the chunk to be a fragment (`parsed`), or could not parse it
    /// (`!parsed`). Returns whether it goes on like any packet (a sound first fragment, to be
    /// decided by its connection); otherwise its verdict is given after settle
    /// ([`FragmentTable::settle`]), or, when it is no fragment after all, by parse (`None`).
    #[cold]
    #[inline(never)]
    pub(super) fn claim(&mut self, i: usize, frame: &[u8], parsed: bool) -> Option<bool> {
        let Some(mut view) = fragment_view(frame) else {
            // The parser found a fragment where this walk finds none: decide it as before.
            return parsed.then_some(true);
        };
        if !parsed && view.problem.is_none() {
            if !view.is_first() {
                return None;
            }
            // A first fragment whose transport header does not parse is cut short.
            view.problem = Some(FragmentProblem::Tiny);
        }
        let slot = self.chunk.get_mut(i)?;
        *slot = Some(view);
        self.chunk_mask |= 1 << i;
        Some(parsed && view.is_first() && view.problem.is_none())
    }

    /// Whether the chunk in hand has fragments.
    #[inline(always)]
    pub(super) fn chunk_has_fragments(&self) -> bool {
        self.chunk_mask != 0
    }

    /// After settle: each fragment of the chunk, in order, gets its datagram's verdict (a
    /// first fragment gives its own to the datagram), is held, or is dropped for a cause.
    /// `base` is the chunk's place in the caller's burst.
    #[cold]
    #[inline(never)]
    pub(super) fn settle(&mut self, verdicts: &mut [Verdict], base: usize, now_ms: u64, counters: &mut Counters) {
        self.sweep(now_ms, counters);
        let mut mask = std::mem::take(&mut self.chunk_mask);
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let (Some(view), Some(v)) = (self.chunk.get_mut(i).and_then(Option::take), verdicts.get_mut(i)) else {
                continue;
            };
            *v = self.settle_one(&view, *v, base + i, now_ms, counters);
        }
    }

    fn settle_one(
        &mut self,
        view: &FragmentView,
        settled: Verdict,
        packet: usize,
        now_ms: u64,
        counters: &mut Counters,
    ) -> Verdict {
        let at = self.find_or_insert(&view.key, now_ms, counters);
        let Some(d) = self.entries.get_mut(at) else { return FragmentCause::Overlap.verdict() };
        let refused = match view.problem {
            Some(p) => Err(FragmentCause::of(p)),
            None if matches!(d.state, State::Dropped(_)) => Ok(()),
            None => d.add_piece(view),
        };
        if let Err(cause) = refused {
            // Refused for its own cause; the datagram keeps the first cause it was dropped for.
            self.drop_datagram(at, cause, counters);
            return self.refuse(packet, cause, counters);
        }
        let Some(d) = self.entries.get_mut(at) else { return FragmentCause::Overlap.verdict() };
        let verdict = match d.state {
            State::Free => FragmentCause::Overlap.verdict(),
            State::Dropped(cause) => return self.refuse(packet, cause, counters),
            State::Decided(v) => {
                counters.add(Counter::DropPolicy, u64::from(v.action.denies() && !view.is_first()));
                v
            }
            State::Waiting if view.is_first() => {
                // The connection's verdict, as settle gave it, is the datagram's.
                d.state = State::Decided(settled);
                self.release_held(at, settled, None, counters);
                settled
            }
            State::Waiting => match self.hold(at) {
                Some(id) => {
                    counters.add(Counter::FragmentsHeld, 1);
                    self.events.push(FragmentEvent::Held { packet, id });
                    return FragmentCause::Timeout.verdict();
                }
                None => {
                    self.drop_datagram(at, FragmentCause::TooManyHeld, counters);
                    return self.refuse(packet, FragmentCause::TooManyHeld, counters);
                }
            },
        };
        if self.entries.get(at).is_some_and(Datagram::complete) {
            self.free(at);
        }
        verdict
    }

    /// Packet `packet` is dropped for `cause`: counted, told, its verdict.
    fn refuse(&mut self, packet: usize, cause: FragmentCause, counters: &mut Counters) -> Verdict {
        counters.add(cause.counter(), 1);
        self.events.push(FragmentEvent::Dropped { packet, cause });
        cause.verdict()
    }

    /// The entry of `key`, found, or made in its bucket (in a free way, an expired one, or
    /// the one closest to its deadline, whose held packets are dropped).
    fn find_or_insert(&mut self, key: &DatagramKey, now_ms: u64, counters: &mut Counters) -> usize {
        let first = (self.hasher.hash_one(key) as usize & self.bucket_mask) * WAYS;
        let mut victim = first;
        for at in first..first + WAYS {
            let Some(d) = self.entries.get(at) else { break };
            if d.state != State::Free && d.key == *key {
                if d.expires_ms > now_ms {
                    return at;
                }
                self.expire(at, counters);
            }
            let (d, v) = (self.entries.get(at), self.entries.get(victim));
            if let (Some(d), Some(v)) = (d, v) {
                if d.state == State::Free || (v.state != State::Free && d.expires_ms < v.expires_ms) {
                    victim = at;
                }
            }
        }
        if self.entries.get(victim).is_some_and(|d| d.state != State::Free) {
            counters.add(Counter::FragmentEvictions, 1);
            self.expire(victim, counters);
        }
        if let Some(d) = self.entries.get_mut(victim) {
            let expires_ms = now_ms + self.config.timeout_ms;
            *d = Datagram { key: *key, state: State::Waiting, expires_ms, ..Datagram::FREE };
            self.live += 1;
            self.earliest_ms = self.earliest_ms.min(expires_ms);
        }
        victim
    }

    /// Takes a held slot for the datagram at `at`, within both bounds.
    fn hold(&mut self, at: usize) -> Option<HeldId> {
        let d = self.entries.get_mut(at)?;
        if d.n_held as usize >= self.config.held_per_datagram || self.free_slot == NONE {
            return None;
        }
        let id = self.free_slot;
        let slot = self.slots.get_mut(id as usize)?;
        self.free_slot = slot.next;
        *slot = HeldSlot { next: NONE, state: SlotState::Held };
        match self.slots.get_mut(d.held_tail as usize) {
            Some(tail) => tail.next = id,
            None => d.held_head = id,
        }
        d.held_tail = id;
        d.n_held += 1;
        self.held_now += 1;
        Some(HeldId(id))
    }

    /// Releases the held packets of the datagram at `at` with `verdict`.
    fn release_held(&mut self, at: usize, verdict: Verdict, cause: Option<FragmentCause>, counters: &mut Counters) {
        let Some(d) = self.entries.get_mut(at) else { return };
        let mut id = std::mem::replace(&mut d.held_head, NONE);
        d.held_tail = NONE;
        d.n_held = 0;
        while let Some(slot) = self.slots.get_mut(id as usize) {
            slot.state = SlotState::Released;
            self.releases.push(Release { id: HeldId(id), verdict, cause });
            self.held_now -= 1;
            match cause {
                Some(c) => counters.add(c.counter(), 1),
                None => counters.add(Counter::DropPolicy, u64::from(verdict.action.denies())),
            }
            id = slot.next;
        }
    }

    fn drop_datagram(&mut self, at: usize, cause: FragmentCause, counters: &mut Counters) {
        if let Some(d) = self.entries.get_mut(at) {
            if !matches!(d.state, State::Dropped(_)) {
                d.state = State::Dropped(cause);
            }
        }
        self.release_held(at, cause.verdict(), Some(cause), counters);
    }

    /// The datagram at `at` is forgotten; its held packets are dropped.
    fn expire(&mut self, at: usize, counters: &mut Counters) {
        let cause = FragmentCause::Timeout;
        self.release_held(at, cause.verdict(), Some(cause), counters);
        self.free(at);
    }

    fn free(&mut self, at: usize) {
        if let Some(d) = self.entries.get_mut(at) {
            if d.state != State::Free {
                d.state = State::Free;
                self.live -= 1;
            }
        }
    }

    /// Forgets the datagrams past their deadline: a walk over the table once the earliest
    /// deadline has passed, at most eight times per timeout (so a datagram lives at most an
    /// eighth of the timeout longer), and only while it tracks any.
    pub fn sweep(&mut self, now_ms: u64, counters: &mut Counters) {
        if self.live == 0 || now_ms < self.earliest_ms || now_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = now_ms + (self.config.timeout_ms / 8).max(1);
        let mut earliest = u64::MAX;
        for at in 0..self.entries.len() {
            let Some(d) = self.entries.get(at) else { break };
            if d.state == State::Free {
                continue;
            }
            if d.expires_ms <= now_ms {
                self.expire(at, counters);
            } else {
                earliest = earliest.min(d.expires_ms);
            }
        }
        self.earliest_ms = earliest;
    }

    /// Forgets every datagram, its held packets dropped (the end of the input).
    pub fn flush(&mut self, counters: &mut Counters) {
        for at in 0..self.entries.len() {
            if self.entries.get(at).is_some_and(|d| d.state != State::Free) {
                self.expire(at, counters);
            }
        }
    }
}

#[cfg(test)]
#[path = "fragments_tests.rs"]
pub(super) mod tests;
