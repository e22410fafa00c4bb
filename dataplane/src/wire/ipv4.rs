//! IPv4 header view. Options are skipped, never interpreted.

use super::field::{array, be16, slice, u8_at};
use super::{checksum, Fragment, Layer, Malformed};

/// Where each field of the header lies, and the bits of the flags-and-offset word.
pub(crate) mod field {
    use crate::wire::field::Field;

    /// Version (high nibble) and header length in 4-byte units (IHL, low nibble).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits).
    pub const DSCP_ECN: usize = 1;
    /// Total length: header and payload.
    pub const LENGTH: Field = 2..4;
    /// Identification, shared by the fragments of one packet.
    pub const IDENT: Field = 4..6;
    /// Flags (reserved, DF, MF) and fragment offset in 8-byte units.
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    /// The protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;

    /// In [`FLG_OFF`]: don't fragment.
    pub const DONT_FRAG: u16 = 0x4000;
    /// In [`FLG_OFF`]: more fragments follow.
    pub const MORE_FRAGS: u16 = 0x2000;
    /// In [`FLG_OFF`]: the fragment offset.
    pub const FRAG_OFF: u16 = 0x1fff;
}

/// The fixed header, without options.
pub const MIN_HEADER_LEN: usize = field::DST_ADDR.end;

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
        let packet = Self { buffer };
        let header_len = packet.header_len();
        if packet.version() != 4 || header_len < MIN_HEADER_LEN {
            return Err(Malformed::Invalid(Layer::Ipv4));
        }
        let buf_len = packet.buf().len();
        if buf_len < header_len {
            return Err(Malformed::Truncated(Layer::Ipv4));
        }
        let total_len = packet.total_len();
        if total_len < header_len || total_len > buf_len {
            return Err(Malformed::Invalid(Layer::Ipv4));
        }
        if packet.frag_offset() + total_len > MAX_PACKET_LEN {
            return Err(Malformed::Invalid(Layer::Ipv4));
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

    /// The IP version (4 once checked).
    pub fn version(&self) -> u8 {
        u8_at(self.buf(), field::VER_IHL) >> 4
    }

    /// Header length in bytes, options included (20..=60).
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.buf(), field::VER_IHL) & 0x0f) * 4
    }

    /// The differentiated services code point.
    pub fn dscp(&self) -> u8 {
        u8_at(self.buf(), field::DSCP_ECN) >> 2
    }

    /// The explicit congestion notification bits.
    pub fn ecn(&self) -> u8 {
        u8_at(self.buf(), field::DSCP_ECN) & 0x03
    }

    /// Header plus payload, in bytes; at most the buffer length.
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buf(), field::LENGTH))
    }

    /// The identification shared by the fragments of one packet.
    pub fn ident(&self) -> u16 {
        be16(self.buf(), field::IDENT)
    }

    /// The DF flag.
    pub fn dont_fragment(&self) -> bool {
        be16(self.buf(), field::FLG_OFF) & field::DONT_FRAG != 0
    }

    /// The MF flag.
    pub fn more_fragments(&self) -> bool {
        be16(self.buf(), field::FLG_OFF) & field::MORE_FRAGS != 0
    }

    /// Fragment offset in 8-byte units, as carried in the header.
    pub fn frag_offset_units(&self) -> u16 {
        be16(self.buf(), field::FLG_OFF) & field::FRAG_OFF
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

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        u8_at(self.buf(), field::TTL)
    }

    /// The protocol of the payload (see [`super::ip_proto`]).
    pub fn protocol(&self) -> u8 {
        u8_at(self.buf(), field::PROTOCOL)
    }

    /// The header checksum as carried.
    pub fn header_checksum(&self) -> u16 {
        be16(self.buf(), field::CHECKSUM)
    }

    /// True if the header checksum is correct (not checked by `new_checked`: NICs do it).
    pub fn verify_checksum(&self) -> bool {
        checksum::internet(slice(self.buf(), ..self.header_len())) == 0
    }

    /// The source address.
    pub fn src_addr(&self) -> [u8; 4] {
        array(self.buf(), field::SRC_ADDR)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> [u8; 4] {
        array(self.buf(), field::DST_ADDR)
    }

    /// The options, between the fixed header and the header length (possibly empty).
    pub fn options(&self) -> &[u8] {
        slice(self.buf(), MIN_HEADER_LEN..self.header_len())
    }

    /// The bytes after the header up to the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        slice(self.buf(), self.header_len()..self.total_len())
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
        p[field::CHECKSUM].copy_from_slice(&c);
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
    fn fields_tile_the_header() {
        use field::*;
        let byte = |at: usize| at..at + 1;
        crate::wire::field::assert_tiles(
            &[
                byte(VER_IHL),
                byte(DSCP_ECN),
                LENGTH,
                IDENT,
                FLG_OFF,
                byte(TTL),
                byte(PROTOCOL),
                CHECKSUM,
                SRC_ADDR,
                DST_ADDR,
            ],
            MIN_HEADER_LEN,
        );
        let bits = (DONT_FRAG | MORE_FRAGS | FRAG_OFF, DONT_FRAG + MORE_FRAGS + FRAG_OFF);
        assert_eq!(bits, (0x7fff, 0x7fff), "disjoint, the reserved bit left out");
    }

    #[test]
    fn fragment_states() {
        let mut p = sample();
        p[field::FLG_OFF].copy_from_slice(&0x2000u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap().fragment(), Fragment::First);
        p[field::FLG_OFF].copy_from_slice(&0x2003u16.to_be_bytes());
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.fragment(), Fragment::NonFirst);
        assert_eq!(ip.frag_offset(), 24);
        p[field::FLG_OFF].copy_from_slice(&0x0001u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&p[..]).unwrap().fragment(), Fragment::NonFirst);
        // The last possible offset: 8184 * 8 + 24 + 4 = 65500 bytes reassembled.
        p[field::FLG_OFF].copy_from_slice(&8184u16.to_be_bytes());
        assert!(Ipv4Packet::new_checked(&p[..]).is_ok());
        // 8191 * 8 + 24 + 4 > 65535: the ping of death.
        p[field::FLG_OFF].copy_from_slice(&8191u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&p[..]), Err(Malformed::Invalid(Layer::Ipv4)));
    }

    #[test]
    fn bad_checksum_is_reported_not_rejected() {
        let mut p = sample();
        p[field::CHECKSUM.start] ^= 0xff;
        assert!(!Ipv4Packet::new_checked(&p[..]).unwrap().verify_checksum());
    }

    #[test]
    fn malformed_headers() {
        let invalid = Err(Malformed::Invalid(Layer::Ipv4));
        let truncated = Err(Malformed::Truncated(Layer::Ipv4));
        let mut p = sample();
        p[field::VER_IHL] = 0x44; // IHL 4
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[field::VER_IHL] = 0x66; // version 6
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[field::VER_IHL] = 0x4f; // IHL 15 = 60 bytes > 30-byte buffer
        assert_eq!(Ipv4Packet::new_checked(&p[..]), truncated);
        let mut p = sample();
        p[field::LENGTH].copy_from_slice(&31u16.to_be_bytes()); // beyond the buffer
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[field::LENGTH].copy_from_slice(&23u16.to_be_bytes()); // below the header length
        assert_eq!(Ipv4Packet::new_checked(&p[..]), invalid);
        p[field::LENGTH].copy_from_slice(&24u16.to_be_bytes()); // header only: fine
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
