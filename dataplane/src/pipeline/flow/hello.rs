//! A flow's ClientHello reassembly state: over TCP segments, or over QUIC Initials for a UDP
//! flow. Kept beside the flow's entry; either kind takes its buffer, when a hello spans
//! packets, from the worker's one `HelloBufferPool`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::tls::quic::QuicHello;
use crate::tls::{HelloBufferPool, HelloReassembly};
use crate::wire::ip_proto;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloState {
    Tcp(HelloReassembly),
    Quic(QuicHello),
}

impl Default for HelloState {
    fn default() -> Self {
        HelloState::Tcp(HelloReassembly::new())
    }
}

impl HelloState {
    /// The fresh state of a new flow of IP protocol `protocol`.
    #[inline]
    pub fn for_protocol(protocol: u8) -> HelloState {
        if protocol == ip_proto::UDP {
            HelloState::Quic(QuicHello::new())
        } else {
            HelloState::Tcp(HelloReassembly::new())
        }
    }

    /// True while the flow holds a buffer of the pool.
    #[inline]
    pub fn holds_slot(&self) -> bool {
        match self {
            HelloState::Tcp(h) => h.holds_slot(),
            HelloState::Quic(q) => q.holds_slot(),
        }
    }

    /// Return the buffer (if any) to the pool.
    #[inline]
    pub fn release(&mut self, pool: &mut HelloBufferPool) {
        match self {
            HelloState::Tcp(h) => h.release(pool),
            HelloState::Quic(q) => q.release(pool),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_state_beside_an_entry_stays_small() {
        assert!(std::mem::size_of::<super::HelloState>() <= 40, "{}", std::mem::size_of::<super::HelloState>());
    }
}
