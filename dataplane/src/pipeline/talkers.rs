//! Top talkers: per worker, the heaviest sources of new connections, of ClientHellos and of
//! policy drops, each in a space-saving sketch (Metwally, Agrawal, El Abbadi 2005) of
//! [`TOP_ENTRIES`] entries, allocated when the pipeline is made.
//!
//! A sketch counts every source it holds; a source it does not hold takes the place of the
//! entry with the least count, inheriting that count as its possible overcount (`error`). So
//! with `n` counted in all, every source counted more than `n / k` times is held, a held
//! source's count is never below its true count, and `count - error` never above it.
//!
//! An update is O(log k) at worst: a hash index (open addressing, linear probing, at most a
//! quarter full) finds the entry, a min-heap of the entries by count finds the one to
//! replace. The usual update of a heavy source moves it down a heap where it already sits
//! low: O(1). A source never seen (a spoofed flood) costs a replacement: two probes, a
//! deletion from the index and a walk down the heap (`scripts/talkers-cost.sh` counts it).
//! No allocation, lock or atomic per update.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::source;
pub use super::source::Source;

/// Entries of each sketch (k): a source counted more than 1/k of a sketch's total is held.
pub const TOP_ENTRIES: usize = 128;
/// Server names kept per source of ClientHellos.
pub const SNIS_PER_SOURCE: usize = 4;
/// Bytes of a server name kept (its first).
pub const SNI_BYTES: usize = 64;

/// A held source: its count and how much of it may belong to sources it replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub source: Source,
    /// Never below the source's true count.
    pub count: u64,
    /// `count - error` is never above the true count.
    pub error: u64,
}

/// The first [`SNI_BYTES`] bytes of a server name and how often a source sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SniCount {
    len: u8,
    name: [u8; SNI_BYTES],
    /// Zero: the slot is free.
    pub count: u64,
}

impl Default for SniCount {
    fn default() -> Self {
        SniCount { len: 0, name: [0; SNI_BYTES], count: 0 }
    }
}

impl SniCount {
    pub fn name(&self) -> &[u8] {
        self.name.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// The server names of one source, a small space-saving of its own: a name not held takes
/// the least counted slot and its count plus one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SniSet {
    names: [SniCount; SNIS_PER_SOURCE],
}

impl SniSet {
    fn note(&mut self, name: &[u8]) {
        let name = name.get(..SNI_BYTES).unwrap_or(name);
        let mut least: Option<&mut SniCount> = None;
        for slot in self.names.iter_mut() {
            if slot.count > 0 && slot.name() == name {
                slot.count += 1;
                return;
            }
            if least.as_ref().is_none_or(|l| slot.count < l.count) {
                least = Some(slot);
            }
        }
        let Some(slot) = least else { return };
        let Some(to) = slot.name.get_mut(..name.len()) else { return };
        to.copy_from_slice(name);
        slot.len = name.len() as u8;
        slot.count += 1;
    }

    /// The names held, most counted first.
    pub fn names(&self) -> impl Iterator<Item = &SniCount> {
        let mut order: [usize; SNIS_PER_SOURCE] = std::array::from_fn(|i| i);
        order.sort_by_key(|&i| std::cmp::Reverse(self.names.get(i).map_or(0, |n| n.count)));
        order.into_iter().filter_map(|i| self.names.get(i)).filter(|n| n.count > 0)
    }
}

/// No entry (in the hash index).
const EMPTY: u16 = u16::MAX;
/// The largest k: index positions (4k of them) fit in a `u16`.
const MAX_ENTRIES: usize = 16383;

/// A heap node: an entry and its count (kept here too, so that sifting reads one array).
#[derive(Clone, Copy, Debug, Default)]
struct Node {
    count: u64,
    entry: u16,
}

/// A space-saving sketch of at most `k` sources (see the module doc), optionally with the
/// server names of each.
#[derive(Clone)]
pub struct SpaceSaving {
    /// The first `len` are held.
    entries: Box<[Counted]>,
    /// Per entry, when the sketch keeps names (else empty).
    snis: Box<[SniSet]>,
    len: usize,
    /// Min-heap of the entries by count (the first `len`).
    heap: Box<[Node]>,
    /// Entry -> its position in `heap`.
    at: Box<[u16]>,
    /// Entry -> its home position in `index` (its hash), for deletions.
    homes: Box<[u16]>,
    /// Hash index: source -> entry, at most a quarter full (short probes).
    index: Box<[u16]>,
    /// Keys the index's hash, so that no one can pick sources that collide in every gateway.
    seed: u64,
    /// Everything counted.
    total: u64,
}

impl SpaceSaving {
    /// A sketch of `k` entries (1 to 16383), keeping server names when `names`.
    pub fn new(k: usize, names: bool) -> SpaceSaving {
        let k = k.clamp(1, MAX_ENTRIES);
        SpaceSaving {
            entries: vec![Counted::default(); k].into_boxed_slice(),
            snis: vec![SniSet::default(); if names { k } else { 0 }].into_boxed_slice(),
            len: 0,
            heap: vec![Node::default(); k].into_boxed_slice(),
            at: vec![0; k].into_boxed_slice(),
            homes: vec![0; k].into_boxed_slice(),
            index: vec![EMPTY; (4 * k).next_power_of_two()].into_boxed_slice(),
            seed: source::random_seed(),
            total: 0,
        }
    }

    /// The entries it can hold (k).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// The sources held, in no order.
    pub fn entries(&self) -> &[Counted] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    /// The server names of entry `i` (of [`SpaceSaving::entries`]), when the sketch keeps them.
    pub fn snis(&self, i: usize) -> Option<&SniSet> {
        self.snis.get(i)
    }

    /// Everything counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// What a source not held may have been counted at most: the least count when the sketch
    /// is full (it replaced sources), else 0.
    pub fn floor(&self) -> u64 {
        if self.len < self.capacity() {
            return 0;
        }
        self.heap.first().map_or(0, |n| n.count)
    }

    /// Counts `source` `weight` more times; returns its entry.
    #[inline]
    pub fn add(&mut self, source: Source, weight: u64) -> Option<usize> {
        self.total = self.total.wrapping_add(weight);
        let home = self.home(source);
        let (pos, found) = self.find(home, source);
        if let Some(e) = found {
            let c = self.entries.get_mut(e)?;
            c.count = c.count.saturating_add(weight);
            let count = c.count;
            let at = usize::from(*self.at.get(e)?);
            self.heap.get_mut(at)?.count = count;
            self.sift_down(at);
            return Some(e);
        }
        if self.len < self.capacity() {
            let e = self.len;
            *self.entries.get_mut(e)? = Counted { source, count: weight, error: 0 };
            *self.index.get_mut(pos)? = e as u16;
            *self.homes.get_mut(e)? = home as u16;
            *self.heap.get_mut(e)? = Node { count: weight, entry: e as u16 };
            *self.at.get_mut(e)? = e as u16;
            self.len += 1;
            self.clear_names(e);
            self.sift_up(e);
            return Some(e);
        }
        self.replace_least(source, home, weight)
    }

    /// Counts a ClientHello from `source` naming `sni`.
    pub fn add_named(&mut self, source: Source, sni: Option<&[u8]>) {
        let Some(e) = self.add(source, 1) else { return };
        if let (Some(name), Some(set)) = (sni.filter(|n| !n.is_empty()), self.snis.get_mut(e)) {
            set.note(name);
        }
    }

    /// `source` (hashed to `home`) takes the place of the least counted entry, and its
    /// count as its error.
    fn replace_least(&mut self, source: Source, home: usize, weight: u64) -> Option<usize> {
        let least = *self.heap.first()?;
        let e = usize::from(least.entry);
        let old = self.entries.get(e)?.source;
        let old_home = usize::from(*self.homes.get(e)?);
        if let (pos, Some(_)) = self.find(old_home, old) {
            self.remove_index(pos);
        }
        // The removal may have moved entries: the free position is found again.
        let (pos, _) = self.find(home, source);
        *self.index.get_mut(pos)? = e as u16;
        *self.homes.get_mut(e)? = home as u16;
        let count = least.count.saturating_add(weight);
        *self.entries.get_mut(e)? = Counted { source, count, error: least.count };
        self.heap.first_mut()?.count = count;
        self.clear_names(e);
        self.sift_down(0);
        Some(e)
    }

    fn clear_names(&mut self, e: usize) {
        if let Some(set) = self.snis.get_mut(e) {
            *set = SniSet::default();
        }
    }

    #[inline(always)]
    fn home(&self, source: Source) -> usize {
        (source.hash(self.seed) >> 32) as usize & (self.index.len() - 1)
    }

    /// The index position holding `source` (whose home is `home`) and its entry, or the free
    /// position it would take.
    #[inline(always)]
    fn find(&self, home: usize, source: Source) -> (usize, Option<usize>) {
        let mask = self.index.len() - 1;
        let mut pos = home;
        // At most a quarter full: a free position comes within the index's length.
        for _ in 0..self.index.len() {
            let e = self.index.get(pos).copied().unwrap_or(EMPTY);
            if e == EMPTY {
                return (pos, None);
            }
            if self.entries.get(usize::from(e)).is_some_and(|c| c.source == source) {
                return (pos, Some(usize::from(e)));
            }
            pos = (pos + 1) & mask;
        }
        (pos, None)
    }

    /// Frees index position `hole`, moving back the entries after it that would no longer
    /// be found (deletion without tombstones in linear probing).
    fn remove_index(&mut self, mut hole: usize) {
        let mask = self.index.len() - 1;
        if let Some(h) = self.index.get_mut(hole) {
            *h = EMPTY;
        }
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.index.get(j).copied().unwrap_or(EMPTY);
            if e == EMPTY {
                return;
            }
            let Some(home) = self.homes.get(usize::from(e)).map(|&h| usize::from(h)) else { return };
            // It stays when its home lies cyclically in (hole, j].
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.index.swap(hole, j);
                hole = j;
            }
        }
    }

    /// Puts `node` at heap position `i`.
    #[inline(always)]
    fn place(&mut self, i: usize, node: Node) {
        if let Some(slot) = self.heap.get_mut(i) {
            *slot = node;
        }
        if let Some(a) = self.at.get_mut(usize::from(node.entry)) {
            *a = i as u16;
        }
    }

    /// Moves the node at `i` down while a child counts less (a hole moves, the node is
    /// written once).
    fn sift_down(&mut self, mut i: usize) {
        let Some(&node) = self.heap.get(i) else { return };
        let len = self.len;
        loop {
            let l = 2 * i + 1;
            let Some(&left) = self.heap.get(l).filter(|_| l < len) else { break };
            let (c, child) = match self.heap.get(l + 1) {
                Some(&right) if l + 1 < len && right.count < left.count => (l + 1, right),
                _ => (l, left),
            };
            if child.count >= node.count {
                break;
            }
            self.place(i, child);
            i = c;
        }
        self.place(i, node);
    }

    fn sift_up(&mut self, mut i: usize) {
        let Some(&node) = self.heap.get(i) else { return };
        while i > 0 {
            let parent = (i - 1) / 2;
            let Some(&p) = self.heap.get(parent) else { break };
            if p.count <= node.count {
                break;
            }
            self.place(i, p);
            i = parent;
        }
        self.place(i, node);
    }

    /// Becomes a copy of `other` (of the same k) without allocating.
    pub fn copy_from(&mut self, other: &SpaceSaving) {
        if self.entries.len() != other.entries.len()
            || self.snis.len() != other.snis.len()
            || self.index.len() != other.index.len()
        {
            *self = other.clone();
            return;
        }
        self.entries.copy_from_slice(&other.entries);
        self.snis.copy_from_slice(&other.snis);
        self.heap.copy_from_slice(&other.heap);
        self.at.copy_from_slice(&other.at);
        self.homes.copy_from_slice(&other.homes);
        self.index.copy_from_slice(&other.index);
        self.len = other.len;
        self.seed = other.seed;
        self.total = other.total;
    }

    /// Bytes held.
    fn memory_bytes(&self) -> usize {
        self.entries.len() * size_of::<Counted>()
            + self.snis.len() * size_of::<SniSet>()
            + self.heap.len() * size_of::<Node>()
            + (self.at.len() + self.homes.len() + self.index.len()) * size_of::<u16>()
    }
}

/// What one worker counts of its sources.
#[derive(Clone)]
pub struct Talkers {
    /// Flow entries created, by the connection's initiator.
    pub connections: SpaceSaving,
    /// Complete ClientHellos read (TCP or QUIC), by client, with their server names.
    pub hellos: SpaceSaving,
    /// Packets the policy dropped (DROP or REJECT), by sender.
    pub drops: SpaceSaving,
}

impl Talkers {
    pub fn new(k: usize) -> Talkers {
        Talkers {
            connections: SpaceSaving::new(k, false),
            hellos: SpaceSaving::new(k, true),
            drops: SpaceSaving::new(k, false),
        }
    }

    /// Becomes a copy of `other` without allocating (same k).
    pub fn copy_from(&mut self, other: &Talkers) {
        self.connections.copy_from(&other.connections);
        self.hellos.copy_from(&other.hellos);
        self.drops.copy_from(&other.drops);
    }

    /// The sketch of `by`.
    pub fn by(&self, by: TopBy) -> &SpaceSaving {
        match by {
            TopBy::Connections => &self.connections,
            TopBy::Hellos => &self.hellos,
            TopBy::Drops => &self.drops,
        }
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        [&self.connections, &self.hellos, &self.drops].iter().map(|s| s.memory_bytes()).sum()
    }
}

impl Default for Talkers {
    fn default() -> Self {
        Talkers::new(TOP_ENTRIES)
    }
}

/// What the top talkers are ranked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TopBy {
    Connections,
    Hellos,
    Drops,
}

impl TopBy {
    pub const ALL: [TopBy; 3] = [TopBy::Connections, TopBy::Hellos, TopBy::Drops];

    pub fn name(self) -> &'static str {
        match self {
            TopBy::Connections => "connections",
            TopBy::Hellos => "hellos",
            TopBy::Drops => "drops",
        }
    }

    pub fn parse(s: &str) -> Option<TopBy> {
        TopBy::ALL.into_iter().find(|b| b.name() == s)
    }
}
