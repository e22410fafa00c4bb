//! Longest-prefix match for IPv4 (`u32` keys) and IPv6 (`u128` keys).
//!
//! Built once, off the fast path, from a list of prefixes; immutable afterwards.
//! Values are small integers (< 2^30): the policy compiler stores equivalence-class ids.
//!
//! # Layout
//!
//! A multibit trie with leaf *buckets* for sparse subtrees:
//!
//! * a direct **top table** of 2^16 entries indexed by the first 16 key bits (256 KiB, stays in
//!   L2 cache);
//! * **nodes** of 256 entries, each consuming the next 8 key bits, only where a subtree holds more
//!   prefixes than a bucket can;
//! * **buckets** of a few prefixes in one 64-byte cache line: for IPv4 7 prefixes as 16-bit
//!   lanes of two `u64` compared all at once (SWAR), for IPv6 4 prefixes reaching at most 64 bits
//!   below the bucket; plus a two-line *long* bucket (5 prefixes) for IPv6 prefixes reaching
//!   further (host routes in sparse regions).
//!
//! Every table entry is a tagged `u32`: the top two bits say what the low 30 hold — a value
//! (a leaf), a node index, a bucket index or a long-bucket index. A bucket stores, for each
//! prefix, the key bits after the bucket's position (left-aligned), how many of them to compare
//! and the value; plus the value inherited from above (the longest prefix covering the whole
//! bucket). It compares the key against every slot without branches; slots are in ascending
//! length, so the last match is the longest.
//!
//! A random `/24` (or `/48`) therefore costs one top-table read (cache hit) and one bucket line
//! (the only DRAM access). [`Lpm::lookup_bulk`] works on batches of 64 keys in passes whose loads
//! are independent, so the cache misses of the batch are in flight together, without prefetch
//! intrinsics: the top entries of all keys; then one node level per pass while any key is at a
//! node; a touch of every bucket line; the resolution of each key (cache hits).
//!
//! For IPv4 the top table's leaves become buckets without prefixes (one per distinct value), so
//! that in the common batch — no key at a node — every key ends in a bucket at bit 16. Such a
//! batch takes a fast path: no tags to branch on per key (the leaf/bucket mix of random keys
//! mispredicted often), a constant bucket position, no positions to track. At 100k routes the
//! resolution is compute-bound (the lines are in cache by then), so its instruction count is what
//! the fast path and the IPv4 bucket layout minimise.
//!
//! Limits: fewer than 2^30 routes (indices are 30 bits); values at most [`MAX_VALUE`].
//!
//! # Build
//!
//! Routes are validated, host bits cleared, sorted by `(addr, len)`, and duplicates collapsed
//! (the later route wins). Prefixes up to /16 are expanded into top-table ranges in ascending
//! length order (longer overwrite shorter), which gives each top slot its inherited value. The
//! longer ones are grouped per top slot and placed recursively: at bit `pos` with inherited value
//! `def`, an empty set is a plain leaf `def`, a set that fits a bucket becomes a bucket, anything
//! else a node whose slots get their values from the prefixes ending within its 8 bits and whose
//! longer prefixes recurse per slot.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![forbid(unsafe_code)]

mod bucket;
#[cfg(test)]
mod tests;

#[doc(hidden)]
pub use bucket::{Bkt, Bkt16, Bucket, Frag};

/// Largest value an entry can carry.
pub const MAX_VALUE: u32 = (1 << 30) - 1;

/// Key bits resolved by the top table.
const TOP_BITS: u32 = 16;
/// Entries of the top table.
const TOP_SIZE: usize = 1 << TOP_BITS;
/// Key bits resolved by one node.
const STRIDE: u32 = 8;
/// Most prefixes a bucket of any kind holds.
const BUCKET_MAX: usize = 8;
const _: () = assert!(<u32 as LpmKey>::Short::CAP <= BUCKET_MAX && <u128 as LpmKey>::Short::CAP <= BUCKET_MAX);
const _: () = assert!(<u32 as LpmKey>::Long::CAP <= BUCKET_MAX && <u128 as LpmKey>::Long::CAP <= BUCKET_MAX);

/// Keys looked up together by [`Lpm::lookup_bulk`].
const BATCH: usize = 64;

const TAG_SHIFT: u32 = 30;
const INDEX_MASK: u32 = (1 << TAG_SHIFT) - 1;
const TAG_LEAF: u32 = 0;
const TAG_NODE: u32 = 1;
const TAG_SHORT: u32 = 2;
const TAG_LONG: u32 = 3;

/// A key type: `u32` for IPv4, `u128` for IPv6 (big-endian numeric value of the address).
pub trait LpmKey: Copy + Eq + Ord + core::fmt::Debug + core::hash::Hash + Send + Sync + 'static {
    const BITS: u32;
    /// The one-line bucket.
    #[doc(hidden)]
    type Short: Bucket<Self>;
    /// The bucket used when prefixes reach further below the bucket than `Short` compares.
    #[doc(hidden)]
    type Long: Bucket<Self>;
    /// Whether the leaves of the top table become prefix-less buckets (see
    /// `Builder::leaves_to_buckets`).
    #[doc(hidden)]
    const LEAF_BUCKETS: bool;
    /// `self` with every bit after the first `len` cleared (`len >= BITS` keeps all bits).
    fn masked(self, len: u32) -> Self;
    /// The first 16 bits: the top-table index.
    #[doc(hidden)]
    fn top(self) -> usize;
    /// The 8 bits starting at bit `pos` (counted from the most significant bit); `pos < BITS`.
    #[doc(hidden)]
    fn byte_at(self, pos: u32) -> usize;
}

impl LpmKey for u32 {
    const BITS: u32 = 32;
    type Short = Bkt16;
    // Never used: every IPv4 bucket sits at bit 16 or 24, where 16 bits reach the end.
    type Long = Bkt16;
    // The top table leads to a bucket for most keys of a large table: worth removing the rest.
    const LEAF_BUCKETS: bool = true;
    #[inline(always)]
    fn masked(self, len: u32) -> Self {
        self & !u32::MAX.checked_shr(len).unwrap_or(0)
    }
    #[inline(always)]
    fn top(self) -> usize {
        (self >> 16) as usize
    }
    #[inline(always)]
    fn byte_at(self, pos: u32) -> usize {
        (self.wrapping_shl(pos) >> 24) as usize
    }
}

impl LpmKey for u128 {
    const BITS: u32 = 128;
    type Short = Bkt<u64, 4>;
    type Long = Bkt<u128, 5>;
    // IPv6 batches meet nodes and long buckets often enough that the general path runs anyway.
    const LEAF_BUCKETS: bool = false;
    #[inline(always)]
    fn masked(self, len: u32) -> Self {
        self & !u128::MAX.checked_shr(len).unwrap_or(0)
    }
    #[inline(always)]
    fn top(self) -> usize {
        (self >> 112) as usize
    }
    #[inline(always)]
    fn byte_at(self, pos: u32) -> usize {
        (self.wrapping_shl(pos) >> 120) as usize
    }
}

/// One route: `addr/len -> value`. Host bits of `addr` beyond `len` are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route<K> {
    pub addr: K,
    pub len: u8,
    pub value: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LpmError {
    #[error("prefix length {len} is longer than the address ({bits} bits)")]
    PrefixTooLong { len: u8, bits: u32 },
    #[error("value {0} is larger than the maximum {MAX_VALUE}")]
    ValueTooLarge(u32),
}

/// Shape and size of a built table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LpmStats {
    /// Distinct prefixes after duplicates are collapsed.
    pub prefixes: usize,
    /// 256-entry nodes below the top table.
    pub nodes: usize,
    /// One-line buckets.
    pub buckets: usize,
    /// Two-line buckets (IPv6 prefixes more than 64 bits below their bucket).
    pub long_buckets: usize,
    /// Most nodes on one path below the top table.
    pub max_depth: usize,
    /// Same as [`Lpm::memory_bytes`].
    pub memory: usize,
}

/// Immutable longest-prefix-match table.
#[derive(Clone)]
pub struct Lpm<K: LpmKey> {
    /// Tagged entries. (An array, so that indexing it with 16 bits needs no bounds check.)
    top: Box<[u32; TOP_SIZE]>,
    nodes: Vec<[u32; 256]>,
    short: Vec<K::Short>,
    long: Vec<K::Long>,
    /// The value of a key no route covers (the `/0` route when there is one).
    default: u32,
    prefixes: usize,
    max_depth: usize,
}

impl<K: LpmKey> core::fmt::Debug for Lpm<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lpm").field("default", &self.default).field("stats", &self.stats()).finish()
    }
}

#[inline(always)]
fn tag(entry: u32) -> u32 {
    entry >> TAG_SHIFT
}

#[inline(always)]
fn index(entry: u32) -> usize {
    (entry & INDEX_MASK) as usize
}

/// The entry's index if it has tag `t`, else 0.
#[inline(always)]
fn select_index(entry: u32, t: u32) -> usize {
    (entry & INDEX_MASK & all_if(tag(entry) == t)) as usize
}

/// All ones if `c`, else 0.
#[inline(always)]
fn all_if(c: bool) -> u32 {
    u32::from(c).wrapping_neg()
}

impl<K: LpmKey> Lpm<K> {
    /// Build from routes; an address matched by no route gets `default`.
    /// When the same prefix appears twice, the later route wins.
    pub fn build(routes: &[Route<K>], default: u32) -> Result<Self, LpmError> {
        if default > MAX_VALUE {
            return Err(LpmError::ValueTooLarge(default));
        }
        let mut ps = Vec::with_capacity(routes.len());
        for r in routes {
            if u32::from(r.len) > K::BITS {
                return Err(LpmError::PrefixTooLong { len: r.len, bits: K::BITS });
            }
            if r.value > MAX_VALUE {
                return Err(LpmError::ValueTooLarge(r.value));
            }
            ps.push(Route { addr: r.addr.masked(u32::from(r.len)), len: r.len, value: r.value });
        }
        // Stable: duplicates stay in input order, and the later one's value is kept.
        ps.sort_by(|a, b| a.addr.cmp(&b.addr).then(a.len.cmp(&b.len)));
        ps.dedup_by(|later, kept| {
            let same = later.addr == kept.addr && later.len == kept.len;
            if same {
                kept.value = later.value;
            }
            same
        });

        let mut top: Box<[u32; TOP_SIZE]> = match vec![default; TOP_SIZE].into_boxed_slice().try_into() {
            Ok(top) => top,
            Err(_) => Box::new([default; TOP_SIZE]),
        };
        let mut upper: Vec<Route<K>> = ps.iter().filter(|r| u32::from(r.len) <= TOP_BITS).copied().collect();
        upper.sort_by_key(|r| r.len);
        for r in &upper {
            let start = r.addr.top();
            let count = 1usize << (TOP_BITS - u32::from(r.len));
            if let Some(range) = top.get_mut(start..start + count) {
                range.fill(r.value);
            }
        }
        let default = upper.first().filter(|r| r.len == 0).map_or(default, |r| r.value);

        let mut b = Builder::<K> { nodes: Vec::new(), short: Vec::new(), long: Vec::new(), max_depth: 0 };
        let lower: Vec<Route<K>> = ps.iter().filter(|r| u32::from(r.len) > TOP_BITS).copied().collect();
        for group in lower.chunk_by(|a, c| a.addr.top() == c.addr.top()) {
            let Some(slot) = group.first().map(|r| r.addr.top()) else { continue };
            if let Some(entry) = top.get_mut(slot) {
                *entry = b.place(TOP_BITS, *entry, group, 0);
            }
        }

        // Only when there are buckets at all; else every key is at a leaf and the general path
        // resolves them without mispredictions.
        if K::LEAF_BUCKETS && !b.short.is_empty() {
            b.leaves_to_buckets(&mut top[..]);
        }
        let mut nodes = b.nodes;
        let mut short = b.short;
        let mut long = b.long;
        nodes.shrink_to_fit();
        short.shrink_to_fit();
        long.shrink_to_fit();
        Ok(Lpm { top, nodes, short, long, default, prefixes: ps.len(), max_depth: b.max_depth })
    }

    /// Value of the longest prefix containing `key`, or the default.
    #[inline]
    pub fn lookup(&self, key: K) -> u32 {
        let (entry, pos) = self.walk(self.top_entry(key), key);
        self.finish(entry, pos, key)
    }

    /// Resolves a leaf or bucket entry reached at bit `pos`. (Branching on the tag measured
    /// better than evaluating both bucket kinds and selecting: the bucket line is in cache by then,
    /// so a mispredicted branch costs little, and the long IPv6 bucket is expensive to evaluate.)
    #[inline(always)]
    fn finish(&self, entry: u32, pos: u32, key: K) -> u32 {
        let i = index(entry);
        match tag(entry) {
            TAG_LEAF => entry,
            TAG_SHORT => self.short.get(i).map_or(self.default, |b| b.find(key, pos)),
            TAG_LONG => self.long.get(i).map_or(self.default, |b| b.find(key, pos)),
            _ => self.default,
        }
    }

    /// Bulk lookup: `out[i] = lookup(keys[i])` for `i < min(keys.len(), out.len())`.
    /// Interleaves the memory accesses of the whole batch so their cache misses overlap.
    pub fn lookup_bulk(&self, keys: &[K], out: &mut [u32]) {
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            self.batch(keys, out);
        }
    }

    /// Bytes of memory held by the table.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + core::mem::size_of::<[u32; TOP_SIZE]>()
            + self.nodes.capacity() * core::mem::size_of::<[u32; 256]>()
            + self.short.capacity() * core::mem::size_of::<K::Short>()
            + self.long.capacity() * core::mem::size_of::<K::Long>()
    }

    /// Shape and size of the table.
    pub fn stats(&self) -> LpmStats {
        LpmStats {
            prefixes: self.prefixes,
            nodes: self.nodes.len(),
            buckets: self.short.len(),
            long_buckets: self.long.len(),
            max_depth: self.max_depth,
            memory: self.memory_bytes(),
        }
    }

    /// The value of a key no route covers: the `/0` route's, or the `default` given to `build`.
    pub fn default_value(&self) -> u32 {
        self.default
    }

    #[inline(always)]
    fn top_entry(&self, key: K) -> u32 {
        self.top.get(key.top()).copied().unwrap_or(self.default)
    }

    /// Follows node entries from the top entry; returns the first non-node entry and the bit
    /// position it resolves from.
    #[inline(always)]
    fn walk(&self, mut entry: u32, key: K) -> (u32, u32) {
        let mut pos = TOP_BITS;
        // `pos < BITS` holds by construction (nodes sit at most at BITS - 8); it also bounds the loop.
        while tag(entry) == TAG_NODE && pos < K::BITS {
            entry = self.node_entry(entry, key, pos);
            pos += STRIDE;
        }
        (entry, pos)
    }

    /// The entry for `key` in the node `entry` points to, which sits at bit `pos`.
    #[inline(always)]
    fn node_entry(&self, entry: u32, key: K, pos: u32) -> u32 {
        self.nodes.get(index(entry)).and_then(|node| node.get(key.byte_at(pos))).copied().unwrap_or(self.default)
    }

    /// Loads (part of) the bucket line an entry points to, so that it is in cache when resolved.
    /// Branch-free (a leaf entry touches bucket 0), so that a mispredicted tag cannot hold back
    /// the loads of the following keys.
    #[inline(always)]
    fn touch(&self, entry: u32) -> u32 {
        self.short.get(select_index(entry, TAG_SHORT)).map_or(0, |b| b.touch())
            ^ self.long.get(select_index(entry, TAG_LONG)).map_or(0, |b| b.touch())
    }

    /// Up to `BATCH` keys, in passes whose loads are independent of each other, so that the
    /// cache misses of the whole batch are in flight together. The first pass reads the top
    /// entries and touches the bucket lines they point to. When no key is at a node (the common
    /// case: nodes exist only in dense regions) the second pass resolves every key from cache;
    /// else the node levels are walked one pass per level before the buckets are touched again.
    #[inline]
    fn batch(&self, keys: &[K], out: &mut [u32]) {
        let mut entries = [0u32; BATCH];
        let mut all_short = true;
        for (e, k) in entries.iter_mut().zip(keys) {
            *e = self.top_entry(*k);
            all_short &= tag(*e) == TAG_SHORT;
        }
        if all_short {
            let mut touched = 0u32;
            for e in entries.iter().take(keys.len()) {
                touched ^= self.short.get(index(*e)).map_or(0, |b| b.touch());
            }
            core::hint::black_box(touched);
            for ((o, e), k) in out.iter_mut().zip(&entries).zip(keys) {
                *o = self.short.get(index(*e)).map_or(self.default, |b| b.find(*k, TOP_BITS));
            }
            return;
        }
        let mut at_node = entries.iter().take(keys.len()).any(|e| tag(*e) == TAG_NODE);
        let mut positions = [TOP_BITS; BATCH];
        while at_node {
            at_node = false;
            for ((e, p), k) in entries.iter_mut().zip(positions.iter_mut()).zip(keys) {
                if tag(*e) == TAG_NODE && *p < K::BITS {
                    *e = self.node_entry(*e, *k, *p);
                    *p += STRIDE;
                    at_node |= tag(*e) == TAG_NODE && *p < K::BITS;
                }
            }
        }
        let mut touched = 0u32;
        for e in entries.iter().take(keys.len()) {
            touched ^= self.touch(*e);
        }
        core::hint::black_box(touched);
        for (((o, e), p), k) in out.iter_mut().zip(&entries).zip(&positions).zip(keys) {
            *o = self.finish(*e, *p, *k);
        }
    }
}

struct Builder<K: LpmKey> {
    nodes: Vec<[u32; 256]>,
    short: Vec<K::Short>,
    long: Vec<K::Long>,
    max_depth: usize,
}

impl<K: LpmKey> Builder<K> {
    /// Replaces every leaf of the top table by a bucket holding no prefix (one per distinct
    /// value), so that a batch whose keys all end in buckets resolves them without looking at
    /// tags: no branch on the leaf/bucket mix of the keys.
    fn leaves_to_buckets(&mut self, top: &mut [u32]) {
        let mut shared = rustc_hash::FxHashMap::default();
        // Runs of one value are common (a short prefix covers many slots): skip the map for them.
        let mut last: Option<(u32, u32)> = None;
        for e in top.iter_mut().filter(|e| tag(**e) == TAG_LEAF) {
            let value = *e;
            *e = match last {
                Some((v, entry)) if v == value => entry,
                _ => *shared.entry(value).or_insert_with(|| {
                    let entry = (TAG_SHORT << TAG_SHIFT) | self.short.len() as u32;
                    self.short.push(K::Short::new(TOP_BITS, value, &[]));
                    entry
                }),
            };
            last = Some((value, *e));
        }
    }

    /// Places `ps` — distinct prefixes sorted by `(addr, len)`, all longer than `pos` and agreeing
    /// on the first `pos` bits — below a slot whose inherited value is `def`; returns the entry.
    fn place(&mut self, pos: u32, def: u32, ps: &[Route<K>], depth: usize) -> u32 {
        let Some(&first) = ps.first() else { return def };
        let reach = ps.iter().map(|r| u32::from(r.len) - pos).max().unwrap_or(0);
        // A bucket's few prefixes, by ascending length, sorted on the stack: a large table has
        // tens of thousands of buckets.
        let by_length = |buf: &mut [Route<K>; BUCKET_MAX]| {
            let n = ps.len().min(BUCKET_MAX);
            let sorted = buf.get_mut(..n).unwrap_or(&mut []);
            sorted.copy_from_slice(ps.get(..n).unwrap_or(&[]));
            sorted.sort_unstable_by_key(|r| r.len);
            n
        };
        if ps.len() <= K::Short::CAP && reach <= K::Short::SPAN {
            let mut buf = [first; BUCKET_MAX];
            let n = by_length(&mut buf);
            let entry = (TAG_SHORT << TAG_SHIFT) | self.short.len() as u32;
            self.short.push(K::Short::new(pos, def, buf.get(..n).unwrap_or(&[])));
            return entry;
        }
        if ps.len() <= K::Long::CAP && reach <= K::Long::SPAN {
            let mut buf = [first; BUCKET_MAX];
            let n = by_length(&mut buf);
            let entry = (TAG_LONG << TAG_SHIFT) | self.long.len() as u32;
            self.long.push(K::Long::new(pos, def, buf.get(..n).unwrap_or(&[])));
            return entry;
        }

        // A node. Distinct prefixes longer than `pos` number at most 2^(BITS-pos+1), more than a
        // bucket holds only while `pos + STRIDE <= BITS`.
        let depth = depth + 1;
        self.max_depth = self.max_depth.max(depth);
        let me = self.nodes.len();
        self.nodes.push([def; 256]);
        let end = pos + STRIDE;
        let mut slots = [def; 256];
        let mut ending: Vec<Route<K>> = ps.iter().filter(|r| u32::from(r.len) <= end).copied().collect();
        ending.sort_by_key(|r| r.len);
        for r in &ending {
            let start = r.addr.byte_at(pos);
            let count = 1usize << (end - u32::from(r.len));
            if let Some(range) = slots.get_mut(start..start + count) {
                range.fill(r.value);
            }
        }
        let mut entries = slots;
        let below: Vec<Route<K>> = ps.iter().filter(|r| u32::from(r.len) > end).copied().collect();
        for group in below.chunk_by(|a, c| a.addr.byte_at(pos) == c.addr.byte_at(pos)) {
            let Some(slot) = group.first().map(|r| r.addr.byte_at(pos)) else { continue };
            let inherited = slots.get(slot).copied().unwrap_or(def);
            let entry = self.place(end, inherited, group, depth);
            if let Some(e) = entries.get_mut(slot) {
                *e = entry;
            }
        }
        if let Some(node) = self.nodes.get_mut(me) {
            *node = entries;
        }
        (TAG_NODE << TAG_SHIFT) | me as u32
    }
}

pub type Lpm4 = Lpm<u32>;
pub type Lpm6 = Lpm<u128>;
