//! IPv6 fixed header view. Extension headers are walked by [`super::ipv6_ext`].

use super::field::{array, be16, be32, slice, u8_at};
use super::{Layer, Malformed};

/// The fixed header.
pub const HEADER_LEN: usize = 40;

/// A view over an IPv6 packet whose fixed header and payload length have been validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap `buffer` (which may carry trailing Ethernet padding), checking:
    /// - the fixed header is present (`Truncated`),
    /// - version 6 (`Invalid`),
    /// - 40 + payload length <= buffer length (`Invalid`).
    ///
    /// Jumbograms (payload length 0 plus a hop-by-hop Jumbo option) cannot occur on Ethernet
    /// and are not supported: their payload is empty.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let buf = buffer.as_ref();
        if buf.len() < HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Ipv6));
        }
        if u8_at(buf, 0) >> 4 != 6 {
            return Err(Malformed::Invalid(Layer::Ipv6));
        }
        if HEADER_LEN + usize::from(be16(buf, 4)) > buf.len() {
            return Err(Malformed::Invalid(Layer::Ipv6));
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

    pub fn version(&self) -> u8 {
        u8_at(self.buf(), 0) >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        ((be16(self.buf(), 0) >> 4) & 0xff) as u8
    }

    pub fn flow_label(&self) -> u32 {
        be32(self.buf(), 0) & 0x000f_ffff
    }

    /// Length of everything after the fixed header (extension headers included).
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buf(), 4))
    }

    /// The first extension header or the transport protocol.
    pub fn next_header(&self) -> u8 {
        u8_at(self.buf(), 6)
    }

    pub fn hop_limit(&self) -> u8 {
        u8_at(self.buf(), 7)
    }

    pub fn src_addr(&self) -> [u8; 16] {
        array(self.buf(), 8)
    }

    pub fn dst_addr(&self) -> [u8; 16] {
        array(self.buf(), 24)
    }

    /// Extension headers and transport, up to the payload length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        slice(self.buf(), HEADER_LEN, HEADER_LEN + self.payload_len())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // Traffic class 0xab, flow label 0xcdef1, 3 payload bytes, next header UDP, hop limit 9,
        // then 2 bytes of padding.
        let mut p = vec![0x6a, 0xbc, 0xde, 0xf1, 0, 3, 17, 9];
        p.extend((1..=16).map(|i: u8| 0x20 + i));
        p.extend((1..=16).map(|i: u8| 0x40 + i));
        p.extend_from_slice(&[7, 8, 9, 0, 0]);
        p
    }

    #[test]
    fn parses_fields() {
        let p = sample();
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.traffic_class(), 0xab);
        assert_eq!(ip.flow_label(), 0xcdef1);
        assert_eq!(ip.payload_len(), 3);
        assert_eq!(ip.next_header(), 17);
        assert_eq!(ip.hop_limit(), 9);
        assert_eq!(ip.src_addr()[0], 0x21);
        assert_eq!(ip.src_addr()[15], 0x30);
        assert_eq!(ip.dst_addr()[0], 0x41);
        assert_eq!(ip.header_len(), 40);
        assert_eq!(ip.payload(), &[7, 8, 9], "padding excluded");
    }

    #[test]
    fn malformed_headers() {
        let mut p = sample();
        p[0] = 0x4a;
        assert_eq!(Ipv6Packet::new_checked(&p[..]), Err(Malformed::Invalid(Layer::Ipv6)));
        let mut p = sample();
        p[4..6].copy_from_slice(&6u16.to_be_bytes());
        assert_eq!(Ipv6Packet::new_checked(&p[..]), Err(Malformed::Invalid(Layer::Ipv6)));
        p[4..6].copy_from_slice(&5u16.to_be_bytes());
        assert!(Ipv6Packet::new_checked(&p[..]).is_ok());
    }

    #[test]
    fn every_prefix_is_rejected_without_panic() {
        let p = sample();
        for len in 0..43 {
            let expected = if len < 40 { Malformed::Truncated } else { Malformed::Invalid };
            assert_eq!(Ipv6Packet::new_checked(&p[..len]), Err(expected(Layer::Ipv6)), "{len}");
        }
    }
}
