#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::wire::build::{self as builder, FrameBuilder};
use crate::wire::{parse_frame, Parsed};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [192, 0, 2, 7];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

/// What a rejected frame got: the kind, the reply to its sender, the one to its receiver.
type Answered = (ReplyKind, Vec<u8>, Option<Vec<u8>>);

/// The replies to `frame`, each as its own vector.
fn replies(frame: &[u8]) -> Result<Answered, Silent> {
    let (mut a, mut b) = ([0u8; MAX_REPLY_LEN], [0u8; MAX_REPLY_LEN]);
    let w = write_replies(frame, &mut a, &mut b)?;
    let receiver = (w.to_receiver > 0).then(|| b[..w.to_receiver].to_vec());
    Ok((w.kind, a[..w.to_sender].to_vec(), receiver))
}

fn summary(frame: &[u8]) -> PacketSummary {
    match parse_frame(frame) {
        Ok(Parsed::Ip(s)) => s,
        other => panic!("not an IP packet: {other:?}"),
    }
}

/// The IP header checksum (IPv4) and the transport checksum over the pseudo-header hold.
fn checksums_hold(frame: &[u8]) -> bool {
    let s = summary(frame);
    let l3 = 14 + 4 * usize::from(s.vlan_tags);
    match s.addrs {
        IpPair::V4 { src, dst } => {
            let total = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
            let l4 = &frame[l3 + 20..l3 + total];
            let transport = match s.protocol {
                ip_proto::ICMP => checksum::internet(l4),
                p => checksum::finish(checksum::sum(
                    checksum::pseudo_header_v4(src.to_be_bytes(), dst.to_be_bytes(), p, l4.len() as u16),
                    l4,
                )),
            };
            checksum::internet(&frame[l3..l3 + 20]) == 0 && transport == 0
        }
        IpPair::V6 { src, dst } => {
            let len = usize::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]));
            let l4 = &frame[l3 + 40..l3 + 40 + len];
            let pseudo = checksum::pseudo_header_v6(src.to_be_bytes(), dst.to_be_bytes(), s.protocol, len as u32);
            checksum::finish(checksum::sum(pseudo, l4)) == 0
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn a_syn_gets_a_rst_ack_acknowledging_it_byte_for_byte() {
    let syn = builder::tcp_v4(CLIENT, SERVER, 40000, 443, tcp_flags::SYN, 1000, &[]);
    let (kind, back, on) = replies(&syn).unwrap();
    assert_eq!(kind, ReplyKind::TcpRst);
    assert_eq!(on, None, "the server never saw this connection");
    let expected = hex("020000000001 020000000002 0800
         4500 0028 0000 0000 4006 aec8 c0000207 0a000001
         01bb 9c40 00000000 000003e9 5014 0000 41e4 0000");
    assert_eq!(back, expected);
    assert!(checksums_hold(&back));
}

#[test]
fn a_hello_after_the_handshake_resets_both_ends_at_their_next_sequence_numbers() {
    let b = FrameBuilder { tcp_ack: 0x8000_0001, ..FrameBuilder::new() };
    let hello = b.tcp_v4(CLIENT, SERVER, 40000, 443, tcp_flags::ACK | tcp_flags::PSH, 1001, &[0x16; 300]);
    let (kind, back, on) = replies(&hello).unwrap();
    assert_eq!(kind, ReplyKind::TcpRst);
    let back_s = summary(&back);
    assert_eq!(back_s.addrs, IpPair::V4 { src: u32::from_be_bytes(SERVER), dst: u32::from_be_bytes(CLIENT) });
    assert_eq!((back_s.src_port, back_s.dst_port), (443, 40000));
    // SEQ = SEG.ACK (what the client waits for), RST alone.
    assert_eq!((back_s.tcp_seq, back_s.tcp_flags, back_s.payload_len), (0x8000_0001, tcp_flags::RST, 0));
    assert_eq!(&back[0..12], &[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    let on = on.expect("the server holds the connection");
    let on_s = summary(&on);
    assert_eq!(on_s.addrs, IpPair::V4 { src: u32::from_be_bytes(CLIENT), dst: u32::from_be_bytes(SERVER) });
    assert_eq!((on_s.src_port, on_s.dst_port), (40000, 443));
    // SEQ = the rejected segment's (the server's RCV.NXT), with its ACK.
    assert_eq!((on_s.tcp_seq, on_s.tcp_flags), (1001, tcp_flags::RST | tcp_flags::ACK));
    assert_eq!(&on[14 + 20 + 8..14 + 20 + 12], &0x8000_0001u32.to_be_bytes());
    assert_eq!(&on[0..12], &hello[0..12], "on the way the packet was going");
    assert!(checksums_hold(&back) && checksums_hold(&on));
}

#[test]
fn syn_fin_and_data_count_in_the_acknowledged_length() {
    let seg = builder::tcp_v4(CLIENT, SERVER, 1, 80, tcp_flags::SYN | tcp_flags::FIN, u32::MAX - 1, &[1, 2, 3]);
    let (_, back, _) = replies(&seg).unwrap();
    // 3 bytes, SYN and FIN: SEG.SEQ + 5, wrapping.
    assert_eq!(&back[14 + 20 + 8..14 + 20 + 12], &3u32.to_be_bytes());
    assert_eq!(summary(&back).tcp_seq, 0);
}

#[test]
fn ipv6_with_two_vlan_tags_keeps_the_tags_and_swaps_the_macs() {
    let b = FrameBuilder::new().qinq(100, 200);
    let syn = b.tcp_v6(CLIENT6, SERVER6, 5555, 443, tcp_flags::SYN, 7, &[]);
    let (_, back, on) = replies(&syn).unwrap();
    assert_eq!(on, None);
    assert_eq!(&back[12..22], &syn[12..22], "both tags and the ethertype");
    assert_eq!(&back[0..6], &syn[6..12]);
    assert_eq!(&back[6..12], &syn[0..6]);
    let s = summary(&back);
    assert_eq!(s.vlan_tags, 2);
    assert_eq!(s.addrs, IpPair::V6 { src: u128::from_be_bytes(SERVER6), dst: u128::from_be_bytes(CLIENT6) });
    assert_eq!((s.tcp_flags, s.src_port, s.dst_port), (tcp_flags::RST | tcp_flags::ACK, 443, 5555));
    assert_eq!(&back[22 + 40 + 8..22 + 40 + 12], &8u32.to_be_bytes());
    assert_eq!(back.len(), 22 + 40 + 20);
    assert!(checksums_hold(&back));
}

#[test]
fn udp_gets_icmp_administratively_prohibited_quoting_the_whole_small_packet() {
    let dgram = builder::udp_v4(CLIENT, SERVER, 5353, 53, b"hello");
    let (kind, back, on) = replies(&dgram).unwrap();
    assert_eq!((kind, on), (ReplyKind::Icmp, None));
    let s = summary(&back);
    assert_eq!(s.protocol, ip_proto::ICMP);
    assert_eq!(s.addrs, IpPair::V4 { src: u32::from_be_bytes(SERVER), dst: u32::from_be_bytes(CLIENT) });
    let ip = &back[14..];
    assert_eq!(&ip[0..2], &[0x45, 0xc0]);
    assert_eq!((ip[8], ip[9]), (64, ip_proto::ICMP));
    // Type 3 code 13, 4 unused bytes, then the IP packet as it came.
    assert_eq!(&ip[20..22], &[3, 13]);
    assert_eq!(&ip[24..28], &[0, 0, 0, 0]);
    assert_eq!(&ip[28..], &dgram[14..]);
    assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, ip.len());
    assert!(checksums_hold(&back));
}

#[test]
fn icmpv4_quotes_stop_at_576_bytes() {
    let dgram = builder::udp_v4(CLIENT, SERVER, 5353, 53, &[0xab; 1400]);
    let (_, back, _) = replies(&dgram).unwrap();
    assert_eq!(back.len(), 14 + 576);
    assert_eq!(&back[14 + 28..], &dgram[14..14 + 548]);
    assert!(checksums_hold(&back));
}

#[test]
fn icmpv6_quotes_up_to_the_minimum_mtu_and_padding_is_not_quoted() {
    let dgram = builder::udp_v6(CLIENT6, SERVER6, 5353, 53, &[0xcd; 1400]);
    let (kind, back, _) = replies(&dgram).unwrap();
    assert_eq!(kind, ReplyKind::Icmp);
    assert_eq!(back.len(), 14 + 1280);
    let ip = &back[14..];
    assert_eq!((ip[6], ip[7]), (ip_proto::ICMPV6, 64));
    assert_eq!(&ip[40..42], &[1, 1]);
    assert_eq!(&ip[48..], &dgram[14..14 + 1232]);
    assert!(checksums_hold(&back));

    let small = FrameBuilder { pad: true, ..FrameBuilder::new() }.udp_v6(CLIENT6, SERVER6, 1, 2, &[]);
    let (_, back, _) = replies(&small).unwrap();
    assert_eq!(&back[14 + 48..], &small[14..14 + 48], "the IP packet, without the link's padding");
    let padded4 = FrameBuilder { pad: true, ..FrameBuilder::new() }.udp_v4(CLIENT, SERVER, 1, 2, &[]);
    assert_eq!(padded4.len(), 60);
    let (_, back, _) = replies(&padded4).unwrap();
    assert_eq!(back.len(), 14 + 28 + 28);
}

#[test]
fn an_echo_request_is_answered_and_icmp_errors_are_not() {
    let echo = builder::icmp_v4(CLIENT, SERVER, 8, 0, &[0, 1, 0, 1]);
    assert_eq!(replies(&echo).unwrap().0, ReplyKind::Icmp);
    for t in [3, 4, 5, 11, 12] {
        assert_eq!(replies(&builder::icmp_v4(CLIENT, SERVER, t, 0, &[0; 8])).unwrap_err(), Silent::IcmpError);
    }
    assert_eq!(replies(&builder::icmp_v6(CLIENT6, SERVER6, 128, 0, &[0; 4])).unwrap().0, ReplyKind::Icmp);
    for t in [1, 2, 3, 4, 127] {
        assert_eq!(replies(&builder::icmp_v6(CLIENT6, SERVER6, t, 0, &[0; 4])).unwrap_err(), Silent::IcmpError);
    }
}

#[test]
fn resets_multicast_broadcast_and_later_fragments_get_no_answer() {
    let rst = builder::tcp_v4(CLIENT, SERVER, 1, 2, tcp_flags::RST | tcp_flags::ACK, 5, &[]);
    assert_eq!(replies(&rst).unwrap_err(), Silent::Reset);
    let multicast = builder::udp_v4(CLIENT, [224, 0, 0, 251], 5353, 5353, b"x");
    assert_eq!(replies(&multicast).unwrap_err(), Silent::NotUnicast);
    let broadcast = builder::udp_v4(CLIENT, [255; 4], 68, 67, b"x");
    assert_eq!(replies(&broadcast).unwrap_err(), Silent::NotUnicast);
    let unspecified = builder::udp_v4([0; 4], SERVER, 68, 67, b"x");
    assert_eq!(replies(&unspecified).unwrap_err(), Silent::NotUnicast);
    let mut ff02 = [0u8; 16];
    ff02[0] = 0xff;
    ff02[1] = 0x02;
    ff02[15] = 1;
    assert_eq!(replies(&builder::udp_v6(CLIENT6, ff02, 1, 2, b"x")).unwrap_err(), Silent::NotUnicast);
    let group_mac = FrameBuilder { dst_mac: [0xff; 6], ..FrameBuilder::new() }.udp_v4(CLIENT, SERVER, 1, 2, b"x");
    assert_eq!(replies(&group_mac).unwrap_err(), Silent::NotUnicast);

    let segment = builder::udp_segment_v4(CLIENT, SERVER, 1, 2, &[7; 64]);
    let b = FrameBuilder::new();
    let first = b.ipv4_fragment(CLIENT, SERVER, ip_proto::UDP, (0, true), &segment[..32]);
    let later = b.ipv4_fragment(CLIENT, SERVER, ip_proto::UDP, (4, false), &segment[32..]);
    assert_eq!(replies(&later).unwrap_err(), Silent::NonFirstFragment);
    let (kind, back, _) = replies(&first).unwrap();
    assert_eq!(kind, ReplyKind::Icmp);
    assert_eq!(&back[14 + 28..], &first[14..]);
    // A TCP first fragment: its segment's length is unknown, ICMP answers it.
    let tcp = builder::tcp_segment_v4(CLIENT, SERVER, 1, 2, tcp_flags::SYN, 9, &[0; 40]);
    let first = b.ipv4_fragment(CLIENT, SERVER, ip_proto::TCP, (0, true), &tcp[..32]);
    assert_eq!(replies(&first).unwrap().0, ReplyKind::Icmp);
    assert_eq!(replies(&[0u8; 10]).unwrap_err(), Silent::Unreadable);
}

#[test]
fn short_buffers_are_refused() {
    let syn = builder::tcp_v4(CLIENT, SERVER, 1, 2, tcp_flags::SYN, 0, &[]);
    let (mut a, mut b) = ([0u8; MAX_REPLY_LEN - 1], [0u8; MAX_REPLY_LEN]);
    assert_eq!(write_replies(&syn, &mut a, &mut b), Err(Silent::Unreadable));
}

/// Builder-made packets of every kind the reply builder treats apart, to be mangled.
fn rejected_frame() -> impl Strategy<Value = Vec<u8>> {
    let kind = 0..6u8;
    let (flags, vlans) = (any::<u8>(), 0..3usize);
    let payload = prop::collection::vec(any::<u8>(), 0..1500);
    (kind, flags, vlans, payload, any::<u32>(), any::<u32>()).prop_map(|(kind, flags, vlans, payload, seq, ack)| {
        let mut b = FrameBuilder { tcp_ack: ack, ..FrameBuilder::new() };
        for v in 0..vlans {
            b = b.vlan(v as u16 + 1);
        }
        match kind {
            0 => b.tcp_v4(CLIENT, SERVER, 1, 443, flags, seq, &payload),
            1 => b.tcp_v6(CLIENT6, SERVER6, 1, 443, flags, seq, &payload),
            2 => b.udp_v4(CLIENT, SERVER, 1, 443, &payload),
            3 => b.udp_v6(CLIENT6, SERVER6, 1, 443, &payload),
            4 => b.icmp_v4(CLIENT, SERVER, flags, 0, &payload),
            _ => b.icmp_v6(CLIENT6, SERVER6, flags, 0, &payload),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever the bytes: no panic, and every reply parses back, goes to the sender's
    /// address from the destination's (or on, for the receiver's RST), and has valid checksums.
    #[test]
    fn replies_are_well_formed_whatever_the_packet(frame in rejected_frame(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut frame = frame;
        let i = at.index(frame.len());
        frame[i] = byte;
        frame.truncate(frame.len() - cut.index(frame.len() / 4 + 1));
        let Ok((kind, back, on)) = replies(&frame) else { return Ok(()) };
        let original = summary(&frame);
        let b = summary(&back);
        prop_assert!(checksums_hold(&back));
        prop_assert!(back.len() <= MAX_REPLY_LEN);
        let swapped = match original.addrs {
            IpPair::V4 { src, dst } => IpPair::V4 { src: dst, dst: src },
            IpPair::V6 { src, dst } => IpPair::V6 { src: dst, dst: src },
        };
        prop_assert_eq!(b.addrs, swapped);
        prop_assert_eq!(b.vlan_tags, original.vlan_tags);
        match kind {
            ReplyKind::TcpRst => prop_assert!(b.tcp_flags & tcp_flags::RST != 0),
            ReplyKind::Icmp => prop_assert!(matches!(b.protocol, ip_proto::ICMP | ip_proto::ICMPV6)),
        }
        if let Some(on) = on {
            prop_assert!(checksums_hold(&on));
            prop_assert_eq!(summary(&on).addrs, original.addrs);
        }
    }

    /// Random bytes never panic the builder.
    #[test]
    fn arbitrary_bytes_never_panic(frame in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = replies(&frame);
    }
}
