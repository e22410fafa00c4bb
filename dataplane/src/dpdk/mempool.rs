//! Packet buffer pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys::rte_mempool;

use super::burst::MbufBurst;
use super::eal::Live;
use super::error::{DpdkError, Result};
use super::mbuf::Mbuf;

/// Per-lcore cache size used by [`Mempool::new`] (DPDK's usual choice; at most
/// `RTE_MEMPOOL_CACHE_MAX_SIZE`, and capped so caches cannot hold the whole pool).
pub const DEFAULT_CACHE_SIZE: u32 = 256;

/// Data room of each buffer in [`Mempool::new`]: 2048 bytes of data plus the headroom.
pub const DEFAULT_DATA_ROOM: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

/// A pool of packet buffers. Cloning is cheap (a reference count); ports hold a clone of
/// the pool they receive into, so it cannot be freed under them.
///
/// The pool is freed when the last clone is dropped, unless buffers are still in use
/// (in an [`Mbuf`], a burst, a ring or a device queue): then it is deliberately leaked,
/// because freeing it would leave those buffers pointing into freed memory.
#[derive(Clone, Debug)]
pub struct Mempool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ptr: NonNull<rte_mempool>,
    name: String,
    live: Option<Live>,
}

// SAFETY: an rte_mempool created with default flags uses the multi-producer/multi-consumer
// ring ops: get and put are thread-safe; the other calls used here only read counters.
unsafe impl Send for Inner {}
// SAFETY: as above; no method of Mempool needs exclusive access.
unsafe impl Sync for Inner {}

impl Mempool {
    /// A pool of `size` buffers with 2048 data bytes each, the default per-lcore cache,
    /// on any NUMA socket.
    pub fn new(name: &str, size: u32) -> Result<Mempool> {
        let cache = DEFAULT_CACHE_SIZE.min(size / 2);
        Self::with_config(name, size, cache, DEFAULT_DATA_ROOM, dpdk_sys::SOCKET_ID_ANY)
    }

    /// A pool with explicit per-lcore cache size, buffer data room (including the
    /// `RTE_PKTMBUF_HEADROOM` of 128 bytes) and NUMA socket (`SOCKET_ID_ANY` = -1).
    pub fn with_config(name: &str, size: u32, cache_size: u32, data_room: u16, socket_id: i32) -> Result<Mempool> {
        let live = Live::acquire()?;
        let c_name = CString::new(name).map_err(|_| DpdkError::InvalidArgument(format!("mempool name {name:?}")))?;
        // SAFETY: EAL is running (live); the name is a valid C string that DPDK copies.
        let ptr =
            unsafe { dpdk_sys::rte_pktmbuf_pool_create(c_name.as_ptr(), size, cache_size, 0, data_room, socket_id) };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::last(format!("rte_pktmbuf_pool_create({name})")))?;
        Ok(Mempool { inner: Arc::new(Inner { ptr, name: name.to_owned(), live: Some(live) }) })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Buffers handed out (including those held by device queues and rings).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is alive (self holds it); reads counters only.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.as_ptr()) }
    }

    /// Buffers available (in the pool and in the per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive (self holds it); reads counters only.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.as_ptr()) }
    }

    /// Total number of buffers.
    pub fn capacity(&self) -> u32 {
        // SAFETY: the pool is alive; `size` is set at creation and never changes.
        unsafe { (*self.as_ptr()).size }
    }

    /// Bytes per buffer: DPDK's object header, the mbuf with its headroom and data room, and
    /// the trailer.
    pub fn object_bytes(&self) -> u32 {
        // SAFETY: the pool is alive; the sizes are set at creation and never change.
        unsafe {
            let p = &*self.as_ptr();
            p.header_size + p.elt_size + p.trailer_size
        }
    }

    /// Allocates one buffer (empty, with the default headroom).
    pub fn alloc(&self) -> Result<Mbuf> {
        Mbuf::alloc(self)
    }

    /// Fills `n` more slots of `burst` with empty buffers at once (`rte_pktmbuf_alloc_bulk`):
    /// all or none. Returns whether it did (false: the pool had fewer free, or the burst has
    /// fewer free slots).
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut MbufBurst<N>, n: usize) -> bool {
        let (spare, free) = burst.spare_raw();
        let Ok(count) = u32::try_from(n) else { return false };
        if n > free {
            return false;
        }
        // SAFETY: the pool is alive (self holds it); `spare` has room for `n` pointers
        // (checked); on success DPDK wrote `n` owned, valid mbufs there, each with a reference
        // count of 1, which the burst now counts.
        unsafe {
            if dpdk_sys::rte_pktmbuf_alloc_bulk(self.as_ptr(), spare.cast(), count) != 0 {
                return false;
            }
            burst.add_len(n);
        }
        true
    }

    /// The raw pool pointer, for the other wrappers of this layer.
    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: the pool is alive until the free below.
        let in_use = unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use != 0 {
            // Leak the pool, and keep EAL from cleaning up the memory the buffers live in.
            std::mem::forget(self.live.take());
            return;
        }
        // SAFETY: last reference to the pool and no buffer of it is in use anywhere.
        unsafe { dpdk_sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}
