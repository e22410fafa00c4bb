//! Ethernet II header view (no FCS: NICs strip it).

use super::field::{array, be16, slice};
use super::{Layer, Malformed};

/// EtherType values the dataplane recognises.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
}

/// Where each field of the header lies.
pub(crate) mod field {
    use crate::wire::field::{Field, Rest};

    /// Destination MAC address.
    pub const DESTINATION: Field = 0..6;
    /// Source MAC address.
    pub const SOURCE: Field = 6..12;
    /// EtherType, or the TPID of a VLAN tag.
    pub const ETHERTYPE: Field = 12..14;
    /// What the frame carries, Ethernet padding included.
    pub const PAYLOAD: Rest = ETHERTYPE.end..;
}

/// Destination MAC, source MAC, EtherType.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view over an Ethernet frame, header and payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wrap `buffer`, checking that it holds a whole Ethernet header.
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Ethernet));
        }
        Ok(Self { buffer })
    }

    /// The buffer the view was made over.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header length in bytes (always [`HEADER_LEN`]).
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The destination MAC address.
    pub fn dst_addr(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::DESTINATION)
    }

    /// The source MAC address.
    pub fn src_addr(&self) -> [u8; 6] {
        array(self.buffer.as_ref(), field::SOURCE)
    }

    /// The EtherType (or a VLAN TPID when the frame is tagged).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the header, including any Ethernet padding.
    pub fn payload(&self) -> &[u8] {
        slice(self.buffer.as_ref(), field::PAYLOAD)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields() {
        let mut f = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06];
        f.extend_from_slice(&[0xaa, 0xbb]);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.dst_addr(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(eth.src_addr(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(eth.ethertype(), ethertype::ARP);
        assert_eq!(eth.header_len(), 14);
        assert_eq!(eth.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn fields_tile_the_header() {
        use crate::wire::field::assert_tiles;
        assert_tiles(&[field::DESTINATION, field::SOURCE, field::ETHERTYPE], HEADER_LEN);
    }

    #[test]
    fn header_only_has_empty_payload() {
        let f = [0u8; HEADER_LEN];
        assert_eq!(EthernetFrame::new_checked(&f[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn every_short_prefix_is_truncated() {
        let f = [0u8; HEADER_LEN];
        for len in 0..HEADER_LEN {
            assert_eq!(EthernetFrame::new_checked(&f[..len]), Err(Malformed::Truncated(Layer::Ethernet)));
        }
    }
}
