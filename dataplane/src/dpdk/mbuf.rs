//! One owned packet buffer (`rte_mbuf`).

use std::ptr::NonNull;

use super::error::{DpdkError, Result};
use super::mempool::Mempool;

/// DPDK's packet buffer, for code that moves raw pointers (bursts, rings).
pub use dpdk_sys::rte_mbuf as RawMbuf;

/// Linux `ENOBUFS`: the errno reported when a pool has no free buffer.
const ENOBUFS: i32 = 105;

/// An owned packet buffer; dropping it returns it to its pool.
///
/// The byte views ([`data`](Self::data), [`data_mut`](Self::data_mut)) cover the first
/// segment, which holds the whole packet for the single-segment buffers the dataplane uses
/// (see [`is_contiguous`](Self::is_contiguous)).
#[derive(Debug)]
pub struct Mbuf {
    ptr: NonNull<RawMbuf>,
}

// SAFETY: an Mbuf is the only owner of its buffer; returning it to its pool is thread-safe.
unsafe impl Send for Mbuf {}
// SAFETY: shared references only read the buffer.
unsafe impl Sync for Mbuf {}

impl Mbuf {
    /// Allocates an empty buffer from `pool`.
    pub fn alloc(pool: &Mempool) -> Result<Mbuf> {
        // SAFETY: the pool is alive (borrowed) and was created by rte_pktmbuf_pool_create.
        let ptr = unsafe { dpdk_sys::rte_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(ptr)
            .map(|ptr| Mbuf { ptr })
            .ok_or_else(|| DpdkError::from_errno(format!("rte_pktmbuf_alloc({})", pool.name()), ENOBUFS))
    }

    /// A buffer from `pool` holding a copy of `bytes`.
    pub fn from_bytes(pool: &Mempool, bytes: &[u8]) -> Result<Mbuf> {
        let mut m = Self::alloc(pool)?;
        m.append(bytes)?;
        Ok(m)
    }

    /// Appends `bytes` at the end of the packet. Fails, leaving the packet unchanged, when
    /// the buffer has less tailroom than `bytes.len()`.
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let tailroom = self.tailroom();
        let len = u16::try_from(bytes.len()).ok().filter(|&n| usize::from(n) <= tailroom).ok_or_else(|| {
            DpdkError::InvalidArgument(format!(
                "cannot append {} bytes to an mbuf with {tailroom} bytes of tailroom",
                bytes.len()
            ))
        })?;
        // SAFETY: we own the buffer; len fits in its tailroom (checked above).
        let dst = unsafe { dpdk_sys::rte_pktmbuf_append(self.ptr.as_ptr(), len) };
        if dst.is_null() {
            return Err(DpdkError::InvalidArgument("rte_pktmbuf_append failed".into()));
        }
        // SAFETY: rte_pktmbuf_append returned `len` writable bytes inside our buffer, which
        // cannot overlap `bytes` (a shared borrow of other memory).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), bytes.len()) };
        Ok(())
    }

    /// Bytes of data in the first segment.
    #[inline]
    pub fn len(&self) -> usize {
        // SAFETY: we own a valid mbuf.
        usize::from(unsafe { dpdk_sys::dpdk_sys_pktmbuf_data_len(self.ptr.as_ptr()) })
    }

    /// Whether the packet has no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of data in the whole chain of segments.
    pub fn pkt_len(&self) -> usize {
        // SAFETY: we own a valid mbuf.
        unsafe { dpdk_sys::dpdk_sys_pktmbuf_pkt_len(self.ptr.as_ptr()) as usize }
    }

    /// Whether the whole packet is in the first segment (so `data()` is all of it).
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: we own a valid mbuf.
        unsafe { dpdk_sys::dpdk_sys_pktmbuf_nb_segs(self.ptr.as_ptr()) == 1 }
    }

    /// Free bytes after the data in the first segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: we own a valid mbuf.
        usize::from(unsafe { dpdk_sys::rte_pktmbuf_tailroom(self.ptr.as_ptr()) })
    }

    /// The packet bytes (first segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: self owns the buffer, which lives as long as the borrow.
        unsafe { raw_data(self.ptr.as_ptr()) }
    }

    /// The packet bytes (first segment), writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: self owns the buffer exclusively (mbufs of this layer are never shared
        // with a reference count above 1), for as long as the mutable borrow.
        unsafe { raw_data_mut(self.ptr.as_ptr()) }
    }

    /// Gives up ownership: the caller must free the buffer or turn it back into an `Mbuf`.
    #[inline]
    pub fn into_raw(self) -> NonNull<RawMbuf> {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }

    /// Takes ownership of a raw buffer.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nothing else owns or will free (e.g. one returned
    /// by [`into_raw`](Self::into_raw), `rte_eth_rx_burst` or `rte_pktmbuf_alloc`), with a
    /// reference count of 1.
    #[inline]
    pub unsafe fn from_raw(ptr: NonNull<RawMbuf>) -> Mbuf {
        Mbuf { ptr }
    }

    /// The raw pointer, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut RawMbuf {
        self.ptr.as_ptr()
    }
}

/// The packet bytes (first segment), so a burst of mbufs is a burst of packets for the pipeline.
impl AsRef<[u8]> for Mbuf {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the buffer; after this it is never used again.
        unsafe { dpdk_sys::rte_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

/// The first segment's bytes of a raw mbuf.
///
/// # Safety
/// `m` must be a valid mbuf that stays alive and unmodified for `'a`.
#[inline]
pub(crate) unsafe fn raw_data<'a>(m: *mut RawMbuf) -> &'a [u8] {
    // Read in Rust rather than through the C helper: this runs once per packet, and a call
    // into C cannot be inlined (`rte_pktmbuf_mtod` is buf_addr + data_off).
    // SAFETY: m is a valid mbuf (caller); its header fields are plain reads.
    let (buf, off, len) = unsafe { ((*m).buf_addr, (*m).data_off, (*m).data_len) };
    // SAFETY: data_len bytes from buf_addr + data_off are initialised packet data in the
    // mbuf's buffer, alive for 'a (caller).
    unsafe { std::slice::from_raw_parts(buf.cast::<u8>().add(usize::from(off)), usize::from(len)) }
}

/// The first segment's bytes of a raw mbuf, writable.
///
/// # Safety
/// `m` must be a valid mbuf, exclusively accessible through the returned slice for `'a`.
#[inline]
pub(crate) unsafe fn raw_data_mut<'a>(m: *mut RawMbuf) -> &'a mut [u8] {
    // SAFETY: m is a valid mbuf (caller); its header fields are plain reads.
    let (buf, off, len) = unsafe { ((*m).buf_addr, (*m).data_off, (*m).data_len) };
    // SAFETY: as in raw_data, and the caller guarantees exclusive access for 'a.
    unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>().add(usize::from(off)), usize::from(len)) }
}
