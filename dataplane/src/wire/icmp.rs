//! ICMP and ICMPv6 header view: both start with type, code and checksum.

use super::field::{be16, slice, u8_at};
use super::{Layer, Malformed};

/// Where each field of the header lies (ICMP and ICMPv6 alike).
pub(crate) mod field {
    use crate::wire::field::{Field, Rest};

    /// The message type.
    pub const TYPE: usize = 0;
    /// The message code, within its type.
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// The rest of the message (for echo: identifier, sequence, data).
    pub const PAYLOAD: Rest = CHECKSUM.end..;
}

/// Type, code, checksum: all `parse_frame` requires of an ICMP message.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view over an ICMP or ICMPv6 message, given exactly the IP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wrap the IP payload, checking that type, code and checksum are there (`Truncated`).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Icmp));
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

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::TYPE)
    }

    /// The message code.
    pub fn code(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::CODE)
    }

    /// The checksum as carried.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Everything after type, code and checksum (for echo: identifier, sequence, data).
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
        let m = [8, 0, 0xf7, 0xfe, 0, 1, 0, 1];
        let icmp = IcmpPacket::new_checked(&m[..]).unwrap();
        assert_eq!((icmp.msg_type(), icmp.code(), icmp.checksum()), (8, 0, 0xf7fe));
        assert_eq!(icmp.header_len(), 4);
        assert_eq!(icmp.payload(), &[0, 1, 0, 1]);
        let m = [3, 4, 0, 0];
        let icmp = IcmpPacket::new_checked(&m[..]).unwrap();
        assert_eq!((icmp.msg_type(), icmp.code()), (3, 4));
        assert_eq!(icmp.payload(), &[] as &[u8]);
    }

    #[test]
    fn fields_tile_the_header() {
        use field::*;
        crate::wire::field::assert_tiles(&[TYPE..TYPE + 1, CODE..CODE + 1, CHECKSUM], HEADER_LEN);
    }

    #[test]
    fn short_messages_are_truncated() {
        let m = [8u8, 0, 0];
        for len in 0..=3 {
            assert_eq!(IcmpPacket::new_checked(&m[..len]), Err(Malformed::Truncated(Layer::Icmp)));
        }
    }
}
