//! The common frame, parsed in one straight pass: untagged IPv4 without options or IPv6
//! without extension headers, not a fragment, carrying a whole TCP or UDP header.
//!
//! [`parse_frame_into`](super::parse_frame_into) tries this first and falls back to the
//! general walk (VLAN tags, IPv4 options, extension headers, fragments, ICMP, malformed
//! frames) whenever a frame is anything else. The general walk stays the reference: for every
//! frame this path accepts, it gives exactly the summary the general walk gives (tested in
//! `proptests`). This path never rejects a frame; it only declines.

use super::ethernet::{self, ethertype, HEADER_LEN as ETHERNET_LEN};
use super::field::{array, be16, be32};
use super::ipv4::{self, MIN_HEADER_LEN as IPV4_LEN};
use super::ipv6::{self, HEADER_LEN as IPV6_LEN};
use super::tcp::{self, MIN_HEADER_LEN as TCP_MIN_LEN};
use super::udp::{self, HEADER_LEN as UDP_LEN};
use super::{ip_proto, Fragment, IpPair, PacketSummary};

/// The version-and-IHL byte of IPv4 with a 20-byte header (no options).
const IPV4_PLAIN_VER_IHL: u8 = 0x45;
/// The flags-and-offset bits that make a fragment: "more fragments" and the fragment offset
/// ("don't fragment" may be set).
const IPV4_FRAGMENT_BITS: u16 = ipv4::field::MORE_FRAGS | ipv4::field::FRAG_OFF;

/// The summary of `frame` when it is a common frame; `None` for everything else. Returned by
/// value: the pipeline keeps only the flow's key of a common frame (the fields it does not
/// read are never computed once this is inlined), and writes the whole summary only for the
/// few packets that need it (see `pipeline::burst::StageArrays::summary`).
#[inline(always)]
pub(super) fn parse_plain(frame: &[u8]) -> Option<PacketSummary> {
    // The ethertype compared as it lies in the frame (no byte swap per packet).
    const IPV4: u16 = u16::from_ne_bytes(ethertype::IPV4.to_be_bytes());
    const IPV6: u16 = u16::from_ne_bytes(ethertype::IPV6.to_be_bytes());
    let (eth, packet) = frame.split_first_chunk::<ETHERNET_LEN>()?;
    match u16::from_ne_bytes(array(eth, ethernet::field::ETHERTYPE)) {
        IPV4 => plain_ipv4(packet),
        IPV6 => plain_ipv6(packet),
        _ => None,
    }
}

/// IPv4 without options, not a fragment; `packet` is what follows the Ethernet header.
#[inline(always)]
fn plain_ipv4(packet: &[u8]) -> Option<PacketSummary> {
    use ipv4::field;
    let ip = packet.first_chunk::<IPV4_LEN>()?;
    if ip[field::VER_IHL] != IPV4_PLAIN_VER_IHL || be16(ip, field::FLG_OFF) & IPV4_FRAGMENT_BITS != 0 {
        return None;
    }
    // The total length bounds the payload (Ethernet padding excluded) and lies in the frame.
    let total_len = usize::from(be16(ip, field::LENGTH));
    let data = packet.get(IPV4_LEN..total_len)?;
    let addrs = IpPair::V4 { src: be32(ip, field::SRC_ADDR), dst: be32(ip, field::DST_ADDR) };
    plain_transport(ip[field::PROTOCOL], data, ETHERNET_LEN + IPV4_LEN, addrs)
}

/// IPv6 whose next header is the transport; `packet` is what follows the Ethernet header.
#[inline(always)]
fn plain_ipv6(packet: &[u8]) -> Option<PacketSummary> {
    use ipv6::field;
    let (ip, rest) = packet.split_first_chunk::<IPV6_LEN>()?;
    if ip[field::VERSION] >> 4 != 6 {
        return None;
    }
    let data = rest.get(..usize::from(be16(ip, field::LENGTH)))?;
    let src = u128::from_be_bytes(array(ip, field::SRC_ADDR));
    let dst = u128::from_be_bytes(array(ip, field::DST_ADDR));
    // The next header is the transport header itself (TCP and UDP are not extension headers).
    plain_transport(ip[field::NXT_HDR], data, ETHERNET_LEN + IPV6_LEN, IpPair::V6 { src, dst })
}

/// The TCP or UDP header at the start of `data` (the IP payload, at `offset` in the frame).
#[inline(always)]
fn plain_transport(protocol: u8, data: &[u8], offset: usize, addrs: IpPair) -> Option<PacketSummary> {
    // The ports are carried out of the match as bytes and converted once, after it: the same
    // loads in both arms then merge into one (converting in each arm costs instructions).
    let (src_port, dst_port, tcp_flags, tcp_seq, header_len, payload_len) = match protocol {
        ip_proto::TCP => {
            use tcp::field;
            let hdr = data.first_chunk::<TCP_MIN_LEN>()?;
            let header_len = tcp::header_len_from(hdr[field::DATA_OFF]);
            if header_len < TCP_MIN_LEN || header_len > data.len() {
                return None;
            }
            let (src_port, dst_port) = (array(hdr, field::SRC_PORT), array(hdr, field::DST_PORT));
            let seq = be32(hdr, field::SEQ_NUM);
            (src_port, dst_port, hdr[field::FLAGS], seq, header_len, data.len() - header_len)
        }
        ip_proto::UDP => {
            use udp::field;
            let hdr = data.first_chunk::<UDP_LEN>()?;
            let len = usize::from(be16(hdr, field::LENGTH));
            if len < UDP_LEN || len > data.len() {
                return None;
            }
            (array(hdr, field::SRC_PORT), array(hdr, field::DST_PORT), 0, 0, UDP_LEN, len - UDP_LEN)
        }
        _ => return None,
    };
    // Both fit: IP lengths are 16-bit and the headers before the payload are short.
    let (Ok(payload_offset), Ok(payload_len)) = (u16::try_from(offset + header_len), u16::try_from(payload_len)) else {
        return None;
    };
    Some(PacketSummary {
        addrs,
        protocol,
        src_port: u16::from_be_bytes(src_port),
        dst_port: u16::from_be_bytes(dst_port),
        has_ports: true,
        tcp_flags,
        tcp_seq,
        fragment: Fragment::None,
        payload_offset,
        payload_len,
        vlan_tags: 0,
    })
}
