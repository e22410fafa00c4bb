//! Test and tool support: a datagram's fragmentable part cut into IPv4 or IPv6 fragments at
//! chosen byte ranges (any sizes, order, duplicates or overlaps the caller asks for).

use super::build::{ipv6_fragment_header, FrameBuilder};
use super::ipv6_ext::next_header;

/// One piece of a datagram: `data[start..end]` sent at offset `start` (a multiple of 8 for
/// every piece but the caller's deliberate mistakes), with the M flag `more`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
    pub more: bool,
}

/// `data` cut into consecutive pieces of `size` bytes (rounded down to a multiple of 8, at
/// least 8), the last without the M flag.
pub fn even_pieces(len: usize, size: usize) -> Vec<Piece> {
    let size = (size / 8).max(1) * 8;
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < len || pieces.is_empty() {
        let end = (start + size).min(len);
        pieces.push(Piece { start, end, more: end < len });
        start = end;
    }
    pieces
}

/// IPv4 fragments of `data` (e.g. a TCP segment from [`super::build::tcp_segment_v4`]), with
/// identification `ident`, one frame per piece, in the order given.
pub fn ipv4_fragments(
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    ident: u16,
    data: &[u8],
    pieces: &[Piece],
) -> Vec<Vec<u8>> {
    let b = FrameBuilder { ipv4_ident: ident, ..FrameBuilder::new() };
    pieces
        .iter()
        .map(|p| {
            let bytes = data.get(p.start..p.end.min(data.len())).unwrap_or(&[]);
            b.ipv4_fragment(src, dst, protocol, ((p.start / 8) as u16, p.more), bytes)
        })
        .collect()
}

/// IPv6 fragments of `data` (what follows the fragment header: more extension headers, then
/// the upper-layer header and data, starting with header `next`), identification `ident`.
pub fn ipv6_fragments(
    src: [u8; 16],
    dst: [u8; 16],
    next: u8,
    ident: u32,
    data: &[u8],
    pieces: &[Piece],
) -> Vec<Vec<u8>> {
    let b = FrameBuilder::new();
    pieces
        .iter()
        .map(|p| {
            let bytes = data.get(p.start..p.end.min(data.len())).unwrap_or(&[]);
            let mut payload = ipv6_fragment_header(next, (p.start / 8) as u16, p.more, ident).to_vec();
            payload.extend_from_slice(bytes);
            b.ipv6(src, dst, next_header::FRAGMENT, &payload)
        })
        .collect()
}
