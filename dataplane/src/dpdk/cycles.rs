//! Time stamp counter and prefetch: small helpers for the fast path.

/// The CPU's time stamp counter (`rte_rdtsc`).
#[inline]
pub fn tsc() -> u64 {
    // The instruction itself on x86-64: the workers read it twice per burst, and a call into
    // DPDK's C wrapper cannot be inlined.
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads the TSC register; no memory is touched.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the TSC register; no memory is touched.
    unsafe {
        dpdk_sys::rte_rdtsc()
    }
}

/// TSC ticks per second as measured by EAL (0 before `Eal::init`).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL computed at init (0 if not initialised); no preconditions.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}

/// Prefetch the cache line at `p` into all cache levels (`rte_prefetch0`).
///
/// A prefetch is a hint: it never faults, whatever `p` points to, so this is safe.
#[inline]
pub fn prefetch0<T>(p: *const T) {
    // The instruction itself on x86-64 (a call into DPDK's C wrapper cannot be inlined).
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction does not dereference `p` architecturally and cannot
    // fault, even for a dangling or null pointer; SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: as above: a prefetch cannot fault.
    unsafe {
        dpdk_sys::rte_prefetch0(p.cast())
    }
}
