//! The flow key: a connection's 5-tuple in canonical order, and its symmetric hash.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::wire::{IpPair, PacketSummary};

/// The connection's 5-tuple with the lower (address, port) end first. 40 bytes, so the key
/// and the hot fields of an entry share one cache line.
///
/// Addresses and ports are held as they lie on the wire (`to_be` of the summary's values: the
/// frame's bytes read as native integers), and "lower" compares those integers: any fixed
/// order gives a canonical key, and this one costs the parse no byte swaps (the summary's
/// `from_be_bytes` and the key's `to_be` cancel). Nothing reads an address back from a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IPv6: lo address (its two halves), hi address (two halves). IPv4: 0, lo address and
    /// port (address << 16 | port), 0, hi address and port.
    addrs: [u64; 4],
    /// IPv6: lo port (bits 0..16), hi port (16..32), protocol (32..40), and bit 40. IPv4: the
    /// protocol (32..40) alone. One word, so that comparing keys is one 32-byte and one
    /// 8-byte comparison.
    ports: u64,
}

const V6: u64 = 1 << 40;

impl FlowKey {
    /// The key of a packet, and whether the packet travels from the `lo` end to the `hi` end.
    #[inline(always)]
    pub fn of(p: &PacketSummary) -> (FlowKey, bool) {
        let (key, forward, _) = FlowKey::of_hashed(p, &HashSeed::FIXED);
        (key, forward)
    }

    /// [`FlowKey::of`], and the key's hash under `seed` ([`FlowKey::hash_with`]) worked out
    /// in the family's own branch (the parse step's form: no second test of the family).
    #[inline(always)]
    pub fn of_hashed(p: &PacketSummary, seed: &HashSeed) -> (FlowKey, bool, u32) {
        match p.addrs {
            IpPair::V4 { src, dst } => {
                // (address, port) pairs compared as one integer each, in wire order.
                let a = (u64::from(src.to_be()) << 16) | u64::from(p.src_port.to_be());
                let b = (u64::from(dst.to_be()) << 16) | u64::from(p.dst_port.to_be());
                let forward = a <= b;
                let (lo, hi) = if forward { (a, b) } else { (b, a) };
                // Those integers are the key's words as they are; the protocol alone in the last.
                let key = FlowKey { addrs: [0, lo, 0, hi], ports: u64::from(p.protocol) << 32 };
                (key, forward, hash_v4(lo, hi, key.ports, seed))
            }
            IpPair::V6 { src, dst } => {
                let (a, b) = ((src.to_be(), p.src_port.to_be()), (dst.to_be(), p.dst_port.to_be()));
                let forward = a <= b;
                let (lo, hi) = if forward { (a, b) } else { (b, a) };
                let addrs = [(lo.0 >> 64) as u64, lo.0 as u64, (hi.0 >> 64) as u64, hi.0 as u64];
                let key = FlowKey { addrs, ports: FlowKey::v6_ports(lo.1, hi.1, p.protocol) };
                (key, forward, hash_v6(addrs, key.ports, seed))
            }
        }
    }

    /// The last word of an IPv6 key.
    #[inline(always)]
    fn v6_ports(lo_port: u16, hi_port: u16, protocol: u8) -> u64 {
        u64::from(lo_port) | (u64::from(hi_port) << 16) | (u64::from(protocol) << 32) | V6
    }

    pub fn protocol(&self) -> u8 {
        (self.ports >> 32) as u8
    }

    /// A symmetric hash of packet `p`'s key (both directions give the same value, the key is
    /// canonical) under fixed constants: for the software distributor, which must send a
    /// connection to the same worker from any process. The flow table hashes with its own
    /// secret ([`HashSeed`]).
    #[inline]
    pub fn hash_of(p: &PacketSummary) -> u32 {
        FlowKey::of_hashed(p, &HashSeed::FIXED).2
    }

    /// A symmetric hash keyed by `seed`.
    ///
    /// Folded 64x64->128-bit multiplies (as in wyhash's final mix): one multiply for IPv4,
    /// where a chain of xor-multiply-shift rounds and murmur3's finaliser took five to seven;
    /// every output bit depends on every key bit through the high half of the product. The
    /// seed words are xored into both factors, so without the seed a sender cannot compute
    /// which flows share a bucket (a CRC would not do: it is linear, two keys whose
    /// difference has a CRC of zero in the bucket bits collide under every seed).
    #[inline(always)]
    pub fn hash_with(&self, seed: &HashSeed) -> u32 {
        let [_, lo, _, hi] = self.addrs;
        if self.ports & V6 != 0 {
            hash_v6(self.addrs, self.ports, seed)
        } else {
            hash_v4(lo, hi, self.ports, seed)
        }
    }
}

/// The hash of an IPv4 key: its two ends (48 bits each) and the protocol, above the hi end,
/// fill two words.
#[inline(always)]
fn hash_v4(lo: u64, hi: u64, ports: u64, seed: &HashSeed) -> u32 {
    finish(lo, hi ^ (ports << 16), seed)
}

/// The hash of an IPv6 key: two independent multiplies (they run in parallel), one per
/// address, then the ports word.
#[inline(always)]
fn hash_v6([a, b, c, d]: [u64; 4], ports: u64, seed: &HashSeed) -> u32 {
    let s = &seed.0;
    finish(fold(a ^ s[0], b ^ s[1]) ^ fold(c ^ s[2], d ^ s[3]), ports, seed)
}

#[inline(always)]
fn finish(x: u64, y: u64, seed: &HashSeed) -> u32 {
    let h = fold(x ^ seed.0[4], y ^ seed.0[5]);
    (h ^ (h >> 32)) as u32
}

/// The secret of a flow table's hash: six words, drawn from the operating system's random
/// source for each table (see [`HashSeed::random`]). Flows that share a bucket cannot be
/// chosen by a sender who does not know it (hash flooding would fill a bucket and evict, or
/// leave without an entry, the connections that live there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashSeed([u64; 6]);

impl HashSeed {
    /// The constants of the unkeyed hash (wyhash's primes and the golden ratio).
    pub const FIXED: HashSeed = HashSeed([
        0xa076_1d64_78bd_642f,
        0xe703_7ed1_a0b4_28db,
        0x8ebc_6af0_9c88_c6e3,
        0x5899_65cc_7537_4cc3,
        0x1d8e_4e27_c47d_124f,
        0x9e37_79b9_7f4a_7c15,
    ]);

    /// A fresh secret. Std's `RandomState` is seeded from the operating system's random source
    /// (per thread, then incremented); its SipHash of the word index gives six independent
    /// words.
    pub fn random() -> HashSeed {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        let mut words = [0u64; 6];
        for (i, w) in (0u64..).zip(words.iter_mut()) {
            *w = state.hash_one(i);
        }
        HashSeed(words)
    }
}

/// The 128-bit product of `a` and `b`, its halves xored together.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}
