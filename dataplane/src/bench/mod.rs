//! Traffic generation and benchmarks against DPDK references measured in the same run.

pub mod gen;
pub mod hello;
#[cfg(feature = "dpdk")]
pub mod lookup;
#[cfg(feature = "dpdk")]
pub mod traffic;
