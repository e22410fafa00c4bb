#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use super::*;
use crate::wire::build::{ipv6_options_header, tcp_segment_v4, tcp_segment_v6, udp_segment_v4, FrameBuilder};
use crate::wire::fragment_build::{ipv4_fragments, ipv6_fragments, Piece};
use crate::wire::{parse_frame, tcp_flags};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const A6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn piece(start: usize, end: usize, more: bool) -> Piece {
    Piece { start, end, more }
}

#[test]
fn whole_packets_are_no_fragments() {
    assert_eq!(fragment_view(&crate::wire::build::tcp_v4(A, B, 1, 445, tcp_flags::SYN, 0, &[])), None);
    assert_eq!(fragment_view(&crate::wire::build::udp_v6(A6, B6, 1, 53, b"q")), None);
    // An IPv6 atomic fragment is a whole packet.
    let seg = tcp_segment_v6(A6, B6, 1, 445, tcp_flags::SYN, 0, &[]);
    let atomic = ipv6_fragments(A6, B6, ip_proto::TCP, 7, &seg, &[piece(0, seg.len(), false)]);
    assert_eq!(fragment_view(&atomic[0]), None);
    assert_eq!(fragment_view(b"short"), None);
}

#[test]
fn ipv4_fragments_give_key_range_and_flags() {
    let seg = tcp_segment_v4(A, B, 1000, 445, tcp_flags::SYN, 0, &[0; 40]);
    let frames = ipv4_fragments(A, B, ip_proto::TCP, 0xbeef, &seg, &[piece(0, 24, true), piece(24, 60, false)]);
    let first = fragment_view(&frames[0]).unwrap();
    let key = DatagramKey { addrs: IpPair::V4 { src: 0x0a00_0001, dst: 0x0a00_0002 }, protocol: 6, id: 0xbeef };
    assert_eq!(first, FragmentView { key, offset: 0, len: 24, more: true, problem: None });
    let last = fragment_view(&frames[1]).unwrap();
    assert_eq!(last, FragmentView { key, offset: 24, len: 36, more: false, problem: None });
    assert!(first.is_first() && !last.is_first());
    assert_eq!(last.end(), 60);
}

#[test]
fn tiny_first_fragments() {
    // nmap -f: 8 bytes of TCP header in the first fragment.
    let seg = tcp_segment_v4(A, B, 1000, 445, tcp_flags::SYN, 0, &[]);
    let frames = ipv4_fragments(A, B, ip_proto::TCP, 1, &seg, &[piece(0, 8, true), piece(8, 20, false)]);
    assert_eq!(fragment_view(&frames[0]).unwrap().problem, Some(FragmentProblem::Tiny));
    assert!(parse_frame(&frames[0]).is_err());
    // The second piece sits at offset 8: refused by RFC 1858 as well.
    assert_eq!(fragment_view(&frames[1]).unwrap().problem, Some(FragmentProblem::OffsetOne));
    // A header with options longer than the first fragment: the data offset counts.
    let mut seg = tcp_segment_v4(A, B, 1000, 445, tcp_flags::SYN, 0, &[0; 16]);
    seg[12] = 0x80; // 32-byte header
    let frames = ipv4_fragments(A, B, ip_proto::TCP, 1, &seg, &[piece(0, 24, true), piece(24, 36, false)]);
    assert_eq!(fragment_view(&frames[0]).unwrap().problem, Some(FragmentProblem::Tiny));
    // UDP: fewer than 8 bytes.
    let seg = udp_segment_v4(A, B, 1000, 53, &[0; 16]);
    let frames = ipv4_fragments(A, B, ip_proto::UDP, 1, &seg, &[piece(0, 4, true), piece(8, 24, false)]);
    assert_eq!(fragment_view(&frames[0]).unwrap().problem, Some(FragmentProblem::Tiny));
    // Offset 8 is fine for UDP.
    assert_eq!(fragment_view(&frames[1]).unwrap().problem, None);
}

#[test]
fn oversize_fragments() {
    let data = vec![0; 65544];
    let frames = ipv4_fragments(A, B, ip_proto::UDP, 1, &data, &[piece(65504, 65520, false)]);
    assert_eq!(fragment_view(&frames[0]).unwrap().problem, Some(FragmentProblem::Oversize));
    assert!(parse_frame(&frames[0]).is_err());
    let frames = ipv4_fragments(A, B, ip_proto::UDP, 1, &data, &[piece(65496, 65512, false)]);
    assert_eq!(fragment_view(&frames[0]).unwrap().problem, None);
    let frames = ipv6_fragments(A6, B6, ip_proto::UDP, 1, &data, &[piece(65528, 65544, false)]);
    assert_eq!(fragment_view(&frames[0]).unwrap().problem, Some(FragmentProblem::Oversize));
}

#[test]
fn ipv6_first_fragments_carry_the_chain() {
    let seg = tcp_segment_v6(A6, B6, 1000, 445, tcp_flags::SYN, 0, &[]);
    let frames = ipv6_fragments(A6, B6, ip_proto::TCP, 0xdead_beef, &seg, &[piece(0, 8, true), piece(8, 20, false)]);
    let first = fragment_view(&frames[0]).unwrap();
    assert_eq!((first.key.id, first.key.protocol, first.problem), (0xdead_beef, 6, Some(FragmentProblem::Tiny)));
    assert_eq!(fragment_view(&frames[1]).unwrap().problem, Some(FragmentProblem::OffsetOne));
    // Destination options after the fragment header, cut by the first fragment's end.
    let mut data = ipv6_options_header(ip_proto::TCP, 2);
    data.extend(&seg);
    let frames = ipv6_fragments(A6, B6, 60, 9, &data, &[piece(0, 16, true), piece(16, data.len(), false)]);
    let first = fragment_view(&frames[0]).unwrap();
    assert_eq!((first.key.protocol, first.problem), (60, Some(FragmentProblem::IncompleteChain)));
    let frames = ipv6_fragments(A6, B6, 60, 9, &data, &[piece(0, 48, true), piece(48, data.len(), false)]);
    assert_eq!(fragment_view(&frames[0]).unwrap().problem, None);
    assert_eq!(fragment_view(&frames[1]).unwrap().offset, 48);
}

#[test]
fn tagged_frames_are_walked() {
    let seg = udp_segment_v4(A, B, 1000, 53, &[0; 16]);
    let b = FrameBuilder::new().vlan(7);
    let frame = b.ipv4_fragment(A, B, ip_proto::UDP, (0, true), &seg[..16]);
    assert_eq!(fragment_view(&frame).unwrap().len, 16);
}
