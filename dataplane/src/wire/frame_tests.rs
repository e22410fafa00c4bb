//! `parse_frame` on whole frames: exact summaries for valid frames, exact errors for malformed.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use super::build::{self, FrameBuilder};
use super::ipv6_ext::next_header::*;
use super::ipv6_ext::MAX_EXT_HEADERS;
use super::Malformed::{Invalid, Truncated};
use super::{
    ip_proto, parse_frame, parse_frame_into, tcp_flags, Fragment, IpPair, Layer, MalformedCause, PacketSummary, Parsed,
};

const A4: [u8; 4] = [10, 1, 2, 3];
const B4: [u8; 4] = [192, 168, 211, 9];
const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd];
const V4: IpPair = IpPair::V4 { src: 0x0a01_0203, dst: 0xc0a8_d309 };
const V6: IpPair =
    IpPair::V6 { src: 0x2001_0db8_0000_0000_0000_0000_0000_0001, dst: 0xfe80_0000_0000_0000_0000_0000_0000_abcd };

fn summary(frame: &[u8]) -> PacketSummary {
    match parse_frame(frame) {
        Ok(Parsed::Ip(s)) => s,
        other => panic!("expected an IP summary, got {other:?}"),
    }
}

/// A summary with no ports, flags or payload, to adjust with struct update syntax.
fn base(addrs: IpPair, protocol: u8) -> PacketSummary {
    PacketSummary { addrs, protocol, ..PacketSummary::EMPTY }
}

fn ports(s: PacketSummary, src_port: u16, dst_port: u16) -> PacketSummary {
    PacketSummary { src_port, dst_port, has_ports: true, ..s }
}

/// Rewrite the IPv4 total length of an untagged frame.
fn set_ipv4_total_len(frame: &mut [u8], len: u16) {
    frame[16..18].copy_from_slice(&len.to_be_bytes());
}

#[test]
fn tcp_v4() {
    let f = build::tcp_v4(A4, B4, 40000, 443, tcp_flags::SYN | tcp_flags::ACK, 0xdead_beef, b"hello");
    let expected = PacketSummary {
        tcp_flags: 0x12,
        tcp_seq: 0xdead_beef,
        payload_offset: 54,
        payload_len: 5,
        ..ports(base(V4, ip_proto::TCP), 40000, 443)
    };
    assert_eq!(summary(&f), expected);
    assert_eq!(&f[54..], b"hello");
}

#[test]
fn udp_v4_padding_is_not_payload() {
    let f = FrameBuilder::new().padded().udp_v4(A4, B4, 53, 5353, b"abc");
    assert_eq!(f.len(), 60);
    let expected = PacketSummary { payload_offset: 42, payload_len: 3, ..ports(base(V4, ip_proto::UDP), 53, 5353) };
    assert_eq!(summary(&f), expected);
}

#[test]
fn icmp_v4_and_v6() {
    let f = build::icmp_v4(A4, B4, 8, 0, &[0, 1, 0, 2, 9]);
    let expected = PacketSummary { payload_offset: 38, payload_len: 5, ..base(V4, ip_proto::ICMP) };
    assert_eq!(summary(&f), expected);
    let f = FrameBuilder::new().padded().icmp_v6(A6, B6, 128, 0, &[0, 1, 0, 2]);
    let expected = PacketSummary { payload_offset: 58, payload_len: 4, ..base(V6, ip_proto::ICMPV6) };
    assert_eq!(summary(&f), expected);
}

#[test]
fn short_icmp_is_truncated() {
    let f = FrameBuilder::new().ipv4(A4, B4, ip_proto::ICMP, &[8, 0, 0]);
    assert_eq!(parse_frame(&f), Err(Truncated(Layer::Icmp)));
    let f = FrameBuilder::new().ipv6(A6, B6, ip_proto::ICMPV6, &[128, 0, 0]);
    assert_eq!(parse_frame(&f), Err(Truncated(Layer::Icmp)));
}

#[test]
fn tcp_and_udp_v6() {
    let f = build::tcp_v6(A6, B6, 1, 2, tcp_flags::PSH, 7, b"data");
    let expected = PacketSummary {
        tcp_flags: tcp_flags::PSH,
        tcp_seq: 7,
        payload_offset: 74,
        payload_len: 4,
        ..ports(base(V6, ip_proto::TCP), 1, 2)
    };
    assert_eq!(summary(&f), expected);
    let f = build::udp_v6(A6, B6, 3, 4, &[]);
    let expected = PacketSummary { payload_offset: 62, ..ports(base(V6, ip_proto::UDP), 3, 4) };
    assert_eq!(summary(&f), expected);
}

#[test]
fn vlan_tags() {
    let one = FrameBuilder::new().vlan(100).tcp_v4(A4, B4, 1, 2, 0, 0, b"x");
    assert_eq!((summary(&one).vlan_tags, summary(&one).payload_offset), (1, 58));
    let qinq = FrameBuilder::new().qinq(10, 20).udp_v6(A6, B6, 1, 2, b"xy");
    let expected =
        PacketSummary { vlan_tags: 2, payload_offset: 70, payload_len: 2, ..ports(base(V6, ip_proto::UDP), 1, 2) };
    assert_eq!(summary(&qinq), expected);
    let double_q = FrameBuilder::new().vlan(1).vlan(2).udp_v4(A4, B4, 1, 2, b"");
    assert_eq!(summary(&double_q).vlan_tags, 2);
    let three = FrameBuilder::new().qinq(10, 20).vlan(30).udp_v4(A4, B4, 1, 2, b"");
    assert_eq!(parse_frame(&three), Err(Invalid(Layer::Vlan)));
}

#[test]
fn non_ip_ethertypes() {
    let arp = FrameBuilder::new().padded().ethernet(0x0806, &[0; 28]);
    assert_eq!(parse_frame(&arp), Ok(Parsed::NonIp { ethertype: 0x0806 }));
    let tagged_lldp = FrameBuilder::new().vlan(5).ethernet(0x88cc, &[]);
    assert_eq!(parse_frame(&tagged_lldp), Ok(Parsed::NonIp { ethertype: 0x88cc }));
}

#[test]
fn every_prefix_of_a_tagged_ipv4_frame() {
    let f = FrameBuilder::new().vlan(7).tcp_v4(A4, B4, 1000, 80, tcp_flags::ACK, 1, b"GET / HTTP/1.1");
    for len in 0..f.len() {
        let expected = match len {
            0..=13 => Truncated(Layer::Ethernet),
            14..=17 => Truncated(Layer::Vlan),
            18..=37 => Truncated(Layer::Ipv4),
            _ => Invalid(Layer::Ipv4), // total length beyond the frame
        };
        assert_eq!(parse_frame(&f[..len]), Err(expected), "prefix {len}");
    }
    assert!(parse_frame(&f).is_ok());
}

#[test]
fn every_prefix_of_an_ipv6_frame() {
    let f = build::udp_v6(A6, B6, 1, 2, b"payload");
    for len in 0..f.len() {
        let expected = match len {
            0..=13 => Truncated(Layer::Ethernet),
            14..=53 => Truncated(Layer::Ipv6),
            _ => Invalid(Layer::Ipv6),
        };
        assert_eq!(parse_frame(&f[..len]), Err(expected), "prefix {len}");
    }
}

/// Cut the transport short while keeping the IP length consistent with the frame.
#[test]
fn every_transport_truncation() {
    let tcp = build::tcp_v4(A4, B4, 1, 2, 0, 0, b"");
    let udp = build::udp_v4(A4, B4, 1, 2, b"");
    for (frame, layer, header) in [(tcp, Layer::Tcp, 20), (udp, Layer::Udp, 8)] {
        for cut in 0..header {
            let mut f = frame[..34 + cut].to_vec();
            set_ipv4_total_len(&mut f, 20 + cut as u16);
            assert_eq!(parse_frame(&f), Err(Truncated(layer)), "{layer:?} cut at {cut}");
        }
    }
}

#[test]
fn malformed_ipv4_headers() {
    let good = build::tcp_v4(A4, B4, 1, 2, 0, 0, b"abc");
    let mutate = |at: usize, value: u8| {
        let mut f = good.clone();
        f[at] = value;
        parse_frame(&f)
    };
    assert_eq!(mutate(14, 0x44), Err(Invalid(Layer::Ipv4)), "IHL 4");
    assert_eq!(mutate(14, 0x65), Err(Invalid(Layer::Ipv4)), "version 6 in an IPv4 ethertype");
    assert_eq!(mutate(17, 44), Err(Invalid(Layer::Ipv4)), "total length > frame");
    assert_eq!(mutate(17, 19), Err(Invalid(Layer::Ipv4)), "total length < IHL*4");
    assert_eq!(mutate(46, 0x40), Err(Invalid(Layer::Tcp)), "data offset 4");
    assert_eq!(mutate(46, 0x60), Err(Truncated(Layer::Tcp)), "options beyond the IP payload");
    let v6 = build::udp_v6(A6, B6, 1, 2, b"");
    let mut f = v6.clone();
    f[14] = 0x45;
    assert_eq!(parse_frame(&f), Err(Invalid(Layer::Ipv6)), "version 4 in an IPv6 ethertype");
}

#[test]
fn malformed_udp_lengths() {
    let good = FrameBuilder::new().padded().udp_v4(A4, B4, 1, 2, b"abcd");
    let mut f = good.clone();
    f[39] = 7;
    assert_eq!(parse_frame(&f), Err(Invalid(Layer::Udp)), "UDP length 7");
    f[39] = 13;
    assert_eq!(parse_frame(&f), Err(Invalid(Layer::Udp)), "UDP length beyond the IP payload (into padding)");
    f[39] = 10;
    assert_eq!(summary(&f).payload_len, 2, "UDP length shorter than the IP payload bounds the data");
}

#[test]
fn ipv4_fragments() {
    let segment = build::tcp_segment_v4(A4, B4, 5555, 443, tcp_flags::PSH, 99, &[0xaa; 24]);
    let b = FrameBuilder::new();
    let first = b.ipv4_fragment(A4, B4, ip_proto::TCP, (0, true), &segment[..32]);
    let expected = PacketSummary {
        fragment: Fragment::First,
        tcp_flags: tcp_flags::PSH,
        tcp_seq: 99,
        payload_offset: 54,
        payload_len: 12,
        ..ports(base(V4, ip_proto::TCP), 5555, 443)
    };
    assert_eq!(summary(&first), expected);
    let rest = b.ipv4_fragment(A4, B4, ip_proto::TCP, (4, false), &segment[32..]);
    let expected =
        PacketSummary { fragment: Fragment::NonFirst, payload_offset: 34, payload_len: 12, ..base(V4, ip_proto::TCP) };
    assert_eq!(summary(&rest), expected);
    // Offset 1 (8 bytes) overlaps the TCP header: still a non-first fragment, never parsed as TCP.
    let overlap = b.ipv4_fragment(A4, B4, ip_proto::TCP, (1, true), &segment[8..]);
    assert_eq!(summary(&overlap).fragment, Fragment::NonFirst);
    assert!(!summary(&overlap).has_ports);
    // The tiny-fragment attack: a first fragment that cuts the TCP header.
    let tiny = b.ipv4_fragment(A4, B4, ip_proto::TCP, (0, true), &segment[..8]);
    assert_eq!(parse_frame(&tiny), Err(Truncated(Layer::Tcp)));
}

#[test]
fn ipv4_first_fragment_of_udp() {
    let datagram = build::udp_segment_v4(A4, B4, 53, 1024, &[7; 100]);
    let first = FrameBuilder::new().ipv4_fragment(A4, B4, ip_proto::UDP, (0, true), &datagram[..48]);
    let expected = PacketSummary {
        fragment: Fragment::First,
        payload_offset: 42,
        payload_len: 40,
        ..ports(base(V4, ip_proto::UDP), 53, 1024)
    };
    assert_eq!(summary(&first), expected);
    let tiny = FrameBuilder::new().ipv4_fragment(A4, B4, ip_proto::UDP, (0, true), &datagram[..4]);
    assert_eq!(parse_frame(&tiny), Err(Truncated(Layer::Udp)));
}

#[test]
fn ipv6_extension_chain() {
    let segment = build::tcp_segment_v6(A6, B6, 9, 10, tcp_flags::SYN, 5, b"z");
    let mut p = build::ipv6_options_header(ROUTING, 0);
    p.extend(build::ipv6_options_header(DEST_OPTS, 2));
    p.extend(build::ipv6_options_header(ip_proto::TCP, 0));
    p.extend(&segment);
    let f = FrameBuilder::new().ipv6(A6, B6, HOP_BY_HOP, &p);
    let expected = PacketSummary {
        tcp_flags: tcp_flags::SYN,
        tcp_seq: 5,
        payload_offset: 54 + 8 + 24 + 8 + 20,
        payload_len: 1,
        ..ports(base(V6, ip_proto::TCP), 9, 10)
    };
    assert_eq!(summary(&f), expected);
}

#[test]
fn ipv6_fragments() {
    let segment = build::tcp_segment_v6(A6, B6, 9, 10, 0, 0, &[1; 30]);
    let b = FrameBuilder::new();
    let mut first = build::ipv6_fragment_header(ip_proto::TCP, 0, true, 77).to_vec();
    first.extend(&segment[..24]);
    let s = summary(&b.ipv6(A6, B6, FRAGMENT, &first));
    assert_eq!((s.fragment, s.has_ports, s.dst_port, s.payload_len), (Fragment::First, true, 10, 4));
    let mut tiny = build::ipv6_fragment_header(ip_proto::TCP, 0, true, 77).to_vec();
    tiny.extend(&segment[..16]);
    assert_eq!(parse_frame(&b.ipv6(A6, B6, FRAGMENT, &tiny)), Err(Truncated(Layer::Tcp)));
    let mut rest = build::ipv6_fragment_header(ip_proto::TCP, 3, false, 77).to_vec();
    rest.extend(&segment[24..]);
    let expected =
        PacketSummary { fragment: Fragment::NonFirst, payload_offset: 62, payload_len: 26, ..base(V6, ip_proto::TCP) };
    assert_eq!(summary(&b.ipv6(A6, B6, FRAGMENT, &rest)), expected);
    // An atomic fragment (offset 0, no M flag) is a whole packet.
    let mut atomic = build::ipv6_fragment_header(ip_proto::TCP, 0, false, 77).to_vec();
    atomic.extend(&segment);
    assert_eq!(summary(&b.ipv6(A6, B6, FRAGMENT, &atomic)).fragment, Fragment::None);
}

#[test]
fn ipv6_opaque_transports() {
    let mut esp = build::ipv6_options_header(ESP, 0);
    esp.extend([0x55; 16]);
    let f = FrameBuilder::new().ipv6(A6, B6, DEST_OPTS, &esp);
    assert_eq!(parse_frame(&f), Err(Invalid(Layer::Esp)), "ESP: the transport is encrypted");
    let mut s = PacketSummary::EMPTY;
    assert_eq!(parse_frame_into(&f, &mut s).map_err(|m| m.cause()), Err(MalformedCause::Encrypted));
    assert_eq!(s, base(V6, ESP), "the addresses stand");
    let f = FrameBuilder::new().padded().ipv6(A6, B6, NO_NEXT_HEADER, &[]);
    let expected = PacketSummary { payload_offset: 54, ..base(V6, NO_NEXT_HEADER) };
    assert_eq!(summary(&f), expected);
    // AH: length field 1 -> (1 + 2) * 4 = 12 bytes, then UDP.
    let mut ah = vec![ip_proto::UDP, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    ah.extend(build::udp_segment_v6(A6, B6, 500, 500, b""));
    let s = summary(&FrameBuilder::new().ipv6(A6, B6, AUTH, &ah));
    assert_eq!((s.protocol, s.src_port, s.payload_offset), (ip_proto::UDP, 500, 74));
}

#[test]
fn ipv6_extension_errors() {
    let n = MAX_EXT_HEADERS + 1;
    let mut chain = build::ipv6_ext_chain(&[DEST_OPTS; MAX_EXT_HEADERS + 1], ip_proto::UDP);
    chain.extend(build::udp_segment_v6(A6, B6, 1, 2, b""));
    let f = FrameBuilder::new().ipv6(A6, B6, DEST_OPTS, &chain);
    assert_eq!(parse_frame(&f), Err(Invalid(Layer::Ipv6Ext)), "{n} extension headers");
    // The addresses stand, the transport is unknown.
    let mut s = PacketSummary { tcp_seq: 9, ..PacketSummary::EMPTY };
    assert_eq!(parse_frame_into(&f, &mut s).map_err(|m| m.cause()), Err(MalformedCause::ExtChain));
    assert_eq!(s, base(V6, DEST_OPTS));
    let f = FrameBuilder::new().ipv6(A6, B6, HOP_BY_HOP, &chain[8..]);
    assert_eq!(summary(&f).src_port, 1, "{} extension headers are fine", n - 1);
    // An extension header that runs past the IPv6 payload length (into padding).
    let f = FrameBuilder::new().padded().ipv6(A6, B6, HOP_BY_HOP, &[ip_proto::TCP, 0, 1, 2]);
    assert_eq!(parse_frame(&f), Err(Truncated(Layer::Ipv6Ext)));
    // An extension header the walk does not step over (Mobility) hides what follows.
    let mut mobility = build::ipv6_ext_chain(&[DEST_OPTS, MOBILITY], ip_proto::TCP);
    mobility.extend(build::tcp_segment_v6(A6, B6, 1, 2, 0, 0, b""));
    let f = FrameBuilder::new().ipv6(A6, B6, DEST_OPTS, &mobility);
    assert_eq!(parse_frame(&f), Err(Invalid(Layer::Ipv6Ext)));
}

/// The chains a Linux receiver accepts (RFC 8200 order or not, repeated destination options,
/// routing headers of any type with segments left 0, atomic fragments) are walked to the
/// transport: the two bypasses of issue 18 among them.
#[test]
fn ipv6_chains_a_linux_receiver_accepts() {
    let tcp = || build::tcp_segment_v6(A6, B6, 40000, 22, tcp_flags::SYN, 1, b"");
    let chains: Vec<Vec<u8>> = vec![
        vec![DEST_OPTS; 8],
        vec![DEST_OPTS; 12],
        vec![HOP_BY_HOP, ROUTING, FRAGMENT],
        vec![HOP_BY_HOP, DEST_OPTS, ROUTING, FRAGMENT, AUTH, DEST_OPTS],
        vec![FRAGMENT, ROUTING, DEST_OPTS, DEST_OPTS, HOP_BY_HOP],
        [vec![HOP_BY_HOP], vec![DEST_OPTS; 30], vec![ROUTING, FRAGMENT]].concat(),
    ];
    for kinds in chains {
        let mut p = build::ipv6_ext_chain(&kinds, ip_proto::TCP);
        let chain_len = p.len();
        p.extend(tcp());
        let f = FrameBuilder::new().ipv6(A6, B6, kinds[0], &p);
        let s = summary(&f);
        assert_eq!(
            (s.protocol, s.dst_port, s.has_ports, s.fragment),
            (ip_proto::TCP, 22, true, Fragment::None),
            "{kinds:?}"
        );
        assert_eq!(usize::from(s.payload_offset), 54 + chain_len + 20, "{kinds:?}");
    }
    // Routing headers of every type, segments left 0, one with a longer body.
    for (routing_type, len_units) in [(0, 0), (2, 2), (3, 1), (4, 4), (253, 0)] {
        let mut p = build::ipv6_routing_header(ip_proto::TCP, routing_type, 0, len_units);
        p.extend(tcp());
        assert_eq!(summary(&FrameBuilder::new().ipv6(A6, B6, ROUTING, &p)).dst_port, 22, "type {routing_type}");
    }
}

/// Each cause, and whether the addresses are read.
#[test]
fn causes_of_malformed_frames() {
    let fb = FrameBuilder::new();
    let tcp4 = build::tcp_v4(A4, B4, 1, 2, 0, 0, b"");
    let cause = |f: &[u8]| parse_frame(f).map(|_| ()).map_err(|m| (m.cause().as_str(), m.cause().addresses_known()));
    assert_eq!(cause(&tcp4[..10]), Err(("truncated-l2", false)));
    assert_eq!(cause(&fb.clone().vlan(1).vlan(2).vlan(3).tcp_v4(A4, B4, 1, 2, 0, 0, b"")), Err(("vlan-stack", false)));
    assert_eq!(cause(&tcp4[..30]), Err(("truncated-ip", false)));
    let mut bad_version = tcp4.clone();
    bad_version[14] = 0x55;
    assert_eq!(cause(&bad_version), Err(("bad-ip-header", false)));
    let mut bad_ihl = tcp4.clone();
    bad_ihl[14] = 0x44;
    assert_eq!(cause(&bad_ihl), Err(("bad-ip-header", false)));
    let mut long = tcp4.clone();
    long[16..18].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(cause(&long), Err(("bad-ip-header", false)));
    assert_eq!(cause(&fb.ipv4(A4, B4, ip_proto::TCP, &[0; 12])), Err(("truncated-l4", true)));
    assert_eq!(cause(&fb.ipv6(A6, B6, ip_proto::UDP, &[0; 7])), Err(("truncated-l4", true)));
    let mut bad_offset = build::tcp_segment_v4(A4, B4, 1, 2, 0, 0, b"");
    bad_offset[12] = 0x40;
    assert_eq!(cause(&fb.ipv4(A4, B4, ip_proto::TCP, &bad_offset)), Err(("bad-l4-header", true)));
    assert_eq!(cause(&fb.ipv4(A4, B4, ESP, &[0; 24])), Err(("encrypted", true)));
    let chain = build::ipv6_ext_chain(&[DEST_OPTS; MAX_EXT_HEADERS + 1], ip_proto::TCP);
    assert_eq!(cause(&fb.ipv6(A6, B6, DEST_OPTS, &chain)), Err(("ext-chain", true)));
}
