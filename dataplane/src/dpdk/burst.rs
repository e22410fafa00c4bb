//! Fixed-size bursts of owned handles (mbufs, boxed values): what RX fills, TX drains, rings
//! move and bulk free releases, without heap allocation.
//!
//! A worker loop in the style of DPDK's l3fwd:
//! ```ignore
//! let mut rx = MbufBurst::<32>::new();
//! let mut tx = MbufBurst::<32>::new();
//! loop {
//!     rx_queue.burst(&mut rx);                             // fill from the NIC
//!     rx.move_to(&mut tx, |i, pkt| verdicts[i].forward()); // forwarded packets, in order
//!     rx.clear();                                          // dropped ones: one bulk free
//!     tx_queue.burst(&mut tx);                             // sent ones leave the burst
//!     tx.clear();                                          // unsent ones: one bulk free
//! }
//! ```

use std::ffi::c_void;
use std::mem::{ManuallyDrop, MaybeUninit};

use super::mbuf::{Mbuf, RawMbuf};

/// An owning handle that is a single non-null pointer, so arrays of it can be handed to
/// DPDK as `void **` (rings) or `struct rte_mbuf **` (ethdev) and filled by DPDK.
///
/// # Safety
/// Implementors must have the size and alignment of a pointer and hold a non-null pointer
/// that owns what it points to, so that a pointer value taken from a handle may be turned
/// back into a handle exactly once.
pub unsafe trait Handle: Send + Sized {
    /// Drops `items` at once (mbufs use `rte_pktmbuf_free_bulk`).
    fn drop_bulk(items: &mut [ManuallyDrop<Self>]) {
        for item in items {
            // SAFETY: each item is dropped once; the caller forgets the slice afterwards.
            unsafe { ManuallyDrop::drop(item) };
        }
    }
}

// SAFETY: Mbuf is a NonNull<rte_mbuf> that owns its buffer.
unsafe impl Handle for Mbuf {
    fn drop_bulk(items: &mut [ManuallyDrop<Self>]) {
        if items.is_empty() {
            return;
        }
        // ManuallyDrop<Mbuf> is a NonNull<rte_mbuf>: the slice is an array of mbuf pointers.
        let ptrs = items.as_mut_ptr().cast::<*mut RawMbuf>();
        // SAFETY: `items.len()` owned, valid mbufs, each freed once here; the caller forgets
        // them afterwards.
        unsafe { dpdk_sys::rte_pktmbuf_free_bulk(ptrs, items.len() as u32) };
    }
}

// SAFETY: for sized U a Box<U> is a single non-null owning pointer.
unsafe impl<U: Send> Handle for Box<U> {}

/// Up to `N` owned handles in a fixed array.
pub struct Burst<T: Handle, const N: usize> {
    items: [MaybeUninit<ManuallyDrop<T>>; N],
    len: usize,
}

/// A burst of packet buffers, as received from or transmitted to a port.
pub type MbufBurst<const N: usize> = Burst<Mbuf, N>;

impl<T: Handle, const N: usize> Burst<T, N> {
    const POINTER_SIZED: () =
        assert!(size_of::<T>() == size_of::<*mut c_void>() && align_of::<T>() == align_of::<*mut c_void>());

    /// An empty burst.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::POINTER_SIZED;
        Burst { items: [const { MaybeUninit::uninit() }; N], len: 0 }
    }

    /// Number of handles held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the burst holds nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the burst holds `N` handles.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The handles held, in order.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` items are initialised; ManuallyDrop<T> and MaybeUninit<..>
        // are repr(transparent) over T.
        unsafe { std::slice::from_raw_parts(self.items.as_ptr().cast::<T>(), self.len) }
    }

    /// The handles held, in order, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in as_slice, with exclusive access through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.items.as_mut_ptr().cast::<T>(), self.len) }
    }

    /// Iterates over the handles.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.as_slice().iter()
    }

    /// Adds a handle at the end; gives it back when the burst is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.len == N {
            return Err(item);
        }
        self.items[self.len].write(ManuallyDrop::new(item));
        self.len += 1;
        Ok(())
    }

    /// Removes the last handle.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: item `len` was initialised and is no longer counted, so it is read once.
        Some(ManuallyDrop::into_inner(unsafe { self.items[self.len].assume_init_read() }))
    }

    /// Drops everything held, at once (one `rte_pktmbuf_free_bulk` for mbufs).
    pub fn clear(&mut self) {
        let len = std::mem::replace(&mut self.len, 0);
        // SAFETY: the first `len` items were initialised and are no longer counted, so
        // drop_bulk drops each exactly once.
        let items = unsafe { std::slice::from_raw_parts_mut(self.items.as_mut_ptr().cast::<ManuallyDrop<T>>(), len) };
        T::drop_bulk(items);
    }

    /// Same as [`clear`](Self::clear): frees all held mbufs in bulk.
    pub fn free_all(&mut self) {
        self.clear();
    }

    /// Moves the handles for which `pred(index, &handle)` is true to the end of `dst`, in
    /// order; the others stay, in order. Stops moving when `dst` is full (what did not fit
    /// stays here). Returns how many moved.
    pub fn move_to<const M: usize>(&mut self, dst: &mut Burst<T, M>, mut pred: impl FnMut(usize, &T) -> bool) -> usize {
        // Uncount everything while items move: if `pred` panics, the ones not yet placed
        // leak instead of being dropped twice.
        let len = std::mem::replace(&mut self.len, 0);
        let mut kept = 0;
        let mut moved = 0;
        for i in 0..len {
            // SAFETY: i < len, so item i is initialised (and not moved yet).
            let item = unsafe { self.items[i].assume_init_ref() };
            if dst.len < M && pred(i, item) {
                // SAFETY: item i is moved out once; its slot is overwritten or left
                // uncounted below.
                let item = unsafe { self.items[i].assume_init_read() };
                dst.items[dst.len].write(item);
                dst.len += 1;
                moved += 1;
            } else {
                if kept != i {
                    // SAFETY: kept < i, item i is initialised; slot `kept` was moved out
                    // (or compacted) before, so nothing is overwritten that is still owned.
                    let item = unsafe { self.items[i].assume_init_read() };
                    self.items[kept].write(item);
                }
                kept += 1;
            }
        }
        self.len = kept;
        moved
    }

    /// Keeps the handles for which `pred(index, &handle)` is true, in order, and drops the
    /// others at once. Returns how many were dropped.
    pub fn retain(&mut self, pred: impl FnMut(usize, &T) -> bool) -> usize {
        let mut pred = pred;
        let mut rejected = Burst::<T, N>::new();
        // Everything fits in `rejected` (same capacity), so every rejected handle moves.
        self.move_to(&mut rejected, |i, t| !pred(i, t))
        // `rejected` drops here: one bulk free.
    }

    /// Pointer to the first handle, for DPDK calls that consume from the front.
    pub(crate) fn as_raw(&mut self) -> *mut *mut c_void {
        self.items.as_mut_ptr().cast()
    }

    /// Pointer to the first free slot and how many are free, for DPDK calls that fill.
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut c_void, usize) {
        // SAFETY: len <= N, so the offset stays within (or one past) the array.
        let ptr = unsafe { self.items.as_mut_ptr().add(self.len) };
        (ptr.cast(), N - self.len)
    }

    /// Counts `n` more handles written by DPDK into the spare slots.
    ///
    /// # Safety
    /// The first `n` spare slots must now hold owned, valid handles of type `T`.
    pub(crate) unsafe fn add_len(&mut self, n: usize) {
        debug_assert!(self.len + n <= N);
        self.len += n;
    }

    /// Forgets the first `n` handles (DPDK took ownership of them) and moves the rest to the
    /// front.
    ///
    /// # Safety
    /// The first `n` handles must now be owned by someone else.
    pub(crate) unsafe fn consumed_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let base = self.items.as_mut_ptr();
        // SAFETY: both ranges lie within the array; slots 0..n are no longer owned, so the
        // overlapping move (memmove) loses nothing.
        unsafe { std::ptr::copy(base.add(n), base, self.len - n) };
        self.len -= n;
    }
}

impl<const N: usize> Burst<Mbuf, N> {
    /// The bytes of packet `i` (first segment).
    #[inline]
    pub fn packet(&self, i: usize) -> &[u8] {
        self.as_slice()[i].data()
    }

    /// Iterates over the packets' bytes.
    pub fn packets(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.as_slice().iter().map(Mbuf::data)
    }

    /// Prefetches the data of packet `i` (the headers the fast path reads first).
    #[inline]
    pub fn prefetch(&self, i: usize) {
        if let Some(m) = self.as_slice().get(i) {
            super::cycles::prefetch0(m.data().as_ptr());
        }
    }
}

impl<T: Handle, const N: usize> Default for Burst<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Handle, const N: usize> Drop for Burst<T, N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<T: Handle + std::fmt::Debug, const N: usize> std::fmt::Debug for Burst<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<'a, T: Handle, const N: usize> IntoIterator for &'a Burst<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
