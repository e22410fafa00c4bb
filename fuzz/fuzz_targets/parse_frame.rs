//! Any bytes: `parse_frame` must not panic, and a successful parse must describe a payload
//! inside the frame. The header views are driven directly too, so every accessor runs; and the
//! REJECT reply builder answers the frame: no panic, and every reply it writes parses back
//! as IP with the addresses swapped.
#![no_main]

use dataplane::wire::{
    ethernet, icmp, ip_proto, ipv4, ipv6, ipv6_ext, parse_frame, parse_frame_into, reply, tcp, udp, vlan, Fragment,
    IpPair, PacketSummary, Parsed,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Parsed::Ip(s)) = parse_frame(data) {
        assert!(usize::from(s.payload_offset) + usize::from(s.payload_len) <= data.len());
        assert!(s.vlan_tags <= vlan::MAX_TAGS);
        if s.has_ports {
            assert!(s.protocol == ip_proto::TCP || s.protocol == ip_proto::UDP);
            assert_ne!(s.fragment, Fragment::NonFirst);
        }
    }
    // A packet whose transport cannot be read keeps its addresses and nothing of the transport.
    let mut s = PacketSummary { src_port: 1, tcp_seq: 2, payload_len: 3, ..PacketSummary::EMPTY };
    if let Err(m) = parse_frame_into(data, &mut s) {
        let cause = m.cause();
        assert!(!cause.as_str().is_empty());
        if cause.addresses_known() {
            assert!(!s.has_ports && s.src_port == 0 && s.dst_port == 0 && s.tcp_seq == 0);
            assert_eq!((s.payload_offset, s.payload_len), (0, 0));
        }
    }
    touch_views(data);
    answer(data);
});

/// What a REJECT would send back for `data`, if anything: an IP packet from its destination
/// to its source, within the reply bound.
fn answer(data: &[u8]) {
    let (mut sender, mut receiver) = ([0u8; reply::MAX_REPLY_LEN], [0u8; reply::MAX_REPLY_LEN]);
    let Ok(w) = reply::write_replies(data, &mut sender, &mut receiver) else { return };
    let (Ok(Parsed::Ip(original)), Ok(Parsed::Ip(back))) = (parse_frame(data), parse_frame(&sender[..w.to_sender]))
    else {
        panic!("a reply to a frame that parses must parse");
    };
    let swapped = match original.addrs {
        IpPair::V4 { src, dst } => IpPair::V4 { src: dst, dst: src },
        IpPair::V6 { src, dst } => IpPair::V6 { src: dst, dst: src },
    };
    assert_eq!(back.addrs, swapped);
    assert!(w.to_receiver == 0 || parse_frame(&receiver[..w.to_receiver]).is_ok());
}

/// Construct every view over `data` and read every field: none may panic.
fn touch_views(data: &[u8]) {
    if let Ok(e) = ethernet::EthernetFrame::new_checked(data) {
        let _ = (e.dst_addr(), e.src_addr(), e.ethertype(), e.payload().len());
    }
    if let Ok(v) = vlan::VlanTag::new_checked(data) {
        let _ = (v.priority(), v.drop_eligible(), v.vlan_id(), v.ethertype(), v.payload().len());
    }
    if let Ok(p) = ipv4::Ipv4Packet::new_checked(data) {
        let _ = (p.dscp(), p.ecn(), p.ident(), p.dont_fragment(), p.fragment(), p.frag_offset());
        let _ = (p.ttl(), p.protocol(), p.verify_checksum(), p.src_addr(), p.dst_addr());
        assert!(p.options().len() + p.payload().len() + 20 == p.total_len());
    }
    if let Ok(p) = ipv6::Ipv6Packet::new_checked(data) {
        let _ = (p.traffic_class(), p.flow_label(), p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
        assert_eq!(p.payload().len(), p.payload_len());
        let _ = ipv6_ext::walk(p.next_header(), p.payload());
    }
    if let Some((&kind, rest)) = data.split_first() {
        if let Ok(h) = ipv6_ext::ExtHeader::new_checked(kind, rest) {
            assert!(h.header_len() <= rest.len());
            let _ = (h.next_header(), h.fragment(), h.frag_ident());
        }
    }
    if let Ok(t) = tcp::TcpPacket::new_checked(data) {
        let _ = (t.src_port(), t.dst_port(), t.seq_number(), t.ack_number(), t.flags(), t.window());
        let _ = (t.checksum(), t.urgent_pointer(), t.options().len());
        assert_eq!(t.header_len() + t.payload().len(), data.len());
    }
    if let Ok(u) = udp::UdpPacket::new_checked(data) {
        let _ = (u.src_port(), u.dst_port(), u.checksum());
        assert_eq!(u.payload().len() + 8, u.len());
    }
    if let Ok(u) = udp::UdpPacket::new_checked_header(data) {
        assert!(u.payload().len() + 8 <= data.len());
    }
    if let Ok(i) = icmp::IcmpPacket::new_checked(data) {
        let _ = (i.msg_type(), i.code(), i.checksum(), i.payload().len());
    }
}
