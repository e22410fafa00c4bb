//! Time stamp counter and prefetch: small helpers for the fast path.
//!
//! The workers read the counter twice per burst and prefetch every packet and flow-table
//! bucket, so both are the instruction itself where we know it (a call into DPDK's C wrapper
//! cannot be inlined): x86-64 and ARM64, the two architectures the dataplane is built for.
//! Any other architecture goes through DPDK's own (portable) wrappers.

/// The CPU's time stamp counter (`rte_rdtsc`), ticking at [`tsc_hz`].
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads the TSC register; no memory is touched.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(target_arch = "aarch64")]
    {
        // The generic timer's virtual count, which DPDK's rte_rdtsc reads on ARM64 (its default
        // build, without RTE_ARM_EAL_RDTSC_USE_PMU), so it ticks at the rate rte_get_tsc_hz
        // reports (CNTFRQ_EL0). Readable at EL0 on Linux.
        let ticks: u64;
        // SAFETY: reads a system register; no memory, stack or flags are touched.
        unsafe {
            std::arch::asm!("mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack, preserves_flags));
        }
        ticks
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    // SAFETY: reads the time stamp counter; no memory is touched.
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
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction does not dereference `p` architecturally and cannot
    // fault, even for a dangling or null pointer; SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is a hint (rte_prefetch0's own instruction on ARM64): it does not
    // dereference `p` architecturally and never faults, even for a dangling or null pointer.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{}]", in(reg) p, options(readonly, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    // SAFETY: as above: a prefetch cannot fault.
    unsafe {
        dpdk_sys::rte_prefetch0(p.cast())
    }
}
