//! The per-worker flow table: fixed capacity, preallocated, set-associative buckets.
//!
//! Both directions of a connection share one entry (`entry.rs`; the key is the 5-tuple in
//! canonical order, `key.rs`). Entries expire lazily by idle time; when both buckets of a new
//! connection are full, an entry whose verdict its later packets would get again gives way
//! (`evict.rs`), and when none may, the new connection goes without an entry.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod entry;
mod evict;
mod hello;
mod key;

pub use entry::{FlowEntry, FlowTimeouts, IdleTimes, TcpState};
pub use hello::HelloState;
pub use key::{FlowKey, HashSeed};

use super::huge_array::HugeArray;
use super::Hints;
use crate::counters::{Counter, Counters};
use std::num::NonZeroU32;
use wide::u16x16;

/// Entries per bucket. A bucket's signatures fill half a cache line, so one probe reads one
/// line of signatures and then the one entry whose signature matches. Sixteen ways keep
/// overflow (and so eviction of live flows) rare at half load.
pub const WAYS: usize = 16;

/// Most flows a table may be asked to hold: 2^26 (67,108,864), about 6 GB of entries,
/// signatures and reassembly states per worker. Entry indexes are `u32`, and a larger table
/// would fail to allocate: configurations and options are checked against this bound.
pub const MAX_CAPACITY: usize = 1 << 26;

/// `capacity` if it is from 1 to [`MAX_CAPACITY`]; otherwise what it must be.
pub fn check_capacity(capacity: usize) -> Result<usize, String> {
    if (1..=MAX_CAPACITY).contains(&capacity) {
        Ok(capacity)
    } else {
        Err(format!("from 1 to {MAX_CAPACITY}"))
    }
}

/// A flow-table capacity given on the command line (see [`check_capacity`]).
pub fn parse_capacity(s: &str) -> Result<usize, String> {
    let n = s.parse::<usize>().map_err(|_| format!("{s:?} is not a flow count from 1 to {MAX_CAPACITY}"))?;
    check_capacity(n).map_err(|range| format!("{s:?} is not a flow count {range}"))
}

/// A bucket's signatures: 0 marks a free way; otherwise 16 bits mixed from the entry's hash,
/// with the low bit forced to 1 (see `FlowTable::signature`). Half a cache line, so the
/// signatures of a table of 128k entries take 256 KB and mostly stay in L2; compared with one
/// SIMD equality. A way matches another flow's signature with odds of 1 in 32768: the key
/// comparison that follows costs one more entry read that often.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Signatures(u16x16);

const _: () = assert!(WAYS == 16, "a bucket's signatures are one u16x16");

impl Signatures {
    /// The ways whose signature is `sig`, as a bit mask.
    #[inline(always)]
    fn matching(&self, sig: u16) -> u32 {
        self.0.simd_eq(u16x16::splat(sig)).to_bitmask()
    }

    /// The first free way.
    #[inline]
    fn free_way(&self) -> Option<usize> {
        let free = self.matching(0);
        (free != 0).then(|| free.trailing_zeros() as usize)
    }

    #[inline(always)]
    fn get(&self, way: usize) -> u16 {
        self.0.as_array().get(way).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn set(&mut self, way: usize, sig: u16) {
        if let Some(s) = self.0.as_mut_array().get_mut(way) {
            *s = sig;
        }
    }
}

/// A flow table of fixed capacity.
pub struct FlowTable {
    sigs: HugeArray<Signatures>,
    /// `WAYS` entries per bucket.
    entries: HugeArray<FlowEntry>,
    /// The ClientHello reassembly state of each entry (same index; holds a pool buffer while
    /// collecting).
    hellos: HugeArray<HelloState>,
    mask: usize,
    /// The secret of this table's hash ([`FlowTable::hash`]).
    seed: HashSeed,
    /// The idle timeouts, as the entries take them.
    idle: IdleTimes,
    /// `FlowsCreated`, `Evictions`, `Expired`: written only by the owning worker.
    pub counters: Counters,
    live: usize,
    /// One bit per bucket: some flow of it went to its second choice (see `buckets_of`).
    spilled: Vec<u64>,
    /// Reassembly states of entries dropped (expired, evicted) while holding a hello buffer;
    /// the owner returns their buffers with [`FlowTable::drain_displaced`]. Preallocated.
    displaced: Vec<HelloState>,
}

/// Room for the buffers displaced between two drains (the pipeline drains after each lookup or
/// insertion that may free an entry: at most one waits; the rest is headroom for other callers).
const DISPLACED_CAPACITY: usize = 256;

/// The ways of a flow's two buckets whose signature matches its hash, found by
/// [`FlowTable::probe`]. Where the buckets' entries start follows from the hash, and is
/// worked out again only when the lowest candidate is not the flow (two stores fewer per
/// probe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    /// Bits 0..16: ways of the first bucket; bits 16..32: of the second.
    ways: u32,
    /// Entry index of the lowest candidate: worked out once, by the probe that prefetches it,
    /// rather than again by the lookup that reads it. [`NO_CANDIDATE`] (beyond every table)
    /// when there is none, so that reading it finds no entry without a test of `ways`.
    lowest: u32,
}

/// [`Candidates::lowest`] when no way matches.
const NO_CANDIDATE: u32 = u32::MAX;
const _: () = assert!(MAX_CAPACITY < NO_CANDIDATE as usize, "no entry index is NO_CANDIDATE");

impl Candidates {
    /// `ways` of buckets `b1` and `b2`, with the lowest one's index.
    #[inline(always)]
    fn of(ways: u32, b1: usize, b2: usize) -> Candidates {
        let lowest = if ways == 0 { NO_CANDIDATE } else { index_of(ways.trailing_zeros(), b1, b2) as u32 };
        Candidates { ways, lowest }
    }
}

/// The entry index of candidate bit `bit` (see [`Candidates::ways`]) of buckets `b1`, `b2`.
#[inline(always)]
fn index_of(bit: u32, b1: usize, b2: usize) -> usize {
    let (bucket, way) = if bit < WAYS as u32 { (b1, bit) } else { (b2, bit - WAYS as u32) };
    bucket * WAYS + way as usize
}

/// Where an entry lives: its index in the entry array (bucket * WAYS + way), stored as
/// `index << 1 | 1` so that `Option<Slot>` takes four bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(NonZeroU32);

impl Slot {
    /// The slot of entry `index` (below [`MAX_CAPACITY`], so the shift loses nothing).
    #[inline(always)]
    fn at(index: usize) -> Slot {
        Slot(NonZeroU32::MIN | ((index as u32) << 1))
    }

    #[inline(always)]
    fn index(self) -> usize {
        (self.0.get() >> 1) as usize
    }
}

impl FlowTable {
    /// Room for at least `capacity` flows (rounded up to a power-of-two number of buckets).
    pub fn new(capacity: usize, timeouts: FlowTimeouts) -> FlowTable {
        FlowTable::with_memory_advice(capacity, timeouts, &|_, _| {})
    }

    /// [`FlowTable::new`], calling `advise(start, len)` on each large array after reserving
    /// it and before touching it: the worker asks the kernel for transparent huge pages
    /// there, since every lookup lands on a random entry and 4 KB pages would miss the TLB.
    pub fn with_memory_advice(capacity: usize, timeouts: FlowTimeouts, advise: &dyn Fn(*const u8, usize)) -> FlowTable {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        FlowTable {
            sigs: HugeArray::new(buckets, advise),
            entries: HugeArray::new(buckets * WAYS, advise),
            hellos: HugeArray::new(buckets * WAYS, advise),
            mask: buckets - 1,
            seed: HashSeed::random(),
            idle: IdleTimes::new(timeouts),
            counters: Counters::default(),
            live: 0,
            spilled: vec![0; buckets.div_ceil(64)],
            displaced: Vec::with_capacity(DISPLACED_CAPACITY),
        }
    }

    /// `key`'s hash under this table's secret: what [`FlowTable::lookup`], [`FlowTable::insert`]
    /// and the staged lookup take.
    #[inline(always)]
    pub fn hash(&self, key: &FlowKey) -> u32 {
        key.hash_with(&self.seed)
    }

    /// The key of packet `p`, its direction and its hash under this table's secret
    /// ([`FlowKey::of_hashed`]).
    #[inline(always)]
    pub fn key_of(&self, p: &crate::wire::PacketSummary) -> (FlowKey, bool, u32) {
        FlowKey::of_hashed(p, &self.seed)
    }

    /// This (empty) table hashing with `seed` instead of its random secret: for tests that
    /// compare two tables entry by entry.
    #[cfg(test)]
    pub fn reseed(&mut self, seed: HashSeed) {
        assert!(self.is_empty(), "a table is seeded before it holds flows");
        self.seed = seed;
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// The memory the table holds (allocated at creation, never again): signatures, entries,
    /// their reassembly states, the bookkeeping beside them.
    pub fn memory_bytes(&self) -> usize {
        self.sigs.bytes()
            + self.entries.bytes()
            + self.hellos.bytes()
            + self.spilled.capacity() * size_of::<u64>()
            + self.displaced.capacity() * size_of::<HelloState>()
    }

    /// Flows currently held (expired ones are counted until they are found or replaced).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The table's counters with the `Flows` level filled in.
    pub fn totals(&self) -> Counters {
        let mut c = self.counters;
        c.set(Counter::Flows, self.live as u64);
        c
    }

    /// Whether some dropped entry's hello buffer waits for [`FlowTable::drain_displaced`].
    #[inline(always)]
    pub fn has_displaced(&self) -> bool {
        !self.displaced.is_empty()
    }

    /// Hand each displaced reassembly state to `release` (which returns its buffer).
    pub fn drain_displaced(&mut self, mut release: impl FnMut(&mut HelloState)) {
        for h in self.displaced.iter_mut() {
            release(h);
        }
        self.displaced.clear();
    }

    /// Remember a dropped entry's hello buffer; never grows past the preallocated room.
    fn displace(&mut self, index: usize) {
        let Some(&hello) = self.hellos.get(index) else { return };
        if hello.holds_slot() && self.displaced.len() < self.displaced.capacity() {
            self.displaced.push(hello);
        }
    }

    /// The hash's bits mixed into 16 (a multiply carries every bit into the top half): the
    /// flows of one bucket share the bits that picked it, first or second choice alike.
    fn signature(hash: u32) -> u16 {
        (hash.wrapping_mul(0x9e37_79b1) >> 16) as u16 | 1
    }

    /// The two buckets a flow may live in (the same one twice in a one-bucket table).
    /// A flow goes to its first bucket unless that is full, then to its second, and the
    /// first is marked as having spilled: lookups read the second bucket only for marked
    /// buckets (rare below full load), so a lookup costs one line of signatures, and a full
    /// bucket does not evict live flows while its neighbour has room (with one bucket alone,
    /// LRU eviction misses on every packet of a cyclic pattern).
    #[inline(always)]
    fn buckets_of(&self, hash: u32) -> (usize, usize) {
        // The hash is fully mixed: its low bits pick the first bucket, a rotation the second.
        let first = hash as usize & self.mask;
        let second = (hash.rotate_right(16) ^ 0x5bd1_e995) as usize & self.mask;
        (first, second)
    }

    /// Whether bucket `b` ever spilled a flow into its second choice.
    #[inline(always)]
    fn spilled(&self, b: usize) -> bool {
        self.spilled.get(b / 64).is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    /// Ways of bucket `b` whose signature is `sig`, as a bit mask.
    #[inline]
    fn candidates_in(&self, b: usize, sig: u16) -> u32 {
        self.sigs.get(b).map_or(0, |s| s.matching(sig))
    }

    /// The ways of both buckets whose signature matches `hash`.
    #[inline(always)]
    fn candidates(&self, hash: u32) -> Candidates {
        const _: () = assert!(2 * WAYS <= 32, "both buckets' ways must fit in a u32 mask");
        let (b1, b2) = self.buckets_of(hash);
        let sig = Self::signature(hash);
        let second = if b2 != b1 && self.spilled(b1) { self.candidates_in(b2, sig) } else { 0 };
        Candidates::of(self.candidates_in(b1, sig) | (second << WAYS), b1, b2)
    }

    /// The entry index holding `key` among the `candidates` of its buckets. The candidates
    /// must be current: nothing may free or fill a way between [`FlowTable::probe`] and
    /// [`FlowTable::resolve`] (which frees nothing for that reason).
    #[inline]
    fn find(&self, candidates: Candidates, hash: u32, key: &FlowKey) -> Option<(usize, &FlowEntry)> {
        let mut ways = candidates.ways;
        // The lowest candidate first, its index known (the usual lookup ends here; with no
        // candidate there is no entry at `NO_CANDIDATE`, and `ways` is 0).
        let lowest = candidates.lowest as usize;
        match self.entries.get(lowest) {
            Some(e) if e.key == *key => return Some((lowest, e)),
            _ => ways &= ways.wrapping_sub(1),
        }
        let (b1, b2) = self.buckets_of(hash);
        while ways != 0 {
            let index = index_of(ways.trailing_zeros(), b1, b2);
            match self.entries.get(index) {
                Some(e) if e.key == *key => return Some((index, e)),
                _ => ways &= ways - 1,
            }
        }
        None
    }

    /// Prefetch the signatures of the bucket `hash` falls in. A lookup in stages: the
    /// pipeline prefetches a packet's bucket as soon as it knows its hash, probes it a few
    /// packets later (prefetching the matching entry) and resolves it after the whole burst
    /// is parsed, so the cache misses of different packets overlap with useful work.
    #[inline(always)]
    pub fn prefetch_bucket<H: Hints>(&self, hash: u32, hint: H) {
        hint.prefetch(self.sigs.as_ptr().wrapping_add(self.buckets_of(hash).0));
    }

    /// The ways of `hash`'s buckets whose signature matches, as a bit mask, after
    /// prefetching the first of them: call it once the buckets' signatures have had time to
    /// arrive, and [`FlowTable::resolve`] once the entry has.
    ///
    /// The staged lookup's guess: the second bucket is read only when the first has no
    /// candidate (and spilled). A flow that lives in its second bucket while a flow of its
    /// first shares its signature (odds of 16 in 32768 for a full bucket) is then not found
    /// here, and [`FlowTable::lookup`] (all candidates) finds it at its packet's turn; a
    /// packet of a known flow in its first bucket, the usual case, skips the spill test.
    #[inline(always)]
    pub fn probe<H: Hints>(&self, hash: u32, hint: H) -> Candidates {
        let (b1, b2) = self.buckets_of(hash);
        let sig = Self::signature(hash);
        let ways = self.candidates_in(b1, sig);
        let first = b1 * WAYS;
        if ways != 0 {
            // The usual probe: the second bucket is not read, so its base is not needed.
            let lowest = first + ways.trailing_zeros() as usize;
            hint.prefetch(self.entries.as_ptr().wrapping_add(lowest));
            return Candidates { ways, lowest: lowest as u32 };
        }
        let ways = if b2 != b1 && self.spilled(b1) { self.candidates_in(b2, sig) << WAYS } else { 0 };
        let candidates = Candidates::of(ways, b1, b2);
        if ways != 0 {
            hint.prefetch(self.entries.as_ptr().wrapping_add(candidates.lowest as usize));
        }
        candidates
    }

    /// The live slot of `key` among the `candidates` [`FlowTable::probe`] found, and whether
    /// policy generation `generation` decided the flow: one read of the entry for both. An
    /// expired entry is not found, and left for [`FlowTable::lookup`] at the packet's own
    /// turn: freeing it here, before the burst's earlier packets create their flows, would
    /// give those flows room that one packet at a time would not have given them.
    #[inline]
    pub fn resolve(
        &self,
        key: &FlowKey,
        hash: u32,
        candidates: Candidates,
        now_ms: u64,
        generation: u64,
    ) -> (Option<Slot>, bool) {
        match self.find(candidates, hash, key) {
            Some((index, e)) if !e.expired(now_ms) => (Some(Slot::at(index)), e.decided_by(generation)),
            _ => (None, false),
        }
    }

    /// The entry of `key` if it is the lowest of the `candidates` [`FlowTable::probe`] found,
    /// live, and decided by policy generation `generation`: the known flow's usual case, its
    /// entry read once to settle it. `None` leaves the lookup to [`FlowTable::resolve`].
    #[inline(always)]
    pub fn known_mut(
        &mut self,
        key: &FlowKey,
        candidates: Candidates,
        now_ms: u64,
        generation: u64,
    ) -> Option<&mut FlowEntry> {
        // No candidate: `NO_CANDIDATE` is beyond the table.
        let e = self.entries.get_mut(candidates.lowest as usize)?;
        (e.key == *key && !e.expired(now_ms) && e.decided_by(generation)).then_some(e)
    }

    /// Find a live entry; an expired one found on the way is freed.
    pub fn lookup(&mut self, key: &FlowKey, hash: u32, now_ms: u64) -> Option<Slot> {
        let (index, _) = self.find(self.candidates(hash), hash, key)?;
        self.live_slot(index, now_ms)
    }

    /// The slot of entry `index`, or None after freeing it if it has expired.
    #[inline]
    fn live_slot(&mut self, index: usize, now_ms: u64) -> Option<Slot> {
        let expired = self.entries.get(index).is_some_and(|e| e.expired(now_ms));
        if expired {
            self.displace(index);
            if let Some(s) = self.sigs.get_mut(index / WAYS) {
                s.set(index % WAYS, 0);
            }
            self.live -= 1;
            self.counters.add(Counter::Expired, 1);
            return None;
        }
        Some(Slot::at(index))
    }

    /// Insert a new flow (the caller has checked it is absent). Takes a free way of its
    /// first bucket, else of its second (marking the first as spilled), else an expired
    /// entry, else the entry of the two buckets that gives way first (`evict.rs`). None when
    /// no entry may give way: the new connection goes without one.
    pub fn insert(&mut self, key: FlowKey, hash: u32, initiator_is_lo: bool, now_ms: u64) -> Option<Slot> {
        let (b1, b2) = self.buckets_of(hash);
        let free_way = |b: usize| self.sigs.get(b).and_then(Signatures::free_way);
        let index = if let Some(way) = free_way(b1) {
            self.live += 1;
            b1 * WAYS + way
        } else if let Some(way) = free_way(b2) {
            self.live += 1;
            if let Some(w) = self.spilled.get_mut(b1 / 64) {
                *w |= 1 << (b1 % 64);
            }
            b2 * WAYS + way
        } else {
            // Both full. The second bucket's entries are candidates only if it is searched.
            let second = if self.spilled(b1) { b2 * WAYS } else { b1 * WAYS };
            let indexes = (b1 * WAYS..b1 * WAYS + WAYS).chain(second..second + WAYS);
            if let Some(old) = indexes.clone().find(|&i| self.entries.get(i).is_some_and(|e| e.expired(now_ms))) {
                self.counters.add(Counter::Expired, 1);
                self.displace(old);
                old
            } else {
                let victim = evict::victim(indexes, &self.entries, &self.hellos)?;
                self.counters.add(Counter::Evictions, 1);
                self.displace(victim);
                victim
            }
        };
        self.counters.add(Counter::FlowsCreated, 1);
        if let Some(s) = self.sigs.get_mut(index / WAYS) {
            s.set(index % WAYS, Self::signature(hash));
        }
        if let Some(e) = self.entries.get_mut(index) {
            *e = FlowEntry::new(key, initiator_is_lo, now_ms, &self.idle);
        }
        if let Some(h) = self.hellos.get_mut(index) {
            *h = HelloState::for_protocol(key.protocol());
        }
        Some(Slot::at(index))
    }

    /// Frees `slot` at once: a connection the dataplane itself reset (REJECT). Its hello
    /// buffer, if it holds one, goes back through [`FlowTable::drain_displaced`].
    pub fn forget(&mut self, slot: Slot) {
        let index = slot.index();
        if !self.in_use(index) {
            return;
        }
        self.displace(index);
        if let Some(s) = self.sigs.get_mut(index / WAYS) {
            s.set(index % WAYS, 0);
        }
        self.live -= 1;
    }

    /// Whether `slot` still holds the flow `key` (an insertion may have reused it).
    pub fn holds(&self, slot: Slot, key: &FlowKey) -> bool {
        let index = slot.index();
        self.in_use(index) && self.entries.get(index).is_some_and(|e| e.key == *key)
    }

    /// Entries holding a flow, and how many of them hold a ClientHello buffer.
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        let used: Vec<usize> = (0..self.capacity()).filter(|&i| self.in_use(i)).collect();
        let buffers = used.iter().filter(|&&i| self.hellos.get(i).is_some_and(|h| h.holds_slot())).count();
        (used.len(), buffers)
    }

    /// Whether entry `index` holds a flow (its signature is set).
    #[inline(always)]
    fn in_use(&self, index: usize) -> bool {
        self.sigs.get(index / WAYS).is_some_and(|s| s.get(index % WAYS) != 0)
    }

    /// The idle timeouts entries take ([`FlowEntry::observe`]).
    #[inline(always)]
    pub fn idle_times(&self) -> &IdleTimes {
        &self.idle
    }

    pub fn entry_mut(&mut self, slot: Slot) -> Option<&mut FlowEntry> {
        self.entries.get_mut(slot.index())
    }

    /// The entry at `slot`, and a handle on its ClientHello reassembly state that reads it
    /// only when asked (the states are a parallel array: a packet of a decided flow on the
    /// general path should not pay a cache miss for one it does not need).
    pub fn entry_and_hello_mut(&mut self, slot: Slot) -> Option<(&mut FlowEntry, HelloOf<'_>)> {
        let index = slot.index();
        let e = self.entries.get_mut(index)?;
        Some((e, HelloOf { hellos: &mut self.hellos, index }))
    }
}

/// The ClientHello reassembly state of one entry, read on demand ([`HelloOf::get`]).
pub struct HelloOf<'t> {
    hellos: &'t mut HugeArray<HelloState>,
    index: usize,
}

impl HelloOf<'_> {
    #[inline]
    pub fn get(&mut self) -> Option<&mut HelloState> {
        self.hellos.get_mut(self.index)
    }
}

#[cfg(test)]
mod layout {
    #[test]
    fn an_entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<super::FlowKey>(), 40);
        assert_eq!(std::mem::size_of::<super::FlowEntry>(), 64);
        assert_eq!(std::mem::size_of::<super::Signatures>(), 32);
    }
}
