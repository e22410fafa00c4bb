//! Packet capture for forensics (`GET /v1/capture`, `dataplane capture`): while a capture is
//! armed, workers copy the packets its [`Filter`] keeps, whole frames as received with the
//! TSC of their burst, into a bounded [`Ring`] of their own; the control side drains the
//! rings into a pcap stream. A full ring drops the copy, never the packet, and counts it
//! missed. With no capture armed a worker pays one load per loop and one predictable branch
//! per burst ([`WorkerTap`]).
//!
//! Nothing here needs DPDK: the worker loop (`worker::fastpath`) and the API
//! (`control::capture`) join it to the lcores and to HTTP.

pub mod filter;
pub mod ring;
pub mod stream;
pub mod tap;

pub use filter::{Filter, QueryError, Request};
pub use ring::{Record, Ring};
pub use tap::{Session, Tap, WorkerTap};

#[cfg(test)]
mod tests;
