//! What the fragment table needs of an IP fragment: which datagram it belongs to, which bytes
//! of it it carries, and whether it is one of the fragments that evade port rules (RFC 1858,
//! RFC 3128, RFC 7112) or could never reassemble (past 65535 bytes).
//!
//! Read only for packets the parser found to be fragments, or that failed to parse (a tiny
//! first fragment fails: its transport header is cut short), so ordinary packets never pay for
//! it. It walks the headers again on its own, and does not fail where the parser does on what
//! follows the fragment header: what it reports then is why.

use super::ethernet::{ethertype, EthernetFrame, HEADER_LEN as ETHERNET_LEN};
use super::field::{array, be16, be32, slice, u8_at};
use super::ipv6_ext::{self, next_header, ExtHeader, MAX_EXT_HEADERS};
use super::vlan::{self, VlanTag};
use super::{ip_proto, ipv4, ipv6, tcp, udp, IpPair, Malformed};

/// The datagram a fragment belongs to: addresses, protocol and identification (RFC 791's
/// 16-bit one, or the IPv6 fragment header's 32-bit one). For IPv6 the protocol is the
/// fragment header's next header, which every fragment of a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DatagramKey {
    pub addrs: IpPair,
    pub protocol: u8,
    pub id: u32,
}

/// Why a fragment is refused whatever the policy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FragmentProblem {
    /// A first fragment whose TCP header (all of it, as its data offset says) or UDP header
    /// is cut short: the ports, flags or options would come in a later fragment (RFC 1858,
    /// RFC 3128).
    Tiny,
    /// A TCP fragment at offset 8 bytes: it would overwrite the first fragment's flags and
    /// data offset on reassembly (RFC 1858).
    OffsetOne,
    /// An IPv6 first fragment that does not hold the whole header chain (RFC 7112).
    IncompleteChain,
    /// Its bytes would reach past 65535 bytes of reassembled datagram.
    Oversize,
}

/// One fragment, as the fragment table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentView {
    pub key: DatagramKey,
    /// Where its data starts in the datagram's fragmentable part, in bytes.
    pub offset: u32,
    /// How many bytes of it it carries.
    pub len: u32,
    /// More fragments follow (false: the last one, which fixes the datagram's length).
    pub more: bool,
    pub problem: Option<FragmentProblem>,
}

impl FragmentView {
    /// Offset 0: the fragment that carries the transport header.
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }

    /// One past its last byte.
    pub fn end(&self) -> u32 {
        self.offset + self.len
    }
}

/// The fragment `frame` is, or `None` when it is not a fragment (or its headers up to the
/// fragment information are malformed: then it is an ordinary malformed frame).
pub fn fragment_view(frame: &[u8]) -> Option<FragmentView> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let mut kind = eth.ethertype();
    let mut offset = ETHERNET_LEN;
    let mut tags = 0;
    while vlan::is_vlan_tpid(kind) {
        if tags == vlan::MAX_TAGS {
            return None;
        }
        kind = VlanTag::new_checked(slice(frame, offset..)).ok()?.ethertype();
        offset += vlan::HEADER_LEN;
        tags += 1;
    }
    let packet = frame.get(offset..)?;
    match kind {
        ethertype::IPV4 => ipv4_view(packet),
        ethertype::IPV6 => ipv6_view(packet),
        _ => None,
    }
}

fn ipv4_view(packet: &[u8]) -> Option<FragmentView> {
    use ipv4::field;
    let header_len = usize::from(u8_at(packet, field::VER_IHL) & 0x0f) * 4;
    let total_len = usize::from(be16(packet, field::LENGTH));
    if packet.len() < ipv4::MIN_HEADER_LEN || u8_at(packet, field::VER_IHL) >> 4 != 4 {
        return None;
    }
    if header_len < ipv4::MIN_HEADER_LEN || total_len < header_len || total_len > packet.len() {
        return None;
    }
    let flags = be16(packet, field::FLG_OFF);
    let (units, more) = (flags & field::FRAG_OFF, flags & field::MORE_FRAGS != 0);
    if units == 0 && !more {
        return None;
    }
    let protocol = u8_at(packet, field::PROTOCOL);
    let data = packet.get(header_len..total_len)?;
    let addrs = IpPair::V4 { src: be32(packet, field::SRC_ADDR), dst: be32(packet, field::DST_ADDR) };
    let key = DatagramKey { addrs, protocol, id: u32::from(be16(packet, field::IDENT)) };
    let offset = u32::from(units) * 8;
    // As the parser: the whole packet at its offset must fit 65535 bytes.
    let oversize = offset as usize + total_len > ipv4::MAX_PACKET_LEN;
    let problem = if oversize {
        Some(FragmentProblem::Oversize)
    } else if units == 0 {
        transport_problem(protocol, data)
    } else {
        offset_problem(protocol, units)
    };
    Some(FragmentView { key, offset, len: data.len() as u32, more, problem })
}

fn ipv6_view(packet: &[u8]) -> Option<FragmentView> {
    use ipv6::field;
    if packet.len() < ipv6::HEADER_LEN || u8_at(packet, field::VERSION) >> 4 != 6 {
        return None;
    }
    let payload = packet.get(ipv6::HEADER_LEN..ipv6::HEADER_LEN + usize::from(be16(packet, field::LENGTH)))?;
    let addrs = IpPair::V6 {
        src: u128::from_be_bytes(array(packet, field::SRC_ADDR)),
        dst: u128::from_be_bytes(array(packet, field::DST_ADDR)),
    };
    // The unfragmentable part, up to the fragment header.
    let (mut kind, mut at) = (u8_at(packet, field::NXT_HDR), 0);
    for _ in 0..MAX_EXT_HEADERS {
        if !ipv6_ext::is_extension(kind) {
            return None;
        }
        let ext = ExtHeader::new_checked(kind, slice(payload, at..)).ok()?;
        at += ext.header_len();
        if kind != next_header::FRAGMENT {
            kind = ext.next_header();
            continue;
        }
        let (units, more) = (ext.frag_offset_units(), ext.more_fragments());
        if units == 0 && !more {
            // An atomic fragment (RFC 6946): a whole packet.
            return None;
        }
        let protocol = ext.next_header();
        let data = slice(payload, at..);
        let key = DatagramKey { addrs, protocol, id: ext.frag_ident() };
        let offset = u32::from(units) * 8;
        let problem = if offset as usize + data.len() > 65535 {
            Some(FragmentProblem::Oversize)
        } else if units == 0 {
            chain_problem(protocol, data)
        } else {
            offset_problem(protocol, units)
        };
        return Some(FragmentView { key, offset, len: data.len() as u32, more, problem });
    }
    None
}

/// The rest of an IPv6 first fragment's header chain, then its transport header, must be
/// there (RFC 7112).
fn chain_problem(first: u8, data: &[u8]) -> Option<FragmentProblem> {
    let (mut kind, mut at) = (first, 0);
    for _ in 0..MAX_EXT_HEADERS {
        if !ipv6_ext::is_extension(kind) || kind == next_header::ESP || kind == next_header::NO_NEXT_HEADER {
            return transport_problem(kind, slice(data, at..));
        }
        match ExtHeader::new_checked(kind, slice(data, at..)) {
            Ok(ext) => {
                kind = ext.next_header();
                at += ext.header_len();
            }
            Err(Malformed::Truncated(_)) => return Some(FragmentProblem::IncompleteChain),
            Err(Malformed::Invalid(_)) => return None,
        }
    }
    None
}

/// A first fragment's transport header must be whole: TCP as long as its data offset says
/// (20 bytes at least), UDP 8 bytes.
fn transport_problem(protocol: u8, data: &[u8]) -> Option<FragmentProblem> {
    let whole = match protocol {
        ip_proto::TCP => {
            let header_len = tcp::header_len_from(u8_at(data, tcp::field::DATA_OFF));
            data.len() >= tcp::MIN_HEADER_LEN && data.len() >= header_len
        }
        ip_proto::UDP => data.len() >= udp::HEADER_LEN,
        _ => true,
    };
    (!whole).then_some(FragmentProblem::Tiny)
}

/// RFC 1858: a TCP fragment at offset 1 (8 bytes) is refused.
fn offset_problem(protocol: u8, units: u16) -> Option<FragmentProblem> {
    (protocol == ip_proto::TCP && units == 1).then_some(FragmentProblem::OffsetOne)
}

#[cfg(test)]
#[path = "fragment_tests.rs"]
mod tests;
