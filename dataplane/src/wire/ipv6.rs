//! IPv6 fixed header view. Extension headers are walked by [`super::ipv6_ext`].

use super::field::{array, be16, be32, slice, u8_at};
use super::{Layer, Malformed};

/// Where each field of the fixed header lies.
pub(crate) mod field {
    use crate::wire::field::Field;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Field = 0..4;
    /// The byte whose high nibble is the version.
    pub const VERSION: usize = VER_TC_FLOW.start;
    /// Payload length: everything after the fixed header.
    pub const LENGTH: Field = 4..6;
    /// The first extension header or the transport protocol.
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// The fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

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
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Ipv6));
        }
        let packet = Self { buffer };
        if packet.version() != 6 {
            return Err(Malformed::Invalid(Layer::Ipv6));
        }
        if HEADER_LEN + packet.payload_len() > packet.buf().len() {
            return Err(Malformed::Invalid(Layer::Ipv6));
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

    /// The fixed header length in bytes (always [`HEADER_LEN`]).
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The IP version (6 once checked).
    pub fn version(&self) -> u8 {
        u8_at(self.buf(), field::VERSION) >> 4
    }

    /// The traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        ((be32(self.buf(), field::VER_TC_FLOW) >> 20) & 0xff) as u8
    }

    /// The flow label.
    pub fn flow_label(&self) -> u32 {
        be32(self.buf(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Length of everything after the fixed header (extension headers included).
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buf(), field::LENGTH))
    }

    /// The first extension header or the transport protocol.
    pub fn next_header(&self) -> u8 {
        u8_at(self.buf(), field::NXT_HDR)
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        u8_at(self.buf(), field::HOP_LIMIT)
    }

    /// The source address.
    pub fn src_addr(&self) -> [u8; 16] {
        array(self.buf(), field::SRC_ADDR)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> [u8; 16] {
        array(self.buf(), field::DST_ADDR)
    }

    /// Extension headers and transport, up to the payload length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        slice(self.buf(), HEADER_LEN..HEADER_LEN + self.payload_len())
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
    fn fields_tile_the_header() {
        use field::*;
        let byte = |at: usize| at..at + 1;
        let fields = [VER_TC_FLOW, LENGTH, byte(NXT_HDR), byte(HOP_LIMIT), SRC_ADDR, DST_ADDR];
        crate::wire::field::assert_tiles(&fields, HEADER_LEN);
    }

    #[test]
    fn malformed_headers() {
        let mut p = sample();
        p[field::VERSION] = 0x4a;
        assert_eq!(Ipv6Packet::new_checked(&p[..]), Err(Malformed::Invalid(Layer::Ipv6)));
        let mut p = sample();
        p[field::LENGTH].copy_from_slice(&6u16.to_be_bytes());
        assert_eq!(Ipv6Packet::new_checked(&p[..]), Err(Malformed::Invalid(Layer::Ipv6)));
        p[field::LENGTH].copy_from_slice(&5u16.to_be_bytes());
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
