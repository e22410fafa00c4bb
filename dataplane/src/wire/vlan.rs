//! 802.1Q / 802.1ad VLAN tag view: the 4 bytes that follow a VLAN TPID.
//!
//! A tag is TCI (PCP, DEI, VID) followed by the inner EtherType. `parse_frame` accepts at most
//! [`MAX_TAGS`] tags; see `summary.rs` for what happens with more.

use super::ethernet::ethertype;
use super::field::{be16, slice};
use super::{Layer, Malformed};

/// Where each field of the tag lies, from the end of the TPID.
pub(crate) mod field {
    use crate::wire::field::{Field, Rest};

    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub const TCI: Field = 0..2;
    /// The EtherType of what the tag encapsulates.
    pub const ETHERTYPE: Field = 2..4;
    /// What follows the tag.
    pub const PAYLOAD: Rest = ETHERTYPE.end..;
}

/// TCI and inner EtherType.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// Tags `parse_frame` looks through (802.1ad outer + 802.1Q inner).
pub const MAX_TAGS: u8 = 2;

/// True for the TPIDs that introduce a VLAN tag: 802.1Q (0x8100) and 802.1ad (0x88a8).
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == ethertype::VLAN || ethertype == ethertype::QINQ
}

/// A view over one VLAN tag and what follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Wrap the bytes after a VLAN TPID, checking that a whole tag is there.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Vlan));
        }
        Ok(Self { buffer })
    }

    /// The tag length in bytes (always [`HEADER_LEN`]).
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub fn tci(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TCI)
    }

    /// The priority code point (PCP, 0..=7).
    pub fn priority(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// The drop eligible indicator (DEI).
    pub fn drop_eligible(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The VLAN identifier (VID, 0..=4095).
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType of what the tag encapsulates (possibly another TPID).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the tag.
    pub fn payload(&self) -> &[u8] {
        slice(self.buffer.as_ref(), field::PAYLOAD)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_tci_and_inner_ethertype() {
        // PCP 5, DEI 1, VID 0x123; inner IPv4.
        let b = [0xb1, 0x23, 0x08, 0x00, 0x45];
        let tag = VlanTag::new_checked(&b[..]).unwrap();
        assert_eq!(tag.tci(), 0xb123);
        assert_eq!(tag.priority(), 5);
        assert!(tag.drop_eligible());
        assert_eq!(tag.vlan_id(), 0x123);
        assert_eq!(tag.ethertype(), ethertype::IPV4);
        assert_eq!(tag.payload(), &[0x45]);
    }

    #[test]
    fn fields_tile_the_tag() {
        crate::wire::field::assert_tiles(&[field::TCI, field::ETHERTYPE], HEADER_LEN);
    }

    #[test]
    fn recognises_both_tpids_only() {
        assert!(is_vlan_tpid(0x8100));
        assert!(is_vlan_tpid(0x88a8));
        assert!(!is_vlan_tpid(0x9100));
        assert!(!is_vlan_tpid(0x0800));
    }

    #[test]
    fn short_tag_is_truncated() {
        let b = [0u8; HEADER_LEN];
        for len in 0..HEADER_LEN {
            assert_eq!(VlanTag::new_checked(&b[..len]), Err(Malformed::Truncated(Layer::Vlan)));
        }
    }
}
