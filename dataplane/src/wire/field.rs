//! Fixed-size big-endian reads that cannot panic.
//!
//! Every view validates its lengths in `new_checked`, so these reads are always in bounds for
//! the offsets the views use; the fallback of 0 is unreachable by construction and only exists
//! so that no accessor needs an `unwrap` or an indexing operation.

#[inline(always)]
pub(crate) fn array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    match buf.get(at..at.saturating_add(N)) {
        Some(bytes) => <[u8; N]>::try_from(bytes).unwrap_or([0; N]),
        None => [0; N],
    }
}

#[inline(always)]
pub(crate) fn u8_at(buf: &[u8], at: usize) -> u8 {
    buf.get(at).copied().unwrap_or(0)
}

#[inline(always)]
pub(crate) fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(buf, at))
}

#[inline(always)]
pub(crate) fn be32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(buf, at))
}

/// `buf[from..to]`, or an empty slice if the range is not inside `buf`.
#[inline(always)]
pub(crate) fn slice(buf: &[u8], from: usize, to: usize) -> &[u8] {
    buf.get(from..to).unwrap_or(&[])
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_and_falls_back_out_of_bounds() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(u8_at(&b, 4), 0x9a);
        assert_eq!(be16(&b, 0), 0x1234);
        assert_eq!(be32(&b, 1), 0x3456_789a);
        assert_eq!(be32(&b, 2), 0, "out of bounds reads fall back to 0");
        assert_eq!(be16(&b, usize::MAX), 0);
        assert_eq!(slice(&b, 1, 3), &[0x34, 0x56]);
        assert_eq!(slice(&b, 3, 9), &[] as &[u8]);
        assert_eq!(slice(&b, 3, 2), &[] as &[u8]);
    }
}
