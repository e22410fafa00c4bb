//! TLS ClientHello inspection: a zero-copy parser over the client's byte stream
//! ([`parse_stream`]), per-flow reassembly across TCP segments ([`reassembly`]), and the
//! JA3 / JA4 client fingerprints ([`ja3`], [`ja4`]); [`build`] makes well-formed hellos for
//! generated traffic and tests (as `wire::build` makes frames). Nothing here allocates per packet or
//! per flow, and no input makes it panic.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod build;
pub mod client_hello;
pub mod ja3;
pub mod ja4;
pub mod quic;
pub mod reassembly;
pub mod record;
mod sink;
pub mod stream;

pub use client_hello::{is_grease, parse_version, version_str, ClientHello, HelloOutcome, InvalidHello, MAX_HELLO_LEN};
pub use ja3::{ja3, Ja3};
pub use ja4::{ja4, Ja4};
pub use reassembly::{FeedResult, HelloBufferPool, HelloReassembly, SlotId};
pub use stream::{parse_handshake, parse_stream};

#[cfg(test)]
mod tests;
