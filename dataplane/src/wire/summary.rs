//! The per-packet summary: everything later stages need, computed in one pass.

use super::ethernet::{self, ethertype, EthernetFrame};
use super::field::slice;
use super::icmp::IcmpPacket;
use super::ipv4::Ipv4Packet;
use super::ipv6::Ipv6Packet;
use super::plain::parse_plain;
use super::tcp::TcpPacket;
use super::udp::UdpPacket;
use super::vlan::{self, VlanTag};
use super::{ip_proto, ipv6_ext, Layer, Malformed};

/// Source and destination addresses as big-endian integers (ready for LPM lookups).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpPair {
    V4 { src: u32, dst: u32 },
    V6 { src: u128, dst: u128 },
}

/// IP fragmentation state of a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// Not a fragment.
    #[default]
    None,
    /// First fragment (offset 0, more fragments): carries the transport header.
    First,
    /// A later fragment: no transport header, classified by addresses only.
    NonFirst,
}

/// What the pipeline knows about an IP packet after parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSummary {
    pub addrs: IpPair,
    /// Transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// TCP/UDP ports; both 0 when `has_ports` is false.
    pub src_port: u16,
    pub dst_port: u16,
    /// False for non-first fragments and for protocols without ports.
    pub has_ports: bool,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// TCP sequence number (0 for other protocols).
    pub tcp_seq: u32,
    pub fragment: Fragment,
    /// Offset of the transport payload (TCP/UDP data) from the start of the frame.
    pub payload_offset: u16,
    /// Length of the transport payload, bounded by the IP length (Ethernet padding excluded).
    pub payload_len: u16,
    /// Number of VLAN tags seen (0..=2).
    pub vlan_tags: u8,
}

impl PacketSummary {
    /// No ports, TCP fields or payload: what is known of a transport that was not read.
    #[inline]
    fn clear_transport(&mut self) {
        (self.src_port, self.dst_port, self.has_ports, self.tcp_flags, self.tcp_seq) = (0, 0, false, 0, 0);
        (self.payload_offset, self.payload_len) = (0, 0);
    }

    /// All zero, IPv4.
    pub const EMPTY: PacketSummary = PacketSummary {
        addrs: IpPair::V4 { src: 0, dst: 0 },
        protocol: 0,
        src_port: 0,
        dst_port: 0,
        has_ports: false,
        tcp_flags: 0,
        tcp_seq: 0,
        fragment: Fragment::None,
        payload_offset: 0,
        payload_len: 0,
        vlan_tags: 0,
    };
}

/// The result of parsing a frame that is not malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Ip(PacketSummary),
    /// Not IPv4/IPv6 (ARP, LLDP...): forwarded untouched, never classified.
    NonIp {
        ethertype: u16,
    },
}

/// Parse an Ethernet frame. Never panics, whatever the bytes; never allocates.
///
/// Edge cases, decided:
/// - VLAN: up to two tags (802.1Q or 802.1ad TPIDs in any order). A third tag is
///   `Invalid(Vlan)`: forwarding it as non-IP would let traffic hide from policy behind tags.
/// - Lengths: the IPv4 total length / IPv6 payload length bound everything after the IP header
///   (Ethernet padding is ignored); a length beyond the frame is `Invalid(Ipv4/Ipv6)`.
/// - Fragments: a non-first fragment reports the IP protocol (for IPv6, the fragment header's
///   next header), no ports, and its data as payload. A first fragment must hold the whole
///   TCP header / UDP header / 4 ICMP bytes, else `Truncated(Tcp/Udp/Icmp)`: a transport
///   header split across fragments is the tiny-fragment evasion of RFC 1858/RFC 7112. Its UDP
///   length field covers the reassembled datagram, so it is only checked to be >= 8.
/// - Payload (`payload_offset`/`payload_len`): TCP/UDP data; for ICMP the bytes after type,
///   code and checksum; otherwise (ESP, no-next-header, other protocols, non-first fragments)
///   the rest of the IP payload after the headers walked.
/// - A fragment that would extend the reassembled packet beyond 65535 bytes ("ping of death")
///   is `Invalid(Ipv4)` / `Invalid(Ipv6Ext)`.
/// - Checksums are not verified (NICs do; see `Ipv4Packet::verify_checksum`).
/// - IPv6 extension headers: see [`ipv6_ext::walk`] (any order, repeated, up to
///   [`ipv6_ext::MAX_EXT_HEADERS`]). ESP (after IPv4 or IPv6) is `Invalid(Esp)`: what it
///   carries is encrypted. No Next Header ends the packet: protocol 59, no ports, as any
///   protocol without ports.
/// - An error whose [`Malformed::cause`] has its addresses known (extension chain, transport
///   header, ESP): see [`parse_frame_into`].
pub fn parse_frame(frame: &[u8]) -> Result<Parsed, Malformed> {
    let mut summary = PacketSummary::EMPTY;
    match parse_frame_into(frame, &mut summary)? {
        Some(ethertype) => Ok(Parsed::NonIp { ethertype }),
        None => Ok(Parsed::Ip(summary)),
    }
}

/// [`parse_frame`] writing the summary of an IP packet into `out` (the fast path's form:
/// fields are stored once, where the pipeline keeps them, instead of a struct being
/// returned and copied through each layer). `Ok(None)`: an IP packet, `out` is complete;
/// `Ok(Some(ethertype))`: not IP, `out` is unspecified. `Err(m)` whose cause has
/// [`addresses_known`](super::MalformedCause::addresses_known): the IP header was read and
/// its transport was not; `out` holds the addresses and VLAN tags, the protocol as far as it
/// was read (after an extension chain that was not read to its end: the fixed header's next
/// header, and no fragment), no ports and an empty payload. Any other `Err`: `out` is
/// unspecified.
///
/// The common frame (untagged IPv4/IPv6 TCP or UDP, see [`super::plain`]) takes a straight
/// path; everything else the general walk.
#[inline]
pub fn parse_frame_into(frame: &[u8], out: &mut PacketSummary) -> Result<Option<u16>, Malformed> {
    if let Some(summary) = parse_plain(frame) {
        *out = summary;
        return Ok(None);
    }
    parse_general_into(frame, out)
}

/// The straight path alone: when `frame` is a common frame (untagged IPv4 without options or
/// IPv6 without extension headers, not a fragment, a whole TCP or UDP header), the summary
/// [`parse_frame_into`] would write; `None` otherwise (the caller then walks it with
/// [`parse_general_into`]). The pipeline's parse step tests this first, so that a common
/// frame skips the checks of the general outcome (a TCP or UDP flow, not a fragment: what
/// the straight path guarantees), and keeps of it only what a flow lookup needs.
#[inline(always)]
pub fn parse_common(frame: &[u8]) -> Option<PacketSummary> {
    parse_plain(frame)
}

/// The general walk: any frame, whatever its tags and extension headers. The reference that
/// the straight path must agree with.
#[inline(never)]
pub fn parse_general_into(frame: &[u8], out: &mut PacketSummary) -> Result<Option<u16>, Malformed> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut ethertype = eth.ethertype();
    let mut offset = ethernet::HEADER_LEN;
    let mut vlan_tags = 0u8;
    while vlan::is_vlan_tpid(ethertype) {
        if vlan_tags == vlan::MAX_TAGS {
            return Err(Malformed::Invalid(Layer::Vlan));
        }
        let tag = VlanTag::new_checked(slice(frame, offset..))?;
        ethertype = tag.ethertype();
        offset += vlan::HEADER_LEN;
        vlan_tags += 1;
    }
    let rest = slice(frame, offset..);
    out.vlan_tags = vlan_tags;
    match ethertype {
        ethertype::IPV4 => parse_ipv4(rest, offset, out)?,
        ethertype::IPV6 => parse_ipv6(rest, offset, out)?,
        _ => return Ok(Some(ethertype)),
    }
    Ok(None)
}

#[inline]
fn parse_ipv4(packet: &[u8], offset: usize, out: &mut PacketSummary) -> Result<(), Malformed> {
    let ip = Ipv4Packet::new_checked(packet)?;
    out.addrs = IpPair::V4 { src: u32::from_be_bytes(ip.src_addr()), dst: u32::from_be_bytes(ip.dst_addr()) };
    let upper = IpPayload {
        protocol: ip.protocol(),
        icmp: ip_proto::ICMP,
        fragment: ip.fragment(),
        data: ip.payload(),
        offset: offset + ip.header_len(),
        ip_layer: Layer::Ipv4,
    };
    upper.summarize(out)
}

fn parse_ipv6(packet: &[u8], offset: usize, out: &mut PacketSummary) -> Result<(), Malformed> {
    let ip = Ipv6Packet::new_checked(packet)?;
    let payload = ip.payload();
    out.addrs = IpPair::V6 { src: u128::from_be_bytes(ip.src_addr()), dst: u128::from_be_bytes(ip.dst_addr()) };
    let walked = ipv6_ext::walk(ip.next_header(), payload).inspect_err(|_| {
        // The transport is unknown: what the walk read is left out.
        (out.protocol, out.fragment) = (ip.next_header(), Fragment::None);
        out.clear_transport();
    })?;
    let upper = IpPayload {
        protocol: walked.protocol,
        icmp: ip_proto::ICMPV6,
        fragment: walked.fragment,
        data: slice(payload, walked.offset..),
        offset: offset + ip.header_len() + walked.offset,
        ip_layer: Layer::Ipv6,
    };
    upper.summarize(out)
}

/// What follows the IP header (and IPv6 extension headers), and where it sits in the frame.
struct IpPayload<'a> {
    protocol: u8,
    /// The ICMP protocol number of this IP family.
    icmp: u8,
    fragment: Fragment,
    /// The rest of the IP payload, bounded by the IP length.
    data: &'a [u8],
    /// Offset of `data` in the frame.
    offset: usize,
    ip_layer: Layer,
}

impl IpPayload<'_> {
    /// Fills every field of `s` but `addrs` and `vlan_tags`.
    #[inline]
    fn summarize(&self, s: &mut PacketSummary) -> Result<(), Malformed> {
        s.protocol = self.protocol;
        s.fragment = self.fragment;
        s.clear_transport();
        // Where the payload starts within `data`, and its length.
        let (start, len) = match self.protocol {
            _ if self.fragment == Fragment::NonFirst => (0, self.data.len()),
            ipv6_ext::next_header::ESP => return Err(Malformed::Invalid(Layer::Esp)),
            ip_proto::TCP => {
                let tcp = TcpPacket::new_checked(self.data)?;
                (s.src_port, s.dst_port, s.has_ports) = (tcp.src_port(), tcp.dst_port(), true);
                (s.tcp_flags, s.tcp_seq) = (tcp.flags(), tcp.seq_number());
                (tcp.header_len(), tcp.payload().len())
            }
            ip_proto::UDP => {
                let udp = if self.fragment == Fragment::First {
                    UdpPacket::new_checked_header(self.data)?
                } else {
                    UdpPacket::new_checked(self.data)?
                };
                (s.src_port, s.dst_port, s.has_ports) = (udp.src_port(), udp.dst_port(), true);
                (udp.header_len(), udp.payload().len())
            }
            p if p == self.icmp => {
                let icmp = IcmpPacket::new_checked(self.data)?;
                (icmp.header_len(), icmp.payload().len())
            }
            _ => (0, self.data.len()),
        };
        // Both fit by construction (IP lengths are 16-bit, headers are bounded); checked anyway.
        let too_long = Malformed::Invalid(self.ip_layer);
        s.payload_offset = u16::try_from(self.offset + start).map_err(|_| too_long)?;
        s.payload_len = u16::try_from(len).map_err(|_| too_long)?;
        Ok(())
    }
}
