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
pub mod reply;
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

pub use summary::{
    parse_common, parse_frame, parse_frame_into, parse_general_into, Fragment, IpPair, PacketSummary, Parsed,
};

/// Why a frame could not be parsed. Malformed frames are counted and handled by policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// A header is cut short by the end of the frame.
    Truncated(Layer),
    /// A header field is inconsistent (IHL < 5, total length beyond the frame, data offset < 5...).
    Invalid(Layer),
}

impl Malformed {
    /// The cause reported for it (verdicts, counters, `classify --json`).
    pub const fn cause(self) -> MalformedCause {
        match self {
            Malformed::Truncated(Layer::Ethernet | Layer::Vlan) | Malformed::Invalid(Layer::Ethernet) => {
                MalformedCause::TruncatedL2
            }
            Malformed::Invalid(Layer::Vlan) => MalformedCause::VlanStack,
            Malformed::Truncated(Layer::Ipv4 | Layer::Ipv6) => MalformedCause::TruncatedIp,
            Malformed::Invalid(Layer::Ipv4 | Layer::Ipv6) => MalformedCause::BadIpHeader,
            Malformed::Truncated(Layer::Ipv6Ext) | Malformed::Invalid(Layer::Ipv6Ext) => MalformedCause::ExtChain,
            Malformed::Truncated(Layer::Tcp | Layer::Udp | Layer::Icmp) => MalformedCause::TruncatedL4,
            Malformed::Invalid(Layer::Tcp | Layer::Udp | Layer::Icmp) => MalformedCause::BadL4Header,
            Malformed::Truncated(Layer::Esp) | Malformed::Invalid(Layer::Esp) => MalformedCause::Encrypted,
        }
    }
}

/// Why a packet could not be read completely: one short word each, in verdicts
/// (`classify --json`'s `"malformed"`) and counters (`dataplane_worker_malformed_packets_total`).
///
/// Two kinds. A frame whose own link or IP header is broken ([`Self::addresses_known`] false)
/// has no addresses to decide by: it gets the `malformed` config key's action (drop by
/// default). A packet whose addresses are readable but whose transport is not (the rest) is
/// classified with its transport unknown (see `policy::decision::Query::transport_unknown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MalformedCause {
    /// The Ethernet header or a VLAN tag is cut short.
    TruncatedL2,
    /// More than two VLAN tags.
    VlanStack,
    /// The IPv4 or IPv6 header is cut short.
    TruncatedIp,
    /// The IP header is inconsistent: version, IHL, a length beyond the frame, a fragment
    /// reaching beyond 65535 bytes.
    BadIpHeader,
    /// The IPv6 extension header chain does not end in a transport we read: longer than the
    /// walk's bound, a header cut short, a kind the walk does not step over.
    ExtChain,
    /// The TCP, UDP or ICMP header is cut short (or a first fragment does not hold it).
    TruncatedL4,
    /// The TCP or UDP header is inconsistent (data offset, UDP length).
    BadL4Header,
    /// ESP: the transport is encrypted.
    Encrypted,
}

impl MalformedCause {
    /// Every cause, in a fixed order.
    pub const ALL: [MalformedCause; 8] = [
        MalformedCause::TruncatedL2,
        MalformedCause::VlanStack,
        MalformedCause::TruncatedIp,
        MalformedCause::BadIpHeader,
        MalformedCause::ExtChain,
        MalformedCause::TruncatedL4,
        MalformedCause::BadL4Header,
        MalformedCause::Encrypted,
    ];

    /// The short word that names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            MalformedCause::TruncatedL2 => "truncated-l2",
            MalformedCause::VlanStack => "vlan-stack",
            MalformedCause::TruncatedIp => "truncated-ip",
            MalformedCause::BadIpHeader => "bad-ip-header",
            MalformedCause::ExtChain => "ext-chain",
            MalformedCause::TruncatedL4 => "truncated-l4",
            MalformedCause::BadL4Header => "bad-l4-header",
            MalformedCause::Encrypted => "encrypted",
        }
    }

    /// Whether the packet's addresses were read (the summary's `addrs` hold them): only its
    /// transport is unknown.
    pub const fn addresses_known(self) -> bool {
        matches!(
            self,
            MalformedCause::ExtChain
                | MalformedCause::TruncatedL4
                | MalformedCause::BadL4Header
                | MalformedCause::Encrypted
        )
    }
}

impl std::fmt::Display for MalformedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// ESP (RFC 4303): only `Invalid`, for a packet whose transport is encrypted.
    Esp,
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
