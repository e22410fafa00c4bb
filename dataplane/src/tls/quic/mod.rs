//! The ClientHello of a QUIC connection (RFC 9000, RFC 9001; QUIC v2, RFC 9369), read from the
//! client's Initial packets.
//!
//! A client's first flight is protected with keys anyone can derive from the Destination
//! Connection ID of its first Initial packet. Per UDP datagram from the client:
//!
//! 1. [`packet`]: the long-header packets coalesced in the datagram are walked by their Length
//!    field ([`packet::Packets`], each a [`packet::LongPacket`] view); only version 1 and 2
//!    Initials are opened. Version Negotiation, Retry, 0-RTT, Handshake, unknown versions and
//!    short headers are never decrypted.
//! 2. [`protection`]: the client's Initial keys (HKDF-SHA256 from the version's salt and the
//!    DCID), header protection removed (AES-128 of the sample → mask; packet number length
//!    and packet number recovered), the payload opened with AES-128-GCM into a per-worker
//!    scratch buffer.
//! 3. [`frames`]: PADDING, PING, ACK and CRYPTO frames; any other frame is a failure.
//! 4. [`assembly`]: the CRYPTO stream is placed by offset (any order, across packets and
//!    datagrams; a datagram that disagrees with bytes already read is refused) into a bounded buffer; once bytes `0..n` hold a whole
//!    handshake message it is parsed by [`super::parse_handshake`].
//!
//! The pipeline keeps a small `Copy` [`QuicHello`] per UDP flow and one [`QuicScratch`] per
//! worker, and calls [`QuicHello::feed`] with each client datagram. A hello that spans
//! datagrams is kept in a slot of the worker's [`super::HelloBufferPool`], shared with TCP
//! (see [`assembly`] for the slot lifetime, which follows the TCP reassembly's). Nothing here
//! allocates per packet and no input makes it panic.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod assembly;
pub mod build;
pub mod frames;
pub mod packet;
pub mod protection;

pub use assembly::{QuicFeed, QuicHello, QuicScratch, Refusal};
pub use packet::{LongPacket, PacketType, Packets, Version};
pub use protection::{InitialKeys, Opened};

/// The largest Initial packet opened (header, payload and tag), and so the size of the
/// per-worker decryption scratch. A client's first datagrams must be at least 1200 bytes and
/// are sized before any path MTU is known: 1200..1472 bytes on a 1500-byte Ethernet MTU (the
/// common stacks send 1200..1357). 2048 leaves room for a long token; an Initial beyond it
/// (possible only over jumbo frames) is a failure ([`QuicError::PacketTooLong`]), not a
/// reason to keep a 64 KB buffer per worker.
pub const MAX_INITIAL_LEN: usize = 2048;

/// Why a QUIC client Initial could not be read. The pipeline maps all of them to a TLS
/// failure (`tls_fail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuicError {
    /// An opened Initial whose reserved header bits are set (a server closes the connection).
    /// A header whose fields run past the datagram or break the version's limits is skipped
    /// by the reading, as a server skips it.
    Malformed,
    /// The Initial is longer than [`MAX_INITIAL_LEN`].
    PacketTooLong,
    /// The AEAD tag did not verify (tampered or corrupt packet, or keys from another DCID).
    Decrypt,
    /// A frame other than PADDING, PING, ACK or CRYPTO, or a truncated frame.
    Frame,
    /// Overlapping CRYPTO data that disagrees with bytes already received (the datagram is
    /// refused: [`assembly::Refusal::Disagrees`]).
    Conflict,
    /// The CRYPTO stream arrived in more disjoint pieces than a flow tracks.
    Fragmented,
    /// CRYPTO data beyond the bound (the ClientHello would exceed 16 KB).
    Overflow,
    /// The handshake message is not a well-formed ClientHello.
    Hello(super::InvalidHello),
    /// No complete ClientHello within the client's first [`assembly::MAX_DATAGRAMS`] datagrams.
    Unfinished,
}

impl std::fmt::Display for QuicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuicError::Malformed => f.write_str("malformed QUIC long header"),
            QuicError::PacketTooLong => write!(f, "QUIC Initial longer than {MAX_INITIAL_LEN} bytes"),
            QuicError::Decrypt => f.write_str("QUIC Initial did not decrypt"),
            QuicError::Frame => f.write_str("unexpected or truncated frame in a QUIC Initial"),
            QuicError::Conflict => f.write_str("overlapping CRYPTO data disagrees"),
            QuicError::Fragmented => f.write_str("CRYPTO stream in too many pieces"),
            QuicError::Overflow => f.write_str("CRYPTO stream beyond the ClientHello bound"),
            QuicError::Hello(e) => write!(f, "QUIC ClientHello: {e}"),
            QuicError::Unfinished => {
                write!(f, "no ClientHello within the first {} client datagrams", assembly::MAX_DATAGRAMS)
            }
        }
    }
}

/// A QUIC variable-length integer (RFC 9000 section 16) at the start of `buf`: its value and
/// encoded length.
#[inline]
pub fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for b in bytes.iter().skip(1) {
        v = v << 8 | u64::from(*b);
    }
    Some((v, len))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
