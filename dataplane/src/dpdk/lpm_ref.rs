//! DPDK's own longest-prefix-match tables (`rte_lpm`, `rte_lpm6`, `rte_fib`, `rte_fib6`),
//! as the reference the lookup benchmark measures the dataplane's tables against.
//!
//! Addresses are host-order `u32` for IPv4 (as DPDK expects) and `[u8; 16]` network order
//! for IPv6. Lookups take `&self` (DPDK lookups only read the table); updates take `&mut`.

use std::ffi::CString;
use std::ptr::NonNull;

use dpdk_sys::{rte_fib, rte_fib6, rte_lpm, rte_lpm6};

use super::eal::Live;
use super::error::{check, DpdkError, Result};

fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| DpdkError::InvalidArgument(format!("table name {name:?}")))
}

fn bulk_len(a: usize, b: usize) -> Result<u32> {
    if a != b {
        return Err(DpdkError::InvalidArgument(format!("lookup_bulk: {a} addresses but {b} result slots")));
    }
    u32::try_from(a).map_err(|_| DpdkError::InvalidArgument("lookup_bulk: too many".into()))
}

/// Declares a table type: pointer, EAL liveness, Send/Sync, Drop with its free function.
macro_rules! table {
    ($(#[$doc:meta])* $name:ident, $raw:ty, $free:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            ptr: NonNull<$raw>,
            _live: Live,
        }

        // SAFETY: the table is owned by this handle; DPDK tables may be used from any thread.
        unsafe impl Send for $name {}
        // SAFETY: shared access only runs lookups, which read the table.
        unsafe impl Sync for $name {}

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: we own the table; it is not used after this.
                unsafe { dpdk_sys::$free(self.ptr.as_ptr()) }
            }
        }
    };
}

table!(
    /// `rte_lpm`: IPv4 DIR-24-8 table with 24-bit next hops.
    Lpm4, rte_lpm, rte_lpm_free
);
table!(
    /// `rte_lpm6`: IPv6 table with 21-bit next hops.
    Lpm6, rte_lpm6, rte_lpm6_free
);
table!(
    /// `rte_fib`: IPv4 DIR-24-8 FIB with 8-byte next hops and a default next hop.
    Fib4, rte_fib, rte_fib_free
);
table!(
    /// `rte_fib6`: IPv6 trie FIB with 8-byte next hops and a default next hop.
    Fib6, rte_fib6, rte_fib6_free
);

impl Lpm4 {
    /// A table for up to `max_rules` routes and `number_tbl8s` groups for prefixes
    /// longer than /24. Names must be unique in the process.
    pub fn new(name: &str, max_rules: u32, number_tbl8s: u32) -> Result<Lpm4> {
        let live = Live::acquire()?;
        let c = c_name(name)?;
        let config = dpdk_sys::rte_lpm_config { max_rules, number_tbl8s, flags: 0 };
        // SAFETY: EAL is running; valid name and config, both copied by DPDK.
        let ptr = unsafe { dpdk_sys::rte_lpm_create(c.as_ptr(), dpdk_sys::SOCKET_ID_ANY, &config) };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::last(format!("rte_lpm_create({name})")))?;
        Ok(Lpm4 { ptr, _live: live })
    }

    /// Adds (or replaces) `ip/depth -> next_hop` (next hop below 2^24).
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u32) -> Result<()> {
        // SAFETY: we own the table exclusively (&mut).
        let ret = unsafe { dpdk_sys::rte_lpm_add(self.ptr.as_ptr(), ip, depth, next_hop) };
        check("rte_lpm_add", ret).map(|_| ())
    }

    /// Removes `ip/depth`.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<()> {
        // SAFETY: we own the table exclusively (&mut).
        let ret = unsafe { dpdk_sys::rte_lpm_delete(self.ptr.as_ptr(), ip, depth) };
        check("rte_lpm_delete", ret).map(|_| ())
    }

    /// The next hop of the longest prefix containing `ip`.
    #[inline]
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let mut nh = 0;
        // SAFETY: the table is alive; lookups only read it.
        let ret = unsafe { dpdk_sys::rte_lpm_lookup(self.ptr.as_ptr(), ip, &mut nh) };
        (ret == 0).then_some(nh)
    }

    /// Looks up `ips`; `next_hops[i]` gets the raw table entry: on a hit the next hop in the
    /// low 24 bits with [`LPM_LOOKUP_SUCCESS`] set (and DPDK-internal bits above), on a miss
    /// no flag (see [`Lpm4::decode`]).
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], next_hops: &mut [u32]) -> Result<()> {
        let n = bulk_len(ips.len(), next_hops.len())?;
        // SAFETY: the table is alive; both slices hold n elements.
        let ret =
            unsafe { dpdk_sys::rte_lpm_lookup_bulk_func(self.ptr.as_ptr(), ips.as_ptr(), next_hops.as_mut_ptr(), n) };
        check("rte_lpm_lookup_bulk", ret).map(|_| ())
    }

    /// A raw `lookup_bulk` result as `Some(next_hop)` or `None`.
    #[inline]
    pub fn decode(raw: u32) -> Option<u32> {
        (raw & LPM_LOOKUP_SUCCESS != 0).then_some(raw & 0x00ff_ffff)
    }
}

/// The hit flag in [`Lpm4::lookup_bulk`] results.
pub const LPM_LOOKUP_SUCCESS: u32 = dpdk_sys::RTE_LPM_LOOKUP_SUCCESS;

impl Lpm6 {
    /// A table for up to `max_rules` routes and `number_tbl8s` tbl8 groups.
    pub fn new(name: &str, max_rules: u32, number_tbl8s: u32) -> Result<Lpm6> {
        let live = Live::acquire()?;
        let c = c_name(name)?;
        let config = dpdk_sys::rte_lpm6_config { max_rules, number_tbl8s, flags: 0 };
        // SAFETY: EAL is running; valid name and config, both copied by DPDK.
        let ptr = unsafe { dpdk_sys::rte_lpm6_create(c.as_ptr(), dpdk_sys::SOCKET_ID_ANY, &config) };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::last(format!("rte_lpm6_create({name})")))?;
        Ok(Lpm6 { ptr, _live: live })
    }

    /// Adds (or replaces) `ip/depth -> next_hop`.
    pub fn add(&mut self, ip: &[u8; 16], depth: u8, next_hop: u32) -> Result<()> {
        // SAFETY: exclusive access; ip points to 16 bytes.
        let ret = unsafe { dpdk_sys::rte_lpm6_add(self.ptr.as_ptr(), ip.as_ptr(), depth, next_hop) };
        check("rte_lpm6_add", ret).map(|_| ())
    }

    /// Removes `ip/depth`.
    pub fn delete(&mut self, ip: &[u8; 16], depth: u8) -> Result<()> {
        // SAFETY: exclusive access; ip points to 16 bytes.
        let ret = unsafe { dpdk_sys::rte_lpm6_delete(self.ptr.as_ptr(), ip.as_ptr(), depth) };
        check("rte_lpm6_delete", ret).map(|_| ())
    }

    /// The next hop of the longest prefix containing `ip`.
    pub fn lookup(&self, ip: &[u8; 16]) -> Option<u32> {
        let mut nh = 0;
        // SAFETY: the table is alive; ip points to 16 bytes; lookups only read the table.
        let ret = unsafe { dpdk_sys::rte_lpm6_lookup(self.ptr.as_ptr(), ip.as_ptr(), &mut nh) };
        (ret == 0).then_some(nh)
    }

    /// Looks up `ips`; `next_hops[i]` gets the next hop, or -1 on a miss.
    pub fn lookup_bulk(&self, ips: &[[u8; 16]], next_hops: &mut [i32]) -> Result<()> {
        let n = bulk_len(ips.len(), next_hops.len())?;
        // SAFETY: the table is alive; both slices hold n elements; DPDK only reads `ips`
        // (its prototype lacks the const).
        let ret = unsafe {
            dpdk_sys::rte_lpm6_lookup_bulk_func(self.ptr.as_ptr(), ips.as_ptr().cast_mut(), next_hops.as_mut_ptr(), n)
        };
        check("rte_lpm6_lookup_bulk_func", ret).map(|_| ())
    }
}

impl Fib4 {
    /// A DIR-24-8 FIB (8-byte next hops) for up to `max_routes` routes, with `num_tbl8`
    /// groups for prefixes longer than /24; misses return `default_nh`.
    pub fn new(name: &str, max_routes: u32, num_tbl8: u32, default_nh: u64) -> Result<Fib4> {
        let live = Live::acquire()?;
        let c = c_name(name)?;
        let mut conf = dpdk_sys::rte_fib_conf {
            type_: dpdk_sys::RTE_FIB_DIR24_8,
            default_nh,
            max_routes: i32::try_from(max_routes).unwrap_or(i32::MAX),
            ..Default::default()
        };
        conf.__bindgen_anon_1.dir24_8 =
            dpdk_sys::rte_fib_conf__bindgen_ty_1__bindgen_ty_1 { nh_sz: dpdk_sys::RTE_FIB_DIR24_8_8B, num_tbl8 };
        // SAFETY: EAL is running; valid name and config, both copied by DPDK.
        let ptr = unsafe { dpdk_sys::rte_fib_create(c.as_ptr(), dpdk_sys::SOCKET_ID_ANY, &mut conf) };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::last(format!("rte_fib_create({name})")))?;
        Ok(Fib4 { ptr, _live: live })
    }

    /// Adds (or replaces) `ip/depth -> next_hop`.
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u64) -> Result<()> {
        // SAFETY: exclusive access.
        let ret = unsafe { dpdk_sys::rte_fib_add(self.ptr.as_ptr(), ip, depth, next_hop) };
        check("rte_fib_add", ret).map(|_| ())
    }

    /// Removes `ip/depth`.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<()> {
        // SAFETY: exclusive access.
        let ret = unsafe { dpdk_sys::rte_fib_delete(self.ptr.as_ptr(), ip, depth) };
        check("rte_fib_delete", ret).map(|_| ())
    }

    /// Looks up `ips`; `next_hops[i]` gets the next hop or the default one.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], next_hops: &mut [u64]) -> Result<()> {
        let n = bulk_len(ips.len(), next_hops.len())?;
        // SAFETY: the table is alive; both slices hold n elements; the lookup only reads the
        // table and `ips` (the prototype lacks the consts).
        let ret = unsafe {
            dpdk_sys::rte_fib_lookup_bulk(self.ptr.as_ptr(), ips.as_ptr().cast_mut(), next_hops.as_mut_ptr(), n as i32)
        };
        check("rte_fib_lookup_bulk", ret).map(|_| ())
    }
}

impl Fib6 {
    /// A trie FIB (8-byte next hops) for up to `max_routes` routes with `num_tbl8` groups;
    /// misses return `default_nh`.
    pub fn new(name: &str, max_routes: u32, num_tbl8: u32, default_nh: u64) -> Result<Fib6> {
        let live = Live::acquire()?;
        let c = c_name(name)?;
        let mut conf = dpdk_sys::rte_fib6_conf {
            type_: dpdk_sys::RTE_FIB6_TRIE,
            default_nh,
            max_routes: i32::try_from(max_routes).unwrap_or(i32::MAX),
            ..Default::default()
        };
        conf.__bindgen_anon_1.trie =
            dpdk_sys::rte_fib6_conf__bindgen_ty_1__bindgen_ty_1 { nh_sz: dpdk_sys::RTE_FIB6_TRIE_8B, num_tbl8 };
        // SAFETY: EAL is running; valid name and config, both copied by DPDK.
        let ptr = unsafe { dpdk_sys::rte_fib6_create(c.as_ptr(), dpdk_sys::SOCKET_ID_ANY, &mut conf) };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::last(format!("rte_fib6_create({name})")))?;
        Ok(Fib6 { ptr, _live: live })
    }

    /// Adds (or replaces) `ip/depth -> next_hop`.
    pub fn add(&mut self, ip: &[u8; 16], depth: u8, next_hop: u64) -> Result<()> {
        // SAFETY: exclusive access; ip points to 16 bytes.
        let ret = unsafe { dpdk_sys::rte_fib6_add(self.ptr.as_ptr(), ip.as_ptr(), depth, next_hop) };
        check("rte_fib6_add", ret).map(|_| ())
    }

    /// Removes `ip/depth`.
    pub fn delete(&mut self, ip: &[u8; 16], depth: u8) -> Result<()> {
        // SAFETY: exclusive access; ip points to 16 bytes.
        let ret = unsafe { dpdk_sys::rte_fib6_delete(self.ptr.as_ptr(), ip.as_ptr(), depth) };
        check("rte_fib6_delete", ret).map(|_| ())
    }

    /// Looks up `ips`; `next_hops[i]` gets the next hop or the default one.
    pub fn lookup_bulk(&self, ips: &[[u8; 16]], next_hops: &mut [u64]) -> Result<()> {
        let n = bulk_len(ips.len(), next_hops.len())?;
        // SAFETY: as in Fib4::lookup_bulk.
        let ret = unsafe {
            dpdk_sys::rte_fib6_lookup_bulk(self.ptr.as_ptr(), ips.as_ptr().cast_mut(), next_hops.as_mut_ptr(), n as i32)
        };
        check("rte_fib6_lookup_bulk", ret).map(|_| ())
    }
}
