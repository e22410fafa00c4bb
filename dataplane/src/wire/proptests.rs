//! Property tests: arbitrary bytes never panic and always give a self-consistent answer;
//! builder-made frames round-trip through `parse_frame` to exactly the fields they were built with.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use proptest::prelude::*;

use super::build::{self as builder, FrameBuilder};
use super::ipv6_ext::next_header::{AUTH, DEST_OPTS, FRAGMENT, HOP_BY_HOP, ROUTING};
use super::ipv6_ext::MAX_EXT_HEADERS;
use super::{
    checksum, ip_proto, parse_frame, parse_frame_into, Fragment, IpPair, MalformedCause, PacketSummary, Parsed,
};

/// What any successful parse must satisfy, whatever the input.
fn check_invariants(frame: &[u8]) {
    if let Ok(Parsed::Ip(s)) = parse_frame(frame) {
        let end = usize::from(s.payload_offset) + usize::from(s.payload_len);
        assert!(end <= frame.len(), "payload {s:?} beyond a {}-byte frame", frame.len());
        assert!(s.vlan_tags <= 2);
        if s.has_ports {
            assert!(s.protocol == ip_proto::TCP || s.protocol == ip_proto::UDP);
            assert_ne!(s.fragment, Fragment::NonFirst);
        } else {
            assert_eq!((s.src_port, s.dst_port), (0, 0));
        }
        if s.protocol != ip_proto::TCP || !s.has_ports {
            assert_eq!((s.tcp_flags, s.tcp_seq), (0, 0));
        }
    }
    // A packet whose transport is unknown: addresses, no ports, nothing of the transport.
    let mut s = PacketSummary { tcp_seq: 1, src_port: 2, payload_len: 3, ..PacketSummary::EMPTY };
    if let Err(m) = parse_frame_into(frame, &mut s) {
        if m.cause().addresses_known() {
            assert_eq!((s.has_ports, s.src_port, s.dst_port, s.tcp_flags, s.tcp_seq), (false, 0, 0, 0, 0), "{m:?}");
            assert_eq!((s.payload_offset, s.payload_len), (0, 0), "{m:?}");
            assert!(s.vlan_tags <= 2);
        }
    }
}

/// The straight path for common frames and the general walk agree on every frame: the same
/// result and, for an IP packet, the same summary.
fn check_paths_agree(frame: &[u8]) {
    let (mut fast, mut general) = (PacketSummary::EMPTY, PacketSummary::EMPTY);
    let result = super::parse_frame_into(frame, &mut fast);
    assert_eq!(result, super::summary::parse_general_into(frame, &mut general), "{frame:02x?}");
    let transport_unknown = matches!(result, Err(m) if m.cause().addresses_known());
    if result == Ok(None) || transport_unknown {
        assert_eq!(fast, general, "{frame:02x?}");
    }
}

/// Frames that get past Ethernet: an IP or VLAN ethertype, then random bytes with a plausible
/// first IP byte, so the fuzzing reaches the deeper layers.
fn ip_shaped_frame() -> impl Strategy<Value = Vec<u8>> {
    let ethertype = prop::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x88a8]);
    let first = prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x44, 0x08]);
    (ethertype, first, prop::collection::vec(any::<u8>(), 0..160)).prop_map(|(et, first, tail)| {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&et.to_be_bytes());
        f.push(first);
        f.extend(tail);
        f
    })
}

#[derive(Clone, Debug)]
struct Spec {
    v6: bool,
    tcp: bool,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    payload: Vec<u8>,
    vlans: u8,
    padded: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (any::<bool>(), any::<bool>(), any::<[u8; 16]>(), any::<[u8; 16]>()),
        (any::<u16>(), any::<u16>(), any::<u8>(), any::<u32>()),
        (prop::collection::vec(any::<u8>(), 0..120), 0u8..=2, any::<bool>()),
    )
        .prop_map(|((v6, tcp, src, dst), (sport, dport, flags, seq), (payload, vlans, padded))| Spec {
            v6,
            tcp,
            src,
            dst,
            sport,
            dport,
            flags,
            seq,
            payload,
            vlans,
            padded,
        })
}

fn build(s: &Spec) -> Vec<u8> {
    let mut b = FrameBuilder::new();
    b.pad = s.padded;
    for vid in 0..s.vlans {
        b = b.vlan(u16::from(vid) + 1);
    }
    let v4 = |a: [u8; 16]| [a[0], a[1], a[2], a[3]];
    match (s.v6, s.tcp) {
        (false, true) => b.tcp_v4(v4(s.src), v4(s.dst), s.sport, s.dport, s.flags, s.seq, &s.payload),
        (false, false) => b.udp_v4(v4(s.src), v4(s.dst), s.sport, s.dport, &s.payload),
        (true, true) => b.tcp_v6(s.src, s.dst, s.sport, s.dport, s.flags, s.seq, &s.payload),
        (true, false) => b.udp_v6(s.src, s.dst, s.sport, s.dport, &s.payload),
    }
}

fn expected(s: &Spec) -> PacketSummary {
    let addrs = if s.v6 {
        IpPair::V6 { src: u128::from_be_bytes(s.src), dst: u128::from_be_bytes(s.dst) }
    } else {
        let v4 = |a: [u8; 16]| u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
        IpPair::V4 { src: v4(s.src), dst: v4(s.dst) }
    };
    let ip_len = if s.v6 { 40 } else { 20 };
    let l4_len = if s.tcp { 20 } else { 8 };
    PacketSummary {
        addrs,
        protocol: if s.tcp { ip_proto::TCP } else { ip_proto::UDP },
        src_port: s.sport,
        dst_port: s.dport,
        has_ports: true,
        tcp_flags: if s.tcp { s.flags } else { 0 },
        tcp_seq: if s.tcp { s.seq } else { 0 },
        fragment: Fragment::None,
        payload_offset: 14 + 4 * u16::from(s.vlans) + ip_len + l4_len,
        payload_len: s.payload.len() as u16,
        vlan_tags: s.vlans,
    }
}

/// The transport checksum over the pseudo-header sums to zero when correct.
fn transport_checksum_ok(s: &Spec, frame: &[u8]) -> bool {
    let l3 = 14 + 4 * usize::from(s.vlans);
    let proto = if s.tcp { ip_proto::TCP } else { ip_proto::UDP };
    let l4_len = 8 + if s.tcp { 12 } else { 0 } + s.payload.len();
    let pseudo = if s.v6 {
        let l4 = &frame[l3 + 40..l3 + 40 + l4_len];
        checksum::sum(checksum::pseudo_header_v6(s.src, s.dst, proto, l4.len() as u32), l4)
    } else {
        let l4 = &frame[l3 + 20..l3 + 20 + l4_len];
        let v4 = |a: [u8; 16]| [a[0], a[1], a[2], a[3]];
        checksum::sum(checksum::pseudo_header_v4(v4(s.src), v4(s.dst), proto, l4.len() as u16), l4)
    };
    checksum::finish(pseudo) == 0
}

/// An IPv6 extension chain of the kinds a Linux receiver accepts, in any order and number
/// (beyond the walk's bound too).
fn ext_chain() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop::sample::select(vec![HOP_BY_HOP, DEST_OPTS, ROUTING, FRAGMENT, AUTH]);
    prop_oneof![
        4 => prop::collection::vec(kind.clone(), 0..12),
        1 => prop::collection::vec(kind, MAX_EXT_HEADERS - 2..MAX_EXT_HEADERS + 3),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A TCP or UDP packet behind a chain is read to its ports while the chain is within the
    /// bound (the plain path declines, the general walk reads it), and beyond it keeps its
    /// addresses with the transport unknown; corrupted, never a panic.
    #[test]
    fn chains_are_walked_to_the_transport(s in spec(), kinds in ext_chain(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let s = Spec { v6: true, ..s };
        let upper = if s.tcp { ip_proto::TCP } else { ip_proto::UDP };
        let mut p = builder::ipv6_ext_chain(&kinds, upper);
        let chain_len = p.len();
        p.extend(if s.tcp {
            builder::tcp_segment_v6(s.src, s.dst, s.sport, s.dport, s.flags, s.seq, &s.payload)
        } else {
            builder::udp_segment_v6(s.src, s.dst, s.sport, s.dport, &s.payload)
        });
        let mut b = FrameBuilder::new();
        b.pad = s.padded;
        for vid in 0..s.vlans {
            b = b.vlan(u16::from(vid) + 1);
        }
        let frame = b.ipv6(s.src, s.dst, kinds.first().copied().unwrap_or(upper), &p);
        let mut got = PacketSummary::EMPTY;
        let result = parse_frame_into(&frame, &mut got);
        let want = expected(&s);
        if kinds.len() <= MAX_EXT_HEADERS {
            prop_assert_eq!(result, Ok(None));
            let payload_offset = want.payload_offset + chain_len as u16;
            prop_assert_eq!(got, PacketSummary { payload_offset, ..want });
        } else {
            prop_assert_eq!(result.map_err(|m| m.cause()), Err(MalformedCause::ExtChain));
            prop_assert_eq!(got, PacketSummary { addrs: want.addrs, vlan_tags: s.vlans, protocol: kinds[0], ..PacketSummary::EMPTY });
        }
        check_invariants(&frame);
        check_paths_agree(&frame);
        let mut frame = frame;
        let i = at.index(frame.len());
        frame[i] = byte;
        check_invariants(&frame);
        check_paths_agree(&frame);
    }

    #[test]
    fn random_bytes_never_panic(frame in prop::collection::vec(any::<u8>(), 0..200)) {
        check_invariants(&frame);
        check_paths_agree(&frame);
    }

    #[test]
    fn ip_shaped_bytes_never_panic(frame in ip_shaped_frame()) {
        check_invariants(&frame);
        check_paths_agree(&frame);
    }

    #[test]
    fn corrupted_frames_never_panic(s in spec(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut frame = build(&s);
        let i = at.index(frame.len());
        frame[i] = byte;
        check_invariants(&frame);
        check_paths_agree(&frame);
        frame.truncate(cut.index(frame.len() + 1));
        check_invariants(&frame);
        check_paths_agree(&frame);
    }

    #[test]
    fn built_frames_round_trip(s in spec()) {
        let frame = build(&s);
        prop_assert_eq!(parse_frame(&frame), Ok(Parsed::Ip(expected(&s))));
        check_paths_agree(&frame);
        let sum = expected(&s);
        let data = &frame[usize::from(sum.payload_offset)..][..usize::from(sum.payload_len)];
        prop_assert_eq!(data, &s.payload[..]);
        prop_assert!(transport_checksum_ok(&s, &frame));
        if !s.v6 {
            let ip_at = super::ethernet::HEADER_LEN + super::vlan::HEADER_LEN * usize::from(s.vlans);
            let ip = super::ipv4::Ipv4Packet::new_checked(&frame[ip_at..]).unwrap();
            prop_assert!(ip.verify_checksum());
        }
    }
}
