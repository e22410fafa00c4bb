//! TCP header view.

use super::field::{be16, be32, slice, u8_at};
use super::{Layer, Malformed};

/// Where each field of the fixed header lies.
pub(crate) mod field {
    use crate::wire::field::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Field = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Field = 8..12;
    /// Data offset: header length in 4-byte units (high nibble); reserved bits.
    pub const DATA_OFF: usize = 12;
    /// CWR ECE URG ACK PSH RST SYN FIN.
    pub const FLAGS: usize = 13;
    /// Receive window.
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
}

/// The fixed header, without options.
pub const MIN_HEADER_LEN: usize = field::URGENT.end;

/// The header length in bytes that a data-offset byte ([`field::DATA_OFF`]) gives.
#[inline(always)]
pub(crate) fn header_len_from(data_offset: u8) -> usize {
    usize::from(data_offset >> 4) * 4
}

/// A view over a TCP segment (header and data), given exactly the IP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap the IP payload, checking that the fixed header is present (`Truncated`), the data
    /// offset is at least 5 (`Invalid`) and the options fit (`Truncated`).
    pub fn new_checked(buffer: T) -> Result<Self, Malformed> {
        if buffer.as_ref().len() < MIN_HEADER_LEN {
            return Err(Malformed::Truncated(Layer::Tcp));
        }
        let packet = Self { buffer };
        let header_len = packet.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(Malformed::Invalid(Layer::Tcp));
        }
        if header_len > packet.buf().len() {
            return Err(Malformed::Truncated(Layer::Tcp));
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

    /// The source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf(), field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        be32(self.buf(), field::SEQ_NUM)
    }

    /// The acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        be32(self.buf(), field::ACK_NUM)
    }

    /// Header length in bytes, options included (20..=60).
    pub fn header_len(&self) -> usize {
        header_len_from(u8_at(self.buf(), field::DATA_OFF))
    }

    /// The flag byte: CWR ECE URG ACK PSH RST SYN FIN (see [`super::tcp_flags`]).
    pub fn flags(&self) -> u8 {
        u8_at(self.buf(), field::FLAGS)
    }

    /// The receive window, unscaled.
    pub fn window(&self) -> u16 {
        be16(self.buf(), field::WIN_SIZE)
    }

    /// The checksum as carried.
    pub fn checksum(&self) -> u16 {
        be16(self.buf(), field::CHECKSUM)
    }

    /// The urgent pointer.
    pub fn urgent_pointer(&self) -> u16 {
        be16(self.buf(), field::URGENT)
    }

    /// The options, between the fixed header and the header length (possibly empty).
    pub fn options(&self) -> &[u8] {
        slice(self.buf(), MIN_HEADER_LEN..self.header_len())
    }

    /// The segment data.
    pub fn payload(&self) -> &[u8] {
        slice(self.buf(), self.header_len()..)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::super::tcp_flags;
    use super::*;

    /// Header with 4 bytes of options (data offset 6) and 3 bytes of data.
    fn sample() -> Vec<u8> {
        vec![
            0x01, 0xbb, 0xc3, 0x50, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x60, 0x12, 0xff, 0xf0, 0xab, 0xcd,
            0x00, 0x07, 0x02, 0x04, 0x05, 0xb4, b'a', b'b', b'c',
        ]
    }

    #[test]
    fn parses_fields() {
        let s = sample();
        let tcp = TcpPacket::new_checked(&s[..]).unwrap();
        assert_eq!(tcp.src_port(), 443);
        assert_eq!(tcp.dst_port(), 50000);
        assert_eq!(tcp.seq_number(), 0x1122_3344);
        assert_eq!(tcp.ack_number(), 0x5566_7788);
        assert_eq!(tcp.header_len(), 24);
        assert_eq!(tcp.flags(), tcp_flags::SYN | tcp_flags::ACK);
        assert_eq!(tcp.window(), 0xfff0);
        assert_eq!(tcp.checksum(), 0xabcd);
        assert_eq!(tcp.urgent_pointer(), 7);
        assert_eq!(tcp.options(), &[2, 4, 5, 0xb4]);
        assert_eq!(tcp.payload(), b"abc");
    }

    #[test]
    fn fields_tile_the_header() {
        use field::*;
        let byte = |at: usize| at..at + 1;
        let fields = [SRC_PORT, DST_PORT, SEQ_NUM, ACK_NUM, byte(DATA_OFF), byte(FLAGS), WIN_SIZE, CHECKSUM, URGENT];
        crate::wire::field::assert_tiles(&fields, MIN_HEADER_LEN);
    }

    #[test]
    fn malformed_headers() {
        let mut s = sample();
        s[field::DATA_OFF] = 0x40; // data offset 4
        assert_eq!(TcpPacket::new_checked(&s[..]), Err(Malformed::Invalid(Layer::Tcp)));
        s[field::DATA_OFF] = 0x80; // data offset 8 = 32 bytes > 27
        assert_eq!(TcpPacket::new_checked(&s[..]), Err(Malformed::Truncated(Layer::Tcp)));
        s[field::DATA_OFF] = 0x50;
        assert_eq!(TcpPacket::new_checked(&s[..]).unwrap().payload().len(), 7);
    }

    #[test]
    fn every_short_prefix_is_truncated() {
        let s = sample();
        for len in 0..24 {
            assert_eq!(TcpPacket::new_checked(&s[..len]), Err(Malformed::Truncated(Layer::Tcp)));
        }
        assert_eq!(TcpPacket::new_checked(&s[..24]).unwrap().payload(), &[] as &[u8]);
    }
}
