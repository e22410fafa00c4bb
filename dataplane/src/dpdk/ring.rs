//! Typed lock-free rings between lcores (`rte_ring`), carrying owned pointer-sized handles
//! (mbufs, boxed values).
//!
//! A ring is created as a (producer, consumer) pair. Single-producer/consumer ends
//! (`MULTI = false`) cannot be cloned, so the type system enforces what `RING_F_SP_ENQ` and
//! `RING_F_SC_DEQ` require; multi ends can be cloned, one clone per thread. Ends are `Send`
//! but not `Sync`.

use std::cell::Cell;
use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys::rte_ring;

use super::burst::{Burst, Handle};
use super::eal::Live;
use super::error::{DpdkError, Result};

/// Something a ring can carry: any [`Handle`] (an owned single pointer).
pub use super::burst::Handle as RingItem;

/// Constructors of ring end pairs.
pub struct Ring<T>(PhantomData<T>);

/// The enqueue end. Clone only when `MULTI` (multi-producer).
pub struct Producer<T: Handle, const MULTI: bool> {
    ring: Arc<RawRing<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

/// The dequeue end. Clone only when `MULTI` (multi-consumer).
pub struct Consumer<T: Handle, const MULTI: bool> {
    ring: Arc<RawRing<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

struct RawRing<T: Handle> {
    ptr: NonNull<rte_ring>,
    name: String,
    _live: Live,
    _items: PhantomData<T>,
}

// SAFETY: the ring carries owned T: Send between threads; rte_ring itself is thread-safe for
// the producer/consumer modes its ends enforce.
unsafe impl<T: Handle> Send for RawRing<T> {}
// SAFETY: as above; the shared RawRing is only used through the ends' methods.
unsafe impl<T: Handle> Sync for RawRing<T> {}

impl<T: Handle> Ring<T> {
    /// A ring holding up to `capacity` items, named uniquely (DPDK rejects duplicate names),
    /// multi-producer when `MP`, multi-consumer when `MC`.
    pub fn create<const MP: bool, const MC: bool>(
        name: &str,
        capacity: u32,
    ) -> Result<(Producer<T, MP>, Consumer<T, MC>)> {
        let live = Live::acquire()?;
        let c_name = CString::new(name).map_err(|_| DpdkError::InvalidArgument(format!("ring name {name:?}")))?;
        let mut flags = dpdk_sys::RING_F_EXACT_SZ;
        if !MP {
            flags |= dpdk_sys::RING_F_SP_ENQ;
        }
        if !MC {
            flags |= dpdk_sys::RING_F_SC_DEQ;
        }
        // SAFETY: EAL is running (live); DPDK copies the name.
        let ptr = unsafe { dpdk_sys::rte_ring_create(c_name.as_ptr(), capacity, dpdk_sys::SOCKET_ID_ANY, flags) };
        let ptr = NonNull::new(ptr).ok_or_else(|| DpdkError::last(format!("rte_ring_create({name})")))?;
        let ring = Arc::new(RawRing { ptr, name: name.to_owned(), _live: live, _items: PhantomData });
        Ok((Producer { ring: ring.clone(), _not_sync: PhantomData }, Consumer { ring, _not_sync: PhantomData }))
    }

    /// Single producer, single consumer.
    pub fn spsc(name: &str, capacity: u32) -> Result<(Producer<T, false>, Consumer<T, false>)> {
        Self::create(name, capacity)
    }

    /// Multi producer, single consumer.
    pub fn mpsc(name: &str, capacity: u32) -> Result<(Producer<T, true>, Consumer<T, false>)> {
        Self::create(name, capacity)
    }

    /// Multi producer, multi consumer.
    pub fn mpmc(name: &str, capacity: u32) -> Result<(Producer<T, true>, Consumer<T, true>)> {
        Self::create(name, capacity)
    }
}

impl<T: Handle> RawRing<T> {
    fn count(&self) -> usize {
        // SAFETY: the ring is alive; reads its head/tail indexes.
        unsafe { dpdk_sys::rte_ring_count(self.ptr.as_ptr()) as usize }
    }

    fn capacity(&self) -> usize {
        // SAFETY: the ring is alive; reads a field set at creation.
        unsafe { dpdk_sys::rte_ring_get_capacity(self.ptr.as_ptr()) as usize }
    }

    fn dequeue_into<const N: usize>(&self, burst: &mut Burst<T, N>) -> usize {
        let (dst, spare) = burst.spare_raw();
        // SAFETY: `dst` has room for `spare` pointers; the ring holds owned T handles (only
        // handles of type T are ever enqueued), whose ownership moves to the burst.
        unsafe {
            let n =
                dpdk_sys::rte_ring_dequeue_burst(self.ptr.as_ptr(), dst, spare as u32, std::ptr::null_mut()) as usize;
            burst.add_len(n);
            n
        }
    }
}

impl<T: Handle> Drop for RawRing<T> {
    fn drop(&mut self) {
        // Both ends are gone: drop what is still queued, then free the ring.
        let mut burst = Burst::<T, 64>::new();
        while self.dequeue_into(&mut burst) > 0 {
            burst.clear();
        }
        // SAFETY: last reference to the ring, now empty.
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) };
    }
}

impl<T: Handle, const MULTI: bool> Producer<T, MULTI> {
    /// Enqueues one item; gives it back when the ring is full.
    pub fn enqueue(&self, item: T) -> std::result::Result<(), T> {
        let mut one = Burst::<T, 1>::new();
        one.push(item).ok();
        if self.enqueue_burst(&mut one) == 1 {
            Ok(())
        } else {
            one.pop().map_or(Ok(()), Err)
        }
    }

    /// Enqueues as many items of `burst` as fit, from the front; they leave the burst, the
    /// rest stays. Returns how many were enqueued.
    pub fn enqueue_burst<const N: usize>(&self, burst: &mut Burst<T, N>) -> usize {
        let len = burst.len();
        // SAFETY: the ring is alive; the burst's first `len` slots are owned handles. The
        // ring takes ownership of the first `n`, which the burst then forgets.
        unsafe {
            let n = dpdk_sys::rte_ring_enqueue_burst(
                self.ring.ptr.as_ptr(),
                burst.as_raw(),
                len as u32,
                std::ptr::null_mut(),
            ) as usize;
            burst.consumed_front(n);
            n
        }
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.ring.count()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum number of items.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.ring.name
    }
}

impl<T: Handle, const MULTI: bool> Consumer<T, MULTI> {
    /// Dequeues one item.
    pub fn dequeue(&self) -> Option<T> {
        let mut burst = Burst::<T, 1>::new();
        self.ring.dequeue_into(&mut burst);
        burst.pop()
    }

    /// Dequeues into the free slots of `burst`. Returns how many were added.
    pub fn dequeue_burst<const N: usize>(&self, burst: &mut Burst<T, N>) -> usize {
        self.ring.dequeue_into(burst)
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.ring.count()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum number of items.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
}

impl<T: Handle> Clone for Producer<T, true> {
    fn clone(&self) -> Self {
        Producer { ring: self.ring.clone(), _not_sync: PhantomData }
    }
}

impl<T: Handle> Clone for Consumer<T, true> {
    fn clone(&self) -> Self {
        Consumer { ring: self.ring.clone(), _not_sync: PhantomData }
    }
}
