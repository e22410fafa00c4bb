//! Traffic generation and benchmarks against DPDK references measured in the same run.

pub mod gen;
#[cfg(feature = "dpdk")]
pub mod lookup;
pub mod storm;
#[cfg(feature = "dpdk")]
pub mod traffic;
