//! Benchmarks against DPDK references measured in the same run.
pub mod lookup;
