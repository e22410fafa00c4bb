//! QUIC long headers (RFC 9000 section 17.2; RFC 8999 for the version-independent part; RFC
//! 9369 section 3.2 for version 2's type bits): a checked view of one packet, and the walk over
//! the packets coalesced in a datagram.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::{read_varint, QuicError};

/// Most bytes in a connection ID of version 1 or 2.
pub const MAX_CID_LEN: usize = 20;
/// Header protection samples 16 bytes starting 4 bytes after the packet number's offset.
pub const SAMPLE_LEN: usize = 16;
const HEADER_FORM_LONG: u8 = 0x80;
/// First byte, version (4), DCID length (1).
const DCID_AT: usize = 6;

/// The QUIC versions whose Initials are opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 9000, `0x00000001`.
    V1,
    /// RFC 9369, `0x6b3343cf`.
    V2,
}

impl Version {
    pub const V1_WIRE: u32 = 0x0000_0001;
    pub const V2_WIRE: u32 = 0x6b33_43cf;

    pub fn from_wire(v: u32) -> Option<Version> {
        match v {
            Self::V1_WIRE => Some(Version::V1),
            Self::V2_WIRE => Some(Version::V2),
            _ => None,
        }
    }

    pub fn wire(self) -> u32 {
        match self {
            Version::V1 => Self::V1_WIRE,
            Version::V2 => Self::V2_WIRE,
        }
    }

    /// The long-header packet type of the 2 type bits (`(first >> 4) & 3`).
    pub fn packet_type(self, bits: u8) -> PacketType {
        match (self, bits & 3) {
            (Version::V1, 0) | (Version::V2, 1) => PacketType::Initial,
            (Version::V1, 1) | (Version::V2, 2) => PacketType::ZeroRtt,
            (Version::V1, 2) | (Version::V2, 3) => PacketType::Handshake,
            _ => PacketType::Retry,
        }
    }
}

/// Long-header packet types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// How the bytes at the start of a datagram (or after a coalesced packet) parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// A version 1/2 long-header packet.
    Packet(LongPacket<'a>),
    /// No bytes, a short header (or padding), Version Negotiation (version 0) or a version
    /// other than 1 and 2: nothing more to read.
    End,
    /// A version 1/2 packet of this type whose header is inconsistent or runs past the
    /// datagram.
    Malformed(PacketType),
}

/// One long-header packet, checked: every accessor reads a field the constructor validated.
/// For Initial, 0-RTT and Handshake packets the view spans the packet up to the end of its
/// Length field; a Retry spans the rest of the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongPacket<'a> {
    bytes: &'a [u8],
    version: Version,
    packet_type: PacketType,
    dcid_len: u8,
    scid_len: u8,
    token_at: u16,
    token_len: u16,
    /// Offset of the (protected) packet number; 0 for a Retry.
    pn_at: u16,
}

impl<'a> LongPacket<'a> {
    /// Read the long header at the start of `buf`.
    pub fn parse(buf: &'a [u8]) -> Parse<'a> {
        let [first, v0, v1, v2, v3, ..] = *buf else { return Parse::End };
        if first & HEADER_FORM_LONG == 0 {
            return Parse::End;
        }
        let Some(version) = Version::from_wire(u32::from_be_bytes([v0, v1, v2, v3])) else {
            return Parse::End;
        };
        let packet_type = version.packet_type(first >> 4);
        match Self::fields(buf, version, packet_type) {
            Some(p) => Parse::Packet(p),
            None => Parse::Malformed(packet_type),
        }
    }

    fn fields(buf: &'a [u8], version: Version, packet_type: PacketType) -> Option<LongPacket<'a>> {
        let dcid_len = *buf.get(DCID_AT - 1)?;
        let scid_len_at = DCID_AT + usize::from(dcid_len);
        let scid_len = *buf.get(scid_len_at)?;
        if usize::from(dcid_len) > MAX_CID_LEN || usize::from(scid_len) > MAX_CID_LEN {
            return None;
        }
        let mut at = scid_len_at + 1 + usize::from(scid_len);
        if at > buf.len() {
            return None;
        }
        let mut packet =
            LongPacket { bytes: buf, version, packet_type, dcid_len, scid_len, token_at: 0, token_len: 0, pn_at: 0 };
        if packet_type == PacketType::Retry {
            return Some(packet);
        }
        if packet_type == PacketType::Initial {
            let (token_len, n) = read_varint(buf.get(at..)?)?;
            let token_len = usize::try_from(token_len).ok()?;
            packet.token_at = u16::try_from(at + n).ok()?;
            packet.token_len = u16::try_from(token_len).ok()?;
            at = at.checked_add(n)?.checked_add(token_len)?;
        }
        let (length, n) = read_varint(buf.get(at..)?)?;
        let pn_at = at + n;
        let end = usize::try_from(length).ok().and_then(|l| pn_at.checked_add(l))?;
        if end > buf.len() {
            return None;
        }
        // Header protection needs 4 + 16 bytes after the packet number's offset.
        if packet_type == PacketType::Initial && length < (4 + SAMPLE_LEN) as u64 {
            return None;
        }
        packet.pn_at = u16::try_from(pn_at).ok()?;
        packet.bytes = buf.get(..end)?;
        Some(packet)
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// The whole packet (header, packet number and protected payload).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Bytes this packet takes in its datagram.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn dcid(&self) -> &'a [u8] {
        self.bytes.get(DCID_AT..DCID_AT + usize::from(self.dcid_len)).unwrap_or(&[])
    }

    pub fn scid(&self) -> &'a [u8] {
        let at = DCID_AT + usize::from(self.dcid_len) + 1;
        self.bytes.get(at..at + usize::from(self.scid_len)).unwrap_or(&[])
    }

    /// The Initial's token (empty for other types).
    pub fn token(&self) -> &'a [u8] {
        let at = usize::from(self.token_at);
        self.bytes.get(at..at + usize::from(self.token_len)).unwrap_or(&[])
    }

    /// Offset of the protected packet number (Initial, 0-RTT, Handshake).
    pub fn pn_offset(&self) -> usize {
        usize::from(self.pn_at)
    }
}

/// The long-header packets coalesced in one datagram (RFC 9000 section 12.2), in order.
/// Ends at the datagram's end, a short header or padding, an unknown version, a Retry or
/// Version Negotiation packet; yields `Err(Malformed)` for a malformed Initial (and then ends);
/// a malformed packet of another type just ends the walk.
#[derive(Clone, Debug)]
pub struct Packets<'a> {
    rest: &'a [u8],
}

impl<'a> Packets<'a> {
    pub fn new(datagram: &'a [u8]) -> Packets<'a> {
        Packets { rest: datagram }
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<LongPacket<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        match LongPacket::parse(self.rest) {
            Parse::Packet(p) => {
                self.rest = self.rest.get(p.len()..).unwrap_or(&[]);
                Some(Ok(p))
            }
            Parse::End => None,
            Parse::Malformed(t) => {
                self.rest = &[];
                (t == PacketType::Initial).then_some(Err(QuicError::Malformed))
            }
        }
    }
}
