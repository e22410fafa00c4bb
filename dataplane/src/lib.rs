//! A userspace packet dataplane on DPDK.
//!
//! Layering (imports run downwards only):
//! - [`wire`], [`tls`], [`policy`], [`pipeline`]: pure Rust, no DPDK; they build and test
//!   with `--no-default-features`.
//! - `dpdk` (feature `dpdk`): the only safe layer over `dpdk-sys`; the only `unsafe` outside `ffi`.
//! - `worker`, `bench` (feature `dpdk`): lcore loops joining `dpdk` and `pipeline`; the run's
//!   config and plan (`worker::config`, `worker::plan`) build without it.
//! - [`exit`]: the exit codes of every command.
//! - [`doctor`]: what a DPDK host needs, checked from sysfs/procfs and the config (no EAL).
//! - [`control`]: control API, persistence, metrics; talks to workers through rings and counters.
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod control;
pub mod counters;
pub mod doctor;
#[cfg(feature = "dpdk")]
pub mod dpdk;

pub mod exit;
pub mod pcap;
pub mod pipeline;
pub mod policy;
pub mod tls;
pub mod wire;
pub mod worker;

pub mod bench;
pub mod capture;

/// `println!` that does not panic when stdout is closed (`dataplane ... | head`): output is
/// best effort, the dataplane keeps running.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
