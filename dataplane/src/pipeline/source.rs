//! A connection's source as the storm tools count it (the per-source limits and the top
//! talkers): an IPv4 address whole, an IPv6 address by its /64 (one host holds a /64 and may
//! use any address in it, so its addresses are one source), and its keyed hash.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::fmt;
use std::hash::BuildHasher;

use crate::wire::IpPair;

/// Stored as 128 bits: IPv4 as `::ffff:a.b.c.d` (low 64 bits never zero), IPv6 with its low
/// 64 bits cleared (always zero), so the two never meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source(u128);

impl Source {
    pub fn v4(address: u32) -> Source {
        Source(0xffff_0000_0000 | u128::from(address))
    }

    /// The /64 of `address`.
    pub fn v6(address: u128) -> Source {
        Source(address & !u128::from(u64::MAX))
    }

    /// The sender of a packet with these addresses (`sender`), or its receiver.
    #[inline]
    pub fn of(addrs: &IpPair, sender: bool) -> Source {
        match (*addrs, sender) {
            (IpPair::V4 { src, .. }, true) | (IpPair::V4 { dst: src, .. }, false) => Source::v4(src),
            (IpPair::V6 { src, .. }, true) | (IpPair::V6 { dst: src, .. }, false) => Source::v6(src),
        }
    }

    pub fn is_v4(self) -> bool {
        self.0 as u64 != 0
    }

    /// This source's hash under `seed`, a table's secret ([`random_seed`]): a sender who does
    /// not know it cannot choose sources that share a slot. Its high half is the better mixed.
    /// The two halves are folded first: sources of the two families fold alike only for an
    /// IPv6 /64 in `0:ffff::/32`, inside the reserved `::/8`.
    #[inline(always)]
    pub fn hash(self, seed: u64) -> u64 {
        let mut x = (self.0 as u64) ^ ((self.0 >> 64) as u64) ^ seed;
        x = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
    }
}

/// A fresh secret for a table of sources: std's `RandomState` is seeded from the operating
/// system's random source.
pub fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x736f_7572_6365u64)
}

/// `10.0.0.1`, or `2001:db8:1:2::/64`.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4() {
            write!(f, "{}", std::net::Ipv4Addr::from(self.0 as u32))
        } else {
            write!(f, "{}/64", std::net::Ipv6Addr::from(self.0))
        }
    }
}
