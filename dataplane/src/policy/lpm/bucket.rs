//! Leaf buckets: a handful of prefixes below one trie position, compared in one cache line.

use super::{LpmKey, Route};

/// The key bits from a bucket's position on, left-aligned in an integer of `BITS` bits.
pub trait Frag<K>: Copy + Eq + core::fmt::Debug + Send + Sync + 'static {
    const BITS: u32;
    const ZERO: Self;
    /// The bits of `key` from bit `pos` on (`pos < K::BITS`), left-aligned; zeros past the end.
    fn of(key: K, pos: u32) -> Self;
    /// Whether `self` and `other` agree on their first `BITS - shift` bits (`shift < BITS`).
    fn agrees(self, other: Self, shift: u8) -> bool;
    /// Some low bits, to make a load observable.
    fn low(self) -> u32;
}

macro_rules! frag {
    ($f:ty, $k:ty) => {
        impl Frag<$k> for $f {
            const BITS: u32 = <$f>::BITS;
            const ZERO: Self = 0;
            #[inline(always)]
            fn of(key: $k, pos: u32) -> Self {
                (key.wrapping_shl(pos) >> (<$k>::BITS - <$f>::BITS)) as $f
            }
            #[inline(always)]
            fn agrees(self, other: Self, shift: u8) -> bool {
                (self ^ other).wrapping_shr(u32::from(shift)) == 0
            }
            #[inline(always)]
            fn low(self) -> u32 {
                self as u32
            }
        }
    };
}
frag!(u16, u32);
frag!(u64, u128);
frag!(u128, u128);

/// What the trie needs from a bucket type.
pub trait Bucket<K>: Copy + core::fmt::Debug + Send + Sync + 'static {
    /// Most prefixes a bucket holds.
    const CAP: usize;
    /// How many key bits after its position a bucket compares: it holds prefixes of length at
    /// most `pos + SPAN`.
    const SPAN: u32;
    /// A bucket at bit `pos` inheriting `def`, holding `pfx`: at most `CAP` distinct prefixes
    /// agreeing on the first `pos` bits, sorted by ascending length, `pos < len <= pos + SPAN`.
    fn new(pos: u32, def: u32, pfx: &[Route<K>]) -> Self;
    /// Value of the longest prefix in the bucket containing `key`, else the inherited value.
    fn find(&self, key: K, pos: u32) -> u32;
    /// Reads the bucket's cache line(s).
    fn touch(&self) -> u32;
}

/// `N` prefixes as fragments of type `F`; 64 bytes for `<u16, 8>` and `<u64, 4>`, 128 for
/// `<u128, 5>`.
///
/// Slots are filled from the end in ascending prefix length; the unused ones at the front hold
/// fragment 0, shift 0 and the inherited value, so that when one matches (key fragment 0) it
/// yields the inherited value, which any matching real slot after it overrides.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct Bkt<F, const N: usize> {
    frag: [F; N],
    value: [u32; N],
    /// `F::BITS - (len - pos)`: the fragment bits a slot ignores.
    shift: [u8; N],
    def: u32,
}

const _: () = assert!(core::mem::size_of::<Bkt<u16, 8>>() == 64);
const _: () = assert!(core::mem::size_of::<Bkt<u64, 4>>() == 64);
const _: () = assert!(core::mem::size_of::<Bkt<u128, 5>>() == 128);

impl<K: LpmKey, F: Frag<K>, const N: usize> Bucket<K> for Bkt<F, N> {
    const CAP: usize = N;
    const SPAN: u32 = F::BITS;

    fn new(pos: u32, def: u32, pfx: &[Route<K>]) -> Self {
        let mut b = Bkt { frag: [F::ZERO; N], value: [def; N], shift: [0; N], def };
        let unused = N.saturating_sub(pfx.len());
        let slots = b.frag.iter_mut().zip(b.value.iter_mut()).zip(b.shift.iter_mut()).skip(unused);
        for (((f, v), s), r) in slots.zip(pfx) {
            *f = F::of(r.addr, pos);
            *v = r.value;
            *s = (F::BITS + pos).saturating_sub(u32::from(r.len)) as u8;
        }
        b
    }

    #[inline(always)]
    fn find(&self, key: K, pos: u32) -> u32 {
        let kf = F::of(key, pos);
        let mut found = self.def;
        for ((f, v), s) in self.frag.iter().zip(&self.value).zip(&self.shift) {
            if kf.agrees(*f, *s) {
                found = *v;
            }
        }
        found
    }

    #[inline(always)]
    fn touch(&self) -> u32 {
        // First and last field: both lines of a two-line bucket.
        self.frag.first().map_or(0, |f| f.low()) ^ self.def
    }
}

/// The IPv4 bucket: 7 prefixes as 16-bit fragments with 16-bit masks, and the inherited value as
/// an eighth slot that always matches, compared all at once with a few word operations (SWAR),
/// portable and branch-free.
///
/// Slots are numbered by priority: the prefixes fill the last slots in ascending length, the
/// slots before them (at least slot 0) hold the inherited value with mask 0, and the highest
/// matching slot is the longest prefix. Slot `s` is lane `s / 2` (bits `16 (s / 2)..`) of word
/// `s % 2`: interleaving the slots over the two words lets one shift fold both words' per-lane
/// results into one `u64` in which slot `s` is bit `8 s + 7`, so a single bit scan finds it.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct Bkt16 {
    frag: [u64; 2],
    mask: [u64; 2],
    value: [u32; 8],
}

const _: () = assert!(core::mem::size_of::<Bkt16>() == 64);

/// `0x7fff` in every 16-bit lane.
const LOW15: u64 = 0x7fff_7fff_7fff_7fff;
/// The top bit of every 16-bit lane.
const HIGH: u64 = !LOW15;
/// The top bit of every byte: where the folded word has the slot flags.
const FOLDED: u64 = 0x8080_8080_8080_8080;

/// The top bit of each 16-bit lane of `x` that is not 0 (no carry crosses lanes).
#[inline(always)]
fn nonzero_lanes(x: u64) -> u64 {
    (((x & LOW15) + LOW15) | x) & HIGH
}

impl Bucket<u32> for Bkt16 {
    const CAP: usize = 7;
    const SPAN: u32 = 16;

    fn new(pos: u32, def: u32, pfx: &[Route<u32>]) -> Self {
        let mut b = Bkt16 { frag: [0; 2], mask: [0; 2], value: [def; 8] };
        let first = 8 - pfx.len().min(7);
        for ((slot, v), r) in (0usize..).zip(b.value.iter_mut()).skip(first).zip(pfx) {
            let frag = <u16 as Frag<u32>>::of(r.addr, pos);
            let mask = !(u16::MAX.checked_shr(u32::from(r.len).saturating_sub(pos)).unwrap_or(0));
            let shift = 16 * (slot / 2);
            if let (Some(f), Some(m)) = (b.frag.get_mut(slot % 2), b.mask.get_mut(slot % 2)) {
                *f |= u64::from(frag) << shift;
                *m |= u64::from(mask) << shift;
            }
            *v = r.value;
        }
        b
    }

    #[inline(always)]
    fn find(&self, key: u32, pos: u32) -> u32 {
        let kf = u64::from(<u16 as Frag<u32>>::of(key, pos)) * 0x0001_0001_0001_0001;
        let [f0, f1] = self.frag;
        let [m0, m1] = self.mask;
        let even = nonzero_lanes((kf ^ f0) & m0);
        let odd = nonzero_lanes((kf ^ f1) & m1);
        // Slot flags at bit 8 s + 7 (odd slots stay at 16 j + 15, even ones move to 16 j + 7),
        // set where the slot matches. Slot 0 always matches, so the word is not 0.
        let matching = (odd | (even >> 8)) ^ FOLDED;
        let slot = (63 - (matching | 1).leading_zeros()) >> 3;
        self.value.get(slot as usize).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn touch(&self) -> u32 {
        self.value.first().copied().unwrap_or(0)
    }
}
