//! The per-packet summary: everything later stages need, computed in one pass.

use super::Malformed;

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

/// The result of parsing a frame that is not malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Ip(PacketSummary),
    /// Not IPv4/IPv6 (ARP, LLDP...): forwarded untouched, never classified.
    NonIp { ethertype: u16 },
}

/// Parse an Ethernet frame. Never panics, whatever the bytes.
pub fn parse_frame(frame: &[u8]) -> Result<Parsed, Malformed> {
    let _ = frame;
    todo!("wire helper implements this")
}
