//! IPv6 extension headers and the bounded walk from the fixed header to the transport.

use super::field::{be16, be32, slice, u8_at};
use super::{Fragment, Layer, Malformed};

/// Next-header values that are extension headers or that end the walk.
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload: everything after it is encrypted.
    pub const ESP: u8 = 50;
    pub const AUTH: u8 = 51;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    /// Mobility (RFC 6275), HIP (RFC 7401), Shim6 (RFC 5533), and the two values for
    /// experiments (RFC 3692): extension headers (IANA's list) that the walk does not step over.
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
    pub const EXPERIMENT_1: u8 = 253;
    pub const EXPERIMENT_2: u8 = 254;
}

/// Where each field of an extension header lies.
pub(crate) mod field {
    use crate::wire::field::Field;

    /// The next header, in every kind.
    pub const NXT_HDR: usize = 0;
    /// The header length, in every kind but the fragment header (whose byte is reserved); its
    /// unit depends on the kind.
    pub const LENGTH: usize = 1;
    /// Fragment header: fragment offset in 8-byte units (13 bits), reserved (2), M flag (1).
    pub const FRAG_OFF_M: Field = 2..4;
    /// Fragment header: identification.
    pub const FRAG_IDENT: Field = 4..8;
}

/// The walk steps over at most this many extension headers; a longer chain is `Invalid`
/// (cause `ext-chain`: its transport is unknown, see `MalformedCause`). Linux bounds the
/// options in one hop-by-hop or destination options header (8 by default), not the number of
/// headers; a chain is bounded only by the IPv6 payload (at most 65535 bytes, each header at
/// least 8). 64 headers is far beyond any chain a sender has a reason to build (RFC 8200
/// allows each kind once, destination options twice), and bounds the walk's cost. Beyond it
/// the packet is not waved through: classified with its transport unknown, it is never
/// treated more leniently than one that is read.
pub const MAX_EXT_HEADERS: usize = 64;

/// The fragment header is always 8 bytes.
pub const FRAGMENT_HEADER_LEN: usize = field::FRAG_IDENT.end;

/// Next header and length: what every other kind has at least.
const MIN_HEADER_LEN: usize = field::LENGTH + 1;

/// True for the extension headers the walk steps over.
pub fn is_extension(next: u8) -> bool {
    use next_header::*;
    matches!(next, HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DEST_OPTS)
}

/// True for the extension headers IANA lists that the walk does not step over: a chain that
/// reaches one ends in no transport the dataplane reads (`Invalid`).
pub fn is_unwalked_extension(next: u8) -> bool {
    use next_header::*;
    matches!(next, MOBILITY | HIP | SHIM6 | EXPERIMENT_1 | EXPERIMENT_2)
}

/// A view over one extension header of kind `kind` (hop-by-hop, routing, fragment,
/// destination options or AH), its whole length validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wrap the bytes where an extension header of `kind` starts. `Invalid` if `kind` is not an
    /// extension header, `Truncated` if the header does not fit in `buffer`.
    pub fn new_checked(kind: u8, buffer: T) -> Result<Self, Malformed> {
        if !is_extension(kind) {
            return Err(Malformed::Invalid(Layer::Ipv6Ext));
        }
        let buf = buffer.as_ref();
        let min = if kind == next_header::FRAGMENT { FRAGMENT_HEADER_LEN } else { MIN_HEADER_LEN };
        if buf.len() < min || buf.len() < header_len(kind, u8_at(buf, field::LENGTH)) {
            return Err(Malformed::Truncated(Layer::Ipv6Ext));
        }
        Ok(Self { buffer, kind })
    }

    /// The kind this header was wrapped as (the previous header's next-header value).
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The header that follows this one.
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::NXT_HDR)
    }

    /// Length in bytes, from the length field's unit for this kind.
    pub fn header_len(&self) -> usize {
        header_len(self.kind, u8_at(self.buffer.as_ref(), field::LENGTH))
    }

    /// Fragment offset in 8-byte units (0 unless this is a fragment header).
    pub fn frag_offset_units(&self) -> u16 {
        self.fragment_word() >> 3
    }

    /// M flag of a fragment header.
    pub fn more_fragments(&self) -> bool {
        self.fragment_word() & 1 != 0
    }

    /// Identification of a fragment header (0 for other kinds).
    pub fn frag_ident(&self) -> u32 {
        if self.kind == next_header::FRAGMENT {
            be32(self.buffer.as_ref(), field::FRAG_IDENT)
        } else {
            0
        }
    }

    /// `Fragment::None` for other kinds and for atomic fragments (offset 0, no M flag).
    pub fn fragment(&self) -> Fragment {
        match (self.frag_offset_units(), self.more_fragments()) {
            (0, false) => Fragment::None,
            (0, true) => Fragment::First,
            _ => Fragment::NonFirst,
        }
    }

    /// The fragment header's offset-and-M word (0 for other kinds).
    fn fragment_word(&self) -> u16 {
        if self.kind == next_header::FRAGMENT {
            be16(self.buffer.as_ref(), field::FRAG_OFF_M)
        } else {
            0
        }
    }
}

/// The length in bytes of a header of `kind` whose length field holds `len_field`.
fn header_len(kind: u8, len_field: u8) -> usize {
    match kind {
        next_header::FRAGMENT => FRAGMENT_HEADER_LEN,
        // AH counts 4-byte units, minus 2.
        next_header::AUTH => (usize::from(len_field) + 2) * 4,
        // The others count 8-byte units, not counting the first.
        _ => (usize::from(len_field) + 1) * 8,
    }
}

/// Where the extension headers end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    /// The protocol after the last extension header walked (59 for no next header, 50 for
    /// ESP; for a non-first fragment, the fragment header's next header).
    pub protocol: u8,
    /// Offset of that protocol's header from the start of the IPv6 payload.
    pub offset: usize,
    pub fragment: Fragment,
}

/// Walk the extension headers in `payload` (the IPv6 payload), starting with `first` (the fixed
/// header's next header): hop-by-hop, routing (any type, any segments left), fragment
/// (an atomic one, offset 0 and no M flag, is no fragment: RFC 6946), destination options and
/// AH, in any order and repeated, as a Linux receiver accepts them. Stops at the first
/// non-extension protocol and at a non-first fragment (whose data is no header).
///
/// Errors (the fixed header's addresses stand; the transport is unknown):
/// `Invalid(Ipv6Ext)` after [`MAX_EXT_HEADERS`] headers or at an extension header the walk does
/// not step over ([`is_unwalked_extension`]); `Truncated(Ipv6Ext)` for a header that runs past
/// the payload. A non-first fragment reaching beyond 65535 bytes of reassembled payload is
/// `Invalid(Ipv6)`: the IP packet itself is impossible ("ping of death").
pub fn walk(first: u8, payload: &[u8]) -> Result<Transport, Malformed> {
    let mut at = Transport { protocol: first, offset: 0, fragment: Fragment::None };
    for _ in 0..MAX_EXT_HEADERS {
        if !is_extension(at.protocol) {
            if is_unwalked_extension(at.protocol) {
                return Err(Malformed::Invalid(Layer::Ipv6Ext));
            }
            return Ok(at);
        }
        let rest = slice(payload, at.offset..);
        let ext = ExtHeader::new_checked(at.protocol, rest)?;
        at.protocol = ext.next_header();
        at.offset += ext.header_len();
        match ext.fragment() {
            Fragment::None => {}
            Fragment::First => at.fragment = Fragment::First,
            Fragment::NonFirst => {
                at.fragment = Fragment::NonFirst;
                // The reassembled fragmentable part must fit the 16-bit payload length.
                let data_len = payload.len().saturating_sub(at.offset);
                if usize::from(ext.frag_offset_units()) * 8 + data_len > 65535 {
                    return Err(Malformed::Invalid(Layer::Ipv6));
                }
                return Ok(at);
            }
        }
    }
    if is_extension(at.protocol) || is_unwalked_extension(at.protocol) {
        return Err(Malformed::Invalid(Layer::Ipv6Ext));
    }
    Ok(at)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::next_header::*;
    use super::*;

    const TCP: u8 = 6;

    fn options(next: u8, len_units: u8) -> Vec<u8> {
        let mut h = vec![0u8; (usize::from(len_units) + 1) * 8];
        h[field::NXT_HDR] = next;
        h[field::LENGTH] = len_units;
        h
    }

    fn fragment(next: u8, offset_units: u16, more: bool) -> Vec<u8> {
        let mut h = vec![0u8; FRAGMENT_HEADER_LEN];
        h[field::NXT_HDR] = next;
        h[field::FRAG_OFF_M].copy_from_slice(&((offset_units << 3) | u16::from(more)).to_be_bytes());
        h[field::FRAG_IDENT].copy_from_slice(&0xfeed_beefu32.to_be_bytes());
        h
    }

    #[test]
    fn fields_tile_the_fragment_header() {
        let byte = |at: usize| at..at + 1;
        let fields = [byte(field::NXT_HDR), byte(field::LENGTH), field::FRAG_OFF_M, field::FRAG_IDENT];
        crate::wire::field::assert_tiles(&fields, FRAGMENT_HEADER_LEN);
    }

    #[test]
    fn no_extension_headers() {
        let t = walk(TCP, &[0; 20]).unwrap();
        assert_eq!(t, Transport { protocol: TCP, offset: 0, fragment: Fragment::None });
    }

    #[test]
    fn walks_every_kind() {
        let mut p = options(ROUTING, 0);
        p.extend(options(DEST_OPTS, 1));
        p.extend(options(AUTH, 0));
        // AH with length field 2: (2 + 2) * 4 = 16 bytes.
        let mut ah = vec![0u8; 16];
        ah[field::NXT_HDR] = FRAGMENT;
        ah[field::LENGTH] = 2;
        p.extend(ah);
        p.extend(fragment(TCP, 0, false));
        p.extend([0u8; 20]);
        let t = walk(HOP_BY_HOP, &p).unwrap();
        assert_eq!(t, Transport { protocol: TCP, offset: 8 + 16 + 8 + 16 + 8, fragment: Fragment::None });
    }

    #[test]
    fn fragments() {
        let mut p = fragment(TCP, 0, true);
        p.extend([0u8; 20]);
        assert_eq!(walk(FRAGMENT, &p).unwrap().fragment, Fragment::First);
        let mut p = fragment(DEST_OPTS, 185, true);
        p.extend([0u8; 3]); // fragment data, not a header: never read
        let t = walk(FRAGMENT, &p).unwrap();
        assert_eq!(t, Transport { protocol: DEST_OPTS, offset: 8, fragment: Fragment::NonFirst });
        let h = ExtHeader::new_checked(FRAGMENT, &p[..]).unwrap();
        let mut big = fragment(TCP, 8191, false);
        big.extend([0u8; 8]); // 8191 * 8 + 8 > 65535
        assert_eq!(walk(FRAGMENT, &big[..big.len() - 1]).unwrap().fragment, Fragment::NonFirst);
        assert_eq!(walk(FRAGMENT, &big), Err(Malformed::Invalid(Layer::Ipv6)));
        assert_eq!((h.frag_offset_units(), h.more_fragments(), h.frag_ident()), (185, true, 0xfeed_beef));
    }

    #[test]
    fn stops_at_esp_and_no_next_header() {
        let mut p = options(ESP, 0);
        p.extend([0xffu8; 12]);
        assert_eq!(walk(DEST_OPTS, &p).unwrap(), Transport { protocol: ESP, offset: 8, fragment: Fragment::None });
        let p = options(NO_NEXT_HEADER, 0);
        assert_eq!(walk(HOP_BY_HOP, &p).unwrap().protocol, NO_NEXT_HEADER);
    }

    #[test]
    fn chain_length_is_bounded() {
        let chain = |n: usize| {
            let mut p: Vec<u8> = (0..n).flat_map(|_| options(DEST_OPTS, 0)).collect();
            let last = p.len() - 8 + field::NXT_HDR;
            p[last] = TCP;
            p
        };
        assert_eq!(walk(DEST_OPTS, &chain(8)).unwrap().offset, 64);
        assert_eq!(walk(DEST_OPTS, &chain(9)).unwrap().offset, 72, "more than 8 headers: Linux accepts them");
        assert_eq!(walk(DEST_OPTS, &chain(MAX_EXT_HEADERS)).unwrap().offset, 8 * MAX_EXT_HEADERS);
        assert_eq!(walk(DEST_OPTS, &chain(MAX_EXT_HEADERS + 1)), Err(Malformed::Invalid(Layer::Ipv6Ext)));
    }

    #[test]
    fn unwalked_extension_headers_end_the_chain_unread() {
        for kind in [MOBILITY, HIP, SHIM6, EXPERIMENT_1, EXPERIMENT_2] {
            let mut p = options(kind, 0);
            p.extend(options(TCP, 0));
            assert_eq!(walk(DEST_OPTS, &p), Err(Malformed::Invalid(Layer::Ipv6Ext)), "{kind}");
            assert_eq!(walk(kind, &p), Err(Malformed::Invalid(Layer::Ipv6Ext)), "{kind}");
        }
        // Other protocols are transports (without ports), not headers.
        assert_eq!(walk(DEST_OPTS, &options(132, 0)).unwrap().protocol, 132);
    }

    #[test]
    fn truncated_headers() {
        let p = options(TCP, 1);
        for len in 0..p.len() {
            assert_eq!(walk(ROUTING, &p[..len]), Err(Malformed::Truncated(Layer::Ipv6Ext)), "{len}");
        }
        let p = fragment(TCP, 0, false);
        for len in 0..p.len() {
            assert_eq!(walk(FRAGMENT, &p[..len]), Err(Malformed::Truncated(Layer::Ipv6Ext)), "{len}");
        }
        assert_eq!(ExtHeader::new_checked(TCP, &p[..]), Err(Malformed::Invalid(Layer::Ipv6Ext)));
    }
}
