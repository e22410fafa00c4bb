//! Raw bindings to DPDK. See build.rs.
