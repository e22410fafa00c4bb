//! Header fields by name, and the reads that cannot panic.
//!
//! Each header module has a `field` table: a single byte is an index (`usize`), a wider field a
//! [`Field`] (its byte range), what follows a header a [`Rest`]. The checked views and the
//! straight-line parser ([`super::plain`]) both read through these tables, so an offset is
//! written once.
//!
//! Every view validates its lengths in `new_checked`, and `plain` reads only fixed-size arrays
//! as long as the header, so these reads are always in bounds where they are used; the
//! fallback of 0 is unreachable by construction (and compiled away for a constant field on a
//! fixed-size array) and only exists so that no reader needs an `unwrap` or an indexing
//! operation. A single-byte field on a fixed-size array may simply be indexed
//! (`ip[field::PROTOCOL]`): the compiler checks that index.

use core::ops::{Range, RangeFrom};
use core::slice::SliceIndex;

/// The bytes of a multi-byte field, from the start of its header.
pub(crate) type Field = Range<usize>;

/// Everything from an offset to the end of the buffer (a payload).
pub(crate) type Rest = RangeFrom<usize>;

/// The bytes of `field` as an array; zeros if `field` is not inside `buf` or not `N` long.
#[inline(always)]
pub(crate) fn array<const N: usize>(buf: &[u8], field: Field) -> [u8; N] {
    match buf.get(field) {
        Some(bytes) => <[u8; N]>::try_from(bytes).unwrap_or([0; N]),
        None => [0; N],
    }
}

/// The byte at `at`, or 0 if `buf` is shorter.
#[inline(always)]
pub(crate) fn u8_at(buf: &[u8], at: usize) -> u8 {
    buf.get(at).copied().unwrap_or(0)
}

/// A big-endian 16-bit field.
#[inline(always)]
pub(crate) fn be16(buf: &[u8], field: Field) -> u16 {
    u16::from_be_bytes(array(buf, field))
}

/// A big-endian 32-bit field.
#[inline(always)]
pub(crate) fn be32(buf: &[u8], field: Field) -> u32 {
    u32::from_be_bytes(array(buf, field))
}

/// `buf[range]` (a [`Field`], a [`Rest`] or a range computed from lengths), or an empty slice
/// if the range is not inside `buf`.
#[inline(always)]
pub(crate) fn slice<R: SliceIndex<[u8], Output = [u8]>>(buf: &[u8], range: R) -> &[u8] {
    buf.get(range).unwrap_or(&[])
}

/// Test support: the fields of a header, in order, follow each other without gap or overlap
/// from offset 0 to `header_len`. A single-byte field is given as `at..at + 1`.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_tiles(fields: &[Field], header_len: usize) {
    let mut end = 0;
    for field in fields {
        assert_eq!(field.start, end, "gap or overlap before {field:?}");
        assert!(field.end > field.start, "empty field {field:?}");
        end = field.end;
    }
    assert_eq!(end, header_len, "the fields do not end where the header does");
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_and_falls_back_out_of_bounds() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(u8_at(&b, 4), 0x9a);
        assert_eq!(u8_at(&b, 5), 0);
        assert_eq!(be16(&b, 0..2), 0x1234);
        assert_eq!(be32(&b, 1..5), 0x3456_789a);
        assert_eq!(be32(&b, 2..6), 0, "out of bounds reads fall back to 0");
        assert_eq!(be16(&b, usize::MAX - 1..usize::MAX), 0);
        assert_eq!(be16(&b, 0..3), 0, "a field of the wrong width reads as 0");
        assert_eq!(array::<2>(&b, 3..5), [0x78, 0x9a]);
        assert_eq!(slice(&b, 1..3), &[0x34, 0x56]);
        assert_eq!(slice(&b, 3..), &[0x78, 0x9a]);
        assert_eq!(slice(&b, 5..), &[] as &[u8]);
        assert_eq!(slice(&b, 6..), &[] as &[u8]);
        assert_eq!(slice(&b, 3..9), &[] as &[u8]);
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 3..2;
        assert_eq!(slice(&b, backwards), &[] as &[u8]);
    }

    #[test]
    fn fixed_arrays_read_like_slices() {
        let header: [u8; 4] = [0xab, 0xcd, 0xef, 0x01];
        assert_eq!(be16(&header, 2..4), 0xef01);
        assert_eq!(be32(&header, 0..4), 0xabcd_ef01);
    }

    #[test]
    #[should_panic(expected = "gap or overlap")]
    fn tiles_catch_a_gap() {
        assert_tiles(&[0..2, 3..4], 4);
    }
}
