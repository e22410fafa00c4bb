//! UDP header view.

use super::field::{be16, slice};
use super::{Layer, Malformed};

pub const HEADER_LEN: usize = 8;

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
        let buf = buffer.as_ref();
        if buf.len() < HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Udp));
        }
        if usize::from(be16(buf, 4)) < HEADER_LEN {
            return Err(Malformed::Invalid(Layer::Udp));
        }
        Ok(Self { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf(), 0)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf(), 2)
    }

    /// The length field: header plus data, in bytes.
    pub fn len(&self) -> usize {
        usize::from(be16(self.buf(), 4))
    }

    /// Never true: the length field is at least 8.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf(), 6)
    }

    /// The data up to the length field, or up to the end of the buffer if that comes first
    /// (only possible through [`Self::new_checked_header`]).
    pub fn payload(&self) -> &[u8] {
        let buf = self.buf();
        slice(buf, HEADER_LEN, self.len().min(buf.len()))
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
    fn malformed_lengths() {
        let mut s = sample();
        s[5] = 7;
        assert_eq!(UdpPacket::new_checked(&s[..]), Err(Malformed::Invalid(Layer::Udp)));
        assert_eq!(UdpPacket::new_checked_header(&s[..]), Err(Malformed::Invalid(Layer::Udp)));
        s[5] = 13;
        assert_eq!(UdpPacket::new_checked(&s[..]), Err(Malformed::Invalid(Layer::Udp)));
        let head = UdpPacket::new_checked_header(&s[..]).unwrap();
        assert_eq!(head.payload(), &[1, 2, 3, 0xee], "bounded by the buffer");
        s[5] = 8;
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
