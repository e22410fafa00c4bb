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
/// an eighth slot that always matches. The 8 fragments and masks are lanes of one `u128` each, so
/// all slots are compared at once with a few word operations (SWAR), portable and branch-free.
///
/// The prefixes fill the last lanes in ascending length; the lanes before them (at least lane 0)
/// hold the inherited value with mask 0. The last matching lane is the longest prefix.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct Bkt16 {
    /// Lane `i` is bits `16 i .. 16 i + 16`.
    frag: u128,
    mask: u128,
    value: [u32; 8],
}

const _: () = assert!(core::mem::size_of::<Bkt16>() == 64);

/// `0x7fff` in every 16-bit lane.
const LOW15: u128 = 0x7fff_7fff_7fff_7fff_7fff_7fff_7fff_7fff;

impl Bucket<u32> for Bkt16 {
    const CAP: usize = 7;
    const SPAN: u32 = 16;

    fn new(pos: u32, def: u32, pfx: &[Route<u32>]) -> Self {
        let mut b = Bkt16 { frag: 0, mask: 0, value: [def; 8] };
        let first = 8 - pfx.len().min(7);
        for ((lane, v), r) in (0u32..).zip(b.value.iter_mut()).skip(first).zip(pfx) {
            let frag = <u16 as Frag<u32>>::of(r.addr, pos);
            let mask = !(u16::MAX.checked_shr(u32::from(r.len).saturating_sub(pos)).unwrap_or(0));
            b.frag |= u128::from(frag) << (16 * lane);
            b.mask |= u128::from(mask) << (16 * lane);
            *v = r.value;
        }
        b
    }

    #[inline(always)]
    fn find(&self, key: u32, pos: u32) -> u32 {
        let kf = u64::from(<u16 as Frag<u32>>::of(key, pos)) * 0x0001_0001_0001_0001;
        let diff = ((u128::from(kf) << 64) | u128::from(kf)) ^ self.frag;
        let x = diff & self.mask;
        // Top bit of a lane set exactly when the lane is 0 (no carry crosses lanes).
        let zero = !(((x & LOW15) + LOW15) | x | LOW15);
        // Lane 0 always matches, so `zero` is not 0 and the lane is below 8.
        let lane = (127 - zero.leading_zeros()) / 16;
        self.value.get(lane as usize).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn touch(&self) -> u32 {
        self.value.first().copied().unwrap_or(0)
    }
}
