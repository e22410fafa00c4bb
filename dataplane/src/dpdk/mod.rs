//! The only safe layer over `dpdk-sys`, and the only `unsafe` outside `ffi`.
