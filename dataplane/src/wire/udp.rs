//! UDP header view.

use super::field::{be16, slice};
use super::{Layer, Malformed};

/// Where each field of the header lies.
pub(crate) mod field {
    use crate::wire::field::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    /// Length: header and data.
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Ports, length, checksum.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view over a UDP datagram, given exactly the IP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wrap a whole datagram, checking that the header is present (`Truncated`) and that
    /// 8 <= length field <= buffer length (`Invalid`).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let packet = Self::new_checked_header(buffer)?;
        if packet.len() > packet.buffer.as_ref().len() {
            return Err(Malformed::Invalid(Layer::Udp));
        }
        Ok(packet)
    }

    /// Wrap the start of a datagram whose tail may be missing (a first IP fragment: the length
    /// field covers the reassembled datagram). Checks only the header and length >= 8.
    pub fn new_checked_header(buffer: T) -> Result<Self, Malformed> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Udp));
        }
        let packet = Self { buffer };
        if packet.len() < HEADER_LEN {
            return Err(Malformed::Invalid(Layer::Udp));
        }
        Ok(packet)
    }

    /// The buffer the view was made over.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The bytes the view reads.
    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The header length in bytes (always [`HEADER_LEN`]).
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf(), field::DST_PORT)
    }

    /// The length field: header plus data, in bytes.
    pub fn len(&self) -> usize {
        usize::from(be16(self.buf(), field::LENGTH))
    }

    /// Never true: the length field is at least 8.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checksum as carried (0: none).
    pub fn checksum(&self) -> u16 {
        be16(self.buf(), field::CHECKSUM)
    }

    /// The data up to the length field, or up to the end of the buffer if that comes first
    /// (only possible through [`Self::new_checked_header`]).
    pub fn payload(&self) -> &[u8] {
        let buf = self.buf();
        slice(buf, HEADER_LEN..self.len().min(buf.len()))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Length field 11: 3 bytes of data, then 1 stray byte the length excludes.
    fn sample() -> Vec<u8> {
        vec![0x00, 0x35, 0xd4, 0x31, 0x00, 0x0b, 0x12, 0x34, 1, 2, 3, 0xee]
    }

    #[test]
    fn parses_fields() {
        let s = sample();
        let udp = UdpPacket::new_checked(&s[..]).unwrap();
        assert_eq!(udp.src_port(), 53);
        assert_eq!(udp.dst_port(), 54321);
        assert_eq!(udp.len(), 11);
        assert!(!udp.is_empty());
        assert_eq!(udp.checksum(), 0x1234);
        assert_eq!(udp.header_len(), 8);
        assert_eq!(udp.payload(), &[1, 2, 3]);
    }

    #[test]
    fn fields_tile_the_header() {
        use field::*;
        crate::wire::field::assert_tiles(&[SRC_PORT, DST_PORT, LENGTH, CHECKSUM], HEADER_LEN);
    }

    #[test]
    fn malformed_lengths() {
        let mut s = sample();
        s[field::LENGTH].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&s[..]), Err(Malformed::Invalid(Layer::Udp)));
        assert_eq!(UdpPacket::new_checked_header(&s[..]), Err(Malformed::Invalid(Layer::Udp)));
        s[field::LENGTH].copy_from_slice(&13u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&s[..]), Err(Malformed::Invalid(Layer::Udp)));
        let head = UdpPacket::new_checked_header(&s[..]).unwrap();
        assert_eq!(head.payload(), &[1, 2, 3, 0xee], "bounded by the buffer");
        s[field::LENGTH].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&s[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn every_prefix() {
        let s = sample();
        for len in 0..8 {
            assert_eq!(UdpPacket::new_checked(&s[..len]), Err(Malformed::Truncated(Layer::Udp)));
        }
        for len in 8..11 {
            assert_eq!(UdpPacket::new_checked(&s[..len]), Err(Malformed::Invalid(Layer::Udp)));
        }
    }
}
