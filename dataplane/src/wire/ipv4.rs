//! IPv4 header view. Options are skipped, never interpreted.

use super::field::{array, be16, slice, u8_at};
use super::{checksum, Fragment, Layer, Malformed};

/// The fixed header, without options.
pub const MIN_HEADER_LEN: usize = 20;

/// The largest packet the 16-bit total length allows, also after reassembly.
pub const MAX_PACKET_LEN: usize = 65535;

/// A view over an IPv4 packet whose header and total length have been validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap `buffer` (which may carry trailing Ethernet padding), checking:
    /// - a fixed header is present (`Truncated`),
    /// - version 4 and IHL >= 5 (`Invalid`),
    /// - the options are present (`Truncated`),
    /// - IHL*4 <= total length <= buffer length (`Invalid`),
    /// - a fragment does not reach beyond 65535 bytes of reassembled packet (`Invalid`).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        let buf = buffer.as_ref();
        if buf.len() < MIN_HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Ipv4));
        }
        let version_ihl = u8_at(buf, 0);
        let header_len = usize::from(version_ihl & 0x0f) * 4;
        if version_ihl >> 4 != 4 || header_len < MIN_HEADER_LEN {
            return Err(Malformed::Invalid(Layer::Ipv4));
        }
        if buf.len() < header_len {
            return Err(Malformed::Truncated(Layer::Ipv4));
        }
        let total_len = usize::from(be16(buf, 2));
        if total_len < header_len || total_len > buf.len() {
            return Err(Malformed::Invalid(Layer::Ipv4));
        }
        let packet = Self { buffer };
        if packet.frag_offset() + total_len > MAX_PACKET_LEN {
            return Err(Malformed::Invalid(Layer::Ipv4));
        }
        Ok(packet)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        u8_at(self.buf(), 0) >> 4
    }

    /// Header length in bytes, options included (20..=60).
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.buf(), 0) & 0x0f) * 4
    }

    pub fn dscp(&self) -> u8 {
        u8_at(self.buf(), 1) >> 2
    }

    pub fn ecn(&self) -> u8 {
        u8_at(self.buf(), 1) & 0x03
    }

    /// Header plus payload, in bytes; at most the buffer length.
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buf(), 2))
    }

    pub fn ident(&self) -> u16 {
        be16(self.buf(), 4)
    }

    pub fn dont_fragment(&self) -> bool {
        be16(self.buf(), 6) & 0x4000 != 0
    }

    pub fn more_fragments(&self) -> bool {
        be16(self.buf(), 6) & 0x2000 != 0
    }

    /// Fragment offset in 8-byte units, as carried in the header.
    pub fn frag_offset_units(&self) -> u16 {
        be16(self.buf(), 6) & 0x1fff
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(self.frag_offset_units()) * 8
    }

    /// A packet with offset 0 and no MF flag is not a fragment.
    pub fn fragment(&self) -> Fragment {
        match (self.frag_offset_units(), self.more_fragments()) {
            (0, false) => Fragment::None,
            (0, true) => Fragment::First,
            _ => Fragment::NonFirst,
        }
    }

    pub fn ttl(&self) -> u8 {
        u8_at(self.buf(), 8)
    }

    pub fn protocol(&self) -> u8 {
        u8_at(self.buf(), 9)
    }

    pub fn header_checksum(&self) -> u16 {
        be16(self.buf(), 10)
    }

    /// True if the header checksum is correct (not checked by `new_checked`: NICs do it).
    pub fn verify_checksum(&self) -> bool {
        checksum::internet(slice(self.buf(), 0, self.header_len())) == 0
    }

    pub fn src_addr(&self) -> [u8; 4] {
        array(self.buf(), 12)
    }

    pub fn dst_addr(&self) -> [u8; 4] {
        array(self.buf(), 16)
    }

    pub fn options(&self) -> &[u8] {
        slice(self.buf(), MIN_HEADER_LEN, self.header_len())
    }

    /// The bytes after the header up to the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        slice(self.buf(), self.header_len(), self.total_len())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A 24-byte header (one 4-byte option), 4 bytes of payload, 2 bytes of padding.
    fn sample() -> Vec<u8> {
        let mut p = vec![
            0x46, 0xb8, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 63, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7, 1, 1, 1, 0,
            0xde, 0xad, 0xbe, 0xef, 0, 0,
        ];
        let c = checksum::internet(&p[..24]).to_be_bytes();
        p[10..12].copy_from_slice(&c);
        p
    }

    #[test]
    fn parses_fields() {
        let p = sample();
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 24);
        assert_eq!(ip.dscp(), 46);
        assert_eq!(ip.ecn(), 0);
        assert_eq!(ip.total_len(), 28);
        assert_eq!(ip.ident(), 0x1234);
        assert!(ip.dont_fragment());
        assert!(!ip.more_fragments());
        assert_eq!(ip.fragment(), Fragment::None);
        assert_eq!(ip.ttl(), 63);
        assert_eq!(ip.protocol(), 6);
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), [192, 0, 2, 1]);
        assert_eq!(ip.dst_addr(), [198, 51, 100, 7]);
        assert_eq!(ip.options(), &[1, 1, 1, 0]);
        assert_eq!(ip.payload(), &[0xde, 0xad, 0xbe, 0xef], "padding excluded");
    }

    #[test]
    fn fragment_states() {
        let mut p = sample();
        p[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap().fragment(), Fragment::First);
        p[6..8].copy_from_slice(&0x2003u16.to_be_bytes());
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.fragment(), Fragment::NonFirst);
        assert_eq!(ip.frag_offset(), 24);
        p[6..8].copy_from_slice(&0x0001u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap().fragment(), Fragment::NonFirst);
        // The last possible offset: 8184 * 8 + 24 + 4 = 65500 bytes reassembled.
        p[6..8].copy_from_slice(&8184u16.to_be_bytes());
        assert!(Ipv4Packet::new_checked(&p[..]).is_ok());
        // 8191 * 8 + 24 + 4 > 65535: the ping of death.
        p[6..8].copy_from_slice(&8191u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&p[..]), Err(Malformed::Invalid(Layer::Ipv4)));
    }

    #[test]
    fn bad_checksum_is_reported_not_rejected() {
        let mut p = sample();
        p[10] ^= 0xff;
        assert!(!Ipv4Packet::new_checked(&p[..]).unwrap().verify_checksum());
    }

    #[test]
    fn malformed_headers() {
        let invalid = Err(Malformed::Invalid(Layer::Ipv4));
        let truncated = Err(Malformed::Truncated(Layer::Ipv4));
        let mut p = sample();
        p[0] = 0x44; // IHL 4
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[0] = 0x66; // version 6
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[0] = 0x4f; // IHL 15 = 60 bytes > 30-byte buffer
        assert_eq!(Ipv4Packet::new_checked(&p[..]), truncated);
        let mut p = sample();
        p[2..4].copy_from_slice(&31u16.to_be_bytes()); // beyond the buffer
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[2..4].copy_from_slice(&23u16.to_be_bytes()); // below the header length
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[2..4].copy_from_slice(&24u16.to_be_bytes()); // header only: fine
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn every_prefix_is_rejected_without_panic() {
        let p = sample();
        for len in 0..28 {
            let expected = if len < 24 { Malformed::Truncated } else { Malformed::Invalid };
            assert_eq!(Ipv4Packet::new_checked(&p[..len]), Err(expected(Layer::Ipv4)), "{len}");
        }
        for len in 28..=p.len() {
            assert!(Ipv4Packet::new_checked(&p[..len]).is_ok());
        }
    }
}
