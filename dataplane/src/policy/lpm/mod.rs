//! Longest-prefix match for IPv4 (`u32` keys) and IPv6 (`u128` keys).
//!
//! Built once, off the fast path, from a list of prefixes; immutable afterwards.
//! Values are small integers (< 2^30): the policy compiler stores equivalence-class ids.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

/// Largest value an entry can carry.
pub const MAX_VALUE: u32 = (1 << 30) - 1;

/// A key type: `u32` for IPv4, `u128` for IPv6 (big-endian numeric value of the address).
pub trait LpmKey: Copy + Eq + Ord + core::fmt::Debug + core::hash::Hash + Send + Sync + 'static {
    const BITS: u32;
}
impl LpmKey for u32 {
    const BITS: u32 = 32;
}
impl LpmKey for u128 {
    const BITS: u32 = 128;
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

/// Immutable longest-prefix-match table.
pub struct Lpm<K: LpmKey> {
    _k: core::marker::PhantomData<K>,
}

impl<K: LpmKey> Lpm<K> {
    /// Build from routes; an address matched by no route gets `default`.
    /// When the same prefix appears twice, the later route wins.
    pub fn build(routes: &[Route<K>], default: u32) -> Result<Self, LpmError> {
        let _ = (routes, default);
        todo!("lpm helper")
    }

    /// Value of the longest prefix containing `key`, or the default.
    pub fn lookup(&self, key: K) -> u32 {
        let _ = key;
        todo!("lpm helper")
    }

    /// Bulk lookup: `out[i] = lookup(keys[i])` for `i < min(keys.len(), out.len())`.
    /// Interleaves the memory accesses of the whole batch so their cache misses overlap.
    pub fn lookup_bulk(&self, keys: &[K], out: &mut [u32]) {
        let _ = (keys, out);
        todo!("lpm helper")
    }

    /// Bytes of memory held by the table.
    pub fn memory_bytes(&self) -> usize {
        todo!("lpm helper")
    }
}

pub type Lpm4 = Lpm<u32>;
pub type Lpm6 = Lpm<u128>;
