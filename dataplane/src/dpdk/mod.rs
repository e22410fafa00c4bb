//! The only safe layer over `dpdk-sys`, and the only `unsafe` outside `ffi`.
//!
//! - [`Eal`]: process-wide EAL initialisation (once per process) and cleanup.
//! - [`Mempool`], [`Mbuf`], [`MbufBurst`]: packet buffers, owned one by one or in fixed-size
//!   bursts that move between RX, TX and bulk free without heap allocation.
//! - [`Port`], [`RxQueue`], [`TxQueue`]: ethdev ports (physical or virtual), each queue owned
//!   by exactly one lcore.
//! - [`Ring`]: typed lock-free rings between lcores.
//! - [`lcore`]: lcore ids, launching closures on worker lcores; [`cycles`]: TSC and prefetch.
//! - [`lpm_ref`]: DPDK's own longest-prefix-match tables, as references for benchmarks.
//!
//! Lifetimes: DPDK objects keep the memory they need alive by reference counts taken at
//! creation (a port holds its mempool; a mempool with mbufs in use is never freed), so
//! dropping things in any order is sound. Nothing here allocates per packet.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod burst;
pub mod cycles;
pub mod eal;
pub mod error;
pub mod lcore;
pub mod lpm_ref;
pub mod mbuf;
pub mod memory;
pub mod mempool;
pub mod port;
pub mod queue;
pub mod ring;

pub use burst::Handle;
pub use burst::{Burst, MbufBurst};
pub use eal::Eal;
pub use error::{DpdkError, Result};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{Link, Port, PortConfig, PortInfo, PortStats};
pub use queue::{RxQueue, TxQueue};
pub use ring::{Consumer, Producer, Ring, RingItem};
