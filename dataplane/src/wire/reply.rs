//! The answers a REJECT gives (`policy::Action::Reject`): built from the rejected frame alone,
//! into buffers the caller lends, without allocation.
//!
//! - TCP: a RST back to the sender, as RFC 9293 section 3.10.7.1 has a closed port answer
//!   a segment: `<SEQ=SEG.ACK><CTL=RST>` when the segment carries ACK, else
//!   `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` (SYN and FIN count in SEG.LEN). Each is
//!   exactly what the sender's stack expects next, so it is accepted at once. When the
//!   segment carries ACK, its sender has seen the receiver's SYN (a SYN-ACK went by): the
//!   receiver holds the connection, and it gets a RST too, as from the sender, with
//!   `SEQ=SEG.SEQ` (the sender's next sequence number, the very one the receiver waits for)
//!   and `ACK=SEG.ACK`. The ACK bit is the whole of what must be remembered: no flow state.
//! - Anything else: ICMP destination unreachable, communication administratively prohibited
//!   (type 3 code 13, RFC 1812 section 5.2.7.1), quoting the IP packet up to a 576-byte reply
//!   (RFC 1812 section 4.3.2.3); ICMPv6 destination unreachable, administratively prohibited
//!   (type 1 code 1, RFC 4443 section 3.1), quoting as much as fits in 1280 bytes (section
//!   2.4 (c)). A TCP first fragment gets the ICMP error too: its segment length is unknown.
//!
//! The gateway is a bump in the wire with no address of its own: a reply comes from the
//! rejected packet's destination (the RST as the peer would send it, the ICMP error as if
//! the destination's side of the path refused), with the MAC addresses swapped and the VLAN
//! tags kept, so it goes back the way the packet came. TTL and hop limit are 64.
//!
//! Never answered (RFC 1122 section 3.2.2, RFC 1812 section 4.3.2.7, RFC 4443 section 2.4 (e),
//! RFC 9293 "a reset is never sent in response to a reset"): an ICMP or ICMPv6 error, a RST,
//! a packet to a multicast or broadcast address (link or IP), from an address that is not one
//! host's (unspecified, multicast, broadcast), and a non-first fragment (it holds no transport
//! header to quote or answer; its first fragment is answered). Nor is a frame that does not
//! parse whole.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::checksum;
use super::{ip_proto, ipv6_ext, parse_frame_into, tcp_flags, Fragment, IpPair, PacketSummary};

/// The largest reply: two VLAN tags and an ICMPv6 error of 1280 bytes.
pub const MAX_REPLY_LEN: usize = 14 + 8 + IPV6_MIN_MTU;

/// ICMPv4 errors stay within the 576 bytes every host accepts (RFC 1812 section 4.3.2.3).
const ICMPV4_MAX_DATAGRAM: usize = 576;
/// ICMPv6 errors stay within the IPv6 minimum MTU (RFC 4443 section 2.4 (c)).
const IPV6_MIN_MTU: usize = 1280;
const TTL: u8 = 64;

/// What a reply is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    TcpRst,
    /// ICMP (over IPv4) or ICMPv6 destination unreachable, administratively prohibited.
    Icmp,
}

/// Why a rejected packet gets no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silent {
    /// Not IP, or not read whole.
    Unreadable,
    /// An ICMP or ICMPv6 error.
    IcmpError,
    /// A TCP RST.
    Reset,
    /// To a multicast or broadcast address, or from an address that is not one host's.
    NotUnicast,
    /// A fragment after the first.
    NonFirstFragment,
}

/// The replies written for one rejected frame: lengths in the caller's buffers, 0 for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub kind: ReplyKind,
    /// Back to the packet's sender (out the port it came in by).
    pub to_sender: usize,
    /// On to the packet's receiver (a TCP connection it already holds); 0 when none.
    pub to_receiver: usize,
}

/// Writes the replies a REJECT gives `frame`: into `sender` the one back to its sender, into
/// `receiver` the RST to its receiver when the connection is synchronized. Each buffer must
/// hold [`MAX_REPLY_LEN`] bytes (else `Unreadable`). Never panics, whatever the bytes.
pub fn write_replies(frame: &[u8], sender: &mut [u8], receiver: &mut [u8]) -> Result<Written, Silent> {
    if sender.len() < MAX_REPLY_LEN || receiver.len() < MAX_REPLY_LEN {
        return Err(Silent::Unreadable);
    }
    let mut p = PacketSummary::EMPTY;
    match parse_frame_into(frame, &mut p) {
        Ok(None) => {}
        _ => return Err(Silent::Unreadable),
    }
    let l3 = 14 + 4 * usize::from(p.vlan_tags);
    // The IP packet without the link's padding.
    let ip = match p.addrs {
        IpPair::V4 { .. } => {
            let total = get16(frame, l3 + 2).map_or(0, usize::from);
            frame.get(l3..l3 + total)
        }
        IpPair::V6 { .. } => {
            let len = get16(frame, l3 + 4).map_or(0, usize::from);
            frame.get(l3..l3 + 40 + len)
        }
    }
    .ok_or(Silent::Unreadable)?;
    check_answerable(frame, &p, ip)?;
    if p.protocol == ip_proto::TCP && p.fragment == Fragment::None {
        let ack = transport_offset(&p, ip).and_then(|o| get32(ip, o + 8)).ok_or(Silent::Unreadable)?;
        let flags = p.tcp_flags;
        let (seq, ack_field, rst_flags) = if flags & tcp_flags::ACK != 0 {
            (ack, 0, tcp_flags::RST)
        } else {
            let seg_len = u32::from(p.payload_len)
                + u32::from(flags & tcp_flags::SYN != 0)
                + u32::from(flags & tcp_flags::FIN != 0);
            (0, p.tcp_seq.wrapping_add(seg_len), tcp_flags::RST | tcp_flags::ACK)
        };
        let back = Rst { src_port: p.dst_port, dst_port: p.src_port, seq, ack: ack_field, flags: rst_flags };
        let to_sender = write_rst(frame, &p, true, back, sender);
        let to_receiver = if flags & tcp_flags::ACK != 0 {
            let on = Rst {
                src_port: p.src_port,
                dst_port: p.dst_port,
                seq: p.tcp_seq,
                ack,
                flags: tcp_flags::RST | tcp_flags::ACK,
            };
            write_rst(frame, &p, false, on, receiver)
        } else {
            0
        };
        return Ok(Written { kind: ReplyKind::TcpRst, to_sender, to_receiver });
    }
    Ok(Written { kind: ReplyKind::Icmp, to_sender: write_unreachable(frame, &p, ip, sender), to_receiver: 0 })
}

/// The rules of silence (see the module's doc).
fn check_answerable(frame: &[u8], p: &PacketSummary, ip: &[u8]) -> Result<(), Silent> {
    if p.fragment == Fragment::NonFirst {
        return Err(Silent::NonFirstFragment);
    }
    // Group bit of either MAC address: a multicast or broadcast frame, or a forged source.
    if frame.first().is_none_or(|b| b & 1 != 0) || frame.get(6).is_none_or(|b| b & 1 != 0) {
        return Err(Silent::NotUnicast);
    }
    let unicast = match p.addrs {
        IpPair::V4 { src, dst } => {
            let host = |a: u32| a != 0 && a != u32::MAX && a >> 28 != 0xe;
            host(src) && host(dst)
        }
        IpPair::V6 { src, dst } => {
            let host = |a: u128| a != 0 && a >> 120 != 0xff;
            host(src) && host(dst)
        }
    };
    if !unicast {
        return Err(Silent::NotUnicast);
    }
    match p.protocol {
        ip_proto::TCP if p.tcp_flags & tcp_flags::RST != 0 => Err(Silent::Reset),
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            // Errors: ICMPv4 3, 4, 5, 11, 12 (RFC 1122 section 3.2.2); ICMPv6 below 128.
            let kind = transport_offset(p, ip).and_then(|o| ip.get(o)).copied().ok_or(Silent::Unreadable)?;
            let error = match p.protocol {
                ip_proto::ICMP => matches!(kind, 3 | 4 | 5 | 11 | 12),
                _ => kind < 128,
            };
            if error {
                Err(Silent::IcmpError)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// Where the transport header starts in the IP packet `ip` (after the IPv4 options, or the
/// IPv6 extension headers).
fn transport_offset(p: &PacketSummary, ip: &[u8]) -> Option<usize> {
    match p.addrs {
        IpPair::V4 { .. } => ip.first().map(|b| usize::from(b & 0x0f) * 4),
        IpPair::V6 { .. } => {
            let walked = ipv6_ext::walk(*ip.get(6)?, ip.get(40..)?).ok()?;
            Some(40 + walked.offset)
        }
    }
}

/// The Ethernet header (and VLAN tags) of a reply into `out`; `back`: towards the sender (MAC
/// addresses swapped). Returns where the IP header goes.
fn write_link(frame: &[u8], p: &PacketSummary, back: bool, ethertype: u16, out: &mut [u8]) -> usize {
    let tags = 4 * usize::from(p.vlan_tags);
    let (dst, src) = if back { (6..12, 0..6) } else { (0..6, 6..12) };
    copy(out, 0, frame.get(dst).unwrap_or(&[]));
    copy(out, 6, frame.get(src).unwrap_or(&[]));
    copy(out, 12, frame.get(12..12 + tags).unwrap_or(&[]));
    put16(out, 12 + tags, ethertype);
    14 + tags
}

/// A RST's fields.
struct Rst {
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
}

/// A RST in its IP packet into `out`; `back`: to the sender, from the receiver's address.
fn write_rst(frame: &[u8], p: &PacketSummary, back: bool, rst: Rst, out: &mut [u8]) -> usize {
    let (ethertype, ip_len) = match p.addrs {
        IpPair::V4 { .. } => (0x0800, 20),
        IpPair::V6 { .. } => (0x86dd, 40),
    };
    let l3 = write_link(frame, p, back, ethertype, out);
    let l4 = l3 + ip_len;
    let pseudo = write_ip(p, back, ip_proto::TCP, 20, 0, out, l3);
    let Some(tcp) = out.get_mut(l4..l4 + 20) else { return 0 };
    tcp.fill(0);
    put16(tcp, 0, rst.src_port);
    put16(tcp, 2, rst.dst_port);
    put32(tcp, 4, rst.seq);
    put32(tcp, 8, rst.ack);
    put16(tcp, 12, (5 << 12) | u16::from(rst.flags));
    let sum = checksum::finish(checksum::sum(pseudo, tcp));
    put16(tcp, 16, sum);
    l4 + 20
}

/// The IP header of a reply carrying `payload_len` bytes of `protocol` at `out[l3..]`; `back`:
/// from the packet's destination to its source. Returns the pseudo-header's sum.
fn write_ip(
    p: &PacketSummary,
    back: bool,
    protocol: u8,
    payload_len: usize,
    tos: u8,
    out: &mut [u8],
    l3: usize,
) -> u32 {
    match p.addrs {
        IpPair::V4 { src, dst } => {
            let (from, to) = if back { (dst, src) } else { (src, dst) };
            let Some(h) = out.get_mut(l3..l3 + 20) else { return 0 };
            h.fill(0);
            copy(h, 0, &[0x45, tos]);
            put16(h, 2, (20 + payload_len) as u16);
            copy(h, 8, &[TTL, protocol]);
            put32(h, 12, from);
            put32(h, 16, to);
            let sum = checksum::internet(h);
            put16(h, 10, sum);
            checksum::pseudo_header_v4(from.to_be_bytes(), to.to_be_bytes(), protocol, payload_len as u16)
        }
        IpPair::V6 { src, dst } => {
            let (from, to) = if back { (dst, src) } else { (src, dst) };
            let Some(h) = out.get_mut(l3..l3 + 40) else { return 0 };
            h.fill(0);
            copy(h, 0, &[0x60]);
            put16(h, 4, payload_len as u16);
            copy(h, 6, &[protocol, TTL]);
            copy(h, 8, &from.to_be_bytes());
            copy(h, 24, &to.to_be_bytes());
            checksum::pseudo_header_v6(from.to_be_bytes(), to.to_be_bytes(), protocol, payload_len as u32)
        }
    }
}

/// The ICMP or ICMPv6 administratively prohibited error quoting `ip`, into `out`.
fn write_unreachable(frame: &[u8], p: &PacketSummary, ip: &[u8], out: &mut [u8]) -> usize {
    let (ethertype, ip_len, protocol, kind, code, most) = match p.addrs {
        IpPair::V4 { .. } => (0x0800, 20, ip_proto::ICMP, 3, 13, ICMPV4_MAX_DATAGRAM),
        IpPair::V6 { .. } => (0x86dd, 40, ip_proto::ICMPV6, 1, 1, IPV6_MIN_MTU),
    };
    let quote = ip.get(..ip.len().min(most - ip_len - 8)).unwrap_or(&[]);
    let l3 = write_link(frame, p, true, ethertype, out);
    let l4 = l3 + ip_len;
    let icmp_len = 8 + quote.len();
    // Precedence "internetwork control" for ICMPv4 errors, as hosts send them (RFC 1812
    // section 4.3.2.5).
    let pseudo = write_ip(p, true, protocol, icmp_len, 0xc0, out, l3);
    let Some(icmp) = out.get_mut(l4..l4 + icmp_len) else { return 0 };
    icmp.fill(0);
    copy(icmp, 0, &[kind, code]);
    copy(icmp, 8, quote);
    let sum = match p.addrs {
        IpPair::V4 { .. } => checksum::internet(icmp),
        IpPair::V6 { .. } => checksum::finish(checksum::sum(pseudo, icmp)),
    };
    put16(icmp, 2, sum);
    l4 + icmp_len
}

fn copy(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = out.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn get16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes.get(at..at + 2).and_then(|b| b.try_into().ok()).map(u16::from_be_bytes)
}

fn get32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes)
}

fn put16(out: &mut [u8], at: usize, v: u16) {
    copy(out, at, &v.to_be_bytes());
}

fn put32(out: &mut [u8], at: usize, v: u32) {
    copy(out, at, &v.to_be_bytes());
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
