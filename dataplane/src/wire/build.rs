//! Test-packet builder: well-formed frames with correct lengths and checksums, for tests, the
//! traffic generator and pcap corpora. Allocates; not for the fast path.
//!
//! Quick path: the free functions ([`tcp_v4`], [`udp_v6`], ...) build untagged frames.
//! [`FrameBuilder`] adds VLAN tags, padding and other header knobs. The segment builders
//! ([`tcp_segment_v4`], ...) and extension-header helpers let a test assemble fragments or
//! IPv6 extension chains by hand through [`FrameBuilder::ipv4_fragment`] / [`FrameBuilder::ipv6`].
//!
//! Lengths that do not fit their 16-bit fields saturate at 65535 (the frame is then
//! inconsistent and parses as malformed).

use super::checksum::{finish, pseudo_header_v4, pseudo_header_v6, sum};
use super::ethernet::{self, ethertype};
use super::{icmp, ip_proto, ipv4, ipv6, tcp, udp, vlan};

/// Ethernet minimum frame size without the FCS.
pub const MIN_FRAME_LEN: usize = 60;

/// Layer-2 options and header knobs shared by every frame a builder makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameBuilder {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// VLAN tags, outermost first, as (TPID, TCI).
    pub vlan_tags: Vec<(u16, u16)>,
    /// IPv4 TTL and IPv6 hop limit.
    pub ttl: u8,
    pub ipv4_ident: u16,
    pub tcp_ack: u32,
    pub tcp_window: u16,
    /// Pad frames shorter than [`MIN_FRAME_LEN`] with zeros, as a NIC delivers them.
    pub pad: bool,
}

impl Default for FrameBuilder {
    fn default() -> Self {
        Self {
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            vlan_tags: Vec::new(),
            ttl: 64,
            ipv4_ident: 0x1234,
            tcp_ack: 0,
            tcp_window: 65535,
            pad: false,
        }
    }
}

impl FrameBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an 802.1Q tag (TPID 0x8100) with VLAN id `vid`, inside any tags already added.
    pub fn vlan(self, vid: u16) -> Self {
        self.tag(ethertype::VLAN, vid & 0x0fff)
    }

    /// Add an 802.1ad outer tag and an 802.1Q inner tag.
    pub fn qinq(self, outer_vid: u16, inner_vid: u16) -> Self {
        self.tag(ethertype::QINQ, outer_vid & 0x0fff).vlan(inner_vid)
    }

    /// Add any tag, e.g. a third one or an unusual TPID.
    pub fn tag(mut self, tpid: u16, tci: u16) -> Self {
        self.vlan_tags.push((tpid, tci));
        self
    }

    /// Pad short frames to the Ethernet minimum.
    pub fn padded(mut self) -> Self {
        self.pad = true;
        self
    }

    /// Ethernet header, VLAN tags, `ethertype`, then `payload` (and padding if enabled).
    pub fn ethernet(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(MIN_FRAME_LEN.max(ethernet::HEADER_LEN + 2 * vlan::HEADER_LEN + payload.len()));
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for &(tpid, tci) in &self.vlan_tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        if self.pad && f.len() < MIN_FRAME_LEN {
            f.resize(MIN_FRAME_LEN, 0);
        }
        f
    }

    /// An unfragmented IPv4 packet (DF set) carrying `payload` as `protocol`.
    pub fn ipv4(&self, src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
        self.ipv4_with_flags(src, dst, protocol, 0x4000, payload)
    }

    /// One IPv4 fragment: offset in 8-byte units, MF flag, and this fragment's data.
    pub fn ipv4_fragment(
        &self,
        src: [u8; 4],
        dst: [u8; 4],
        protocol: u8,
        (offset_units, more): (u16, bool),
        data: &[u8],
    ) -> Vec<u8> {
        let flags = (offset_units & 0x1fff) | if more { 0x2000 } else { 0 };
        self.ipv4_with_flags(src, dst, protocol, flags, data)
    }

    fn ipv4_with_flags(&self, src: [u8; 4], dst: [u8; 4], protocol: u8, flags_offset: u16, payload: &[u8]) -> Vec<u8> {
        let total = saturate(ipv4::MIN_HEADER_LEN + payload.len());
        let mut p = Vec::with_capacity(ipv4::MIN_HEADER_LEN + payload.len());
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&self.ipv4_ident.to_be_bytes());
        p.extend_from_slice(&flags_offset.to_be_bytes());
        p.extend_from_slice(&[self.ttl, protocol, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let header_checksum = finish(sum(0, &p));
        p.splice(ipv4::field::CHECKSUM, header_checksum.to_be_bytes());
        p.extend_from_slice(payload);
        self.ethernet(ethertype::IPV4, &p)
    }

    /// An IPv6 packet; `payload` starts with the header `next_header` names (an extension
    /// header chain built with [`ipv6_options_header`] / [`ipv6_fragment_header`], or a segment).
    pub fn ipv6(&self, src: [u8; 16], dst: [u8; 16], next_header: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(ipv6::HEADER_LEN + payload.len());
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&saturate(payload.len()).to_be_bytes());
        p.extend_from_slice(&[next_header, self.ttl]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        self.ethernet(ethertype::IPV6, &p)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tcp_v4(
        &self,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        flags: u8,
        seq: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let pseudo = pseudo_header_v4(src, dst, ip_proto::TCP, saturate(tcp::MIN_HEADER_LEN + payload.len()));
        let segment = self.tcp_segment(pseudo, sport, dport, flags, seq, payload);
        self.ipv4(src, dst, ip_proto::TCP, &segment)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tcp_v6(
        &self,
        src: [u8; 16],
        dst: [u8; 16],
        sport: u16,
        dport: u16,
        flags: u8,
        seq: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let pseudo = pseudo_header_v6(src, dst, ip_proto::TCP, len32(tcp::MIN_HEADER_LEN + payload.len()));
        let segment = self.tcp_segment(pseudo, sport, dport, flags, seq, payload);
        self.ipv6(src, dst, ip_proto::TCP, &segment)
    }

    pub fn udp_v4(&self, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        self.ipv4(src, dst, ip_proto::UDP, &udp_segment_v4(src, dst, sport, dport, payload))
    }

    pub fn udp_v6(&self, src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        self.ipv6(src, dst, ip_proto::UDP, &udp_segment_v6(src, dst, sport, dport, payload))
    }

    /// ICMP message: type, code, checksum, then `body` (for echo: identifier, sequence, data).
    pub fn icmp_v4(&self, src: [u8; 4], dst: [u8; 4], icmp_type: u8, code: u8, body: &[u8]) -> Vec<u8> {
        let message = icmp_message(0, icmp_type, code, body);
        self.ipv4(src, dst, ip_proto::ICMP, &message)
    }

    /// ICMPv6 message, checksummed over the IPv6 pseudo-header.
    pub fn icmp_v6(&self, src: [u8; 16], dst: [u8; 16], icmp_type: u8, code: u8, body: &[u8]) -> Vec<u8> {
        let pseudo = pseudo_header_v6(src, dst, ip_proto::ICMPV6, len32(icmp::HEADER_LEN + body.len()));
        let message = icmp_message(pseudo, icmp_type, code, body);
        self.ipv6(src, dst, ip_proto::ICMPV6, &message)
    }

    fn tcp_segment(&self, pseudo: u32, sport: u16, dport: u16, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut s = Vec::with_capacity(tcp::MIN_HEADER_LEN + payload.len());
        s.extend_from_slice(&sport.to_be_bytes());
        s.extend_from_slice(&dport.to_be_bytes());
        s.extend_from_slice(&seq.to_be_bytes());
        s.extend_from_slice(&self.tcp_ack.to_be_bytes());
        s.extend_from_slice(&[0x50, flags]);
        s.extend_from_slice(&self.tcp_window.to_be_bytes());
        s.extend_from_slice(&[0, 0, 0, 0]);
        s.extend_from_slice(payload);
        let c = finish(sum(pseudo, &s));
        s.splice(tcp::field::CHECKSUM, c.to_be_bytes());
        s
    }
}

fn saturate(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn icmp_message(pseudo: u32, icmp_type: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, code, 0, 0];
    m.extend_from_slice(body);
    let c = finish(sum(pseudo, &m));
    m.splice(icmp::field::CHECKSUM, c.to_be_bytes());
    m
}

fn udp_segment(pseudo: u32, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(udp::HEADER_LEN + payload.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&saturate(udp::HEADER_LEN + payload.len()).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    // 0 means "no checksum" in UDP; a computed 0 is sent as 0xffff.
    let c = match finish(sum(pseudo, &s)) {
        0 => 0xffff,
        c => c,
    };
    s.splice(udp::field::CHECKSUM, c.to_be_bytes());
    s
}

/// A TCP segment (header and data, checksummed for these addresses), e.g. to split into
/// fragments with [`FrameBuilder::ipv4_fragment`]. Ack 0, window 65535.
pub fn tcp_segment_v4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let pseudo = pseudo_header_v4(src, dst, ip_proto::TCP, saturate(tcp::MIN_HEADER_LEN + payload.len()));
    FrameBuilder::new().tcp_segment(pseudo, sport, dport, flags, seq, payload)
}

/// A TCP segment for IPv6, e.g. to put behind extension headers with [`FrameBuilder::ipv6`].
pub fn tcp_segment_v6(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let pseudo = pseudo_header_v6(src, dst, ip_proto::TCP, len32(tcp::MIN_HEADER_LEN + payload.len()));
    FrameBuilder::new().tcp_segment(pseudo, sport, dport, flags, seq, payload)
}

pub fn udp_segment_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let pseudo = pseudo_header_v4(src, dst, ip_proto::UDP, saturate(udp::HEADER_LEN + payload.len()));
    udp_segment(pseudo, sport, dport, payload)
}

pub fn udp_segment_v6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let pseudo = pseudo_header_v6(src, dst, ip_proto::UDP, len32(udp::HEADER_LEN + payload.len()));
    udp_segment(pseudo, sport, dport, payload)
}

/// A hop-by-hop, routing or destination-options header of `(len_units + 1) * 8` bytes,
/// filled with a PadN option (for routing: type 0, segments left 0, zeros).
pub fn ipv6_options_header(next_header: u8, len_units: u8) -> Vec<u8> {
    let len = (usize::from(len_units) + 1) * 8;
    let mut h = vec![0u8; len];
    let pad_n = [next_header, len_units, 1, u8::try_from(len - 4).unwrap_or(u8::MAX)];
    h.splice(..pad_n.len(), pad_n);
    h
}

/// A routing header of `(len_units + 1) * 8` bytes: its type and segments left, the rest zeros.
pub fn ipv6_routing_header(next_header: u8, routing_type: u8, segments_left: u8, len_units: u8) -> Vec<u8> {
    let mut h = vec![0u8; (usize::from(len_units) + 1) * 8];
    h.splice(..4, [next_header, len_units, routing_type, segments_left]);
    h
}

/// A chain of extension headers, one per entry of `kinds` (each entry the header's own kind,
/// the first one being what the fixed header's next header names), the last followed by
/// `upper`: hop-by-hop and destination options as [`ipv6_options_header`] with one 8-byte unit,
/// routing headers of type 0 with segments left 0, atomic fragment headers (offset 0, no M
/// flag: RFC 6946), any other kind as an options-like header (next header, length 0).
pub fn ipv6_ext_chain(kinds: &[u8], upper: u8) -> Vec<u8> {
    use super::ipv6_ext::next_header::{FRAGMENT, ROUTING};
    let mut chain = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        let next = kinds.get(i + 1).copied().unwrap_or(upper);
        match kind {
            ROUTING => chain.extend(ipv6_routing_header(next, 0, 0, 0)),
            FRAGMENT => chain.extend(ipv6_fragment_header(next, 0, false, 0x0600_0d00 + i as u32)),
            _ => chain.extend(ipv6_options_header(next, 0)),
        }
    }
    chain
}

/// An IPv6 fragment header: offset in 8-byte units, M flag, identification.
pub fn ipv6_fragment_header(next_header: u8, offset_units: u16, more: bool, ident: u32) -> [u8; 8] {
    let [o0, o1] = ((offset_units << 3) | u16::from(more)).to_be_bytes();
    let [i0, i1, i2, i3] = ident.to_be_bytes();
    [next_header, 0, o0, o1, i0, i1, i2, i3]
}

/// An untagged TCP/IPv4 frame.
pub fn tcp_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    FrameBuilder::new().tcp_v4(src, dst, sport, dport, flags, seq, payload)
}

/// An untagged TCP/IPv6 frame.
pub fn tcp_v6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    FrameBuilder::new().tcp_v6(src, dst, sport, dport, flags, seq, payload)
}

/// An untagged UDP/IPv4 frame.
pub fn udp_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    FrameBuilder::new().udp_v4(src, dst, sport, dport, payload)
}

/// An untagged UDP/IPv6 frame.
pub fn udp_v6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    FrameBuilder::new().udp_v6(src, dst, sport, dport, payload)
}

/// An untagged ICMP frame.
pub fn icmp_v4(src: [u8; 4], dst: [u8; 4], icmp_type: u8, code: u8, body: &[u8]) -> Vec<u8> {
    FrameBuilder::new().icmp_v4(src, dst, icmp_type, code, body)
}

/// An untagged ICMPv6 frame.
pub fn icmp_v6(src: [u8; 16], dst: [u8; 16], icmp_type: u8, code: u8, body: &[u8]) -> Vec<u8> {
    FrameBuilder::new().icmp_v6(src, dst, icmp_type, code, body)
}
