//! The common frame, parsed in one straight pass: untagged IPv4 without options or IPv6
//! without extension headers, not a fragment, carrying a whole TCP or UDP header.
//!
//! [`parse_frame_into`](super::parse_frame_into) tries this first and falls back to the
//! general walk (VLAN tags, IPv4 options, extension headers, fragments, ICMP, malformed
//! frames) whenever a frame is anything else. The general walk stays the reference: for every
//! frame this path accepts, it gives exactly the summary the general walk gives (tested in
//! `proptests`). This path never rejects a frame; it only declines.

use super::ethernet::{ethertype, HEADER_LEN as ETHERNET_LEN};
use super::{ip_proto, Fragment, IpPair, PacketSummary};

const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const TCP_MIN_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// IPv4 "more fragments" flag and fragment offset: zero for a packet that is not a fragment
/// ("don't fragment" may be set).
const IPV4_FRAGMENT_BITS: u16 = 0x3fff;

/// Fills `out` (completely) and returns true when `frame` is a common frame; returns false,
/// leaving `out` unspecified, for everything else.
#[inline(always)]
pub(super) fn parse_plain(frame: &[u8], out: &mut PacketSummary) -> bool {
    let Some((eth, packet)) = frame.split_first_chunk::<ETHERNET_LEN>() else { return false };
    match u16::from_be_bytes([eth[12], eth[13]]) {
        ethertype::IPV4 => plain_ipv4(packet, out),
        ethertype::IPV6 => plain_ipv6(packet, out),
        _ => false,
    }
}

#[inline(always)]
fn plain_ipv4(packet: &[u8], out: &mut PacketSummary) -> bool {
    let Some(ip) = packet.first_chunk::<IPV4_LEN>() else { return false };
    // Version 4 with a 20-byte header (no options), and not a fragment.
    if ip[0] != 0x45 || u16::from_be_bytes([ip[6], ip[7]]) & IPV4_FRAGMENT_BITS != 0 {
        return false;
    }
    // The total length bounds the payload (Ethernet padding excluded) and lies in the frame.
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let Some(data) = packet.get(IPV4_LEN..total_len) else { return false };
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    plain_transport(ip[9], data, ETHERNET_LEN + IPV4_LEN, IpPair::V4 { src, dst }, out)
}

#[inline(always)]
fn plain_ipv6(packet: &[u8], out: &mut PacketSummary) -> bool {
    let Some((ip, rest)) = packet.split_first_chunk::<IPV6_LEN>() else { return false };
    if ip[0] >> 4 != 6 {
        return false;
    }
    let Some(data) = rest.get(..usize::from(u16::from_be_bytes([ip[4], ip[5]]))) else { return false };
    let address = |at: usize| ip.get(at..at + 16).and_then(|a| <[u8; 16]>::try_from(a).ok()).map(u128::from_be_bytes);
    let (Some(src), Some(dst)) = (address(8), address(24)) else { return false };
    // The next header is the transport header itself (TCP and UDP are not extension headers).
    plain_transport(ip[6], data, ETHERNET_LEN + IPV6_LEN, IpPair::V6 { src, dst }, out)
}

/// The TCP or UDP header at the start of `data` (the IP payload, at `offset` in the frame).
#[inline(always)]
fn plain_transport(protocol: u8, data: &[u8], offset: usize, addrs: IpPair, out: &mut PacketSummary) -> bool {
    let (ports, tcp_flags, tcp_seq, header_len, payload_len) = match protocol {
        ip_proto::TCP => {
            let Some(tcp) = data.first_chunk::<TCP_MIN_LEN>() else { return false };
            let header_len = usize::from(tcp[12] >> 4) * 4;
            if header_len < TCP_MIN_LEN || header_len > data.len() {
                return false;
            }
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
            ([tcp[0], tcp[1], tcp[2], tcp[3]], tcp[13], seq, header_len, data.len() - header_len)
        }
        ip_proto::UDP => {
            let Some(udp) = data.first_chunk::<UDP_LEN>() else { return false };
            let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
            if len < UDP_LEN || len > data.len() {
                return false;
            }
            ([udp[0], udp[1], udp[2], udp[3]], 0, 0, UDP_LEN, len - UDP_LEN)
        }
        _ => return false,
    };
    // Both fit: IP lengths are 16-bit and the headers before the payload are short.
    let (Ok(payload_offset), Ok(payload_len)) = (u16::try_from(offset + header_len), u16::try_from(payload_len)) else {
        return false;
    };
    *out = PacketSummary {
        addrs,
        protocol,
        src_port: u16::from_be_bytes([ports[0], ports[1]]),
        dst_port: u16::from_be_bytes([ports[2], ports[3]]),
        has_ports: true,
        tcp_flags,
        tcp_seq,
        fragment: Fragment::None,
        payload_offset,
        payload_len,
        vlan_tags: 0,
    };
    true
}
