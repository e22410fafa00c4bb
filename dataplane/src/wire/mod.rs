//! Zero-copy header views, in the style of smoltcp's `wire`: a typed view over a byte slice,
//! one checked constructor that validates lengths, then accessors that cannot fail.
//!
//! [`parse_frame`] walks Ethernet -> VLAN* -> IPv4/IPv6 (+ extension headers) -> TCP/UDP/ICMP
//! and produces the small per-packet [`PacketSummary`] the pipeline works on.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod fragment;
pub mod fragment_build;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6_ext;
pub mod tcp;
pub mod udp;
pub mod vlan;

mod field;
mod plain;
mod summary;

#[cfg(test)]
mod frame_tests;
#[cfg(test)]
mod proptests;

pub use summary::{parse_frame, parse_frame_into, Fragment, IpPair, PacketSummary, Parsed};

/// Why a frame could not be parsed. Malformed frames are counted and handled by policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// A header is cut short by the end of the frame.
    Truncated(Layer),
    /// A header field is inconsistent (IHL < 5, total length beyond the frame, data offset < 5...).
    Invalid(Layer),
}

/// The protocol layer a [`Malformed`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Vlan,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Tcp,
    Udp,
    Icmp,
}

/// IP protocol numbers the dataplane cares about.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}
